"""v2 direct messages through per-device inboxes (PROTOCOL.md 15.8, 15.16), end to end
with the real protocol code: alice's laptop claims bundles from the server, sets up
sessions, seals one envelope for bob's phone and her own phone; each device reads an
entry of its own with only its slot and opens the one stored body. The server refuses
envelopes from unlisted devices, for stale lists, without a slot per device, with a
bad signature or from another sender, and keeps each device's positions apart."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from securechat.protocol.envelope import decode_payload, encode_payload
from securechat.protocol.identifiers import ConversationId, MessageId, Username, direct_conversation_id
from securechat.protocol.v2.devices import parse_device_list
from securechat.protocol.v2.envelope import (
    EnvelopeV2,
    HeaderV2,
    Target,
    open_body,
    open_key_slot,
    seal_envelope,
    verify_envelope,
)
from securechat.protocol.v2.prekeys import (
    OneTimePrekey,
    SignedPrekey,
    check_one_time_prekey,
    check_signed_prekey,
)
from securechat.protocol.v2.primitives import ed25519_raw_public
from securechat.protocol.v2.ratchet import SessionState
from securechat.protocol.v2.setup import Party, accept_session, initiate_session
from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS
from .conftest import RegisteredUser, RegisterUser
from .device_auth_support import device_headers
from .test_devices import (
    V2_LIMITS,
    DeviceKeys,
    account_seed,
    device_list,
    error,
    make_device,
    now_ms,
    publish,
)


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(data_dir=tmp_path / "server", **GENEROUS_LIMITS, **V2_LIMITS)


def party(user: RegisteredUser, device: DeviceKeys) -> Party:
    return Party(user.identity.username, ed25519_raw_public(account_seed(user.identity)), device.device)


class World:
    """alice (laptop, phone) and bob (phone), each device with published prekeys."""

    def __init__(self, http: httpx.AsyncClient, alice: RegisteredUser, bob: RegisteredUser) -> None:
        self.http = http
        self.alice, self.bob = alice, bob
        self.laptop = make_device(alice.identity, "laptop")
        self.phone = make_device(alice.identity, "phone")
        self.bob_phone = make_device(bob.identity, "phone")
        self.signed: dict[str, dict[str, object]] = {}
        self.credentials: dict[str, dict[str, str]] = {}
        self.sessions: dict[tuple[str, str], SessionState] = {}

    def user_of(self, device: DeviceKeys) -> RegisteredUser:
        return self.alice if device.username == "alice" else self.bob

    async def setup(self) -> None:
        assert (
            await publish(
                self.http, self.alice, device_list(self.alice.identity, [self.laptop, self.phone], 1)
            )
        ).status_code == 200
        assert (
            await publish(self.http, self.bob, device_list(self.bob.identity, [self.bob_phone], 1))
        ).status_code == 200
        for device in (self.laptop, self.phone, self.bob_phone):
            user = self.user_of(device)
            self.signed[device.device_id] = device.signed_prekey(1)
            path = f"/api/v1/devices/{device.device_id}"
            assert (
                await self.http.put(
                    f"{path}/signed-prekey", headers=user.headers, json=self.signed[device.device_id]
                )
            ).status_code == 200
            body = {"prekeys": device.one_time_prekeys([1, 2, 3])}
            assert (
                await self.http.post(f"{path}/one-time-prekeys", headers=user.headers, json=body)
            ).status_code == 200

    async def session_with(self, device: DeviceKeys) -> None:
        """The laptop claims the device's bundle from the server and sets up a session."""
        answer = await self.http.post(
            f"/api/v1/users/{device.username}/bundles",
            headers=self.alice.headers,
            json={"device_ids": [device.device_id]},
        )
        (bundle,) = answer.json()["bundles"]
        listed = parse_device_list(
            (
                await self.http.get(f"/api/v1/users/{device.username}/devices", headers=self.alice.headers)
            ).json()
        )
        target = listed.device(device.device_id)
        signed: SignedPrekey = check_signed_prekey(bundle["signed_prekey"], device.username, target, now_ms())
        one_time: OneTimePrekey | None = (
            None
            if bundle["one_time_prekey"] is None
            else check_one_time_prekey(bundle["one_time_prekey"], device.username, target)
        )
        self.sessions[(device.username, device.device_id)] = initiate_session(
            party(self.alice, self.laptop),
            self.laptop.dh_private,
            party(self.user_of(device), device),
            signed,
            one_time,
            bytes(range(32)),
        )

    def seal(
        self,
        text: str,
        targets: list[tuple[str, int, list[DeviceKeys]]] | None = None,
        message_id: str | None = None,
        conversation: str | None = None,
    ) -> dict[str, Any]:
        if targets is None:
            targets = [("alice", 1, [self.phone]), ("bob", 1, [self.bob_phone])]
        header = HeaderV2(
            MessageId(message_id or str(uuid.uuid4())),
            ConversationId(conversation or direct_conversation_id(Username("alice"), Username("bob"))),
            Username("alice"),
            self.laptop.device_id,
            now_ms(),
            tuple(
                Target(Username(name), version, tuple(sorted(d.device_id for d in devices)))
                for name, version, devices in targets
            ),
        )
        envelope, states = seal_envelope(
            header,
            encode_payload({"type": "text", "text": text}),
            bytes(32),
            bytes(12),
            self.sessions,
            self.laptop.signing_seed,
            lambda n: bytes(n),
        )
        self.sessions.update(states)
        return envelope.to_wire()

    async def send(self, envelope: dict[str, Any], user: RegisteredUser | None = None) -> httpx.Response:
        return await self.http.post(
            "/api/v1/v2/messages", headers=(user or self.alice).headers, json={"envelope": envelope}
        )

    async def headers_of(self, device: DeviceKeys) -> dict[str, str]:
        """The account's session and the device's credential (15.16), got once."""
        if device.device_id not in self.credentials:
            self.credentials[device.device_id] = await device_headers(
                self.http, self.user_of(device).headers, device
            )
        return self.credentials[device.device_id]

    async def ack(self, device: DeviceKeys, seq: int) -> httpx.Response:
        return await self.http.post(
            f"/api/v1/devices/{device.device_id}/inbox/ack",
            headers=await self.headers_of(device),
            json={"seq": seq},
        )

    async def inbox(self, device: DeviceKeys, since: int = 0) -> dict[str, Any]:
        response = await self.http.get(
            f"/api/v1/devices/{device.device_id}/inbox",
            params={"since": since},
            headers=await self.headers_of(device),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def open(self, device: DeviceKeys, wire: dict[str, Any]) -> str:
        """What the receiving device does (15.8, first message with a setup)."""
        envelope = EnvelopeV2.from_wire(wire)
        verify_envelope(envelope, self.laptop.device)
        (slot,) = envelope.slots
        assert (slot.username, slot.device_id) == (device.username, device.device_id)
        accepted = accept_session(
            party(self.user_of(device), device),
            device.dh_private,
            party(self.alice, self.laptop),
            slot.message,
            {1: device.signed_prekey_private(1)},
            {i: device.one_time_private(i) for i in (1, 2, 3)},
            envelope.binding,
            now_ms(),
        )
        text: str = decode_payload(open_body(envelope, open_key_slot(envelope, accepted.plaintext)))["text"]
        return text


@pytest.fixture
async def world(http: httpx.AsyncClient, register_user: RegisterUser) -> World:
    made = World(http, await register_user("alice"), await register_user("bob"))
    await made.setup()
    await made.session_with(made.phone)
    await made.session_with(made.bob_phone)
    return made


async def test_each_target_device_reads_its_own_slot_and_opens_the_one_body(world: World) -> None:
    envelope = world.seal("hello from the laptop")
    sent = await world.send(envelope)
    assert sent.status_code == 201, sent.text
    assert sent.json()["devices"] == 2
    for device in (world.bob_phone, world.phone):
        inbox = await world.inbox(device)
        assert inbox["head"] == 1
        (entry,) = inbox["entries"]
        assert (entry["type"], entry["seq"]) == ("message_v2", 1)
        # Only this device's slot travels to it; the rest is the envelope as sent.
        assert [slot["device_id"] for slot in entry["envelope"]["slots"]] == [device.device_id]
        assert {k: v for k, v in entry["envelope"].items() if k != "slots"} == {
            k: v for k, v in envelope.items() if k != "slots"
        }
        assert world.open(device, entry["envelope"]) == "hello from the laptop"
    # The sender's own device has no entry.
    assert (await world.inbox(world.laptop))["entries"] == []


async def test_positions_are_per_device_and_survive_acknowledgement(world: World) -> None:
    for words in ("one", "two"):
        assert (await world.send(world.seal(words))).status_code == 201
    ack = await world.ack(world.bob_phone, 2)
    assert ack.json() == {"acknowledged": 2}
    assert (await world.inbox(world.bob_phone))["entries"] == []
    assert [e["seq"] for e in (await world.inbox(world.phone))["entries"]] == [
        1,
        2,
    ]  # alice's phone untouched
    assert (await world.send(world.seal("three"))).status_code == 201
    after = await world.inbox(world.bob_phone)
    assert ([e["seq"] for e in after["entries"]], after["head"]) == ([3], 3)
    assert [e["seq"] for e in (await world.inbox(world.phone, since=2))["entries"]] == [3]
    # Another account cannot read or acknowledge bob's device, even with a credential of
    # its own device.
    error(
        await world.http.get(
            f"/api/v1/devices/{world.bob_phone.device_id}/inbox", headers=await world.headers_of(world.phone)
        ),
        401,
        "device_auth_required",
    )


async def test_a_retry_is_answered_once_and_another_envelope_under_its_id_refused(world: World) -> None:
    envelope = world.seal("once", message_id=str(uuid.uuid4()))
    first = await world.send(envelope)
    again = await world.send(envelope)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert (await world.inbox(world.bob_phone))["head"] == 1
    other = world.seal("other", message_id=envelope["message_id"])
    error(await world.send(other), 409, "message_id_reused")


async def test_a_retry_is_answered_after_a_device_list_changed_and_past_the_rate(
    world: World, app: FastAPI
) -> None:
    """The first answer was lost and bob added a device meanwhile: the very same envelope,
    sent again, is answered as the first time (not refused as stale, which would make the
    client seal again under the same id and be told the id is taken), and costs no rate."""
    envelope = world.seal("answer lost", message_id=str(uuid.uuid4()))
    first = await world.send(envelope)
    assert first.status_code == 201
    tablet = make_device(world.bob.identity, "tablet")
    assert (
        await publish(world.http, world.bob, device_list(world.bob.identity, [world.bob_phone, tablet], 2))
    ).status_code == 200
    app.state.context.settings.messages_per_minute = 1
    again = await world.send(envelope)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert (await world.inbox(world.bob_phone))["head"] == 1


async def test_envelopes_for_stale_lists_are_refused(world: World) -> None:
    # bob adds a tablet: an envelope for his version 1 leaves it out, so it is refused.
    tablet = make_device(world.bob.identity, "tablet")
    assert (
        await publish(world.http, world.bob, device_list(world.bob.identity, [world.bob_phone, tablet], 2))
    ).status_code == 200
    stale = error(await world.send(world.seal("stale")), 409, "device_list_stale")
    assert stale["versions"] == {"alice": 1, "bob": 2}
    # Naming version 2 but not the tablet is refused too.
    error(
        await world.send(world.seal("x", [("alice", 1, [world.phone]), ("bob", 2, [world.bob_phone])])),
        409,
        "device_list_stale",
    )
    assert (await world.inbox(world.bob_phone))["head"] == 0


async def test_every_target_device_needs_its_slot(world: World) -> None:
    envelope = world.seal("two slots")
    # The signature covers the header and the body, not the slots: dropping one keeps it valid.
    one_slot = envelope | {"slots": envelope["slots"][:1]}
    assert error(await world.send(one_slot), 400, "invalid_envelope")["reason"] == "missing_slot"
    assert (await world.inbox(world.bob_phone))["head"] == 0


async def test_the_conversation_is_the_direct_one_of_the_targets(world: World) -> None:
    envelope = world.seal(
        "elsewhere", conversation=direct_conversation_id(Username("alice"), Username("carol"))
    )
    assert error(await world.send(envelope), 400, "invalid_envelope")["reason"] == "wrong_conversation"


async def stored_messages(app: FastAPI) -> int:
    """v2 messages whose body (ciphertext) is still stored."""
    async with app.state.context.database.read() as conn:
        query = text("SELECT count(*) FROM v2_messages WHERE body_deleted_at IS NULL")
        return int((await conn.execute(query)).scalar_one())


async def stored_envelopes(app: FastAPI) -> list[dict[str, Any]]:
    async with app.state.context.database.read() as conn:
        rows = await conn.execute(text("SELECT envelope FROM v2_messages"))
        return [json.loads(row[0]) for row in rows]


async def test_a_revoked_device_loses_its_undelivered_entries(world: World, app: FastAPI) -> None:
    assert (await world.send(world.seal("for the phone"))).status_code == 201
    before = await world.headers_of(world.bob_phone)
    tablet = make_device(world.bob.identity, "tablet")
    assert (
        await publish(world.http, world.bob, device_list(world.bob.identity, [tablet], 2))
    ).status_code == 200
    # Refused at once, though its credential has not expired.
    error(
        await world.http.get(f"/api/v1/devices/{world.bob_phone.device_id}/inbox", headers=before),
        404,
        "device_not_listed",
    )
    # Listed again, it finds nothing from before its revocation, and its position goes on.
    again = device_list(world.bob.identity, [world.bob_phone, tablet], 3)
    assert (await publish(world.http, world.bob, again)).status_code == 200
    del world.credentials[world.bob_phone.device_id]
    assert await world.inbox(world.bob_phone) == {"entries": [], "head": 1, "more": False}
    # The body is kept while alice's phone still waits for it, and deleted after; the
    # header stays (the admin log's metadata), without ciphertext or signature.
    assert await stored_messages(app) == 1
    assert (await world.ack(world.phone, 1)).json() == {"acknowledged": 1}
    assert await stored_messages(app) == 0
    (header,) = await stored_envelopes(app)
    assert set(header) == {
        "v",
        "message_id",
        "conversation_id",
        "sender",
        "sender_device",
        "sent_at",
        "targets",
    }


async def test_the_server_checks_sender_device_and_signature(
    world: World, register_user: RegisterUser
) -> None:
    mallory = await register_user("mallory")
    envelope = world.seal("mine")
    error(await world.send(envelope, mallory), 403, "forbidden")
    tampered = envelope | {"sent_at": envelope["sent_at"] + 1}
    assert error(await world.send(tampered), 400, "invalid_envelope")["reason"] == "bad_signature"
    # The laptop revoked: its envelopes are refused.
    assert (
        await publish(world.http, world.alice, device_list(world.alice.identity, [world.phone], 2))
    ).status_code == 200
    error(await world.send(world.seal("after revocation")), 404, "device_not_listed")
    assert error(await world.send({"v": 3}), 400, "invalid_envelope")["reason"] == "malformed"
    assert json.dumps(envelope)  # the sealed wire form is plain JSON


async def test_a_lone_surrogate_in_an_envelope_is_a_400_not_a_server_error(world: World) -> None:
    # JSON allows "\ud800"; it cannot be encoded as UTF-8, which the size check needs.
    body = json.dumps({"envelope": world.seal("x")})[:-2] + ',"extra":"\\ud800"}}'
    response = await world.http.post(
        "/api/v1/v2/messages",
        headers={**world.alice.headers, "content-type": "application/json"},
        content=body,
    )
    assert error(response, 400, "invalid_envelope")["reason"] == "malformed"
