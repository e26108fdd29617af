"""POST /api/v1/messages: idempotent sends, authorisation and strict envelope parsing."""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .conftest import RegisteredUser, RegisterUser
from .support import dm, identity_for, seal

MESSAGES = "/api/v1/messages"


async def send(http: httpx.AsyncClient, user: RegisteredUser, envelope: dict[str, Any]) -> httpx.Response:
    return await http.post(MESSAGES, headers=user.headers, json={"envelope": envelope})


async def inbox_messages(http: httpx.AsyncClient, user: RegisteredUser) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/inbox", headers=user.headers, params={"since": 0})
    assert response.status_code == 200
    return [entry for entry in response.json()["entries"] if entry["type"] == "message"]


@pytest.fixture
async def pair(register_user: RegisterUser) -> tuple[RegisteredUser, RegisteredUser]:
    return await register_user("alice"), await register_user("bob")


async def test_send_returns_201_with_seq_and_server_time(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    envelope = seal(alice.identity, [alice.identity, bob.identity])

    response = await send(http, alice, envelope)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message_id"] == envelope["message_id"]
    assert body["conversation_id"] == dm("alice", "bob") == envelope["conversation_id"]
    assert body["seq"] == 1  # the sender's own inbox entry
    assert isinstance(body["server_ts"], int) and body["server_ts"] > 0
    [delivered] = await inbox_messages(http, bob)
    assert delivered["message_id"] == envelope["message_id"]
    assert delivered["sender"] == "alice"
    assert delivered["envelope"] == envelope


async def test_resending_the_same_envelope_is_idempotent(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    await send(http, alice, seal(alice.identity, [alice.identity, bob.identity], "first"))
    envelope = seal(alice.identity, [alice.identity, bob.identity], "retried")

    first = await send(http, alice, envelope)
    second = await send(http, alice, envelope)

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert second.json() == first.json()
    ids = [entry["message_id"] for entry in await inbox_messages(http, bob)]
    assert ids.count(envelope["message_id"]) == 1
    assert len(ids) == 2


async def test_reusing_a_message_id_for_other_content_is_409(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    message_id = str(uuid.uuid4())
    original = seal(alice.identity, [alice.identity, bob.identity], "original", message_id=message_id)
    assert (await send(http, alice, original)).status_code == 201

    other = seal(alice.identity, [alice.identity, bob.identity], "changed", message_id=message_id)
    response = await send(http, alice, other)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "message_id_reused"
    [stored] = await inbox_messages(http, bob)
    assert stored["envelope"] == original


async def test_another_sender_cannot_take_over_a_message_id(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    message_id = str(uuid.uuid4())
    assert (
        await send(http, alice, seal(alice.identity, [alice.identity, bob.identity], message_id=message_id))
    ).is_success

    response = await send(
        http, bob, seal(bob.identity, [alice.identity, bob.identity], message_id=message_id)
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "message_id_reused"


async def test_sender_must_be_the_authenticated_user(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    envelope = seal(alice.identity, [alice.identity, bob.identity])

    response = await send(http, bob, envelope)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert response.json()["error"]["reason"] == "sender_mismatch"
    assert await inbox_messages(http, bob) == []
    # The id was not burnt: alice can still send it.
    assert (await send(http, alice, envelope)).status_code == 201


@pytest.mark.parametrize(
    "members", [("alice",), ("alice", "bob", "carol")], ids=["missing-bob", "extra-carol"]
)
async def test_keys_must_cover_exactly_the_members(
    http: httpx.AsyncClient,
    pair: tuple[RegisteredUser, RegisteredUser],
    register_user: RegisterUser,
    members: tuple[str, ...],
) -> None:
    alice, bob = pair
    await register_user("carol")
    assert (await send(http, alice, seal(alice.identity, [alice.identity, bob.identity]))).status_code == 201

    envelope = seal(
        alice.identity, [identity_for(name) for name in members], conversation_id=dm("alice", "bob")
    )
    response = await send(http, alice, envelope)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_envelope"
    assert response.json()["error"]["reason"] == "recipients_mismatch"
    assert len(await inbox_messages(http, bob)) == 1


async def test_conversation_id_must_be_the_direct_id_of_the_pair(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], register_user: RegisterUser
) -> None:
    alice, bob = pair
    await register_user("carol")

    for conversation_id in (dm("alice", "carol"), dm("bob", "carol"), "dm-" + "0" * 32, "grp-" + "1" * 32):
        envelope = seal(alice.identity, [alice.identity, bob.identity], conversation_id=conversation_id)
        response = await send(http, alice, envelope)
        assert response.status_code == 404, conversation_id
        assert response.json()["error"]["code"] == "not_found"
    assert await inbox_messages(http, bob) == []
    conversations = await http.get("/api/v1/conversations", headers=alice.headers)
    assert conversations.json() == {"conversations": []}


async def test_sending_to_a_missing_user_is_404(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, _bob = pair
    envelope = seal(alice.identity, [alice.identity, identity_for("ghost")])

    response = await send(http, alice, envelope)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_non_member_cannot_post_to_an_existing_conversation(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], register_user: RegisterUser
) -> None:
    alice, bob = pair
    mallory = await register_user("mallory")
    assert (await send(http, alice, seal(alice.identity, [alice.identity, bob.identity]))).status_code == 201

    for members in ([alice, bob, mallory], [alice, mallory], [bob, mallory]):
        envelope = seal(
            mallory.identity, [member.identity for member in members], conversation_id=dm("alice", "bob")
        )
        response = await send(http, mallory, envelope)
        assert response.status_code == 403
        assert response.json()["error"]["reason"] == "not_member"
    assert len(await inbox_messages(http, bob)) == 1


def _mutations() -> dict[str, Callable[[dict[str, Any]], object]]:
    def big_ciphertext(env: dict[str, Any]) -> None:
        env["ciphertext"] = base64.b64encode(bytes(200_000)).decode()

    return {
        "bad-base64-iv": lambda env: env.update(iv="!!!!!!!!!!!!!!!!"),
        "unpadded-ciphertext": lambda env: env.update(ciphertext=env["ciphertext"][:-1]),
        "urlsafe-signature": lambda env: env.update(signature="-_" * 43 + "=="),
        "short-signature": lambda env: env.update(signature=base64.b64encode(bytes(63)).decode()),
        "short-iv": lambda env: env.update(iv=base64.b64encode(bytes(8)).decode()),
        "extra-field": lambda env: env.update(note="hi"),
        "missing-field": lambda env: env.pop("signature"),
        "v2": lambda env: env.update(v=2),
        "v-string": lambda env: env.update(v="1"),
        "v-true": lambda env: env.update(v=True),
        "huge-ciphertext": big_ciphertext,
        "unsorted-keys": lambda env: env["keys"].reverse(),
        "duplicate-keys": lambda env: env["keys"].append(dict(env["keys"][-1])),
        "no-keys": lambda env: env.update(keys=[]),
        "key-extra-field": lambda env: env["keys"][0].update(index=0),
        "key-not-object": lambda env: env["keys"].append("zed"),
        "unnormalised-sender": lambda env: env.update(sender="Alice"),
        "unnormalised-recipient": lambda env: env["keys"][0].update(recipient="ALICE"),
        "bad-message-id": lambda env: env.update(message_id="not-a-uuid"),
        "uppercase-message-id": lambda env: env.update(message_id=env["message_id"].upper()),
        "bad-conversation-id": lambda env: env.update(conversation_id="dm-xyz"),
        "negative-sent-at": lambda env: env.update(sent_at=-1),
        "float-sent-at": lambda env: env.update(sent_at=1.5),
        "huge-sent-at": lambda env: env.update(sent_at=2**70),
        "ciphertext-number": lambda env: env.update(ciphertext=12),
    }


@pytest.mark.parametrize("mutation", list(_mutations()))
async def test_malformed_envelopes_are_400_invalid_envelope(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], mutation: str
) -> None:
    alice, bob = pair
    envelope = copy.deepcopy(seal(alice.identity, [alice.identity, bob.identity]))
    _mutations()[mutation](envelope)

    response = await send(http, alice, envelope)

    assert response.status_code in (400, 413), response.text
    assert response.json()["error"]["code"] in ("invalid_envelope", "too_large")
    assert await inbox_messages(http, bob) == []


@pytest.mark.parametrize(
    "body",
    [{}, {"envelope": None}, {"envelope": []}, {"envelope": "x"}, {"envelope": {}, "extra": 1}],
    ids=["empty", "null", "list", "string", "extra-field"],
)
async def test_malformed_send_bodies_are_4xx_json(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser], body: dict[str, Any]
) -> None:
    alice, _bob = pair

    response = await http.post(MESSAGES, headers=alice.headers, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


async def test_sending_needs_authentication(
    http: httpx.AsyncClient, pair: tuple[RegisteredUser, RegisteredUser]
) -> None:
    alice, bob = pair
    response = await http.post(
        MESSAGES, json={"envelope": seal(alice.identity, [alice.identity, bob.identity])}
    )
    assert response.status_code == 401
    assert await inbox_messages(http, bob) == []
