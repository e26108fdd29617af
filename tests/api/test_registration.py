"""POST /api/v1/auth/register: success, conflicts, and every refusal stores nothing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from securechat.protocol.encoding import b64encode
from securechat.protocol.identifiers import Username
from securechat.protocol.keys import PrivateIdentity

from .conftest import RegisterUser
from .support import identity_for, public_keys, registration_body

REGISTER = "/api/v1/auth/register"
CountUsers = Callable[[], Awaitable[int]]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    return error


async def test_register_returns_201_with_tokens(http: httpx.AsyncClient, count_users: CountUsers) -> None:
    response = await http.post(REGISTER, json=registration_body("alice"))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "alice"
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"].startswith("rt_")
    assert body["expires_in"] > 0
    me = await http.get("/api/v1/account", headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert me.json()["session_id"] == body["session_id"]
    assert await count_users() == 1


async def test_register_answers_with_the_normalised_username(http: httpx.AsyncClient) -> None:
    # Fullwidth letters are NFKC-normalised; the answer names the account as stored.
    response = await http.post(REGISTER, json=registration_body("carol", username="ＣＡＲＯＬ"))

    assert response.status_code == 201, response.text
    assert response.json()["username"] == "carol"


@pytest.mark.parametrize("variant", ["alice", "Alice", "ALICE", "ａlice"])
async def test_duplicate_username_is_409(
    http: httpx.AsyncClient, register_user: RegisterUser, count_users: CountUsers, variant: str
) -> None:
    await register_user("alice")

    response = await http.post(REGISTER, json=registration_body("alice", username=variant))

    assert_error(response, 409, "username_taken")
    assert await count_users() == 1


@pytest.mark.parametrize(
    "username",
    [
        "ab",
        "a" * 33,
        "a" * 300,
        "",
        "al ice",
        "alice\x00",
        "a'; DROP TABLE users;--",
        "alice@example.org",
        "al/ice",
        "🙂🙂🙂",
        12345,
        None,
    ],
)
async def test_bad_usernames_are_422(
    http: httpx.AsyncClient, count_users: CountUsers, username: object
) -> None:
    response = await http.post(REGISTER, json=registration_body("alice", username=username))

    assert_error(response, 422, "invalid_input")
    assert await count_users() == 0


@pytest.mark.parametrize("raw_name", [r'"\ud800"', r'"ali\udfffce"', r'"alice\u0000"'])
async def test_lone_surrogate_and_nul_in_raw_json_are_422(
    http: httpx.AsyncClient, count_users: CountUsers, raw_name: str
) -> None:
    # json.dumps would refuse to write these, so the bytes are spliced in by hand.
    body = json.dumps(registration_body("alice", username="PLACEHOLDER")).replace('"PLACEHOLDER"', raw_name)

    response = await http.post(REGISTER, content=body.encode(), headers={"content-type": "application/json"})

    assert_error(response, 422, "invalid_input")
    assert await count_users() == 0


async def test_lone_surrogate_in_an_unknown_field_name_is_422_not_500(
    http: httpx.AsyncClient, count_users: CountUsers
) -> None:
    # The validation error names the offending field; that name must not break the
    # JSON error response (a lone surrogate cannot be encoded as UTF-8).
    body = json.dumps(registration_body("alice", extra="x")).replace('"extra"', r'"\ud800"')

    response = await http.post(REGISTER, content=body.encode(), headers={"content-type": "application/json"})

    assert_error(response, 422, "invalid_input")
    assert await count_users() == 0


@pytest.mark.parametrize("iterations", [599_999, 1, 0, 10_000_001])
async def test_weak_or_absurd_kdf_iterations_are_400(
    http: httpx.AsyncClient, count_users: CountUsers, iterations: int
) -> None:
    body = registration_body("alice")
    body["kdf"]["iterations"] = iterations

    response = await http.post(REGISTER, json=body)

    error = assert_error(response, 400, "weak_parameters")
    assert error["field"] == "kdf"
    assert await count_users() == 0


async def test_unknown_kdf_algorithm_is_400(http: httpx.AsyncClient, count_users: CountUsers) -> None:
    body = registration_body("alice")
    body["kdf"]["algorithm"] = "md5"

    assert_error(await http.post(REGISTER, json=body), 400, "weak_parameters")
    assert await count_users() == 0


def _identity_with_rsa(name: str, key_size: int, exponent: int) -> PrivateIdentity:
    return PrivateIdentity.from_private_keys(
        Username(name),
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(public_exponent=exponent, key_size=key_size),
    )


@pytest.mark.parametrize(("key_size", "exponent"), [(1024, 65537), (2048, 3)])
async def test_weak_rsa_keys_are_400(
    http: httpx.AsyncClient, count_users: CountUsers, key_size: int, exponent: int
) -> None:
    # Properly bound to the username: only the RSA parameters are wrong.
    identity = _identity_with_rsa("alice", key_size, exponent)

    response = await http.post(REGISTER, json=registration_body("alice", public_keys=public_keys(identity)))

    error = assert_error(response, 400, "weak_parameters")
    assert error["field"] == "public_keys"
    assert await count_users() == 0


async def test_keys_bound_to_another_username_are_422(
    http: httpx.AsyncClient, count_users: CountUsers
) -> None:
    # bob's keys, validly signed, but the binding signature names bob, not alice.
    response = await http.post(
        REGISTER, json=registration_body("alice", public_keys=public_keys(identity_for("bob")))
    )

    error = assert_error(response, 422, "invalid_input")
    assert error["field"] == "public_keys"
    assert await count_users() == 0


async def test_tampered_binding_signature_is_422(http: httpx.AsyncClient, count_users: CountUsers) -> None:
    keys = public_keys(identity_for("alice"))
    keys["encryption_key_signature"] = public_keys(identity_for("bob"))["encryption_key_signature"]

    assert_error(
        await http.post(REGISTER, json=registration_body("alice", public_keys=keys)), 422, "invalid_input"
    )
    assert await count_users() == 0


@pytest.mark.parametrize(
    "auth_key",
    [
        "AAAA",  # strict base64 but 3 bytes, not 32
        "A" * 43,  # unpadded
        "A" * 43 + "=\n",  # trailing whitespace
        "A" * 42 + "B=",  # non-zero trailing bits: not canonical
        "-" * 43 + "=",  # URL-safe alphabet
        "A" * 44 + "====",  # padding run
        "",
    ],
)
async def test_non_strict_base64_auth_key_is_422(
    http: httpx.AsyncClient, count_users: CountUsers, auth_key: str
) -> None:
    response = await http.post(REGISTER, json=registration_body("alice", auth_key=auth_key))

    assert_error(response, 422, "invalid_input")
    assert await count_users() == 0


@pytest.mark.parametrize(
    "mutate",
    [
        lambda body: body.update(is_admin=True),
        lambda body: body["kdf"].update(pepper="x"),
        lambda body: body["public_keys"].update(username="alice"),
        lambda body: body["key_bundle"].update(extra="x"),
        lambda body: body.pop("key_bundle"),
        lambda body: body["key_bundle"].update(v=2),
        lambda body: body["key_bundle"].update(iv="AAAA"),
        lambda body: body["public_keys"].update(signing_key="not base64!"),
    ],
    ids=[
        "top-extra",
        "kdf-extra",
        "keys-extra",
        "bundle-extra",
        "missing",
        "bundle-v2",
        "short-iv",
        "bad-key",
    ],
)
async def test_extra_missing_or_malformed_fields_are_422(
    http: httpx.AsyncClient, count_users: CountUsers, mutate: Callable[[dict[str, Any]], object]
) -> None:
    body = registration_body("alice")
    mutate(body)

    assert_error(await http.post(REGISTER, json=body), 422, "invalid_input")
    assert await count_users() == 0


async def test_refused_registration_leaves_the_name_free(
    http: httpx.AsyncClient, register_user: RegisterUser, count_users: CountUsers
) -> None:
    bad = registration_body("alice")
    bad["kdf"]["iterations"] = 599_999
    assert (await http.post(REGISTER, json=bad)).status_code == 400

    # Nothing was stored: the name still registers, and only once.
    await register_user("alice")
    prelogin = await http.post("/api/v1/auth/prelogin", json={"username": "alice"})
    assert prelogin.json()["kdf"] == registration_body("alice")["kdf"]
    assert await count_users() == 1


@pytest.mark.parametrize(
    "point_hex",
    [
        "01" + "00" * 31,  # the identity: [S]B = R + [k]A holds for R = A = identity, S = 0
        "ec" + "ff" * 30 + "7f",  # the point of order 2
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    ],
)
async def test_a_signing_key_of_small_order_is_422(
    http: httpx.AsyncClient, count_users: CountUsers, point_hex: str
) -> None:
    # A binding "signature" anyone can make for such a key: R = the identity, S = 0. The
    # library verifies it, so only the protocol's check on the key stops the account.
    keys = public_keys(identity_for("alice"))
    keys["signing_key"] = b64encode(bytes.fromhex("302a300506032b6570032100" + point_hex))
    keys["encryption_key_signature"] = b64encode(bytes.fromhex("01" + "00" * 63))

    error = assert_error(
        await http.post(REGISTER, json=registration_body("alice", public_keys=keys)), 422, "invalid_input"
    )
    assert error["field"] == "public_keys"
    assert await count_users() == 0
