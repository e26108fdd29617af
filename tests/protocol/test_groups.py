"""Group chain rules beyond the shared vectors: size limits, the recipient rule's
bounds, membership stretches, and re-verification after a key change."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from securechat.protocol.errors import VerificationFailed
from securechat.protocol.groups import (
    MAX_GROUP_MEMBERS,
    GroupChange,
    GroupState,
    extend,
    genesis,
    sign_change,
    verify_chain,
)
from securechat.protocol.identifiers import Username
from securechat.protocol.keys import PrivateIdentity, PublicIdentity

T0 = 1_767_225_600_000


def lookup_for(*people: PrivateIdentity) -> Callable[[Username], PublicIdentity | None]:
    keys = {p.username: p.public for p in people}
    return keys.get


def names(count: int, prefix: str = "m") -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(count)]


def test_at_most_256_members(alice: PrivateIdentity) -> None:
    lookup = lookup_for(alice)
    full = sign_change(alice, None, "create", names(MAX_GROUP_MEMBERS - 1), at=T0)
    state = genesis(full, lookup)
    assert len(state.members) == MAX_GROUP_MEMBERS
    with pytest.raises(VerificationFailed):
        state.apply(sign_change(alice, state, "add", ["one-more"], at=T0), lookup)
    with pytest.raises(VerificationFailed):
        genesis(sign_change(alice, None, "create", names(MAX_GROUP_MEMBERS), at=T0), lookup)


def test_recipient_rule_bounds(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    lookup = lookup_for(alice, bob)
    state = genesis(sign_change(alice, None, "create", ["bob"], at=T0), lookup)
    state = state.apply(sign_change(alice, state, "add", ["carol"], at=T0 + 1), lookup)
    pair = frozenset({Username("alice"), Username("bob")})
    assert state.accepts_recipients(pair, Username("bob"), since=0)
    assert not state.accepts_recipients(pair, Username("bob"), since=1)
    assert not state.accepts_recipients(pair, Username("bob"), since=5)
    for bad in (-1, True, None):
        with pytest.raises(ValueError):
            state.accepts_recipients(pair, Username("bob"), since=bad)  # type: ignore[arg-type]


def test_joined_at_follows_the_latest_stretch(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    lookup = lookup_for(alice, bob)
    state: GroupState = genesis(sign_change(alice, None, "create", ["bob"], at=T0), lookup)
    assert state.joined_at(Username("bob")) == 0
    changes = [
        sign_change(alice, state, "remove", ["bob"], at=T0 + 1),
    ]
    state = extend(state, changes, lookup)
    assert state.joined_at(Username("bob")) is None
    state = state.apply(sign_change(alice, state, "add", ["bob"], at=T0 + 2), lookup)
    assert state.joined_at(Username("bob")) == 2
    assert state.members_at(1) == frozenset({"alice"})


def test_a_verified_prefix_survives_a_key_change(
    alice: PrivateIdentity, bob: PrivateIdentity, make_identity: Callable[[str], PrivateIdentity]
) -> None:
    first = sign_change(alice, None, "create", ["bob"], at=T0)
    state = genesis(first, lookup_for(alice, bob))
    second = sign_change(alice, state, "add", ["carol"], at=T0 + 1)
    chain: list[GroupChange] = [first, second]
    # Alice reinstalls: new keys. Her old signatures no longer verify with them...
    new_alice = make_identity("alice")
    after = lookup_for(new_alice, bob)
    with pytest.raises(VerificationFailed):
        verify_chain(chain, after)
    # ...but a client that verified them before keeps them, and checks only what is new.
    state = verify_chain(chain, after, verified_prefix=2)
    third = sign_change(new_alice, state, "remove", ["carol"], at=T0 + 2)
    state = verify_chain([*chain, third], after, verified_prefix=2)
    assert state.members == frozenset({"alice", "bob"})
    # The rules and hashes of the trusted prefix are still checked.
    forged = sign_change(bob, state, "add", ["mallory"], at=T0 + 3)
    with pytest.raises(VerificationFailed):
        verify_chain([*chain, third, forged], after, verified_prefix=4)
