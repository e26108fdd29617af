"""Session sets (PROTOCOL.md 15.9.1) through the whole v2 receive decision, with hypothesis.

Two devices, alice's laptop and bob's phone, each with one session set for the other.
Hypothesis chooses who sends when (so both often start sessions at once), which messages
the network loses, repeats, reorders or alters, and when a device starts a new session
as a repair. Then:

- a genuine message is accepted at most once, and it is accepted on its first delivery
  whenever the receiver can still have its session (else refused with a session reason);
- a refusal returns no state, and the core never changes the state it was given;
- after the network settles and each side has received from the other since the last
  setup, both use the same active session, and neither is still pending.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securechat.client.core.messages import Duplicate, SeenRecord
from securechat.client.core.v2 import (
    EMPTY,
    AcceptedV2,
    MeV2,
    RefusedV2,
    SessionSet,
    receive_direct_v2,
    start_session,
    with_active,
)
from securechat.client.core.v2.wire import session_set_to_wire
from securechat.protocol.encoding import b64decode, b64encode
from securechat.protocol.envelope import encode_payload
from securechat.protocol.identifiers import MessageId, Username, direct_conversation_id
from securechat.protocol.v2.devices import DeviceList, certify_device, sign_device_list
from securechat.protocol.v2.envelope import HeaderV2, Target, seal_envelope
from securechat.protocol.v2.prekeys import make_one_time_prekey, make_signed_prekey
from securechat.protocol.v2.primitives import ed25519_raw_public, x25519_public
from securechat.protocol.v2.setup import Party, initiate_session

T0 = 1_767_225_600_000
SESSION_REASONS = {"session_unknown", "ratchet_failed", "ratchet_duplicate"}


def fixed(*parts: str) -> bytes:
    return hashlib.sha256("/".join(("securechat/test/v2-sessions", *parts)).encode()).digest()


@dataclass
class Device:
    name: str
    username: Username
    account_seed: bytes
    signing_seed: bytes
    dh_private: bytes
    device_list: DeviceList
    one_time_ids: list[int]

    @property
    def device(self) -> Any:
        return self.device_list.devices[0]

    @property
    def key(self) -> tuple[str, str]:
        return (self.username, self.device.device_id)

    def spk(self) -> Any:
        return make_signed_prekey(
            self.signing_seed, self.username, self.device.device_id, 7, fixed(self.name, "spk"), T0
        )

    def opk(self, pid: int) -> Any:
        return make_one_time_prekey(
            self.signing_seed, self.username, self.device.device_id, pid, fixed(self.name, "opk", str(pid))
        )

    def me(self, held_one_time: set[int]) -> MeV2:
        return MeV2(
            self.username,
            ed25519_raw_public(self.account_seed),
            self.device,
            self.dh_private,
            {7: fixed(self.name, "spk")},
            {pid: fixed(self.name, "opk", str(pid)) for pid in held_one_time},
        )


def party(device: Device) -> Party:
    return Party(device.username, ed25519_raw_public(device.account_seed), device.device)


def make(name: str, user: str) -> Device:
    username = Username(user)
    account_seed, signing_seed, dh_private = fixed(name, "account"), fixed(name, "signing"), fixed(name, "dh")
    entry = certify_device(
        account_seed, username, ed25519_raw_public(signing_seed), x25519_public(dh_private), T0
    )
    device_list = sign_device_list(account_seed, username, 1, T0, [entry])
    return Device(
        name, username, account_seed, signing_seed, dh_private, device_list, list(range(1001, 1004))
    )


ALICE, BOB = make("laptop", "alice"), make("phone", "bob")
LISTS = {"alice": ALICE.device_list, "bob": BOB.device_list}


@dataclass
class Sent:
    label: str
    message_id: str
    entry: dict[str, Any]
    session_id: bytes
    has_setup: bool
    accepted_seq: int | None = None  # the inbox position it was accepted at


@dataclass
class Side:
    device: Device
    peer: Device
    sessions: SessionSet = EMPTY
    seen: dict[str, SeenRecord] = field(default_factory=dict)
    held_one_time: set[int] = field(default_factory=set)
    pool: list[int] = field(default_factory=list)  # the server's one-time prekeys of this device
    repair: bool = False
    inbox: int = 0
    draws: int = 0
    in_flight: list[Sent] = field(default_factory=list)  # to this side
    delivered: list[tuple[Sent, int]] = field(default_factory=list)

    def random(self, n: int) -> bytes:
        self.draws += 1
        return fixed(self.device.name, "random", str(self.draws))[:n]


class World:
    def __init__(self) -> None:
        self.sides = {
            "alice": Side(ALICE, BOB, held_one_time={1001, 1002, 1003}, pool=[1001, 1002, 1003]),
            "bob": Side(BOB, ALICE, held_one_time={1001, 1002, 1003}, pool=[1001, 1002, 1003]),
        }
        self.clock = T0 + 1000
        self.count = 0

    def other(self, name: str) -> str:
        return "bob" if name == "alice" else "alice"

    def send(self, name: str) -> None:
        side, receiver = self.sides[name], self.sides[self.other(name)]
        self.clock += 1000
        self.count += 1
        sets = side.sessions
        if sets.active is None or side.repair:
            opk_id = receiver.pool.pop(0) if receiver.pool else None
            peer = side.peer
            state = initiate_session(
                party(side.device),
                side.device.dh_private,
                party(peer),
                peer.spk(),
                None if opk_id is None else peer.opk(opk_id),
                side.random(32),
            )
            sets = start_session(sets, state)
            side.repair = False
        assert sets.active is not None
        h = hashlib.sha256(f"{self.count}".encode()).hexdigest()
        mid = MessageId(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}")
        me, peer = side.device, side.peer
        header = HeaderV2(
            mid,
            direct_conversation_id(me.username, peer.username),
            me.username,
            me.device.device_id,
            self.clock,
            tuple(
                sorted(
                    [Target(me.username, 1, ()), Target(peer.username, 1, (peer.device.device_id,))],
                    key=lambda t: t.username,
                )
            ),
        )
        session_id = sets.active.session_id
        envelope, states = seal_envelope(
            header,
            encode_payload({"type": "text", "text": f"message {self.count}"}),
            side.random(32),
            side.random(12),
            {peer.key: sets.active},
            me.signing_seed,
            side.random,
        )
        side.sessions = with_active(sets, states[peer.key])
        entry = envelope.to_wire()
        has_setup = "setup" in entry["slots"][0]["message"]
        receiver.in_flight.append(Sent(f"{name}#{self.count}", mid, entry, session_id, has_setup))

    def deliver(self, name: str, sent: Sent, *, seq: int | None = None, entry: Any = None) -> Any:
        side = self.sides[name]
        if seq is None:
            side.inbox += 1
            seq = side.inbox
        self.clock += 1000
        before = session_set_to_wire(side.sessions)
        given_sessions = {side.peer.key: side.sessions}
        decision = receive_direct_v2(
            sent.entry if entry is None else entry,
            me=side.device.me(side.held_one_time),
            delivered_in=None,
            device_lists=LISTS,
            seen=dict(side.seen),
            inbox_seq=seq,
            sessions=given_sessions,
            now=self.clock,
        )
        # The core never changes what it was given.
        assert session_set_to_wire(given_sessions[side.peer.key]) == before
        if isinstance(decision, AcceptedV2):
            side.sessions = decision.sessions
            side.seen[decision.message_id] = decision.seen
            if decision.one_time_prekey_used is not None:
                side.held_one_time.discard(decision.one_time_prekey_used)
        elif isinstance(decision, Duplicate):
            side.seen[decision.message_id] = decision.seen
        else:
            assert isinstance(decision, RefusedV2)
            if decision.repair_needed:
                side.repair = True
        return decision, seq

    def deliver_genuine(self, name: str, index: int) -> None:
        side = self.sides[name]
        sent = side.in_flight.pop(index % len(side.in_flight))
        known = {s.session_id for s in (side.sessions.active, *side.sessions.previous) if s is not None}
        evicted = sent.session_id in side.sessions.evicted
        decision, seq = self.deliver(name, sent)
        side.delivered.append((sent, seq))
        if isinstance(decision, AcceptedV2):
            assert sent.accepted_seq is None, f"{sent.label} accepted twice"
            sent.accepted_seq = seq
            assert decision.payload["text"].startswith("message ")
            return
        assert isinstance(decision, RefusedV2), decision
        assert decision.reason in SESSION_REASONS, (sent.label, decision.reason)
        # A genuine message is refused only if its session can no longer be held here.
        assert evicted or (not sent.has_setup and sent.session_id not in known), (sent.label, decision.reason)

    def redeliver(self, name: str, index: int, same_seq: bool) -> None:
        side = self.sides[name]
        sent, seq = side.delivered[index % len(side.delivered)]
        at = sent.accepted_seq if same_seq and sent.accepted_seq is not None else seq
        decision, got_seq = self.deliver(name, sent, seq=at if same_seq else None)
        if sent.accepted_seq is not None:
            # 14.2: the same envelope at its own position is a duplicate; elsewhere a replay.
            if same_seq:
                assert isinstance(decision, Duplicate)
            else:
                assert isinstance(decision, RefusedV2) and decision.reason == "replayed"
        elif isinstance(decision, AcceptedV2):
            sent.accepted_seq = got_seq

    def tamper(self, name: str, index: int) -> None:
        side = self.sides[name]
        sent = side.in_flight[index % len(side.in_flight)]
        altered = copy.deepcopy(sent.entry)
        ciphertext = bytearray(b64decode(altered["slots"][0]["message"]["ciphertext"]))
        ciphertext[-1] ^= 1
        altered["slots"][0]["message"]["ciphertext"] = b64encode(bytes(ciphertext))
        before = session_set_to_wire(side.sessions)
        decision, _ = self.deliver(name, sent, entry=altered)
        assert isinstance(decision, RefusedV2)
        assert decision.reason in SESSION_REASONS | {"prekey_unknown"}
        assert session_set_to_wire(side.sessions) == before


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["send", "deliver", "drop", "redeliver", "tamper", "repair"]),
        st.sampled_from(["alice", "bob"]),
        st.integers(min_value=0, max_value=50),
        st.booleans(),
    ),
    max_size=40,
)
# Many repairs on both sides: sessions pushed out of previous and their ids evicted, and
# messages in flight on them.
CHURN = st.lists(
    st.tuples(
        st.sampled_from(["send", "send", "deliver", "deliver", "drop", "repair", "repair"]),
        st.sampled_from(["alice", "bob"]),
        st.integers(min_value=0, max_value=50),
        st.booleans(),
    ),
    min_size=20,
    max_size=80,
)


def run(actions: list[tuple[str, str, int, bool]]) -> World:
    world = World()
    for action, name, index, flag in actions:
        side = world.sides[name]
        if action == "send":
            world.send(name)
        elif action == "deliver" and side.in_flight:
            world.deliver_genuine(name, index)
        elif action == "drop" and side.in_flight:
            side.in_flight.pop(index % len(side.in_flight))
        elif action == "redeliver" and side.delivered:
            world.redeliver(name, index, flag)
        elif action == "tamper" and side.in_flight:
            world.tamper(name, index)
        elif action == "repair":
            side.repair = True
    return world


def settle(world: World) -> None:
    """Deliver what is in flight, then let each side answer the other twice."""
    for name in ("alice", "bob"):
        while world.sides[name].in_flight:
            world.deliver_genuine(name, 0)
    for _ in range(3):
        for name in ("alice", "bob"):
            world.send(name)
            receiver = world.other(name)
            while world.sides[receiver].in_flight:
                world.deliver_genuine(receiver, 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS)
def test_genuine_messages_open_once_and_both_sides_converge(
    actions: list[tuple[str, str, int, bool]],
) -> None:
    world = run(actions)
    settle(world)
    alice, bob = world.sides["alice"].sessions, world.sides["bob"].sessions
    assert alice.active is not None and bob.active is not None
    assert alice.active_id == bob.active_id
    assert not alice.active.pending_setup and not bob.active.pending_setup


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CHURN)
def test_many_repairs_evict_sessions_and_still_converge(actions: list[tuple[str, str, int, bool]]) -> None:
    world = run(actions)
    settle(world)
    alice, bob = world.sides["alice"].sessions, world.sides["bob"].sessions
    assert alice.active_id == bob.active_id


def test_simultaneous_initiation_converges() -> None:
    """Both send before either receives: each keeps the lower session id."""
    world = run([("send", "alice", 0, False), ("send", "bob", 0, False)])
    ids = {world.sides["alice"].sessions.active_id, world.sides["bob"].sessions.active_id}
    assert len(ids) == 2
    world.deliver_genuine("bob", 0)
    world.deliver_genuine("alice", 0)
    assert world.sides["alice"].sessions.active_id == world.sides["bob"].sessions.active_id == min(ids)  # type: ignore[type-var]


def test_a_crossed_setup_delivered_late_does_not_split_the_sides() -> None:
    """The failure the last_sent_at rule prevents: without it, bob would make alice's
    abandoned setup active after alice has moved to bob's session."""
    for first in ("alice", "bob"):
        world = run([("send", "alice", 0, False), ("send", "bob", 0, False)])
        other = world.other(first)
        # The first side gets the other's setup, answers; the answer arrives before the
        # first side's own (older) setup message.
        world.deliver_genuine(first, 0)
        world.send(first)
        world.deliver_genuine(other, 1)
        world.deliver_genuine(other, 0)
        settle(world)
        assert world.sides["alice"].sessions.active_id == world.sides["bob"].sessions.active_id


def test_a_repair_replaces_an_established_session_with_a_notice() -> None:
    world = run([("send", "alice", 0, False), ("deliver", "bob", 0, False), ("send", "bob", 0, False)])
    world.deliver_genuine("alice", 0)
    world.sides["alice"].repair = True
    world.send("alice")
    sent = world.sides["bob"].in_flight.pop()
    decision, _ = world.deliver("bob", sent)
    assert isinstance(decision, AcceptedV2)
    assert decision.notices == ("session_repaired",)
    assert decision.sessions.active_id == sent.session_id


def test_a_repair_crossing_a_pending_setup_converges() -> None:
    """bob repairs alice's session before she has heard back on it: to her it is a tie
    with her pending session; whichever id is lower, both end on the same one."""
    world = run([("send", "alice", 0, False), ("deliver", "bob", 0, False), ("repair", "bob", 0, False)])
    world.send("bob")
    world.deliver_genuine("alice", 0)
    world.send("alice")
    world.deliver_genuine("bob", 0)
    world.send("bob")
    world.deliver_genuine("alice", 0)
    assert world.sides["alice"].sessions.active_id == world.sides["bob"].sessions.active_id


def test_concurrent_repairs_after_crossed_setups_converge() -> None:
    """Both start sessions, each fails to open the other's first message and repairs: four
    unanswered sessions. Each side compares its own newest offer with the peer's, so both
    keep the same one (found by hypothesis when only the active session was compared)."""
    world = run(
        [
            ("send", "alice", 0, False),
            ("send", "alice", 0, False),
            ("send", "bob", 0, False),
            ("send", "bob", 0, False),
            ("tamper", "alice", 0, False),
            ("tamper", "bob", 0, False),
            ("send", "alice", 0, False),
            ("send", "bob", 0, False),
        ]
    )
    settle(world)
    assert world.sides["alice"].sessions.active_id == world.sides["bob"].sessions.active_id
