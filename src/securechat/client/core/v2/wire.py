"""The JSON forms of the v2 core's inputs and decisions (PROTOCOL.md 10, decision vectors).

Byte strings are strict base64 (2.4): session states as their 15.7.6 bytes, session ids,
private keys. These are the forms ``tests/data/decisions_v2_vectors.json`` uses, so a
second implementation reads the same inputs and writes the same decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....protocol.encoding import b64decode, b64encode
from ....protocol.errors import MalformedInput
from ....protocol.identifiers import parse_username
from ....protocol.v2.devices import Device, DeviceList, parse_device_list
from ....protocol.v2.ratchet import SessionState
from ....protocol.v2.wire import integer, members
from ..messages import Duplicate, SeenRecord
from ..reasons import Refused
from .bundles import BundleDecision
from .device_lists import ListAccepted, ListDecision
from .receive import AcceptedV2, MeV2, ReceiveDecision
from .sessions import SessionSet


def _bytes(value: object) -> bytes:
    if not isinstance(value, str):
        raise MalformedInput("expected base64")
    return b64decode(value)


def session_set_to_wire(sessions: SessionSet) -> dict[str, Any]:
    return {
        "active": None if sessions.active is None else b64encode(sessions.active.to_bytes()),
        "previous": [b64encode(state.to_bytes()) for state in sessions.previous],
        "evicted": [b64encode(ident) for ident in sessions.evicted],
        "last_sent_at": sessions.last_sent_at,
    }


def session_set_from_wire(data: object) -> SessionSet:
    obj = members(data, ("active", "previous", "evicted", "last_sent_at"))
    previous, evicted, last = obj["previous"], obj["evicted"], obj["last_sent_at"]
    if not isinstance(previous, list) or not isinstance(evicted, list):
        raise MalformedInput("session set")
    return SessionSet(
        active=None if obj["active"] is None else SessionState.from_bytes(_bytes(obj["active"])),
        previous=tuple(SessionState.from_bytes(_bytes(state)) for state in previous),
        evicted=tuple(_bytes(ident) for ident in evicted),
        last_sent_at=None if last is None else integer(last),
    )


def sessions_from_wire(data: object) -> dict[tuple[str, str], SessionSet]:
    """``[{"username", "device_id", "sessions": <set>}, …]`` keyed by (username, device id)."""
    if not isinstance(data, list):
        raise MalformedInput("sessions")
    out: dict[tuple[str, str], SessionSet] = {}
    for raw in data:
        entry = members(raw, ("username", "device_id", "sessions"))
        out[(str(entry["username"]), str(entry["device_id"]))] = session_set_from_wire(entry["sessions"])
    return out


def _prekeys(data: object) -> dict[int, bytes]:
    if not isinstance(data, Mapping):
        raise MalformedInput("prekeys")
    return {int(key): _bytes(value) for key, value in data.items()}


def me_from_wire(data: object) -> MeV2:
    """``{"username", "account_key", "device": <15.3 device entry>, "dh_private",
    "signed_prekeys": {id: private}, "one_time_prekeys": {id: private}}``."""
    obj = members(
        data, ("username", "account_key", "device", "dh_private", "signed_prekeys", "one_time_prekeys")
    )
    device = members(obj["device"], ("device_id", "signing_key", "dh_key", "created_at", "certificate"))
    return MeV2(
        username=parse_username(obj["username"]),
        account_key=_bytes(obj["account_key"]),
        device=Device(
            str(device["device_id"]),
            _bytes(device["signing_key"]),
            _bytes(device["dh_key"]),
            integer(device["created_at"]),
            _bytes(device["certificate"]),
        ),
        dh_private=_bytes(obj["dh_private"]),
        signed_prekeys=_prekeys(obj["signed_prekeys"]),
        one_time_prekeys=_prekeys(obj["one_time_prekeys"]),
    )


def device_lists_from_wire(data: object) -> dict[str, DeviceList]:
    """Username -> accepted list, from the lists' own wire form (15.3)."""
    if not isinstance(data, Mapping):
        raise MalformedInput("device lists")
    return {str(name): parse_device_list(document) for name, document in data.items()}


def seen_from_wire(data: object) -> dict[str, SeenRecord]:
    if not isinstance(data, Mapping):
        raise MalformedInput("seen")
    out: dict[str, SeenRecord] = {}
    for key, value in data.items():
        record = members(value, ("signature", "seq"))
        signature, seq = record["signature"], record["seq"]
        if not isinstance(signature, str):
            raise MalformedInput("seen signature")
        out[str(key)] = SeenRecord(signature, None if seq is None else integer(seq))
    return out


def receive_decision_to_wire(decision: ReceiveDecision) -> dict[str, Any]:
    if isinstance(decision, Duplicate):
        return decision.to_wire()
    if isinstance(decision, AcceptedV2):
        return {
            "outcome": decision.outcome,
            "message_id": decision.message_id,
            "conversation_id": decision.conversation_id,
            "peer": decision.peer,
            "sender": decision.sender,
            "sender_device": decision.sender_device,
            "sent_at": decision.sent_at,
            "payload": decision.payload,
            "seen": decision.seen.to_wire(),
            "sessions": session_set_to_wire(decision.sessions),
            "one_time_prekey_used": decision.one_time_prekey_used,
            "notices": list(decision.notices),
        }
    return {"outcome": decision.outcome, "reason": decision.reason, "repair_needed": decision.repair_needed}


def list_decision_to_wire(decision: ListDecision) -> dict[str, Any]:
    if isinstance(decision, ListAccepted):
        return {
            "outcome": decision.outcome,
            "version": decision.device_list.version,
            "list_hash": b64encode(decision.device_list.list_hash),
            "added": list(decision.added),
            "removed": list(decision.removed),
            "drop_sessions": list(decision.drop_sessions),
        }
    if isinstance(decision, Refused):
        return decision.to_wire()
    return {"outcome": decision.outcome}


def bundle_decision_to_wire(decision: BundleDecision) -> dict[str, Any]:
    if isinstance(decision, Refused):
        return decision.to_wire()
    return {
        "outcome": decision.outcome,
        "device_id": decision.device.device_id,
        "signed_prekey_id": decision.signed_prekey.prekey_id,
        "one_time_prekey_id": None
        if decision.one_time_prekey is None
        else decision.one_time_prekey.prekey_id,
    }
