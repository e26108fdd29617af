"""Schemathesis against the server's own OpenAPI schema (acceptance: no 5xx, no answer
that violates the declared schema, and bad input always gets a JSON 4xx with a code).

Every operation in the schema is fuzzed on SQLite and on PostgreSQL, each twice: as a
registered administrator (so the handlers behind authentication and the admin role are
reached, not only the 401/403 in front of them) and anonymously. The app runs in process through Schemathesis' ASGI
transport, which starts the app's lifespan once in an event loop thread of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from securechat.server.app import create_app
from securechat.server.services.admin import make_admin
from securechat.server.settings import Settings
from securechat.server.storage.database import Database

from ..conftest import GENEROUS_LIMITS, postgres_database
from .support import bearer, material, registration_body

FUZZER = "fuzzer"

# A device credential's refusals (PROTOCOL.md 15.16): the session holds, the device proof does not.
DEVICE_CREDENTIAL_REFUSALS = {"device_auth_required", "device_auth_failed"}

# The fuzzer's failed logins all come from one address; the intrusion detection would
# block it after five and every later auth call would only see 403 access_blocked.
GENEROUS_IDS = {"ids_ip_failures": 1_000_000, "ids_account_failures": 1_000_000}

# Calls that may end the fuzzer's own session (logout does, always): after them the
# session is checked and, if gone, replaced by a new login. (An administrator cannot
# disable their own account.)
SESSION_ENDING = {
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/sessions/revoke-others"),
    ("DELETE", "/api/v1/sessions/{session_id}"),
    ("POST", "/api/v1/admin/users/{username}/revoke-sessions"),
}


async def grant_admin(settings: Settings, username: str) -> None:
    """As ``securechat admin create`` does: on the database, beside the running app."""
    database = Database(settings.sqlalchemy_url())
    try:
        await make_admin(database, username)
    finally:
        await database.dispose()


@dataclass
class Server:
    app: FastAPI
    headers: dict[str, str] = field(default_factory=dict)

    def log_in(self) -> None:
        with asgi.get_client(self.app) as client:
            response = client.post(
                "/api/v1/auth/login", json={"username": FUZZER, "auth_key": material(FUZZER).auth_key}
            )
        assert response.status_code == 200, response.text
        self.headers = bearer(response.json()["access_token"])

    def keep_session(self) -> None:
        """After a call that may have ended the fuzzer's session: a new one if it did."""
        with asgi.get_client(self.app) as client:
            if client.get("/api/v1/account", headers=self.headers).status_code == 200:
                return
        self.log_in()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Each operation is fuzzed on both databases: PostgreSQL refuses some text SQLite
    stores (a NUL byte), so a value that reaches it unparsed shows up as a 500 there only."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_database("securechat_schemathesis") as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database_url: str | None) -> Iterator[Server]:
    config = Settings(
        data_dir=tmp_path_factory.mktemp("schemathesis") / "server",
        database_url=database_url,
        **GENEROUS_LIMITS,
        **GENEROUS_IDS,
    )
    app = create_app(config)
    with asgi.get_client(app) as client:  # starts the lifespan; it runs until shutdown_lifespans()
        response = client.post("/api/v1/auth/register", json=registration_body(FUZZER))
    assert response.status_code == 201, response.text
    asyncio.run(grant_admin(config, FUZZER))
    running = Server(app, bearer(response.json()["access_token"]))
    try:
        yield running
    finally:
        asgi.shutdown_lifespans()


# The schema comes from an app that is never started (building one touches no disk);
# the calls go to the module's running app, whose schema is checked to be the same.
# (``schemathesis.pytest.from_fixture`` would be the natural fit, but its lazy
# parametrization sets ``Node._nodeid``, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


def test_the_fuzzed_schema_is_the_running_apps(server: Server) -> None:
    assert server.app.openapi() == schema.raw_schema


def error_body_has_a_code(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Every 4xx is the server's JSON error: ``{"error": {"code": str, "message": str}}``."""
    if not 400 <= response.status_code < 500:
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), body
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str), body


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, error_body_has_a_code]

FUZZ = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
}


@settings(max_examples=100, **FUZZ)
@schema.parametrize()
def test_api_as_admin(case: schemathesis.Case, server: Server) -> None:
    response = case.call_and_validate(headers=dict(server.headers), checks=CHECKS, app=server.app)
    # The token must hold, or this test would only ever see the 401 in front of the handlers
    # (only the auth routes answer 401 on their own: a wrong key, an unknown refresh token;
    # and the per-device calls, to a device credential the fuzzer cannot make).
    assert (
        response.status_code != 401
        or case.path.startswith("/api/v1/auth/")
        or response.json()["error"]["code"] in DEVICE_CREDENTIAL_REFUSALS
    ), response.text
    if (case.method.upper(), case.path) in SESSION_ENDING:
        server.keep_session()


@settings(max_examples=30, **FUZZ)
@schema.parametrize()
def test_api_anonymous(case: schemathesis.Case, server: Server) -> None:
    case.call_and_validate(checks=CHECKS, app=server.app)
