"""Identity-key transitions: an account replacing its identity key (PROTOCOL.md 15.11).

A transition is signed by both keys over the same bytes: the old key's signature says the
account (as contacts pinned it) hands over to the new key, the new key's proves that
whoever publishes it holds the new private key (so nobody can hand an account over to a
key they do not hold, nor claim someone else's key). The chain rules (which transitions
follow the pin, in which order) are the client core's: ``client.core.v2.transitions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..encoding import b64encode, canonical, u64
from ..errors import MalformedInput
from ..identifiers import Username, parse_username
from .labels import IDENTITY_TRANSITION
from .primitives import (
    KEY_BYTES,
    SIGNATURE_BYTES,
    check_ed25519_raw,
    ed25519_raw_public,
    ed25519_sign_raw,
    ed25519_verify_raw,
)
from .wire import exact_bytes, integer, members, version_two

MAX_TRANSITIONS = 16
"""At most this many transitions are served, or accepted, in one chain (15.11)."""

_FIELDS = ("v", "username", "old_key", "new_key", "at", "old_signature", "new_signature")


def transition_bytes(username: str, old_key: bytes, new_key: bytes, at: int) -> bytes:
    return canonical(IDENTITY_TRANSITION, [username, old_key, new_key, u64(at)])


@dataclass(frozen=True)
class IdentityTransition:
    username: Username
    old_key: bytes  # Ed25519, raw 32 bytes
    new_key: bytes  # Ed25519, raw 32 bytes
    at: int
    old_signature: bytes
    new_signature: bytes

    @property
    def signed_bytes(self) -> bytes:
        return transition_bytes(self.username, self.old_key, self.new_key, self.at)

    def to_wire(self) -> dict[str, object]:
        return {
            "v": 2,
            "username": self.username,
            "old_key": b64encode(self.old_key),
            "new_key": b64encode(self.new_key),
            "at": self.at,
            "old_signature": b64encode(self.old_signature),
            "new_signature": b64encode(self.new_signature),
        }


def make_transition(old_seed: bytes, new_seed: bytes, username: Username, at: int) -> IdentityTransition:
    """The owning side: both keys sign the hand-over from the old key to the new one."""
    old_key, new_key = ed25519_raw_public(old_seed), ed25519_raw_public(new_seed)
    signed = transition_bytes(username, old_key, new_key, at)
    return IdentityTransition(
        username, old_key, new_key, at, ed25519_sign_raw(old_seed, signed), ed25519_sign_raw(new_seed, signed)
    )


def parse_transition(data: object) -> IdentityTransition:
    """15.11 step 1: exactly the members, strict base64 of the sizes, keys that pass 15.1
    and differ, ``0 <= at < 2^53``. Checks no signature."""
    obj = members(data, _FIELDS)
    version_two(obj["v"])
    name = obj["username"]
    if not isinstance(name, str) or parse_username(name) != name:
        raise MalformedInput("username must be normalised")
    old_key = exact_bytes(obj["old_key"], KEY_BYTES)
    new_key = exact_bytes(obj["new_key"], KEY_BYTES)
    check_ed25519_raw(old_key)
    check_ed25519_raw(new_key)
    if old_key == new_key:
        raise MalformedInput("a transition changes the key")
    at = integer(obj["at"])
    old_signature = exact_bytes(obj["old_signature"], SIGNATURE_BYTES)
    new_signature = exact_bytes(obj["new_signature"], SIGNATURE_BYTES)
    return IdentityTransition(parse_username(name), old_key, new_key, at, old_signature, new_signature)


def parse_transition_chain(data: object) -> tuple[IdentityTransition, ...]:
    """A list of 0 to :data:`MAX_TRANSITIONS` transitions, each parsed as above."""
    if not isinstance(data, list) or len(data) > MAX_TRANSITIONS:
        raise MalformedInput("a chain is a list of at most 16 transitions")
    return tuple(parse_transition(item) for item in data)


def verify_transition(transition: IdentityTransition) -> None:
    """Both signatures over the transition's bytes: the old key's first, then the new
    key's. Raises VerificationFailed for the first that does not verify."""
    signed = transition.signed_bytes
    ed25519_verify_raw(transition.old_key, transition.old_signature, signed)
    ed25519_verify_raw(transition.new_key, transition.new_signature, signed)
