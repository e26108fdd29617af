"""Pre-login, login, access tokens and refresh-token rotation."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from securechat.protocol.encoding import b64encode
from securechat.protocol.keys import open_key_bundle
from securechat.server.app import create_app
from securechat.server.services import accounts
from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS
from .conftest import RegisterUser
from .support import bearer, material

PRELOGIN = "/api/v1/auth/prelogin"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ACCOUNT = "/api/v1/account"
Login = Callable[[str, str], Awaitable[dict[str, Any]]]


# Pre-login ---------------------------------------------------------------------------


async def test_prelogin_returns_the_users_kdf(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")

    response = await http.post(PRELOGIN, json={"username": "Alice"})

    assert response.status_code == 200
    assert response.json() == {"kdf": alice.kdf.to_wire()}


async def test_prelogin_for_a_missing_user_looks_like_a_real_one(
    http: httpx.AsyncClient, register_user: RegisterUser, settings: Settings
) -> None:
    await register_user("alice")

    real = await http.post(PRELOGIN, json={"username": "alice"})
    ghost = await http.post(PRELOGIN, json={"username": "ghost"})
    ghost_again = await http.post(PRELOGIN, json={"username": "ghost"})
    ghost_upper = await http.post(PRELOGIN, json={"username": "GHOST"})
    phantom = await http.post(PRELOGIN, json={"username": "phantom"})

    assert real.status_code == ghost.status_code == phantom.status_code == 200
    assert real.headers.keys() == ghost.headers.keys()
    real_kdf, ghost_kdf = real.json()["kdf"], ghost.json()["kdf"]
    assert real.json().keys() == ghost.json().keys() == {"kdf"}
    assert real_kdf.keys() == ghost_kdf.keys()
    assert ghost_kdf["algorithm"] == real_kdf["algorithm"] == "pbkdf2-sha256"
    assert ghost_kdf["iterations"] == settings.default_kdf_iterations
    assert len(base64.b64decode(ghost_kdf["salt"], validate=True)) == 16
    # Stable per name (so asking twice reveals nothing) but different between names.
    assert ghost_again.json() == ghost.json() == ghost_upper.json()
    assert phantom.json()["kdf"]["salt"] != ghost_kdf["salt"]
    assert ghost_kdf["salt"] != real_kdf["salt"]


async def test_prelogin_fake_salt_is_stable_across_restarts_and_secret_bound(tmp_path: Path) -> None:
    async def salt_for(data_dir: Path) -> str:
        application = create_app(Settings(data_dir=data_dir, **GENEROUS_LIMITS))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                response = await client.post(PRELOGIN, json={"username": "ghost"})
                return str(response.json()["kdf"]["salt"])

    first = await salt_for(tmp_path / "one")
    assert await salt_for(tmp_path / "one") == first  # same server secret
    assert await salt_for(tmp_path / "two") != first  # another server, another secret


async def test_prelogin_rejects_bad_usernames(http: httpx.AsyncClient) -> None:
    response = await http.post(PRELOGIN, json={"username": "a b"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


# Login -------------------------------------------------------------------------------


async def test_login_with_the_right_key(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")
    mat = material("alice")

    response = await http.post(LOGIN, json={"username": "ALICE", "auth_key": alice.auth_key})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == "alice"
    assert body["kdf"] == alice.kdf.to_wire()
    assert set(body["key_bundle"]) == {"v", "iv", "ciphertext"}
    assert body["session_id"] != alice.tokens["session_id"]
    # The bundle is the one registered: it opens with the wrap key and gives our keys.
    opened = open_key_bundle(body["key_bundle"], mat.derived.wrap_key, alice.identity.username)
    assert opened.public == alice.identity.public
    me = await http.get(ACCOUNT, headers=bearer(body["access_token"]))
    assert me.json()["session_id"] == body["session_id"]


async def test_wrong_key_and_unknown_user_get_the_same_answer(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    await register_user("alice")
    wrong_key = b64encode(bytes(32))

    wrong = await http.post(LOGIN, json={"username": "alice", "auth_key": wrong_key})
    unknown = await http.post(LOGIN, json={"username": "ghost", "auth_key": wrong_key})
    unknown_with_alices_key = await http.post(
        LOGIN, json={"username": "ghost", "auth_key": material("alice").auth_key}
    )

    assert wrong.status_code == unknown.status_code == unknown_with_alices_key.status_code == 401
    assert wrong.json() == unknown.json() == unknown_with_alices_key.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert wrong.content == unknown.content


async def test_login_with_malformed_auth_key_is_422(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    await register_user("alice")
    response = await http.post(LOGIN, json={"username": "alice", "auth_key": "not base64"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


# Access tokens -----------------------------------------------------------------------


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(tokens: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return claims


async def test_account_without_a_token_is_401(http: httpx.AsyncClient) -> None:
    response = await http.get(ACCOUNT)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Token abc",
        "bearer x.y",
    ],
)
async def test_malformed_authorization_is_401(
    http: httpx.AsyncClient, register_user: RegisterUser, header: str
) -> None:
    await register_user("alice")
    response = await http.get(ACCOUNT, headers={"authorization": header})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_token_with_alg_none_is_401(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")
    claims = _claims(alice.tokens)

    for alg in ("none", "None", "NONE"):
        token = f"{_b64url({'alg': alg, 'typ': 'JWT'})}.{_b64url(claims)}."
        response = await http.get(ACCOUNT, headers=bearer(token))
        assert response.status_code == 401, alg
    # The genuine token still works, so the 401s above are about the algorithm.
    assert (await http.get(ACCOUNT, headers=alice.headers)).status_code == 200


async def test_token_signed_with_another_key_is_401(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    forged = jwt.encode(
        _claims(alice.tokens), "another-secret-that-is-long-enough-for-hs256", algorithm="HS256"
    )

    response = await http.get(ACCOUNT, headers=bearer(forged))

    assert response.status_code == 401


async def test_token_signed_with_the_raw_server_secret_is_401(
    http: httpx.AsyncClient, app: FastAPI, register_user: RegisterUser
) -> None:
    # The signing key is derived from the server secret, not the secret itself.
    alice = await register_user("alice")
    forged = jwt.encode(_claims(alice.tokens), app.state.context.server_secret, algorithm="HS256")

    assert (await http.get(ACCOUNT, headers=bearer(forged))).status_code == 401


async def test_expired_token_is_401(
    http: httpx.AsyncClient, app: FastAPI, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    claims = _claims(alice.tokens)
    issuer = app.state.context.tokens

    def token_at(now_s: int) -> str:
        return str(
            issuer.issue_access(
                user_id=int(claims["sub"]), username="alice", session_id=claims["sid"], now_s=now_s
            )
        )

    # The same issuer and session, only the time differs.
    assert (await http.get(ACCOUNT, headers=bearer(token_at(int(time.time()))))).status_code == 200
    expired = token_at(int(time.time()) - issuer.access_ttl_seconds - 5)
    response = await http.get(ACCOUNT, headers=bearer(expired))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_token_of_the_wrong_type_is_401(
    http: httpx.AsyncClient, app: FastAPI, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    claims = {**_claims(alice.tokens), "typ": "refresh"}
    token = jwt.encode(claims, app.state.context.tokens._key, algorithm="HS256")

    assert (await http.get(ACCOUNT, headers=bearer(token))).status_code == 401


async def test_token_for_another_users_session_is_401(
    http: httpx.AsyncClient, app: FastAPI, register_user: RegisterUser
) -> None:
    # A validly signed token that pairs bob's user id with alice's session.
    alice = await register_user("alice")
    bob = await register_user("bob")
    token = app.state.context.tokens.issue_access(
        user_id=int(_claims(bob.tokens)["sub"]),
        username="bob",
        session_id=alice.tokens["session_id"],
        now_s=int(time.time()),
    )

    assert (await http.get(ACCOUNT, headers=bearer(token))).status_code == 401


async def test_logout_revokes_the_session(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    alice = await register_user("alice")
    other = await login("alice", alice.auth_key)

    response = await http.post("/api/v1/auth/logout", headers=alice.headers)

    assert response.status_code == 204
    assert (await http.get(ACCOUNT, headers=alice.headers)).status_code == 401
    refreshed = await http.post(REFRESH, json={"refresh_token": alice.tokens["refresh_token"]})
    assert refreshed.status_code == 401
    # Only that session: the other one is untouched.
    assert (await http.get(ACCOUNT, headers=bearer(other["access_token"]))).status_code == 200


# Refresh -----------------------------------------------------------------------------


async def test_refresh_rotates_the_token(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")

    response = await http.post(REFRESH, json={"refresh_token": alice.tokens["refresh_token"]})

    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["refresh_token"] != alice.tokens["refresh_token"]
    assert rotated["session_id"] == alice.tokens["session_id"]
    assert (await http.get(ACCOUNT, headers=bearer(rotated["access_token"]))).status_code == 200
    again = await http.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 200


async def test_reusing_a_refresh_token_revokes_the_whole_session(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await register_user("alice")
    other = await login("alice", alice.auth_key)
    rotated = (await http.post(REFRESH, json={"refresh_token": alice.tokens["refresh_token"]})).json()
    assert (await http.get(ACCOUNT, headers=bearer(rotated["access_token"]))).status_code == 200
    # A minute later: past the short grace in which the spent token gets the same pair.
    later = accounts.now_ms() + 60_000
    monkeypatch.setattr(accounts, "now_ms", lambda: later)

    reuse = await http.post(REFRESH, json={"refresh_token": alice.tokens["refresh_token"]})

    assert reuse.status_code == 401
    assert reuse.json()["error"]["reason"] == "token_reuse"
    # The thief's (or the victim's) newer token is dead too, and so is the session.
    assert (await http.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})).status_code == 401
    assert (await http.get(ACCOUNT, headers=bearer(rotated["access_token"]))).status_code == 401
    assert (await http.get(ACCOUNT, headers=alice.headers)).status_code == 401
    # Another session of the same user is not part of that family.
    assert (await http.get(ACCOUNT, headers=bearer(other["access_token"]))).status_code == 200
    assert (await http.post(REFRESH, json={"refresh_token": other["refresh_token"]})).status_code == 200


async def test_a_token_spent_moments_ago_gets_the_same_pair_again(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    first = await http.post(REFRESH, json={"refresh_token": alice.tokens["refresh_token"]})

    # Another tab that sent the same token at the same time, or a retry of a lost answer.
    again = await http.post(REFRESH, json={"refresh_token": alice.tokens["refresh_token"]})

    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["refresh_token"] == first.json()["refresh_token"]
    assert again.json()["access_token"] == first.json()["access_token"]
    assert (await http.get(ACCOUNT, headers=bearer(again.json()["access_token"]))).status_code == 200
    # The pair is the session's current one: it rotates as usual.
    onward = await http.post(REFRESH, json={"refresh_token": again.json()["refresh_token"]})
    assert onward.status_code == 200
    assert onward.json()["refresh_token"] != first.json()["refresh_token"]


@pytest.mark.parametrize("token", ["rt_unknown", "", "x" * 128])
async def test_unknown_refresh_token_is_401(http: httpx.AsyncClient, token: str) -> None:
    response = await http.post(REFRESH, json={"refresh_token": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_overlong_refresh_token_is_422(http: httpx.AsyncClient) -> None:
    assert (await http.post(REFRESH, json={"refresh_token": "x" * 129})).status_code == 422
