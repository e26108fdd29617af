"""Does this chain of transitions hand a contact's pinned identity key over to the key the
server now serves (PROTOCOL.md 15.11)? Pure: the pin, the served key and the fetched
chain in, a decision out.

A signed hand-over is accepted with a notice and re-pins, always without the *verified*
mark (the user compared the old key, not this one). A changed key without a valid chain
is v1's key change (8.3: ``key_changed``): the caller keeps the old pin and blocks
sending until the user accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from ....protocol import errors as protocol_errors
from ....protocol.encoding import b64decode, b64encode
from ....protocol.errors import MalformedInput
from ....protocol.identifiers import Username, parse_username
from ....protocol.v2.devices import DeviceList
from ....protocol.v2.transitions import parse_transition_chain, verify_transition
from ....protocol.v2.wire import exact_bytes, integer, members
from ..reasons import Refused

NOTICE = "identity_key_rotated"


@dataclass(frozen=True)
class IdentityPin:
    """What a client pins for a contact in v2: the account key, the ``at`` of the last
    transition it accepted (None: pinned on first use, or accepted by the user), and the
    user's *verified* mark, which belongs to this key only."""

    username: Username
    key: bytes
    since: int | None
    verified: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "key": b64encode(self.key),
            "since": self.since,
            "verified": self.verified,
        }


def pin_from_wire(data: object) -> IdentityPin:
    obj = members(data, ("username", "key", "since", "verified"))
    name, since, verified = obj["username"], obj["since"], obj["verified"]
    if not isinstance(name, str) or not isinstance(verified, bool):
        raise MalformedInput("pin")
    return IdentityPin(
        parse_username(name), exact_bytes(obj["key"], 32), None if since is None else integer(since), verified
    )


@dataclass(frozen=True)
class TransitionAccepted:
    """Re-pin to ``pin`` (not verified), show ``notice`` in the contact's conversations;
    ``previous_key`` is the key pinned before, ``steps`` the transitions followed."""

    pin: IdentityPin
    previous_key: bytes
    steps: int
    notice: Literal["identity_key_rotated"] = "identity_key_rotated"
    outcome: Literal["accepted"] = "accepted"


@dataclass(frozen=True)
class TransitionUnchanged:
    """The server serves the pinned key and no transition: nothing to do."""

    outcome: Literal["unchanged"] = "unchanged"


TransitionDecision = TransitionAccepted | TransitionUnchanged | Refused


def accept_identity_transition(
    pin: IdentityPin, current_key: bytes, transitions: object
) -> TransitionDecision:
    """15.11's checks, in order; the first failure is the refusal.

    ``current_key``: the account key the server serves for the contact now (its device
    list's ``account_key``); ``transitions``: the chain fetched from the pinned key, as
    parsed JSON (``GET /users/{u}/identity-transitions?since_key=<pin>``).
    """
    try:
        chain = parse_transition_chain(transitions)
    except protocol_errors.UnsupportedVersion:
        return Refused("unsupported_version")
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    if not chain:
        # No hand-over offered: either nothing changed or an unsigned change (8.3).
        return TransitionUnchanged() if current_key == pin.key else Refused("key_changed")
    seen = {pin.key}
    key, since = pin.key, pin.since
    for step in chain:
        if (
            step.username != pin.username
            or step.old_key != key
            or (since is not None and step.at <= since)
            or step.new_key in seen
        ):
            return Refused("transition_invalid")
        try:
            verify_transition(step)
        except protocol_errors.ProtocolError:
            return Refused("bad_signature")
        seen.add(step.new_key)
        key, since = step.new_key, step.at
    if key != current_key:
        return Refused("transition_invalid")
    return TransitionAccepted(
        pin=replace(pin, key=key, since=since, verified=False), previous_key=pin.key, steps=len(chain)
    )


def rotation_drop_sessions(before: DeviceList, after: DeviceList) -> tuple[str, ...]:
    """The devices whose session sets go when the first list under a new identity key
    replaces ``before``: those it leaves out and those whose keys or ``created_at``
    changed. A certificate re-issued by the new key is not a change (15.11): sessions
    with devices still listed continue."""
    old = {device.device_id: device for device in before.devices}
    new = {device.device_id: device for device in after.devices}
    dropped = {
        ident
        for ident, device in old.items()
        if ident not in new
        or (new[ident].signing_key, new[ident].dh_key, new[ident].created_at)
        != (device.signing_key, device.dh_key, device.created_at)
    }
    return tuple(sorted(dropped))


def transition_decision_to_wire(decision: TransitionDecision) -> dict[str, Any]:
    if isinstance(decision, TransitionAccepted):
        return {
            "outcome": "accepted",
            "pin": decision.pin.to_wire(),
            "previous_key": b64encode(decision.previous_key),
            "steps": decision.steps,
            "notice": decision.notice,
        }
    if isinstance(decision, TransitionUnchanged):
        return {"outcome": "unchanged"}
    return decision.to_wire()


def current_key_from_wire(value: object) -> bytes:
    if not isinstance(value, str):
        raise MalformedInput("current_key")
    return b64decode(value)
