"""Every identifier in a path, query, body or WebSocket frame is parsed into its type at the
edge: a malformed one (a NUL byte, too long, non-ASCII, a path, a negative number, an
address that is not one) gets a JSON 422 ``invalid_input`` (or a 404 when it does not
even reach a route), never a 500, on SQLite and on PostgreSQL, and the server's log never
holds the raw bytes. Valid spellings (IPv6 forms, a name in another Unicode form) still
work."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import json
import types
import typing
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from securechat.server.services.admin import make_admin
from securechat.server.storage.database import Database

from ..api.support import bearer, registration_body
from ..conftest import LiveServer, postgres_database, start_server

ADMIN = "admin1"
USER = "bob"
GROUP = "grp-" + "0" * 32
CONVERSATION = "dm-" + "0" * 32
FILE = str(uuid.uuid4())

# What a malformed identifier looks like, by kind. Each goes everywhere an identifier of
# that kind is accepted.
NUL = "ab\x00cd"
OVERLONG = "a" * 300
NON_ASCII = "bøb☃"
TRAVERSAL = "../../etc/passwd"
NEGATIVE = "-5"
BAD_TEXT = {
    "nul": NUL,
    "overlong": OVERLONG,
    "non_ascii": NON_ASCII,
    "traversal": TRAVERSAL,
    "negative": NEGATIVE,
}
BAD_ADDRESSES = {
    "nul": "192.0.2.1\x00",
    "zone_nul": "fe80::1%\x00",
    "overlong": "1" * 300,
    "non_ascii": "١٩٢.٠.٢.١",
    "traversal": TRAVERSAL,
    "negative": "-1",
    "network": "192.0.2.0/24",
    "leading_zeros": "192.000.002.001",
    "brackets": "[::1]",
    "port": "192.0.2.1:80",
    "name": "localhost",
    "empty": "",
    "spaces": " 192.0.2.1 ",
}
GOOD_ADDRESSES = {
    "192.0.2.1": "192.0.2.1",
    "2001:DB8:0:0:0:0:0:1": "2001:db8::1",
    "::1": "::1",
    "fe80::1%eth0": "fe80::1%eth0",
}


@dataclass
class Running:
    backend: str
    server: LiveServer
    admin: dict[str, str]
    user: dict[str, str]
    user_token: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    backend: str = request.param
    tmp = tmp_path_factory.mktemp(f"identifiers-{backend}")
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        database_url = f"sqlite+aiosqlite:///{tmp / 'data' / 'securechat.db'}"
        if backend == "postgresql":
            env["SECURECHAT_DATABASE_URL"] = stack.enter_context(postgres_database("securechat_identifiers"))
            database_url = "postgresql+asyncpg://" + env["SECURECHAT_DATABASE_URL"].removeprefix(
                "postgresql://"
            )
        server = start_server(tmp / "data", tmp / "server.log", extra_env=env)
        stack.callback(server.stop)
        tokens = {}
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for name in (ADMIN, USER):
                response = http.post("/api/v1/auth/register", json=registration_body(name))
                assert response.status_code == 201, response.text
                tokens[name] = response.json()["access_token"]
        asyncio.run(grant_admin(database_url))
        yield Running(backend, server, bearer(tokens[ADMIN]), bearer(tokens[USER]), tokens[USER])


async def grant_admin(url: str) -> None:
    database = Database(url)
    try:
        await make_admin(database, ADMIN)
    finally:
        await database.dispose()


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@dataclass(frozen=True)
class Case:
    """One request with one malformed identifier in it."""

    name: str
    method: str
    path: str
    admin: bool = False
    json: Any = None
    params: dict[str, str] | None = None
    in_path: bool = False


def path_cases(kind: str, bad: str) -> list[Case]:
    value = quoted(bad)
    cases = [
        Case("session_id", "DELETE", f"/api/v1/sessions/{value}"),
        Case("username", "GET", f"/api/v1/users/{value}/keys"),
        Case("file_id", "GET", f"/api/v1/files/{value}"),
        Case("file_id", "POST", f"/api/v1/files/{value}/complete"),
        Case("file_id", "GET", f"/api/v1/files/{value}/chunks/0"),
        Case("chunk index", "GET", f"/api/v1/files/{FILE}/chunks/{value}"),
        Case("group_id", "GET", f"/api/v1/groups/{value}/changes"),
        Case("group_id", "POST", f"/api/v1/groups/{value}/changes", json={"change": {}}),
        Case("group_id", "POST", f"/api/v1/groups/{value}/invites", json={"invite": {}}),
        Case("invite_id", "GET", f"/api/v1/invites/{value}"),
        Case("conversation_id", "GET", f"/api/v1/conversations/{value}/messages"),
        Case(
            "conversation_id",
            "POST",
            f"/api/v1/conversations/{value}/read",
            json={"message_ids": [str(uuid.uuid4())]},
        ),
        Case("username", "POST", f"/api/v1/admin/users/{value}/disable", admin=True),
        Case("username", "POST", f"/api/v1/admin/users/{value}/enable", admin=True),
        Case("username", "POST", f"/api/v1/admin/users/{value}/revoke-sessions", admin=True),
    ]
    return [
        Case(f"{c.name} in path ({kind})", c.method, c.path, c.admin, c.json, c.params, True) for c in cases
    ]


def query_and_body_cases(kind: str, bad: str) -> list[Case]:
    return [
        Case(f"sender query ({kind})", "GET", "/api/v1/admin/messages", admin=True, params={"sender": bad}),
        Case(
            f"recipient query ({kind})",
            "GET",
            "/api/v1/admin/messages",
            admin=True,
            params={"recipient": bad},
        ),
        Case(f"sender query ({kind})", "GET", "/api/v1/admin/files", admin=True, params={"sender": bad}),
        Case(
            f"conversation query ({kind})",
            "GET",
            "/api/v1/admin/files",
            admin=True,
            params={"conversation": bad},
        ),
        Case(
            f"sender query ({kind})",
            "GET",
            "/api/v1/admin/messages/export",
            admin=True,
            params={"sender": bad},
        ),
        Case(f"group after ({kind})", "GET", f"/api/v1/groups/{GROUP}/changes", params={"after": bad}),
        Case(f"inbox since ({kind})", "GET", "/api/v1/inbox", params={"since": bad}),
        Case(
            f"history before ({kind})",
            "GET",
            f"/api/v1/conversations/{CONVERSATION}/messages",
            params={"before": bad},
        ),
        Case(
            f"register username ({kind})",
            "POST",
            "/api/v1/auth/register",
            json=registration_body("carol", username=bad),
        ),
        Case(f"prelogin username ({kind})", "POST", "/api/v1/auth/prelogin", json={"username": bad}),
        Case(
            f"login username ({kind})",
            "POST",
            "/api/v1/auth/login",
            json={"username": bad, "auth_key": "A" * 43 + "="},
        ),
        Case(f"direct peer ({kind})", "POST", "/api/v1/conversations/direct", json={"peer": bad}),
        Case(
            f"upload file_id ({kind})",
            "POST",
            "/api/v1/files",
            json={"file_id": bad, "conversation_id": CONVERSATION, "size": 1},
        ),
        Case(
            f"upload conversation_id ({kind})",
            "POST",
            "/api/v1/files",
            json={"file_id": FILE, "conversation_id": bad, "size": 1},
        ),
        Case(
            f"read message_ids ({kind})",
            "POST",
            f"/api/v1/conversations/{CONVERSATION}/read",
            json={"message_ids": [bad]},
        ),
    ]


CASES = (
    [
        case
        for kind, bad in BAD_TEXT.items()
        for case in path_cases(kind, bad) + query_and_body_cases(kind, bad)
    ]
    + [
        Case(
            f"unblock address ({kind})",
            "POST",
            "/api/v1/admin/intrusion/unblock",
            admin=True,
            json={"address": bad},
        )
        for kind, bad in BAD_ADDRESSES.items()
    ]
    + [
        # Row ids and change numbers past the database's INTEGER (PostgreSQL refused them: 500).
        Case(f"{name} past INTEGER", "GET", path, admin=admin, params={param: str(2**31)})
        for name, path, param, admin in [
            ("message log before", "/api/v1/admin/messages", "before", True),
            ("file log before", "/api/v1/admin/files", "before", True),
            ("audit before", "/api/v1/admin/audit", "before", True),
            ("history before", f"/api/v1/conversations/{CONVERSATION}/messages", "before", False),
            ("group after", f"/api/v1/groups/{GROUP}/changes", "after", False),
        ]
    ]
)


def test_every_malformed_identifier_is_a_json_422(running: Running) -> None:
    failures = []
    with httpx.Client(base_url=running.server.url, timeout=60) as http:
        for case in CASES:
            response = http.request(
                case.method,
                case.path,
                json=case.json,
                params=case.params,
                headers=running.admin if case.admin else running.user,
            )
            # A "/" decoded from the path may leave no route to match: a JSON 404 then.
            allowed = {422, 404} if case.in_path and "traversal" in case.name else {422}
            try:
                body = response.json()
            except ValueError:
                body = None
            code = body.get("error", {}).get("code") if isinstance(body, dict) else None
            expected_code = {422: "invalid_input", 404: "not_found"}.get(response.status_code)
            if response.status_code not in allowed or code != expected_code:
                failures.append(f"{case.method} {case.name}: {response.status_code} {response.text[:200]}")
    assert not failures, f"{running.backend}: {len(failures)} of {len(CASES)} wrong:\n" + "\n".join(failures)
    log = running.server.log_path.read_bytes()
    assert b"\x00" not in log, "the server's log holds a raw NUL byte"
    assert b"Traceback" not in log


def test_addresses_are_read_in_every_standard_form(running: Running) -> None:
    with httpx.Client(base_url=running.server.url, timeout=60) as http:
        for given, canonical in GOOD_ADDRESSES.items():
            response = http.post(
                "/api/v1/admin/intrusion/unblock", json={"address": given}, headers=running.admin
            )
            assert response.status_code == 200, (given, response.text)
            assert response.json() == {"address": canonical, "lifted": 0}


def test_names_in_another_unicode_form_still_work(running: Running) -> None:
    with httpx.Client(base_url=running.server.url, timeout=60) as http:
        # Full-width letters: NFKC makes them "bob", the stored name.
        response = http.get(f"/api/v1/users/{quoted('ＢＯＢ')}/keys", headers=running.admin)
        assert response.status_code == 200, response.text
        assert response.json()["username"] == USER
        # A well-formed session id that is not the caller's: 404, not 422.
        response = http.delete(f"/api/v1/sessions/{uuid.uuid4()}", headers=running.user)
        assert response.status_code == 404, response.text
        # The same id in upper case is not how the server writes one: refused at the edge.
        response = http.delete(f"/api/v1/sessions/{str(uuid.uuid4()).upper()}", headers=running.user)
        assert response.status_code == 422, response.text


async def test_malformed_identifiers_in_websocket_frames(running: Running) -> None:
    ws_url = running.server.url.replace("http://", "ws://") + "/api/v1/ws"
    async with connect(ws_url, origin=running.server.url) as socket:  # type: ignore[arg-type]
        await socket.send(json.dumps({"type": "auth", "token": running.user_token, "since": 0}))
        ready = json.loads(await socket.recv())
        assert ready["type"] == "ready", ready
        frames = (
            [{"type": "typing", "conversation_id": bad, "ref": kind} for kind, bad in BAD_TEXT.items()]
            + [
                {
                    "type": "read",
                    "conversation_id": bad,
                    "message_ids": [str(uuid.uuid4())],
                    "ref": f"read-{kind}",
                }
                for kind, bad in BAD_TEXT.items()
            ]
            + [
                {"type": "read", "conversation_id": CONVERSATION, "message_ids": [bad], "ref": f"ids-{kind}"}
                for kind, bad in BAD_TEXT.items()
            ]
        )
        for frame in frames:
            await socket.send(json.dumps(frame))
        answers = {}
        while len(answers) < len(frames):
            answer = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if answer.get("type") == "error":
                answers[answer["ref"]] = answer["code"]
        assert set(answers.values()) == {"invalid_input"}, answers
        # The connection is still usable.
        await socket.send(json.dumps({"type": "ping", "ref": "still-there"}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 30)) == {"type": "pong", "ref": "still-there"}
    assert b"\x00" not in running.server.log_path.read_bytes()


# Static checks: every identifier a router takes is one of api/identifiers.py's types, and
# no router slices or splits a parameter by hand (as `session_id[:64]` once did).

ROUTERS = ["account", "admin", "auth", "files", "groups", "messages", "websocket", "connection"]


def _identifier_validators() -> set[object]:
    from pydantic import AfterValidator

    from securechat.server.api import identifiers

    found = set()
    for name in (
        "Username",
        "SessionId",
        "IpAddress",
        "ConversationId",
        "GroupId",
        "MessageId",
        "FileId",
        "InviteId",
    ):
        for meta in typing.get_args(getattr(identifiers, name))[1:]:
            if isinstance(meta, AfterValidator):
                found.add(meta.func)
    return found


def _text_kind(annotation: object) -> tuple[bool, set[object]]:
    """Whether ``annotation`` is text (str, optionally None or in a list), and the
    validators on it."""
    validators: set[object] = set()
    is_text = False
    pending = [annotation]
    while pending:
        current = pending.pop()
        if current is str:
            is_text = True
        origin = typing.get_origin(current)
        if origin is typing.Annotated:
            args = typing.get_args(current)
            pending.append(args[0])
            validators |= {getattr(meta, "func", None) for meta in args[1:]}
        elif origin in (typing.Union, types.UnionType, list):
            pending.extend(typing.get_args(current))
    return is_text, validators


def _parameters() -> list[tuple[str, str, object]]:
    """(where, name, annotation) of every route parameter, dependency field and request body field."""
    import dataclasses

    import pydantic
    from fastapi.routing import APIRoute, APIWebSocketRoute

    from securechat.server.api import models

    found: list[tuple[str, str, object]] = []
    for module_name in ROUTERS:
        module = importlib.import_module(f"securechat.server.api.{module_name}")
        router = getattr(module, "router", None)
        for route in getattr(router, "routes", []):
            if not isinstance(route, APIRoute | APIWebSocketRoute):
                continue
            for name, hint in typing.get_type_hints(route.endpoint, include_extras=True).items():
                if name in {"return", "request", "response", "websocket", "ctx", "principal"}:
                    continue
                base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
                if dataclasses.is_dataclass(base):
                    for field in dataclasses.fields(base):
                        found.append(
                            (
                                f"{route.path} ({base.__name__})",
                                field.name,
                                typing.get_type_hints(base, include_extras=True)[field.name],
                            )
                        )
                elif isinstance(base, type) and issubclass(base, pydantic.BaseModel):
                    found += [
                        (f"{route.path} body", f, info.rebuild_annotation())
                        for f, info in base.model_fields.items()
                    ]
                else:
                    found.append((route.path, name, hint))
    for model in vars(models).values():
        if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
            found += [
                (model.__name__, f, info.rebuild_annotation()) for f, info in model.model_fields.items()
            ]
    return found


HAND_PARSING = {"split", "rsplit", "partition", "rpartition", "strip", "lower", "upper"}
IDENTIFIER_NAMES = ("username", "peer", "address", "sender", "recipient", "conversation")


def test_every_identifier_parameter_has_an_identifier_type() -> None:
    validators = _identifier_validators()
    untyped = []
    checked = 0
    for where, name, annotation in _parameters():
        is_text, found = _text_kind(annotation)
        looks_like_an_id = name.endswith(("_id", "_ids")) or name in IDENTIFIER_NAMES
        if is_text and looks_like_an_id:
            checked += 1
            if not found & validators:
                untyped.append(f"{where}: {name}")
    assert checked >= 20, checked
    assert not untyped, untyped


def test_no_router_slices_or_splits_a_parameter() -> None:
    """Routers pass parsed identifiers on; a slice or split of a parameter is parsing by hand."""
    api = Path(importlib.import_module("securechat.server.api").__file__).parent  # type: ignore[arg-type]
    found = []
    for module_name in ROUTERS:
        tree = ast.parse((api / f"{module_name}.py").read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            params = {a.arg for a in function.args.args + function.args.kwonlyargs} - {
                "request",
                "websocket",
                "self",
                "ctx",  # settings, not a client's input
            }
            for node in ast.walk(function):
                target = None
                if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
                    target = node.value
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in HAND_PARSING
                ):
                    target = node.func.value
                while isinstance(target, ast.Attribute):
                    target = target.value
                if isinstance(target, ast.Name) and target.id in params:
                    found.append(f"{module_name}.py:{node.lineno} {ast.unparse(node)}")
    assert not found, found
