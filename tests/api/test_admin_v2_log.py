"""The admin console's log of v2 messages (PROTOCOL.md 15.8): who sent one from which
device, to which account and how many devices, when and how large, the body only as
ciphertext; filtered by sender and recipient like the v1 log (a v2 message records its
direct conversation's members, as a v1 message does); exported without the slots."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.server.services.admin import make_admin

from .conftest import RegisteredUser, RegisterUser
from .test_device_inbox import World, settings, world

__all__ = ["settings", "world"]

SECRET = "v2 admin log plaintext that must never show"


async def admin(app: FastAPI, register_user: RegisterUser) -> RegisteredUser:
    root = await register_user("root")
    await make_admin(app.state.context.database, "root")
    return root


async def log(http: httpx.AsyncClient, root: RegisteredUser, **params: object) -> list[dict[str, object]]:
    response = await http.get("/api/v1/admin/messages", headers=root.headers, params=params)
    assert response.status_code == 200, response.text
    entries: list[dict[str, object]] = response.json()["messages"]
    return entries


async def test_a_v2_message_is_in_the_v2_log_as_metadata_and_ciphertext(
    world: World, app: FastAPI, register_user: RegisterUser
) -> None:
    root = await admin(app, register_user)
    envelope = world.seal(SECRET)
    assert (await world.send(envelope)).status_code == 201
    (entry,) = await log(world.http, root, protocol=2)
    assert entry["protocol"] == 2
    assert entry["message_id"] == envelope["message_id"]
    assert entry["conversation_id"] == direct_conversation_id(Username("alice"), Username("bob"))
    assert (entry["sender"], entry["sender_device"]) == ("alice", world.laptop.device_id)
    assert entry["recipients"] == ["bob"]
    # bob's phone and alice's phone (the laptop sent it).
    assert entry["devices"] == 2
    assert entry["client_ts"] == envelope["sent_at"]
    assert isinstance(entry["size"], int) and entry["size"] > len(SECRET)
    assert str(entry["ciphertext_preview"]).startswith(str(envelope["body"])[:20])
    assert SECRET not in json.dumps(entry)
    # v1's log is apart (its ids are its own): the v2 message is not in it.
    assert await log(world.http, root) == []
    assert await log(world.http, root, protocol=1) == []


async def test_the_v2_log_filters_by_sender_and_recipient(
    world: World, app: FastAPI, register_user: RegisterUser
) -> None:
    root = await admin(app, register_user)
    await register_user("carol")
    assert (await world.send(world.seal("one"))).status_code == 201
    assert (await world.send(world.seal("two"))).status_code == 201
    assert len(await log(world.http, root, protocol=2, recipient="bob")) == 2
    assert len(await log(world.http, root, protocol=2, sender="alice")) == 2
    assert await log(world.http, root, protocol=2, sender="bob") == []
    assert await log(world.http, root, protocol=2, recipient="carol") == []
    # The sender is not its own message's recipient.
    assert await log(world.http, root, protocol=2, recipient="alice") == []
    first, second = await log(world.http, root, protocol=2, limit=1), None
    second = await log(world.http, root, protocol=2, limit=1, before=first[0]["id"])
    assert first[0]["id"] != second[0]["id"]


async def test_the_direct_conversation_is_listed_for_both_accounts(world: World) -> None:
    assert (await world.send(world.seal("hello"))).status_code == 201
    conversation = direct_conversation_id(Username("alice"), Username("bob"))
    for user in (world.alice, world.bob):
        listed = (await world.http.get("/api/v1/conversations", headers=user.headers)).json()
        (found,) = [c for c in listed["conversations"] if c["id"] == conversation]
        assert sorted(found["members"]) == ["alice", "bob"]


async def test_the_v2_export_has_the_envelope_without_slots_and_no_plaintext(
    world: World, app: FastAPI, register_user: RegisterUser
) -> None:
    root = await admin(app, register_user)
    envelope = world.seal(SECRET)
    assert (await world.send(envelope)).status_code == 201
    response = await world.http.get(
        "/api/v1/admin/messages/export", headers=root.headers, params={"protocol": 2}
    )
    assert response.status_code == 200
    assert SECRET.encode() not in response.content
    (line,) = response.text.splitlines()
    exported = json.loads(line)
    assert exported["envelope"] == {k: v for k, v in envelope.items() if k != "slots"}
    audit = (await world.http.get("/api/v1/admin/audit", headers=root.headers)).json()
    assert any(
        row["action"] == "export_messages" and row["details"].get("protocol") == 2 for row in audit["entries"]
    )


async def test_an_unknown_protocol_is_a_clear_error(
    world: World, app: FastAPI, register_user: RegisterUser
) -> None:
    root = await admin(app, register_user)
    for path in ("/api/v1/admin/messages", "/api/v1/admin/messages/export"):
        response = await world.http.get(path, headers=root.headers, params={"protocol": 3})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_input"


async def test_a_delivered_v2_message_stays_in_the_log_without_its_ciphertext(
    world: World, app: FastAPI, register_user: RegisterUser
) -> None:
    root = await admin(app, register_user)
    envelope = world.seal(SECRET)
    assert (await world.send(envelope)).status_code == 201
    (before,) = await log(world.http, root, protocol=2)
    assert before["body_deleted_at"] is None and before["ciphertext_preview"]
    # bob's phone has it; alice's phone not yet: the body stays.
    assert (await world.ack(world.bob_phone, 1)).status_code == 200
    (waiting,) = await log(world.http, root, protocol=2)
    assert waiting["body_deleted_at"] is None
    assert (await world.ack(world.phone, 1)).status_code == 200
    (after,) = await log(world.http, root, protocol=2)
    assert after["body_deleted_at"] is not None
    assert after["ciphertext_preview"] == ""
    kept = {k: after[k] for k in ("message_id", "sender", "sender_device", "recipients", "devices", "size")}
    assert kept == {k: before[k] for k in kept}
    exported = await world.http.get(
        "/api/v1/admin/messages/export", headers=root.headers, params={"protocol": 2}
    )
    (line,) = exported.text.splitlines()
    stored = json.loads(line)["envelope"]
    assert "body" not in stored and "iv" not in stored and "signature" not in stored
    assert str(envelope["body"])[:40] not in exported.text
    # A retry of the same envelope after delivery is answered, not stored or delivered again.
    again = await world.send(envelope)
    assert again.status_code == 201
    assert (await world.inbox(world.bob_phone, since=1))["entries"] == []


async def test_odd_stored_rows_neither_break_the_log_nor_an_acknowledgement(
    world: World, app: FastAPI, register_user: RegisterUser
) -> None:
    """The server checked every envelope it stored, but a database can be restored or
    edited: an odd row shows as what it is and never turns the log or an ack into a 500."""
    root = await admin(app, register_user)
    envelope = world.seal("odd")
    assert (await world.send(envelope)).status_code == 201
    odd = ["null", "[1, 2]", '{"targets": null, "body": 5}', '{"targets": [1, {"devices": "x"}]}', "not json"]
    async with app.state.context.database.write() as conn:
        for n, text_value in enumerate(odd):
            await conn.execute(
                text(
                    "INSERT INTO v2_messages (message_id, conversation_id, sender_id, envelope_sha256,"
                    " envelope, server_ts) VALUES (:m, :c, 1, :d, :e, 1)"
                ),
                {
                    "m": f"00000000-0000-4000-8000-{n:012d}",
                    "c": "dm-" + "0" * 32,
                    "d": bytes(32),
                    "e": text_value,
                },
            )
        # The real message's body replaced by something that is not an envelope.
        await conn.execute(
            text("UPDATE v2_messages SET envelope = 'null' WHERE message_id = :m"),
            {"m": envelope["message_id"]},
        )
    entries = await log(world.http, root, protocol=2)
    assert len(entries) == len(odd) + 1
    exported = await world.http.get(
        "/api/v1/admin/messages/export", headers=root.headers, params={"protocol": 2}
    )
    assert exported.status_code == 200 and len(exported.text.splitlines()) == len(odd) + 1
    for device in (world.bob_phone, world.phone):
        assert (await world.ack(device, 1)).status_code == 200
