"""The browser client's server side: the refresh token as an HttpOnly cookie, the
security headers on every answer, the app page and its files, and /static's limits."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from http.cookies import Morsel, SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

import securechat
from securechat.server.services import accounts
from securechat.server.settings import Settings

from .conftest import RegisterUser
from .support import bearer, material, registration_body

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ACCOUNT = "/api/v1/account"

COOKIE = "securechat_refresh"
COOKIE_PATH = "/api/v1/auth"
WANT_COOKIE = {"x-securechat-refresh": "cookie"}

PACKAGE_DIR = Path(securechat.__file__).parent
WEB_DIR = PACKAGE_DIR / "web"
COMMON_PASSWORDS = PACKAGE_DIR / "client" / "data" / "common-passwords.txt"
SETTINGS_SOURCE = PACKAGE_DIR / "server" / "settings.py"

BROWSER_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
REQUIRED_CSP = [
    "default-src 'none'",
    "script-src 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "require-trusted-types-for 'script'",
]


@pytest.fixture
async def https(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The same app in process, reached as https://testserver (scope scheme "https")."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


# Helpers -----------------------------------------------------------------------------


def refresh_cookies(response: httpx.Response) -> list[Morsel[str]]:
    """Every Set-Cookie of the answer that names the refresh cookie, parsed."""
    found = []
    for raw in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(raw)
        if COOKIE in jar:
            found.append(jar[COOKIE])
    return found


def the_refresh_cookie(response: httpx.Response) -> Morsel[str]:
    cookies = refresh_cookies(response)
    assert len(cookies) == 1, response.headers.get_list("set-cookie")
    return cookies[0]


def raw_set_cookie(response: httpx.Response) -> str:
    (raw,) = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    return raw


def attributes(raw: str) -> dict[str, str]:
    """The attributes of one Set-Cookie line, names lower-cased (``HttpOnly`` -> ``""``)."""
    parts = [p.strip() for p in raw.split(";")[1:] if p.strip()]
    result = {}
    for part in parts:
        name, _, value = part.partition("=")
        result[name.strip().lower()] = value.strip()
    return result


async def post_refresh(
    client: httpx.AsyncClient, *, cookie: str | None, header: bool, body: dict[str, Any] | None = None
) -> httpx.Response:
    """POST /auth/refresh with exactly the cookie and header given (the jar is emptied
    first, so nothing the client stored earlier rides along)."""
    client.cookies.clear()
    headers = dict(WANT_COOKIE) if header else {}
    if cookie is not None:
        headers["cookie"] = f"{COOKIE}={cookie}"
    response = await client.post(REFRESH, json={} if body is None else body, headers=headers)
    client.cookies.clear()
    return response


async def register_with_cookie(client: httpx.AsyncClient, name: str) -> httpx.Response:
    response = await client.post(REGISTER, json=registration_body(name), headers=WANT_COOKIE)
    assert response.status_code == 201, response.text
    return response


def csp_directives(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        words = directive.split()
        if words:
            assert words[0].lower() not in directives, f"{words[0]} given twice: {policy}"
            directives[words[0].lower()] = words[1:]
    return directives


def assert_browser_headers(response: httpx.Response, *, https: bool = False) -> None:
    for name, value in BROWSER_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    policy = response.headers["content-security-policy"]
    directives = [d.strip() for d in policy.split(";")]
    for required in REQUIRED_CSP:
        assert required in directives, (required, policy)
    # Exact source lists, not merely "contains 'self'": nothing else may run script.
    parsed = csp_directives(response)
    assert parsed["script-src"] == ["'self'"], policy
    assert parsed["default-src"] == ["'none'"], policy
    for weak in ("unsafe-inline", "unsafe-eval", "unsafe-hashes"):
        assert weak not in policy, (weak, policy)
    assert ("strict-transport-security" in response.headers) is https, response.headers


async def raw_get(app: FastAPI, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` exactly as given (httpx would collapse ``..`` segments first)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    messages: list[Message] = []
    requested = False
    finished = asyncio.Event()

    async def receive() -> Message:
        # The request once; then, like a server, nothing until the answer is complete
        # (Starlette listens for a disconnect while it streams a file).
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], headers, body


# The refresh token as a cookie -------------------------------------------------------


async def test_register_with_the_header_sets_the_cookie_not_the_body(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    response = await register_with_cookie(http, "alice")

    body = response.json()
    assert "refresh_token" not in body
    assert body["refresh_transport"] == "cookie"
    assert body["username"] == "alice"
    assert body["access_token"] and body["session_id"]
    morsel = the_refresh_cookie(response)
    assert morsel.value.strip()
    assert morsel["httponly"] is True
    assert str(morsel["samesite"]).lower() == "strict"
    assert morsel["path"] == COOKIE_PATH
    assert int(morsel["max-age"]) == settings.refresh_token_ttl_seconds
    assert not morsel["secure"]  # plain http: a Secure cookie would never come back
    attrs = attributes(raw_set_cookie(response))
    assert "secure" not in attrs
    assert "domain" not in attrs  # host-only
    # The token is not anywhere in the JSON either, under another name.
    assert morsel.value not in response.text
    # And the access token works.
    assert (await http.get(ACCOUNT, headers=bearer(body["access_token"]))).status_code == 200


async def test_login_with_the_header_sets_the_cookie_not_the_body(
    http: httpx.AsyncClient, register_user: RegisterUser, settings: Settings
) -> None:
    await register_user("alice")

    response = await http.post(
        LOGIN, json={"username": "alice", "auth_key": material("alice").auth_key}, headers=WANT_COOKIE
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["refresh_transport"] == "cookie"
    assert body["username"] == "alice" and "key_bundle" in body and "kdf" in body
    morsel = the_refresh_cookie(response)
    assert morsel.value not in response.text
    assert morsel["httponly"] is True
    assert str(morsel["samesite"]).lower() == "strict"
    assert morsel["path"] == COOKIE_PATH
    assert int(morsel["max-age"]) == settings.refresh_token_ttl_seconds
    assert "secure" not in attributes(raw_set_cookie(response))


async def test_without_the_header_the_token_stays_in_the_body(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    registered = await http.post(REGISTER, json=registration_body("alice"))
    logged_in = await http.post(LOGIN, json={"username": "alice", "auth_key": material("alice").auth_key})
    # Any other value of the header is not a request for the cookie.
    other_value = await http.post(
        LOGIN,
        json={"username": "alice", "auth_key": material("alice").auth_key},
        headers={"x-securechat-refresh": "body"},
    )

    for response in (registered, logged_in, other_value):
        assert response.status_code in (200, 201), response.text
        assert response.json()["refresh_token"]
        assert "refresh_transport" not in response.json()
        assert refresh_cookies(response) == []
        assert "set-cookie" not in response.headers


async def test_the_cookie_is_secure_over_https(https: httpx.AsyncClient, settings: Settings) -> None:
    response = await register_with_cookie(https, "alice")

    morsel = the_refresh_cookie(response)
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["path"] == COOKIE_PATH
    assert int(morsel["max-age"]) == settings.refresh_token_ttl_seconds

    rotated = await post_refresh(https, cookie=morsel.value, header=True)
    assert rotated.status_code == 200, rotated.text
    assert the_refresh_cookie(rotated)["secure"] is True


async def test_cookie_refresh_rotates(http: httpx.AsyncClient, settings: Settings) -> None:
    registered = await register_with_cookie(http, "alice")
    first = the_refresh_cookie(registered).value

    response = await post_refresh(http, cookie=first, header=True)

    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["refresh_transport"] == "cookie"
    assert body["session_id"] == registered.json()["session_id"]
    assert (await http.get(ACCOUNT, headers=bearer(body["access_token"]))).status_code == 200
    morsel = the_refresh_cookie(response)
    assert morsel.value != first
    assert morsel["httponly"] is True
    assert str(morsel["samesite"]).lower() == "strict"
    assert morsel["path"] == COOKIE_PATH
    assert int(morsel["max-age"]) == settings.refresh_token_ttl_seconds
    # The new cookie rotates in turn.
    again = await post_refresh(http, cookie=morsel.value, header=True)
    assert again.status_code == 200, again.text
    assert the_refresh_cookie(again).value not in (first, morsel.value)


async def test_reusing_an_old_cookie_revokes_the_session(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered = await register_with_cookie(http, "alice")
    original_access = registered.json()["access_token"]
    old = the_refresh_cookie(registered).value
    rotated = await post_refresh(http, cookie=old, header=True)
    assert rotated.status_code == 200, rotated.text
    new_access = rotated.json()["access_token"]
    new_cookie = the_refresh_cookie(rotated).value
    assert (await http.get(ACCOUNT, headers=bearer(new_access))).status_code == 200
    # Past the short grace in which the token just spent gets the same pair again.
    later = accounts.now_ms() + 60_000
    monkeypatch.setattr(accounts, "now_ms", lambda: later)

    reuse = await post_refresh(http, cookie=old, header=True)

    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "unauthorized"
    assert reuse.json()["error"]["reason"] == "token_reuse"
    assert refresh_cookies(reuse) == [] or all(not m.value for m in refresh_cookies(reuse))
    # The whole session is gone: the newer cookie and both access tokens.
    assert (await post_refresh(http, cookie=new_cookie, header=True)).status_code == 401
    assert (await http.get(ACCOUNT, headers=bearer(new_access))).status_code == 401
    assert (await http.get(ACCOUNT, headers=bearer(original_access))).status_code == 401


async def test_cookie_without_the_header_is_refused(http: httpx.AsyncClient) -> None:
    # A cross-site form can make the browser send the cookie, but cannot add the header.
    registered = await register_with_cookie(http, "alice")
    cookie = the_refresh_cookie(registered).value

    response = await post_refresh(http, cookie=cookie, header=False)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert refresh_cookies(response) == []
    # Refused before use: the cookie was not consumed, so it still rotates normally
    # (had it been spent, this would be a reuse and revoke the session).
    assert (await post_refresh(http, cookie=cookie, header=True)).status_code == 200


async def test_refresh_with_neither_cookie_nor_token_is_401(http: httpx.AsyncClient) -> None:
    for header in (False, True):
        response = await post_refresh(http, cookie=None, header=header)
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "unauthorized"
    # An empty cookie is no cookie.
    response = await post_refresh(http, cookie="", header=True)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("value", ["rt_unknown", "x" * 129, "x" * 4000, "%00%0a"])
async def test_unknown_or_odd_cookie_is_401(http: httpx.AsyncClient, value: str) -> None:
    # The body's 128-character limit does not apply to a cookie: it must still be a 401.
    response = await post_refresh(http, cookie=value, header=True)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


async def test_refresh_token_in_the_body_still_works(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")

    response = await post_refresh(
        http, cookie=None, header=False, body={"refresh_token": alice.tokens["refresh_token"]}
    )

    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"] != alice.tokens["refresh_token"]
    assert "refresh_transport" not in response.json()
    assert "set-cookie" not in response.headers
    assert (await http.get(ACCOUNT, headers=bearer(response.json()["access_token"]))).status_code == 200


async def test_the_cookie_goes_only_to_the_auth_routes(http: httpx.AsyncClient) -> None:
    http.cookies.clear()
    registered = await register_with_cookie(http, "alice")
    value = the_refresh_cookie(registered).value
    assert the_refresh_cookie(registered)["path"] == COOKIE_PATH

    # What a cookie jar does with it (httpx's is the standard library's http.cookiejar).
    assert http.cookies.get(COOKIE) == value
    to_refresh = http.build_request("POST", REFRESH, json={})
    to_account = http.build_request("GET", ACCOUNT)
    to_messages = http.build_request("GET", "/api/v1/messages")
    to_page = http.build_request("GET", "/")
    assert f"{COOKIE}={value}" in to_refresh.headers.get("cookie", "")  # positive control
    for request in (to_account, to_messages, to_page):
        assert "cookie" not in request.headers, request.url
    http.cookies.clear()


async def test_logout_deletes_the_cookie(http: httpx.AsyncClient) -> None:
    http.cookies.clear()
    registered = await register_with_cookie(http, "alice")
    cookie = the_refresh_cookie(registered).value
    access = registered.json()["access_token"]
    assert http.cookies.get(COOKIE) == cookie

    response = await http.post(LOGOUT, headers=bearer(access))

    assert response.status_code == 204
    morsel = the_refresh_cookie(response)
    assert morsel.value in ("", '""')
    assert morsel["path"] == COOKIE_PATH
    attrs = attributes(raw_set_cookie(response))
    expired = attrs.get("max-age") == "0" or "1970" in attrs.get("expires", "")
    assert expired, attrs
    assert "httponly" in attrs
    # A client's jar drops it, and the session is over for the cookie too.
    assert http.cookies.get(COOKIE) is None
    assert (await post_refresh(http, cookie=cookie, header=True)).status_code == 401
    assert (await http.get(ACCOUNT, headers=bearer(access))).status_code == 401


# Security headers --------------------------------------------------------------------


async def test_the_page_has_the_security_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_browser_headers(response)


async def test_static_files_have_the_security_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/static/app/main.js")

    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert_browser_headers(response)
    missing = await http.get("/static/app/no-such-module.js")
    assert missing.status_code == 404
    assert_browser_headers(missing)


async def test_api_answers_have_the_security_headers_and_no_store(
    http: httpx.AsyncClient, register_user: RegisterUser, settings: Settings
) -> None:
    alice = await register_user("alice")
    ok = await http.get(ACCOUNT, headers=alice.headers)
    unknown = await http.get("/api/v1/no-such-thing")
    invalid = await http.post("/api/v1/auth/prelogin", json={"username": "a b"})
    unauthorized = await http.get(ACCOUNT)
    too_large = await http.post(
        LOGIN,
        content=b'{"pad": "' + b"a" * (settings.max_body_bytes + 1) + b'"}',
        headers={"content-type": "application/json"},
    )

    expected = [(ok, 200, None), (unknown, 404, "not_found"), (invalid, 422, "invalid_input")]
    expected += [(unauthorized, 401, "unauthorized"), (too_large, 413, "too_large")]
    for response, status, code in expected:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        if code is not None:
            assert response.json()["error"]["code"] == code
        assert_browser_headers(response)
        assert response.headers["cache-control"] == "no-store", response.request.url


async def test_hsts_only_over_https(http: httpx.AsyncClient, https: httpx.AsyncClient) -> None:
    for path in ("/", "/static/app/main.js", "/healthz", "/api/v1/no-such-thing"):
        plain = await http.get(path)
        secure = await https.get(path)
        assert "strict-transport-security" not in plain.headers, path
        assert_browser_headers(secure, https=True)
        hsts = secure.headers["strict-transport-security"]
        max_age = re.search(r"max-age=(\d+)", hsts)
        assert max_age and int(max_age.group(1)) >= 180 * 24 * 3600, hsts


# The page ----------------------------------------------------------------------------


class PageAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.script_bodies: list[str] = []
        self.links: list[dict[str, str | None]] = []
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> (inline handler)")
            if name == "style":
                self.problems.append(f"<{tag} style=...> (inline style)")
            if value and re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}> (javascript: URL)")
        if tag == "style":
            self.problems.append("<style> element (inline style)")
        if tag == "script":
            self.scripts.append(attributes)
            self.script_bodies.append("")
            self._in_script = True
        if tag == "link":
            self.links.append(attributes)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._in_script = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_bodies[-1] += data


async def audited_page(http: httpx.AsyncClient) -> PageAudit:
    response = await http.get("/")
    assert response.status_code == 200
    audit = PageAudit()
    audit.feed(response.text)
    audit.close()
    return audit


async def test_the_page_has_no_inline_script_or_style(http: httpx.AsyncClient) -> None:
    audit = await audited_page(http)

    assert audit.scripts, "the page loads no script at all"
    for attrs, body in zip(audit.scripts, audit.script_bodies, strict=True):
        assert attrs.get("src"), attrs
        assert body.strip() == "", body
    assert audit.problems == []


def test_the_page_audit_catches_what_it_looks_for() -> None:
    # Positive control for the parser above: each of these must be reported.
    audit = PageAudit()
    audit.feed(
        '<script>alert(1)</script><img src=x onerror="alert(1)"><p style="color:red">'
        '<a href=" JaVa\tScript:alert(1)">x</a><style>p{}</style>'
    )
    audit.close()
    assert audit.script_bodies == ["alert(1)"]
    assert not audit.scripts[0].get("src")
    assert len(audit.problems) == 4, audit.problems


async def test_everything_the_page_references_is_served(http: httpx.AsyncClient) -> None:
    audit = await audited_page(http)
    stylesheets = [link["href"] for link in audit.links if "stylesheet" in (link.get("rel") or "").split()]
    others = [link["href"] for link in audit.links if link.get("href")]
    scripts = [script["src"] for script in audit.scripts]
    assert stylesheets and scripts

    for url in scripts:
        assert url and url.startswith("/static/"), url
        response = await http.get(url)
        assert response.status_code == 200, url
        assert "javascript" in response.headers["content-type"], url
    for url in stylesheets:
        assert url and url.startswith("/static/"), url
        response = await http.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("text/css"), url
    for url in others:
        assert url and (await http.get(url)).status_code == 200, url


IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*)["']([^"']+)["']""")


async def test_every_module_the_app_imports_is_served(http: httpx.AsyncClient) -> None:
    # A module that fails to load leaves a blank page, so follow the static imports.
    audit = await audited_page(http)
    pending = [str(s["src"]) for s in audit.scripts if s.get("type") == "module"]
    seen: set[str] = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        response = await http.get(url)
        assert response.status_code == 200, url
        assert "javascript" in response.headers["content-type"], url
        base = httpx.URL("http://testserver" + url)
        for specifier in IMPORT.findall(response.text):
            assert specifier.startswith(("./", "../", "/")), (url, specifier)  # no bare names
            pending.append(base.join(specifier).path)
    assert "/static/app/main.js" in seen and len(seen) > 5, seen


DOM_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")


def test_the_app_inserts_no_html_strings() -> None:
    app_files = sorted((WEB_DIR / "app").glob("*.js"))
    assert app_files, WEB_DIR
    files = sorted(set(app_files) | set(WEB_DIR.rglob("*.js")))
    found = [
        f"{path.relative_to(WEB_DIR)}:{number}: {sink}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for sink in DOM_SINKS
        if sink in line
    ]
    assert found == []


# Other files -------------------------------------------------------------------------


async def test_common_passwords_match_the_terminal_clients_list(http: httpx.AsyncClient) -> None:
    response = await http.get("/static/common-passwords.txt")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == COMMON_PASSWORDS.read_text(encoding="utf-8")
    assert len(response.text.splitlines()) > 100
    assert_browser_headers(response)


TRAVERSALS = [
    "/static/%2e%2e/server/settings.py",
    "/static/%2E%2E/server/settings.py",
    "/static/..%2fserver/settings.py",
    "/static/%2e%2e%2fserver%2fsettings.py",
    "/static/app/%2e%2e/%2e%2e/server/settings.py",
    "/static/app/..%2f..%2fserver%2fsettings.py",
    "/static/%2e%2e/%2e%2e/securechat/server/settings.py",
    "/static/..%5cserver%5csettings.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
]


def _leaks(body: bytes) -> bool:
    source = SETTINGS_SOURCE.read_bytes()
    return b"class Settings" in body or source[:200] in body or b"root:" in body


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_static_does_not_serve_files_outside_the_web_dir(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)

    assert response.status_code in (400, 404), (path, response.status_code)
    assert not _leaks(response.content)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server/settings.py",
        "/static/app/../../server/settings.py",
        "/static/./../server/settings.py",
        "/static/../../../../../../etc/passwd",
    ],
)
async def test_static_refuses_literal_dot_dot(app: FastAPI, path: str) -> None:
    status, headers, body = await raw_get(app, path)

    assert status in (400, 404), (path, status)
    assert not _leaks(body)
    assert headers["x-content-type-options"] == "nosniff"


async def test_raw_get_reaches_static_files(app: FastAPI) -> None:
    # Positive control for raw_get: a real file through the same path handling.
    status, headers, body = await raw_get(app, "/static/app/../app/main.js")
    assert status == 200
    assert "javascript" in headers["content-type"]
    assert body == (WEB_DIR / "app" / "main.js").read_bytes()


async def test_cors_is_closed_to_other_origins(http: httpx.AsyncClient) -> None:
    """No CORS grants: a page on another site can neither preflight nor read answers."""
    preflight = await http.options(
        "/api/v1/auth/refresh",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-securechat-refresh, content-type",
        },
    )
    assert preflight.status_code in (404, 405)
    assert not any(name.lower().startswith("access-control-") for name in preflight.headers)
    simple = await http.post(
        "/api/v1/auth/prelogin", json={"username": "alice"}, headers={"Origin": "https://evil.example"}
    )
    assert not any(name.lower().startswith("access-control-") for name in simple.headers)
