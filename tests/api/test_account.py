"""Sessions, password change and the public key directory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from securechat.protocol.encoding import b64encode
from securechat.protocol.keys import fingerprint, open_key_bundle, seal_key_bundle

from .conftest import RegisterUser
from .support import bearer, material

ACCOUNT = "/api/v1/account"
SESSIONS = "/api/v1/sessions"
Login = Callable[[str, str], Awaitable[dict[str, Any]]]


async def _status(http: httpx.AsyncClient, tokens: dict[str, Any]) -> int:
    return (await http.get(ACCOUNT, headers=bearer(tokens["access_token"]))).status_code


# Sessions ----------------------------------------------------------------------------


async def test_sessions_list_marks_the_current_one(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    alice = await register_user("alice")
    second = await login("alice", alice.auth_key)

    response = await http.get(SESSIONS, headers=bearer(second["access_token"]))

    assert response.status_code == 200
    sessions = {s["id"]: s for s in response.json()["sessions"]}
    assert set(sessions) == {alice.tokens["session_id"], second["session_id"]}
    assert sessions[second["session_id"]]["current"] is True
    assert sessions[alice.tokens["session_id"]]["current"] is False


async def test_sessions_of_other_users_are_not_listed(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    await register_user("bob")

    sessions = (await http.get(SESSIONS, headers=alice.headers)).json()["sessions"]

    assert [s["id"] for s in sessions] == [alice.tokens["session_id"]]


async def test_revoke_others_keeps_only_the_current_session(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    alice = await register_user("alice")
    second = await login("alice", alice.auth_key)
    third = await login("alice", alice.auth_key)
    bob = await register_user("bob")

    response = await http.post(f"{SESSIONS}/revoke-others", headers=bearer(second["access_token"]))

    assert response.status_code == 200
    assert response.json() == {"revoked_sessions": 2}
    assert await _status(http, alice.tokens) == 401
    assert await _status(http, third) == 401
    assert await _status(http, second) == 200
    assert await _status(http, bob.tokens) == 200
    refreshed = await http.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert refreshed.status_code == 401
    listed = (await http.get(SESSIONS, headers=bearer(second["access_token"]))).json()["sessions"]
    assert [s["id"] for s in listed] == [second["session_id"]]


async def test_delete_one_of_my_sessions(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    alice = await register_user("alice")
    second = await login("alice", alice.auth_key)

    response = await http.delete(f"{SESSIONS}/{second['session_id']}", headers=alice.headers)

    assert response.status_code == 204
    assert await _status(http, second) == 401
    assert await _status(http, alice.tokens) == 200
    again = await http.delete(f"{SESSIONS}/{second['session_id']}", headers=alice.headers)
    assert again.status_code == 404


async def test_delete_another_users_session_is_404(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    bob = await register_user("bob")

    response = await http.delete(f"{SESSIONS}/{bob.tokens['session_id']}", headers=alice.headers)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert await _status(http, bob.tokens) == 200
    missing = await http.delete(f"{SESSIONS}/00000000-0000-4000-8000-000000000000", headers=alice.headers)
    assert missing.status_code == 404
    assert missing.json() == response.json()


# Password change ---------------------------------------------------------------------


def _password_change_body(name: str, current_auth_key: str) -> dict[str, Any]:
    new = material(name, generation=1)
    return {
        "current_auth_key": current_auth_key,
        "new_auth_key": new.auth_key,
        "kdf": new.kdf.to_wire(),
        "key_bundle": seal_key_bundle(new.identity, new.derived.wrap_key),
    }


async def test_password_change_with_the_wrong_current_key_is_401(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    alice = await register_user("alice")
    other = await login("alice", alice.auth_key)

    response = await http.post(
        f"{ACCOUNT}/password",
        headers=alice.headers,
        json=_password_change_body("alice", b64encode(bytes(32))),
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    # Nothing changed: the old key still logs in, the other session lives on.
    await login("alice", alice.auth_key)
    assert await _status(http, other) == 200
    assert (await http.post("/api/v1/auth/prelogin", json={"username": "alice"})).json()[
        "kdf"
    ] == alice.kdf.to_wire()


async def test_password_change_replaces_key_kdf_and_bundle(
    http: httpx.AsyncClient, register_user: RegisterUser, login: Login
) -> None:
    alice = await register_user("alice")
    other = await login("alice", alice.auth_key)
    new = material("alice", generation=1)

    response = await http.post(
        f"{ACCOUNT}/password", headers=alice.headers, json=_password_change_body("alice", alice.auth_key)
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"revoked_sessions": 1}
    assert await _status(http, other) == 401
    assert await _status(http, alice.tokens) == 200
    old_login = await http.post("/api/v1/auth/login", json={"username": "alice", "auth_key": alice.auth_key})
    assert old_login.status_code == 401
    fresh = await login("alice", new.auth_key)
    assert fresh["kdf"] == new.kdf.to_wire()
    # The bundle handed out now is the re-sealed one: it opens only with the new wrap key.
    opened = open_key_bundle(fresh["key_bundle"], new.derived.wrap_key, alice.identity.username)
    assert opened.public == alice.identity.public
    prelogin = await http.post("/api/v1/auth/prelogin", json={"username": "alice"})
    assert prelogin.json()["kdf"] == new.kdf.to_wire()
    bundle = await http.get(f"{ACCOUNT}/key-bundle", headers=alice.headers)
    assert bundle.json() == {"key_bundle": fresh["key_bundle"], "kdf": new.kdf.to_wire()}


async def test_password_change_refuses_weak_kdf(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")
    body = _password_change_body("alice", alice.auth_key)
    body["kdf"]["iterations"] = 100_000

    response = await http.post(f"{ACCOUNT}/password", headers=alice.headers, json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "weak_parameters"
    assert (
        await http.post("/api/v1/auth/login", json={"username": "alice", "auth_key": alice.auth_key})
    ).is_success


# Key directory -----------------------------------------------------------------------


async def test_public_keys_of_a_user(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice = await register_user("alice")
    bob = await register_user("bob")

    response = await http.get("/api/v1/users/BOB/keys", headers=alice.headers)

    assert response.status_code == 200
    body = response.json()
    wire = bob.identity.public.to_wire()
    assert body["username"] == "bob"
    for field in ("signing_key", "encryption_key", "encryption_key_signature"):
        assert body[field] == wire[field]
    assert body["fingerprints"] == {
        "signing_key": fingerprint(bob.identity.public.signing_key),
        "encryption_key": fingerprint(bob.identity.public.encryption_key),
    }
    assert isinstance(body["updated_at"], int)


async def test_public_keys_of_a_missing_user_is_404(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")

    response = await http.get("/api/v1/users/ghost/keys", headers=alice.headers)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_public_keys_need_authentication(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    await register_user("bob")

    response = await http.get("/api/v1/users/bob/keys")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_public_keys_with_a_bad_username_is_422(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    response = await http.get("/api/v1/users/a%20b/keys", headers=alice.headers)
    assert response.status_code == 422
