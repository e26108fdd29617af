"""Protocol v2 direct messages through per-device inboxes (PROTOCOL.md 15.8, 15.16).

The server stores a v2 envelope's body once and gives every target device an entry of
its own, numbered in that device's inbox, carrying only its slot: a device never sees
the other devices' ratchet messages, and acknowledges (and so deletes) its entries
without touching anyone else's.

It checks, before storing: the envelope parses (15.8); its sender is the caller and the
sender device is in the caller's current list, whose signing key verifies the envelope
(defence in depth: receivers check it against their accepted lists); the conversation
is the direct one between the two target accounts; every target names its account's
current list version and exactly its current devices (the sender's own device
excepted), so a revoked device gets nothing and a new one is not silently left out
(409 ``device_list_stale``: fetch the lists and seal again); and there is a slot for
every target device. The same message id again is answered as the first time if the
envelope is the same, else 409 ``message_id_reused``.

Devices read their inbox over HTTP (``GET /devices/{id}/inbox``) and acknowledge what
they processed, each call with the device's own credential (services/device_auth.py):
the account's session alone reads and deletes nothing. After an envelope is stored, every socket of each target account gets a
``device_inbox`` frame per new entry (device id and position only, never the envelope)
through the broker, so a client on any instance knows to read that inbox now. The frame
is a hint: a lost one costs latency (the next read finds the entry), never a message.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.exc import IntegrityError

from ...protocol.errors import ProtocolError, UnsupportedVersion, VerificationFailed
from ...protocol.identifiers import direct_conversation_id
from ...protocol.v2.devices import Device
from ...protocol.v2.envelope import EnvelopeV2, HeaderV2, verify_envelope
from ..errors import (
    DeviceListStale,
    DeviceNotListed,
    Forbidden,
    InvalidEnvelope,
    MessageIdReused,
    NotFound,
    TooLarge,
)
from ..realtime.broker import InboxEvent
from ..storage import device_inbox as store
from ..storage import devices as device_store
from . import device_auth, ratelimit
from .context import ServiceContext, now_ms
from .principal import Principal

# The v1 send budget: a v2 message is one send, whatever its number of devices.
SEND_ACTION = "send"


def _parse(raw: Any) -> EnvelopeV2:
    try:
        return EnvelopeV2.from_wire(raw)
    except UnsupportedVersion as exc:
        raise InvalidEnvelope("unsupported envelope version", reason="unsupported_version") from exc
    except ProtocolError as exc:
        raise InvalidEnvelope("the envelope does not parse", reason="malformed") from exc


def _answer(message_id: str, conversation_id: str, server_ts: int, devices: int) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "conversation_id": conversation_id,
        "server_ts": server_ts,
        "devices": devices,
    }


def device_inbox_frame(device_id: str, seq: int) -> str:
    """The live notice of a new entry: references only (PROTOCOL.md 15.16)."""
    return json.dumps({"type": "device_inbox", "device_id": device_id, "seq": seq}, separators=(",", ":"))


async def send(ctx: ServiceContext, principal: Principal, raw: Any) -> dict[str, Any]:
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:
        # JSON lets a lone surrogate ("\ud800") through; no valid envelope holds one.
        raise InvalidEnvelope("the envelope does not parse", reason="malformed") from exc
    if size > ctx.settings.max_envelope_bytes:
        raise TooLarge("the envelope is too large")
    envelope = _parse(raw)
    header = envelope.header
    if header.sender != principal.username:
        raise Forbidden("an envelope must be sent by its sender", reason="sender_mismatch")
    digest = hashlib.sha256(text.encode()).digest()
    # A retry of an envelope already stored (its answer was lost) is answered as the first
    # time, before anything that may have changed since (rate, device lists) can refuse it:
    # refused, the client would seal again under the same id and be told the id is taken.
    async with ctx.database.read() as conn:
        stored_before = await store.get_message(conn, header.message_id)
    if stored_before is not None:
        return _retry_answer(stored_before, principal, digest, header, len(envelope.slots))
    await ratelimit.hit(
        ctx, SEND_ACTION, f"user:{principal.user_id}", ctx.settings.messages_per_minute, who="account"
    )
    names = [target.username for target in header.targets]
    peers = [name for name in names if name != principal.username]
    # A device addressing only devices of its own account, in the account's conversation
    # with itself: a history hand-over to one new device (PROTOCOL.md 15.10.2).
    to_self = names == [principal.username]
    if not to_self and (len(names) != 2 or len(peers) != 1):
        raise InvalidEnvelope("a v2 direct message names its sender and one peer", reason="wrong_members")
    peer = principal.username if to_self else peers[0]
    if header.conversation_id != direct_conversation_id(principal.username, peer):
        raise InvalidEnvelope("not the direct conversation of its targets", reason="wrong_conversation")

    async with ctx.database.read() as conn:
        user_ids: dict[str, int] = {}
        current: dict[str, tuple[int, list[str]]] = {}
        for name in names:
            user_id = await device_store.get_user_id(conn, name)
            if user_id is None:
                raise NotFound("no such user")
            listed = await device_store.get_list(conn, user_id)
            if listed is None:
                raise DeviceListStale("a target account has no device list", versions={})
            user_ids[name] = user_id
            current[name] = (int(listed["version"]), await store.get_device_ids(conn, user_id))
        sender_row = await device_store.get_device(conn, principal.user_id, header.sender_device)
    if sender_row is None:
        raise DeviceNotListed("the sender device is not in the account's current device list")
    sender_device = Device(header.sender_device, bytes(sender_row["signing_key"]), b"", 0, b"")
    try:
        verify_envelope(envelope, sender_device)
    except VerificationFailed as exc:
        raise InvalidEnvelope(
            "the sender device's signature does not verify", reason="bad_signature"
        ) from exc

    versions = {name: version for name, (version, _) in current.items()}
    for target in header.targets:
        version, device_ids = current[target.username]
        expected = [d for d in device_ids if (target.username, d) != (header.sender, header.sender_device)]
        # To itself, the account names only the devices it means; else all of them.
        fits = set(target.devices) <= set(expected) if to_self else list(target.devices) == expected
        if target.device_list_version != version or not fits:
            raise DeviceListStale(
                "the envelope's targets are not the current device lists; fetch them and seal again",
                versions=versions,
            )
    slotted = {(slot.username, slot.device_id) for slot in envelope.slots}
    if slotted != set(header.target_devices()):
        raise InvalidEnvelope("every target device needs its slot", reason="missing_slot")

    raw_slots = raw["slots"]
    slots = {
        (user_ids[slot.username], slot.device_id): json.dumps(
            raw_slot, separators=(",", ":"), ensure_ascii=False
        )
        for slot, raw_slot in zip(envelope.slots, raw_slots, strict=True)
    }
    stored = json.dumps(
        {k: v for k, v in raw.items() if k != "slots"}, separators=(",", ":"), ensure_ascii=False
    )
    now = now_ms()
    try:
        async with ctx.database.write() as conn:
            existing = await store.get_message(conn, header.message_id)
            if existing is None:
                # The checks above read the lists outside this transaction; a list
                # published since would make them wrong (a device added and left out, one
                # revoked and still given an entry). So the lists are read again here,
                # locked against publication until this commits (PostgreSQL: FOR SHARE,
                # which PUT /devices waits for; SQLite has one writer), and must still be
                # the versions checked: the devices follow the list in the transaction
                # that stores it, so the same version means the same devices.
                locked = await store.lock_list_versions(conn, sorted(user_ids.values()))
                now_versions = {name: locked.get(user_ids[name]) for name in names}
                if now_versions != versions:
                    raise DeviceListStale(
                        "a device list changed meanwhile; fetch it and seal again",
                        versions={name: v for name, v in now_versions.items() if v is not None},
                    )
                if not to_self:
                    await store.ensure_direct_conversation(
                        conn, header.conversation_id, sorted(user_ids.values()), now
                    )
                pk = await store.add_message(
                    conn,
                    header.message_id,
                    header.conversation_id,
                    principal.user_id,
                    digest,
                    stored,
                    slots,
                    now,
                    size,
                )
                if pk is None:
                    # A target device was revoked between the check and the write.
                    raise DeviceListStale(
                        "a device list changed meanwhile; fetch it and seal again", versions={}
                    )
                positions = await store.get_positions(conn, pk)
        if existing is None:
            # Published after the commit, so a client that reads on the frame finds the entry.
            await ctx.broker.publish(
                [
                    InboxEvent(user_id, 0, device_inbox_frame(device_id, seq), ephemeral=True)
                    for user_id, device_id, seq in positions
                ]
            )
            return _answer(header.message_id, header.conversation_id, now, len(slots))
    except IntegrityError:
        # The same message id stored by another request at this moment: answered below.
        async with ctx.database.read() as conn:
            existing = await store.get_message(conn, header.message_id)
        if existing is None:
            raise
    return _retry_answer(existing, principal, digest, header, len(slots))


def _retry_answer(
    existing: Any, principal: Principal, digest: bytes, header: HeaderV2, devices: int
) -> dict[str, Any]:
    """The answer to an envelope whose message id is stored: the first answer again if it
    is the same envelope from the same account, else ``message_id_reused``."""
    if int(existing["sender_id"]) != principal.user_id or bytes(existing["envelope_sha256"]) != digest:
        raise MessageIdReused("this message id was used for another envelope")
    return _answer(header.message_id, header.conversation_id, int(existing["server_ts"]), devices)


async def read_inbox(
    ctx: ServiceContext,
    principal: Principal,
    device_id: str,
    device_token: str | None,
    since: int,
    limit: int,
) -> dict[str, Any]:
    """The device's entries after ``since``: each the stored envelope with only its slot;
    at most ``limit`` of them and ``device_inbox_page_bytes`` of stored text (at least
    one entry), ``more`` if further entries wait. Only for the device itself (its
    credential), while it is listed."""
    async with ctx.database.read() as conn:
        await device_auth.require(ctx, conn, principal, device_id, device_token)
        rows, head = await store.get_entries(
            conn, principal.user_id, device_id, since, limit, ctx.settings.device_inbox_page_bytes
        )
    entries = [
        {
            "type": "message_v2",
            "seq": int(row["seq"]),
            "server_ts": int(row["server_ts"]),
            "envelope": json.loads(row["envelope"]) | {"slots": [json.loads(row["slot"])]},
        }
        for row in rows
    ]
    # Positions after the last one returned are all still stored (an acknowledgement
    # deletes a prefix), so there are more exactly when it is below the head.
    more = bool(entries) and entries[-1]["seq"] < head
    return {"entries": entries, "head": head, "more": more}


async def acknowledge(
    ctx: ServiceContext, principal: Principal, device_id: str, device_token: str | None, seq: int
) -> dict[str, Any]:
    """Delete the device's entries up to ``seq`` (it has processed them). Only the
    device itself may: another's acknowledgement would make its entries disappear."""
    async with ctx.database.write() as conn:
        await device_auth.require(ctx, conn, principal, device_id, device_token)
        removed = await store.acknowledge(conn, principal.user_id, device_id, seq, now_ms())
    return {"acknowledged": removed}
