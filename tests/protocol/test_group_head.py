"""ChainHead and check_next: checking one change against a verified head gives what
replaying the whole chain gives, and refuses what the replay refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from securechat.protocol.errors import VerificationFailed
from securechat.protocol.groups import (
    ChainHead,
    GroupChange,
    check_next,
    genesis,
    make_invite,
    sign_change,
    verify_chain,
)
from securechat.protocol.identifiers import Username
from securechat.protocol.keys import PrivateIdentity, PublicIdentity

T0 = 1_767_225_600_000


def lookup_for(*people: PrivateIdentity) -> Callable[[Username], PublicIdentity | None]:
    keys = {p.username: p.public for p in people}
    return keys.get


def test_one_change_at_a_time_gives_the_replayed_head(
    alice: PrivateIdentity, bob: PrivateIdentity, carol: PrivateIdentity
) -> None:
    lookup = lookup_for(alice, bob, carol)
    first = sign_change(alice, None, "create", ["bob"], at=T0)
    state = genesis(first, lookup)
    invite = make_invite(alice, state.group_id, expires_at=T0 + 100, max_uses=2)
    chain: list[GroupChange] = [first]
    head = ChainHead.of(state)
    uses = 0
    steps = [
        (alice, "promote", ["bob"], None),
        (carol, "join", [], invite),
        (bob, "remove", ["carol"]),
        (carol, "join", [], invite),
        (carol, "leave", []),
    ]
    for at, (actor, action, targets, *rest) in enumerate(steps, start=T0 + 1):
        change = sign_change(actor, state, action, targets, invite=rest[0] if rest else None, at=at)
        head = check_next(head, change, lookup, invite_uses=uses if change.invite else 0)
        uses += 1 if change.invite else 0
        state = state.apply(change, lookup)
        chain.append(change)
        assert head == ChainHead.of(verify_chain(chain, lookup))
    assert (head.seq, head.members, head.admins) == (5, {"alice", "bob"}, {"alice", "bob"})

    # The invite had two uses: a third join, told so, is refused.
    third = sign_change(carol, state, "join", [], invite=invite, at=T0 + 10)
    with pytest.raises(VerificationFailed):
        check_next(head, third, lookup, invite_uses=2)
    assert check_next(head, third, lookup, invite_uses=1).members == {"alice", "bob", "carol"}


def test_a_change_that_does_not_extend_the_head_or_breaks_a_rule_is_refused(
    alice: PrivateIdentity, bob: PrivateIdentity
) -> None:
    lookup = lookup_for(alice, bob)
    state = genesis(sign_change(alice, None, "create", ["bob"], at=T0), lookup)
    head = ChainHead.of(state)
    good = sign_change(alice, state, "add", ["carol"], at=T0 + 1)
    moved = check_next(head, good, lookup)
    with pytest.raises(VerificationFailed):  # the same position again
        check_next(moved, good, lookup)
    with pytest.raises(VerificationFailed):  # bob is no admin
        check_next(head, sign_change(bob, state, "add", ["carol"], at=T0 + 1), lookup)
    with pytest.raises(VerificationFailed):  # unknown signer
        check_next(head, good, lookup_for(bob))
