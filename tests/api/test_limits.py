"""Request bodies the server must refuse cleanly: too large, too deep, not JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from securechat.server.settings import Settings

from .conftest import RegisteredUser, RegisterUser

MESSAGES = "/api/v1/messages"
JSON = {"content-type": "application/json"}


@pytest.fixture
async def alice(register_user: RegisterUser) -> RegisteredUser:
    return await register_user("alice")


def _over_limit(settings: Settings) -> bytes:
    # Valid JSON, so that only its size can be the reason for refusing it.
    padding = settings.max_body_bytes
    return b'{"envelope": {"pad": "' + b"a" * padding + b'"}}'


def _assert_too_large(response: httpx.Response, settings: Settings) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"
    assert response.json()["error"]["limit"] == settings.max_body_bytes


@pytest.mark.parametrize("path", [MESSAGES, "/api/v1/auth/register", "/api/v1/auth/login"])
async def test_body_over_the_limit_with_content_length_is_413(
    http: httpx.AsyncClient, alice: RegisteredUser, settings: Settings, path: str
) -> None:
    body = _over_limit(settings)

    response = await http.post(path, content=body, headers={**alice.headers, **JSON})

    assert response.request.headers["content-length"] == str(len(body))
    _assert_too_large(response, settings)


async def test_body_over_the_limit_without_content_length_is_413(
    http: httpx.AsyncClient, alice: RegisteredUser, settings: Settings
) -> None:
    body = _over_limit(settings)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await http.post(MESSAGES, content=chunks(), headers={**alice.headers, **JSON})

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    _assert_too_large(response, settings)


async def test_body_just_under_the_limit_is_not_refused_for_size(
    http: httpx.AsyncClient, alice: RegisteredUser, settings: Settings
) -> None:
    # The same shape as above, one byte inside the limit: refused as an envelope, not for size.
    overhead = len(_over_limit(settings)) - settings.max_body_bytes
    body = b'{"envelope": {"pad": "' + b"a" * (settings.max_body_bytes - overhead) + b'"}}'
    assert len(body) == settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        yield body[len(body) // 2 :]

    for content in (body, chunks()):
        response = await http.post(MESSAGES, content=content, headers={**alice.headers, **JSON})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_envelope"


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1e9"])
async def test_nonsense_content_length_is_refused(
    http: httpx.AsyncClient, alice: RegisteredUser, value: bytes
) -> None:
    transport = http._transport  # the ASGI app, so the header reaches it as sent

    request = httpx.Request(
        "POST", "http://testserver" + MESSAGES, content=b"{}", headers={**alice.headers, **JSON}
    )
    request.headers["content-length"] = value.decode()
    response = await transport.handle_async_request(request)
    await response.aread()

    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("path", [MESSAGES, "/api/v1/auth/register"])
async def test_deeply_nested_json_is_4xx(
    http: httpx.AsyncClient, alice: RegisteredUser, depth: int, path: str
) -> None:
    for body in (b"[" * depth + b"]" * depth, b'{"envelope": ' + b"[" * depth + b"]" * depth + b"}"):
        response = await http.post(path, content=body, headers={**alice.headers, **JSON})
        assert 400 <= response.status_code < 500, response.text
        assert "error" in response.json()


@pytest.mark.parametrize(
    "body", [b"{", b"not json", b'{"envelope": }', b"\xff\xfe", b'{"envelope": {}}garbage', b"NaN"]
)
async def test_invalid_json_is_422(http: httpx.AsyncClient, alice: RegisteredUser, body: bytes) -> None:
    response = await http.post(MESSAGES, content=body, headers={**alice.headers, **JSON})

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    # The offending input is not echoed back.
    assert "garbage" not in response.text


async def test_unknown_route_and_method_are_json(http: httpx.AsyncClient, alice: RegisteredUser) -> None:
    missing = await http.get("/api/v1/nothing-here", headers=alice.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = await http.put(MESSAGES, headers=alice.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


async def test_readyz_answers_when_the_database_does(http) -> None:  # type: ignore[no-untyped-def]
    response = await http.get("/readyz")
    assert response.status_code == 200
    # One instance, no Redis: the broker is in process (issue 13 item 4 reports it).
    assert response.json() == {"status": "ready", "broker": "in_process"}


async def test_readyz_is_503_when_the_database_is_gone(app, http, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def unreachable():  # type: ignore[no-untyped-def]
        raise OSError("database unreachable")
        yield

    monkeypatch.setattr(app.state.context.database, "read", unreachable)
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "broker": "in_process"}
    assert (await http.get("/healthz")).status_code == 200  # alive, just not ready
