"""Property tests of the v2 ratchet (PROTOCOL.md 15.5-15.7) between two and three devices.

A small network of per-pair sessions sends messages, and hypothesis chooses which are
delivered, in what order, lost, duplicated or altered. Whatever it chooses: every genuine
message that arrives is opened exactly once, with its plaintext; everything else is
refused with a reason code; a refusal leaves the receiver's serialised state
byte-identical. Forward secrecy and post-compromise security are shown on the same
sessions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from v2_support import T0, DeviceKeys, counter_random, make_device, start

from securechat.protocol.errors import VerificationFailed
from securechat.protocol.identifiers import MessageId, Username, direct_conversation_id
from securechat.protocol.v2.envelope import (
    EnvelopeV2,
    HeaderV2,
    Target,
    open_body,
    open_key_slot,
    seal_envelope,
    verify_envelope,
)
from securechat.protocol.v2.errors import V2_REASONS, Refusal
from securechat.protocol.v2.ratchet import RatchetMessage, SessionState, ratchet_decrypt, ratchet_encrypt
from securechat.protocol.v2.setup import accept_session

AD = b"binding"
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@dataclass
class InFlight:
    sender: int
    receiver: int
    message: RatchetMessage
    plaintext: bytes


@dataclass
class Network:
    """Devices by index; the lower index of a pair initiates its session."""

    devices: list[DeviceKeys]
    sessions: dict[tuple[int, int], SessionState] = field(default_factory=dict)
    used_one_time: set[tuple[int, int]] = field(default_factory=set)
    opened: set[bytes] = field(default_factory=set)
    sent: int = 0

    def __post_init__(self) -> None:
        for i in range(len(self.devices)):
            for j in range(i + 1, len(self.devices)):
                self.sessions[(i, j)] = start(self.devices[i], self.devices[j], one_time=1000 + i)

    def send(self, sender: int) -> list[InFlight]:
        """The sender's message to every other device it has a session with."""
        out = []
        self.sent += 1
        for receiver in range(len(self.devices)):
            if receiver == sender or (sender, receiver) not in self.sessions:
                continue
            plaintext = f"{sender}->{receiver} #{self.sent}".encode()
            rng = counter_random(f"{sender}-{receiver}-{self.sent}")
            message, self.sessions[(sender, receiver)] = ratchet_encrypt(
                self.sessions[(sender, receiver)], plaintext, AD, rng
            )
            out.append(InFlight(sender, receiver, message, plaintext))
        return out

    def receive(self, item: InFlight, now: int, extra_ad: bytes = AD) -> bytes:
        """What a client does with a ratchet message from a listed device (15.5, 15.7)."""
        key = (item.receiver, item.sender)
        state = self.sessions.get(key)
        setup = item.message.setup
        me, peer = self.devices[item.receiver], self.devices[item.sender]
        if state is None or (setup is not None and state.session_id != _session_id(peer, me, item)):
            if setup is None:
                raise Refusal("session_unknown")
            one_time = {
                pid: private
                for pid, private in me.one_time_privates.items()
                if (item.receiver, pid) not in self.used_one_time
            }
            accepted = accept_session(
                me.party,
                me.dh_private,
                peer.party,
                item.message,
                {1: me.signed_prekey_private},
                one_time,
                extra_ad,
                now,
            )
            if accepted.used_one_time_prekey_id is not None:
                self.used_one_time.add((item.receiver, accepted.used_one_time_prekey_id))
            self.sessions[key] = accepted.state
            return accepted.plaintext
        plaintext, self.sessions[key] = ratchet_decrypt(state, item.message, extra_ad, now)
        return plaintext


def _session_id(initiator: DeviceKeys, responder: DeviceKeys, item: InFlight) -> bytes:
    from securechat.protocol.v2.setup import setup_session_id

    assert item.message.setup is not None
    return setup_session_id(initiator.party, responder.party, item.message.setup)


def _tampered(message: RatchetMessage, where: int) -> RatchetMessage:
    data = bytearray(message.ciphertext)
    data[where % len(data)] ^= 0x40
    return replace(message, ciphertext=bytes(data))


def run_network(data: st.DataObject, device_count: int) -> None:
    names = [("alice", "laptop"), ("bob", "phone"), ("alice", "phone")][:device_count]
    network = Network([make_device(user, name) for user, name in names])
    in_flight: list[InFlight] = []
    delivered_once: set[bytes] = set()
    now = T0
    steps = data.draw(st.integers(min_value=5, max_value=60), label="steps")
    for _ in range(steps):
        now += 1
        action = data.draw(
            st.sampled_from(["send", "send", "deliver", "deliver", "deliver", "drop", "tamper"])
        )
        if action == "send":
            sender = data.draw(st.integers(0, device_count - 1), label="sender")
            in_flight += network.send(sender)
            continue
        if not in_flight:
            continue
        index = data.draw(st.integers(0, len(in_flight) - 1), label="which")
        item = in_flight[index]
        if action == "drop":
            in_flight.pop(index)
            continue
        if action == "tamper":
            item = replace(item, message=_tampered(item.message, data.draw(st.integers(0, 10_000))))
        elif not data.draw(st.booleans(), label="keep a copy to duplicate"):
            in_flight.pop(index)
        key = (item.receiver, item.sender)
        before = network.sessions[key].to_bytes() if key in network.sessions else None
        identity = item.plaintext
        try:
            plaintext = network.receive(item, now)
        except Refusal as refusal:
            assert refusal.reason in V2_REASONS
            event(f"refused {refusal.reason} ({action})")
            after = network.sessions[key].to_bytes() if key in network.sessions else None
            assert after == before, "a refusal changed the state"
            # A genuine message refused only if it was opened before.
            assert action == "tamper" or identity in delivered_once, (refusal.reason, identity)
            continue
        assert action != "tamper", "an altered message was opened"
        event("opened, with a setup" if item.message.setup else "opened")
        assert plaintext == identity
        assert identity not in delivered_once, "a message was opened twice"
        delivered_once.add(identity)
        # Round-trip through the serialised form, as a client stores it.
        network.sessions[key] = SessionState.from_bytes(network.sessions[key].to_bytes())


@PROPERTY_SETTINGS
@given(st.data())
def test_two_devices_any_delivery_order_loss_duplication_and_tampering(data: st.DataObject) -> None:
    run_network(data, 2)


@PROPERTY_SETTINGS
@given(st.data())
def test_three_devices_any_delivery_order_loss_duplication_and_tampering(data: st.DataObject) -> None:
    run_network(data, 3)


def conversation(alice_sends: int) -> tuple[Network, list[InFlight]]:
    network = Network([make_device("alice", "laptop"), make_device("bob", "phone")])
    sent = [network.send(0)[0] for _ in range(alice_sends)]
    return network, sent


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(10))), st.lists(st.integers(0, 9), max_size=4))
def test_forward_secrecy_after_opening_messages_1_to_10(order: list[int], replies_after: list[int]) -> None:
    """Bob opens alice's messages 1..10 in any order (replying now and then, which turns
    the ratchet); his serialised state then opens none of them again."""
    network, sent = conversation(10)
    for position, index in enumerate(order):
        assert network.receive(sent[index], T0 + position) == sent[index].plaintext
        if position in replies_after:
            for reply in network.send(1):
                network.receive(reply, T0 + position)
    stored = SessionState.from_bytes(network.sessions[(1, 0)].to_bytes())
    assert stored.skipped == ()
    for item in sent:
        before = stored.to_bytes()
        try:
            ratchet_decrypt(stored, item.message, AD, T0 + 100)
        except Refusal as refusal:
            assert refusal.reason in ("ratchet_duplicate", "ratchet_failed")
        else:
            raise AssertionError("an opened message opened again")
        assert stored.to_bytes() == before


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.booleans())
def test_post_compromise_a_copy_at_message_10_opens_nothing_after_both_turn(
    bob_replies: int, alice_more: int, copy_is_fresh: bool
) -> None:
    """A copy of bob's state taken when he has opened message 10 cannot open alice's
    messages sent after bob and then alice have each turned the ratchet."""
    network, sent = conversation(10)
    for item in sent:
        network.receive(item, T0)
    stolen = SessionState.from_bytes(network.sessions[(1, 0)].to_bytes())
    # Bob turns (his first send since alice's key), alice receives and turns in her reply.
    for _ in range(bob_replies):
        for reply in network.send(1):
            network.receive(reply, T0 + 1)
    later = [network.send(0)[0] for _ in range(alice_more)]
    for item in later:
        assert network.receive(item, T0 + 2) == item.plaintext
    attacker = stolen if copy_is_fresh else SessionState.from_bytes(stolen.to_bytes())
    for item in later:
        try:
            ratchet_decrypt(attacker, item.message, AD, T0 + 2)
        except Refusal as refusal:
            assert refusal.reason == "ratchet_failed"
        else:
            raise AssertionError("the copied state opened a message after both turns")


# ---------------------------------------------------------------------------
# The same through the fan-out envelope (15.8): one body per message, a slot per device.
# ---------------------------------------------------------------------------


@dataclass
class Posted:
    receiver: int
    envelope: EnvelopeV2
    payload: bytes


def envelope_for(network: Network, sender: int, number: int) -> list[Posted]:
    """Seal one envelope for every device the sender has a session with, and cut it into
    one inbox entry per target device, each with only its slot (as the server does)."""
    me = network.devices[sender]
    receivers = [r for r in range(len(network.devices)) if r != sender and (sender, r) in network.sessions]
    if not receivers:
        return []
    by_account: dict[str, list[str]] = {}
    for r in receivers:
        by_account.setdefault(network.devices[r].username, []).append(network.devices[r].device.device_id)
    header = HeaderV2(
        MessageId(str(uuid.UUID(int=number, version=4))),
        direct_conversation_id(Username("alice"), Username("bob")),
        me.username,
        me.device.device_id,
        T0 + number,
        tuple(Target(Username(user), 1, tuple(sorted(ids))) for user, ids in sorted(by_account.items())),
    )
    payload = f"message {number} from {sender}".encode()
    sessions = {
        (network.devices[r].username, network.devices[r].device.device_id): network.sessions[(sender, r)]
        for r in receivers
    }
    envelope, states = seal_envelope(
        header, payload, bytes(32), bytes(12), sessions, me.signing_seed, counter_random(f"env-{number}")
    )
    posted = []
    for r in receivers:
        device = network.devices[r]
        network.sessions[(sender, r)] = states[(device.username, device.device.device_id)]
        slot = envelope.slot_for(device.username, device.device.device_id)
        assert slot is not None
        posted.append(Posted(r, replace(envelope, slots=(slot,)), payload))
    return posted


def open_posted(network: Network, item: Posted, now: int) -> bytes:
    """15.8's opening steps; the session's new state is kept only when all have passed."""
    envelope = item.envelope
    sender = next(
        i for i, d in enumerate(network.devices) if d.device.device_id == envelope.header.sender_device
    )
    verify_envelope(envelope, network.devices[sender].device)
    (slot,) = envelope.slots
    saved = dict(network.sessions), set(network.used_one_time)
    try:
        plaintext = network.receive(
            InFlight(sender, item.receiver, slot.message, b""), now, extra_ad=envelope.binding
        )
        return open_body(envelope, open_key_slot(envelope, plaintext))
    except Exception:
        network.sessions, network.used_one_time = saved
        raise


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_three_devices_through_envelopes(data: st.DataObject) -> None:
    """Alice's laptop and phone and bob's phone: each message is one envelope; each device
    opens its copy exactly once; an altered body or a repeat is refused, state unchanged."""
    network = Network(
        [make_device("alice", "laptop"), make_device("bob", "phone"), make_device("alice", "phone")]
    )
    in_flight: list[Posted] = []
    opened: set[tuple[int, bytes]] = set()
    number = 0
    for step in range(data.draw(st.integers(5, 40), label="steps")):
        action = data.draw(st.sampled_from(["send", "deliver", "deliver", "drop", "tamper"]))
        if action == "send":
            number += 1
            in_flight += envelope_for(network, data.draw(st.integers(0, 2), label="sender"), number)
            continue
        if not in_flight:
            continue
        index = data.draw(st.integers(0, len(in_flight) - 1), label="which")
        item = in_flight[index]
        if action == "drop":
            in_flight.pop(index)
            continue
        if action == "tamper":
            body = bytearray(item.envelope.body)
            body[data.draw(st.integers(0, len(body) - 1))] ^= 1
            item = replace(item, envelope=replace(item.envelope, body=bytes(body)))
        elif not data.draw(st.booleans(), label="keep a copy to duplicate"):
            in_flight.pop(index)
        before = {key: state.to_bytes() for key, state in network.sessions.items()}
        try:
            payload = open_posted(network, item, T0 + 1000 + step)
        except (Refusal, VerificationFailed) as refusal:
            event(f"envelope refused: {getattr(refusal, 'reason', 'bad_signature')} ({action})")
            assert {key: state.to_bytes() for key, state in network.sessions.items()} == before
            assert action == "tamper" or (item.receiver, item.payload) in opened
            continue
        assert action != "tamper"
        assert payload == item.payload
        event("envelope opened")
        assert (item.receiver, payload) not in opened
        opened.add((item.receiver, payload))
