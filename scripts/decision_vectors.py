"""The ``decisions`` section of the vector file: PROTOCOL.md 14, case by case.

Each case is the input of one core decision and the outcome it must give. The expected
outcome of every case is written here by hand; the generator also runs the Python core
on it and stops if the two differ, so the file never records what the code happens to do.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from securechat.client.core import (
    ChainAccepted,
    MemberHistory,
    NameRecord,
    Pin,
    Refused,
    SeenRecord,
    change_position,
    decide_group_chain,
    decide_group_name,
    decide_invite,
    decide_message,
    decide_own_keys,
    decide_receipt,
    direct_peer,
    invite_code,
)
from securechat.protocol.encoding import b64decode, b64encode
from securechat.protocol.envelope import Envelope, Header, encode_payload, pad
from securechat.protocol.groups import Invite, make_invite
from securechat.protocol.identifiers import ConversationId, MessageId, Username, direct_conversation_id
from securechat.protocol.keys import PrivateIdentity, PublicIdentity
from securechat.protocol.primitives import ed25519_sign
from securechat.protocol.receipts import make_receipt, receipt_signed_bytes


class People(Protocol):
    private: dict[str, PrivateIdentity]

    def public(self, name: str) -> PublicIdentity: ...


class Factory(Protocol):
    def build(
        self,
        *,
        signer: str,
        header: Header,
        message_key: bytes,
        iv: bytes,
        padded: bytes,
        recipients: list[str],
    ) -> Envelope: ...


# The reason each case of envelopes.invalid must be refused with (PROTOCOL.md 14.1).
INVALID_ENVELOPE_REASONS: dict[str, str] = {
    "tampered_iv": "bad_signature",
    "tampered_ciphertext": "bad_signature",
    "tampered_tag": "bad_signature",
    "truncated_ciphertext": "bad_signature",
    "tampered_signature": "bad_signature",
    "signature_non_canonical_s": "bad_signature",
    "tampered_sent_at": "bad_signature",
    "tampered_message_id": "bad_signature",
    "tampered_sender": "bad_signature",
    "tampered_conversation_id": "bad_signature",
    "wrapped_key_swap": "bad_signature",
    "wrapped_key_dropped": "bad_signature",
    "wrapped_key_dropped_group": "bad_signature",
    "rerouted_conversation": "wrong_conversation",
    "rerouted_into_group": "wrong_conversation",
    "member_set_mismatch": "wrong_members",
    "replay": "replayed",
    "not_a_recipient": "wrong_conversation",
    "pinned_key_differs": "bad_signature",
    "sender_not_pinned": "unknown_sender",
    "forged_by_mallory": "bad_signature",
    "resigned_wrapped_key_swap": "undecryptable",
    "resigned_label_for_other_message": "undecryptable",
    "resigned_unlabelled_wrap": "undecryptable",
    "resigned_wrong_aad": "undecryptable",
    "resigned_empty_aad": "undecryptable",
    "resigned_missing_member": "wrong_members",
    "resigned_extra_recipient": "wrong_members",
    "resigned_sender_not_recipient": "wrong_members",
    "resigned_128_bit_message_key": "undecryptable",
    "resigned_padding_nonzero": "undecryptable",
    "resigned_padding_not_power_of_two": "undecryptable",
    "resigned_padding_too_short": "undecryptable",
    "resigned_length_prefix_overflow": "undecryptable",
    "resigned_unpadded": "undecryptable",
    "resigned_payload_not_json": "bad_payload",
    "resigned_payload_invalid_utf8": "bad_payload",
    "resigned_payload_utf8_bom": "bad_payload",
    "resigned_payload_not_object": "bad_payload",
    "resigned_payload_without_type": "bad_payload",
    "resigned_payload_type_not_string": "bad_payload",
    "resigned_payload_text_not_string": "bad_payload",
}


def _pin_wire(pin: Mapping[str, Any]) -> dict[str, Any]:
    return {"identity": pin["identity"], "pending": pin.get("pending")}


def _pins(people: People, wire_pins: Mapping[str, Mapping[str, Any]]) -> dict[str, Pin]:
    """Username -> the keys of the named persona, under that username (as a pin is)."""

    def under(username: str, persona: str | None) -> PublicIdentity | None:
        if persona is None:
            return None
        keys = people.public(persona)
        return PublicIdentity(
            Username(username), keys.signing_key, keys.encryption_key, keys.encryption_key_signature
        )

    out: dict[str, Pin] = {}
    for username, pin in wire_pins.items():
        identity = under(username, pin["identity"])
        assert identity is not None
        out[username] = Pin(identity, under(username, pin.get("pending")))
    return out


def run_message_case(people: People, case: Mapping[str, Any]) -> dict[str, Any]:
    """What the Python core decides for one ``decisions.messages`` case."""
    decision = decide_message(
        case["wire"],
        me=people.private[case["me"]],
        delivered_in=case["delivered_in"],
        pins=_pins(people, case["pins"]),
        groups={gid: MemberHistory.from_wire(g) for gid, g in case["groups"].items()},
        seen={mid: SeenRecord(r["signature"], r["seq"]) for mid, r in case["seen"].items()},
        inbox_seq=case["inbox_seq"],
    )
    return decision.to_wire()


def _everyone(*names: str) -> dict[str, dict[str, Any]]:
    return {name: {"identity": name, "pending": None} for name in names}


def message_cases(
    people: People, factory: Factory, envelopes: Mapping[str, Any], group_id: str
) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def add(name: str, note: str, expected: dict[str, Any], **inputs: Any) -> None:
        case = {
            "name": name,
            "note": note,
            "me": inputs["me"],
            "wire": inputs["wire"],
            "delivered_in": inputs.get("delivered_in"),
            "pins": inputs["pins"],
            "groups": inputs.get("groups", {}),
            "seen": inputs.get("seen", {}),
            "inbox_seq": inputs.get("inbox_seq"),
            "expected": expected,
        }
        actual = run_message_case(people, case)
        if actual != expected:
            raise RuntimeError(f"decisions.messages {name}: expected {expected}, got {actual}")
        cases.append(case)

    def refused(reason: str) -> dict[str, Any]:
        return {"outcome": "refused", "reason": reason}

    positive = {case["name"]: case for case in envelopes["cases"]}
    direct = positive["direct_text"]
    group = positive["group_text"]
    dm_wire, group_wire = direct["wire"], group["wire"]
    dm_id = direct["conversation_id"]
    dm_sig = dm_wire["signature"]
    group_view = {group_id: {"history": [["alice", "bob", "carol"]], "admins": ["alice"]}}

    def accepted(case: Mapping[str, Any], peer: str | None, seq: int | None) -> dict[str, Any]:
        return {
            "outcome": "accepted",
            "conversation_id": case["conversation_id"],
            "kind": "group" if peer is None else "direct",
            "peer": peer,
            "sender": case["sender"],
            "sent_at": case["sent_at"],
            "payload": case["payload"],
            "seen": {"signature": case["wire"]["signature"], "seq": seq},
        }

    # Every refusal of envelopes.invalid, with its reason. They come by the inbox.
    for invalid in envelopes["invalid"]:
        name = invalid["name"]
        context = invalid["context"]
        wire = invalid["wire"]
        conversation = context["conversation_id"]
        groups = {}
        if conversation.startswith("grp-"):
            groups[conversation] = {"history": [sorted(context["members"])], "admins": ["alice"]}
        seen = {}
        for message_id in context["seen_message_ids"]:
            seen[message_id] = {"signature": wire["signature"], "seq": 1}
        expected = invalid["expected"]
        reason = (
            expected if expected in ("malformed", "unsupported_version") else INVALID_ENVELOPE_REASONS[name]
        )
        add(
            f"envelope_{name}",
            invalid["note"],
            refused(reason),
            me=invalid["recipient"],
            wire=wire,
            delivered_in=conversation,
            pins={
                user: {"identity": persona, "pending": None} for user, persona in context["pinned"].items()
            },
            groups=groups,
            seen=seen,
            inbox_seq=2,
        )

    everyone = _everyone("alice", "bob", "carol", "mallory")
    add(
        "direct_accepted",
        "alice's message to bob, from the inbox: the peer is derived from the id",
        accepted(direct, "alice", 7),
        me="bob",
        wire=dm_wire,
        pins=everyone,
        inbox_seq=7,
    )
    add(
        "own_copy_accepted",
        "alice's own message, arriving at another of her devices: the peer is bob",
        accepted(direct, "bob", 7),
        me="alice",
        wire=dm_wire,
        pins=everyone,
        inbox_seq=7,
    )
    add(
        "history_accepted",
        "alice's message in a page of their conversation's history",
        accepted(direct, "alice", None),
        me="bob",
        wire=dm_wire,
        pins=everyone,
        delivered_in=dm_id,
    )
    add(
        "own_sent_then_inbox",
        "alice's message recorded when she sent it, then its inbox copy",
        {"outcome": "duplicate", "seen": {"signature": dm_sig, "seq": 7}},
        me="alice",
        wire=dm_wire,
        pins=everyone,
        seen={direct["message_id"]: {"signature": dm_sig, "seq": None}},
        inbox_seq=7,
    )
    add(
        "transport_repeat",
        "the same inbox entry delivered again (its acknowledgement was lost)",
        {"outcome": "duplicate", "seen": {"signature": dm_sig, "seq": 7}},
        me="bob",
        wire=dm_wire,
        pins=everyone,
        seen={direct["message_id"]: {"signature": dm_sig, "seq": 7}},
        inbox_seq=7,
    )
    add(
        "reinserted_into_inbox",
        "the server re-inserts an old message into the inbox at a new position",
        refused("replayed"),
        me="bob",
        wire=dm_wire,
        pins=everyone,
        seen={direct["message_id"]: {"signature": dm_sig, "seq": 7}},
        inbox_seq=12,
    )
    add(
        "history_after_inbox",
        "a page of history holds a message the inbox brought before",
        {"outcome": "duplicate", "seen": {"signature": dm_sig, "seq": 7}},
        me="bob",
        wire=dm_wire,
        pins=everyone,
        delivered_in=dm_id,
        seen={direct["message_id"]: {"signature": dm_sig, "seq": 7}},
    )
    add(
        "inbox_after_history",
        "the inbox entry of a message a page of history showed first",
        {"outcome": "duplicate", "seen": {"signature": dm_sig, "seq": 12}},
        me="bob",
        wire=dm_wire,
        pins=everyone,
        seen={direct["message_id"]: {"signature": dm_sig, "seq": None}},
        inbox_seq=12,
    )
    other_sig = b64encode(bytes(64))
    add(
        "same_id_other_envelope",
        "a message id accepted before with another signature",
        refused("replayed"),
        me="bob",
        wire=dm_wire,
        pins=everyone,
        seen={direct["message_id"]: {"signature": other_sig, "seq": 3}},
        inbox_seq=12,
    )
    add(
        "same_id_other_envelope_history",
        "the same, in a page of history",
        refused("replayed"),
        me="bob",
        wire=dm_wire,
        pins=everyone,
        delivered_in=dm_id,
        seen={direct["message_id"]: {"signature": other_sig, "seq": None}},
    )
    add(
        "key_changed",
        "bob pinned mallory's keys for alice before a key change; alice's real keys are pending",
        refused("key_changed"),
        me="bob",
        wire=dm_wire,
        pins={**everyone, "alice": {"identity": "mallory", "pending": "alice"}},
        inbox_seq=7,
    )
    add(
        "pending_key_does_not_verify",
        "a key change is pending, but neither key verifies the signature",
        refused("bad_signature"),
        me="bob",
        wire=dm_wire,
        pins={**everyone, "alice": {"identity": "mallory", "pending": "carol"}},
        inbox_seq=7,
    )

    # 3.1 of issue 11: mallory's validly signed message shown in a chat titled "bob".
    def sealed(name: str, sender: str, conversation: str, recipients: list[str], text: str) -> dict[str, Any]:
        header = Header(1, MessageId(name), ConversationId(conversation), Username(sender), direct["sent_at"])
        envelope = factory.build(
            signer=sender,
            header=header,
            message_key=bytes(range(32)),
            iv=bytes(range(12)),
            padded=pad(encode_payload({"type": "text", "text": text})),
            recipients=recipients,
        )
        return envelope.to_wire()

    alice_bob = direct_conversation_id(Username("alice"), Username("bob"))
    alice_mallory = direct_conversation_id(Username("alice"), Username("mallory"))
    forged = sealed(
        "5d1b6c8e-2f4a-4b7c-9d0e-1a2b3c4d5e6f", "mallory", alice_bob, ["alice", "mallory"], "it's bob"
    )
    add(
        "mallory_in_alice_bob",
        "mallory signs a message to alice in the conversation id of alice and bob",
        refused("wrong_conversation"),
        me="alice",
        wire=forged,
        pins=everyone,
        inbox_seq=3,
    )
    add(
        "mallory_in_alice_bob_history",
        "the same, served in a page of alice and bob's history",
        refused("wrong_conversation"),
        me="alice",
        wire=forged,
        pins=everyone,
        delivered_in=alice_bob,
    )
    honest = sealed(
        "6e2c7d9f-3a5b-4c8d-8e1f-2b3c4d5e6f70", "mallory", alice_mallory, ["alice", "mallory"], "hi"
    )
    add(
        "mallory_in_her_own_chat",
        "mallory's message in her own conversation with alice: the peer is mallory, "
        "whatever the server lists",
        {
            "outcome": "accepted",
            "conversation_id": alice_mallory,
            "kind": "direct",
            "peer": "mallory",
            "sender": "mallory",
            "sent_at": direct["sent_at"],
            "payload": {"type": "text", "text": "hi"},
            "seen": {"signature": honest["signature"], "seq": 3},
        },
        me="alice",
        wire=honest,
        pins=everyone,
        inbox_seq=3,
    )
    add(
        "mallory_chat_delivered_as_bobs",
        "mallory's own conversation with alice delivered as a page of alice and bob's",
        refused("wrong_conversation"),
        me="alice",
        wire=honest,
        pins=everyone,
        delivered_in=alice_bob,
    )

    # Groups.
    add(
        "group_accepted",
        "carol's message to the group, whose verified members are exactly its recipients",
        accepted(group, None, 4),
        me="alice",
        wire=group_wire,
        pins=everyone,
        groups=group_view,
        inbox_seq=4,
    )
    add(
        "group_unknown",
        "a message to a group this device has no verified chain for",
        refused("unknown_group"),
        me="alice",
        wire=group_wire,
        pins=everyone,
        inbox_seq=4,
    )
    add(
        "group_never_member",
        "alice was never a member of any position of the group",
        refused("wrong_members"),
        me="alice",
        wire=group_wire,
        pins=everyone,
        groups={group_id: {"history": [["bob", "carol"]], "admins": ["bob"]}},
        inbox_seq=4,
    )
    add(
        "group_set_before_join",
        "the recipients were the members before alice's current membership began",
        refused("wrong_members"),
        me="alice",
        wire=group_wire,
        pins=everyone,
        groups={
            group_id: {
                "history": [["alice", "bob", "carol"], ["bob", "carol"], ["alice", "bob"]],
                "admins": ["bob"],
            }
        },
        inbox_seq=4,
    )
    after = sealed(
        "7f3d8e0a-4b6c-4d9e-9f20-3c4d5e6f7081", "carol", group_id, ["bob", "carol"], "after you left"
    )
    add(
        "group_after_removal",
        "a message sent after alice's removal, to the members then: no key for her",
        refused("not_for_me"),
        me="alice",
        wire=after,
        pins=everyone,
        groups={group_id: {"history": [["alice", "bob", "carol"], ["bob", "carol"]], "admins": ["bob"]}},
        inbox_seq=9,
    )
    return cases


def _chain_outcome(decision: ChainAccepted | Refused) -> dict[str, Any]:
    if isinstance(decision, Refused):
        return {"outcome": "refused", "reason": decision.reason}
    return {
        "outcome": "accepted",
        "new": [change.seq for change in decision.new],
        "members": sorted(decision.state.members),
        "admins": sorted(decision.state.admins),
    }


def group_cases(people: People, groups: Mapping[str, Any], group_id: str) -> dict[str, list[dict[str, Any]]]:
    chain = [case["wire"] for case in groups["chain"]]
    everyone = _everyone("alice", "bob", "carol", "mallory")
    pins = _pins(people, everyone)
    positions: list[dict[str, Any]] = []
    local = chain[:3]
    forked = {**chain[2], "at": chain[2]["at"] + 1}
    for name, note, change, expected in [
        (
            "known",
            "a change already in the verified chain, delivered again: not shown again",
            chain[2],
            "known",
        ),
        ("next", "the change after the verified head", chain[3], "next"),
        ("ahead", "a change beyond the next: fetch the chain", chain[4], "ahead"),
        ("fork", "another change at a position already verified", forked, "fork"),
        ("malformed", "a change that does not parse", {**chain[3], "seq": "3"}, "malformed"),
    ]:
        result = change_position(local, change)
        actual = result if isinstance(result, str) else result.reason
        if actual != expected:
            raise RuntimeError(f"decisions.group_changes {name}: {actual}")
        positions.append({"name": name, "note": note, "local": local, "change": change, "expected": expected})

    chains: list[dict[str, Any]] = []
    invalid_extension = groups["invalid_chains"][0]["wires"]  # a non-admin adds, after change 1
    for name, note, local_chain, offered, expected in [
        (
            "extends",
            "the local chain and the next change",
            local,
            chain[:4],
            {"outcome": "accepted", "new": [3], "members": ["alice", "bob"], "admins": ["alice", "bob"]},
        ),
        (
            "extends_by_three",
            "the whole chain fetched after a gap",
            local,
            chain,
            {"outcome": "accepted", "new": [3, 4, 5], "members": ["bob", "carol"], "admins": ["bob"]},
        ),
        (
            "nothing_new",
            "the local chain offered again",
            local,
            chain[:3],
            {
                "outcome": "accepted",
                "new": [],
                "members": ["alice", "bob", "carol"],
                "admins": ["alice", "bob"],
            },
        ),
        (
            "first_sight",
            "a chain this device has never seen",
            [],
            chain[:2],
            {"outcome": "accepted", "new": [0, 1], "members": ["alice", "bob", "carol"], "admins": ["alice"]},
        ),
        (
            "rolled_back",
            "a shorter chain than the verified one",
            local,
            chain[:2],
            {"outcome": "refused", "reason": "chain_fork"},
        ),
        (
            "forked",
            "a chain with another change at a verified position",
            local,
            [*chain[:2], forked, chain[3]],
            {"outcome": "refused", "reason": "chain_fork"},
        ),
        (
            "invalid",
            "a chain whose next change breaks a rule",
            chain[:2],
            invalid_extension,
            {"outcome": "refused", "reason": "chain_invalid"},
        ),
        (
            "malformed",
            "a chain with a change that does not parse",
            local,
            [*chain[:3], {"v": 1}],
            {"outcome": "refused", "reason": "malformed"},
        ),
    ]:
        actual = _chain_outcome(decide_group_chain(local_chain, offered, group_id=group_id, pins=pins))
        if actual != expected:
            raise RuntimeError(f"decisions.group_chains {name}: expected {expected}, got {actual}")
        chains.append(
            {
                "name": name,
                "note": note,
                "group_id": group_id,
                "pins": everyone,
                "local": local_chain,
                "offered": offered,
                "expected": expected,
            }
        )
    return {"group_changes": positions, "group_chains": chains}


def name_cases() -> list[dict[str, Any]]:
    group = {"history": [["alice", "bob", "carol"]], "admins": ["alice", "bob"]}
    current = {"name": "Secure", "sent_at": 2000, "message_id": "5a000000-0000-4000-8000-000000000000"}
    cases: list[dict[str, Any]] = []
    for name, note, record, info, expected in [
        (
            "first_name",
            "the first name an admin gives",
            None,
            {
                "sender": "alice",
                "name": "Secure",
                "sent_at": 1000,
                "message_id": "10000000-0000-4000-8000-000000000000",
            },
            {
                "outcome": "accepted",
                "name": "Secure",
                "sent_at": 1000,
                "message_id": "10000000-0000-4000-8000-000000000000",
            },
        ),
        (
            "newer_name",
            "a newer name from an admin",
            current,
            {
                "sender": "bob",
                "name": "Team",
                "sent_at": 3000,
                "message_id": "20000000-0000-4000-8000-000000000000",
            },
            {
                "outcome": "accepted",
                "name": "Team",
                "sent_at": 3000,
                "message_id": "20000000-0000-4000-8000-000000000000",
            },
        ),
        (
            "older_name",
            "an older naming message, accepted (not a replay) but arriving late",
            current,
            {
                "sender": "alice",
                "name": "Old",
                "sent_at": 1999,
                "message_id": "30000000-0000-4000-8000-000000000000",
            },
            {"outcome": "refused", "reason": "older_name"},
        ),
        (
            "same_message",
            "the naming message that set the current name",
            current,
            {"sender": "alice", "name": "Secure", "sent_at": 2000, "message_id": current["message_id"]},
            {"outcome": "refused", "reason": "older_name"},
        ),
        (
            "tie_greater_id",
            "the same signed time, a greater message id",
            current,
            {
                "sender": "bob",
                "name": "Tie",
                "sent_at": 2000,
                "message_id": "5b000000-0000-4000-8000-000000000000",
            },
            {
                "outcome": "accepted",
                "name": "Tie",
                "sent_at": 2000,
                "message_id": "5b000000-0000-4000-8000-000000000000",
            },
        ),
        (
            "tie_smaller_id",
            "the same signed time, a smaller message id",
            current,
            {
                "sender": "bob",
                "name": "Tie",
                "sent_at": 2000,
                "message_id": "59000000-0000-4000-8000-000000000000",
            },
            {"outcome": "refused", "reason": "older_name"},
        ),
        (
            "not_admin",
            "a member who is not an admin names the group",
            current,
            {
                "sender": "carol",
                "name": "Carol's",
                "sent_at": 9000,
                "message_id": "40000000-0000-4000-8000-000000000000",
            },
            {"outcome": "refused", "reason": "not_admin"},
        ),
    ]:
        view = MemberHistory.from_wire(group)
        decision = decide_group_name(
            NameRecord(**record) if record else None,
            sender=info["sender"],
            name=info["name"],
            sent_at=info["sent_at"],
            message_id=info["message_id"],
            group=view,
        )
        actual = (
            {"outcome": "refused", "reason": decision.reason}
            if isinstance(decision, Refused)
            else {
                "outcome": "accepted",
                "name": decision.name,
                "sent_at": decision.sent_at,
                "message_id": decision.message_id,
            }
        )
        if actual != expected:
            raise RuntimeError(f"decisions.group_names {name}: expected {expected}, got {actual}")
        cases.append(
            {
                "name": name,
                "note": note,
                "group": group,
                "current": record,
                "info": info,
                "expected": expected,
            }
        )
    return cases


def invite_cases(people: People, groups: Mapping[str, Any], group_id: str, t0: int) -> list[dict[str, Any]]:
    chain = [case["wire"] for case in groups["chain"]]
    invite = Invite.from_wire(groups["invite"]["wire"])
    code = invite_code(invite)
    everyone = _everyone("alice", "bob", "carol", "mallory")
    bob, carol, alice = (people.private[n] for n in ("bob", "carol", "alice"))
    other_group = ConversationId("grp-" + "1" * 32)
    other = make_invite(alice, other_group, expires_at=t0 + 10_000, max_uses=5, invite_id=invite.invite_id)
    from_carol = make_invite(
        carol,
        ConversationId(group_id),
        expires_at=t0 + 10_000,
        max_uses=5,
        invite_id="8d0f7780-8536-41ef-a55c-f18f0a2b1bf8",
    )
    forged = replace(
        make_invite(
            bob,
            ConversationId(group_id),
            expires_at=t0 + 10_000,
            max_uses=5,
            invite_id="9e1a8891-9647-42f0-b66d-a29a1b3c2cf9",
        ),
        inviter=Username("alice"),
    )
    answer = {"invite": invite.to_wire(), "changes": chain[:4]}
    cases: list[dict[str, Any]] = []

    def add(
        name: str,
        note: str,
        expected: dict[str, Any],
        *,
        code: str,
        answer: dict[str, Any],
        pins: dict[str, Any] = everyone,
        local: list[Any] | None = None,
        now: int = t0 + 5,
    ) -> None:
        decision = decide_invite(code, answer, pins=_pins(people, pins), local=local or [], now=now)
        actual = (
            {"outcome": "refused", "reason": decision.reason}
            if isinstance(decision, Refused)
            else {
                "outcome": "accepted",
                "group_id": decision.state.group_id,
                "members": sorted(decision.state.members),
            }
        )
        if actual != expected:
            raise RuntimeError(f"decisions.invites {name}: expected {expected}, got {actual}")
        cases.append(
            {
                "name": name,
                "note": note,
                "code": code,
                "answer": answer,
                "pins": pins,
                "local": local or [],
                "now": now,
                "expected": expected,
            }
        )

    ok = {"outcome": "accepted", "group_id": group_id, "members": ["alice", "bob"]}
    add("accepted", "bob's invite to the group, with its chain", ok, code=code, answer=answer)
    add(
        "accepted_with_spaces",
        "the code pasted with white space around it",
        ok,
        code=f"  {code}\n",
        answer=answer,
    )
    add(
        "extends_local",
        "the chain extends the one this device verified",
        ok,
        code=code,
        answer=answer,
        local=chain[:2],
    )
    add(
        "bare_invite_id",
        "a code that is only the invite id commits to nothing",
        {"outcome": "refused", "reason": "malformed"},
        code=invite.invite_id,
        answer=answer,
    )
    add(
        "upper_case_commitment",
        "the commitment in upper case",
        {"outcome": "refused", "reason": "malformed"},
        code=code.upper(),
        answer=answer,
    )
    add(
        "another_groups_invite",
        "the server answers the code with another group's invite (same invite id)",
        {"outcome": "refused", "reason": "invite_mismatch"},
        code=code,
        answer={"invite": other.to_wire(), "changes": chain[:1]},
    )
    edited = {**invite.to_wire(), "max_uses": 5}
    add(
        "edited_invite",
        "the invite with its use count changed",
        {"outcome": "refused", "reason": "invite_mismatch"},
        code=code,
        answer={"invite": edited, "changes": chain[:4]},
    )
    add(
        "chain_swapped",
        "the right invite with a chain whose changes are out of order",
        {"outcome": "refused", "reason": "chain_invalid"},
        code=code,
        answer={"invite": invite.to_wire(), "changes": [chain[0], chain[2], chain[1]]},
    )
    add(
        "chain_forks_local",
        "the chain does not extend the one this device verified",
        {"outcome": "refused", "reason": "chain_fork"},
        code=code,
        answer=answer,
        local=[chain[0], {**chain[1], "at": chain[1]["at"] + 1}],
    )
    add(
        "not_admin",
        "an invite from carol, who is no longer a member at the head",
        {"outcome": "refused", "reason": "not_admin"},
        code=invite_code(from_carol),
        answer={"invite": from_carol.to_wire(), "changes": chain[:4]},
    )
    add(
        "forged_inviter",
        "an invite signed by bob in alice's name",
        {"outcome": "refused", "reason": "bad_signature"},
        code=invite_code(forged),
        answer={"invite": forged.to_wire(), "changes": chain[:4]},
    )
    add(
        "unknown_inviter",
        "no pinned key for the inviter",
        {"outcome": "refused", "reason": "unknown_sender"},
        code=code,
        answer={"invite": invite.to_wire(), "changes": chain[:3]},
        pins={k: v for k, v in everyone.items() if k != "bob"},
    )
    add(
        "expired",
        "the invite's expiry has passed",
        {"outcome": "refused", "reason": "invite_expired"},
        code=code,
        answer=answer,
        now=invite.expires_at + 1,
    )
    add(
        "malformed_answer",
        "the server's answer has no chain",
        {"outcome": "refused", "reason": "malformed"},
        code=code,
        answer={"invite": invite.to_wire(), "changes": None},
    )
    return cases


def own_key_cases(people: People) -> list[dict[str, Any]]:
    alice = people.public("alice")
    mallory = people.public("mallory")
    cases = []
    for name, note, published, expected in [
        ("same", "the server publishes alice's keys", alice.to_wire(), "accepted"),
        (
            "replaced",
            "the server publishes mallory's keys under alice's name",
            {**mallory.to_wire(), "username": "alice"},
            "own_keys_changed",
        ),
        (
            "other_encryption_key",
            "alice's signing key with mallory's encryption key and binding",
            {
                **alice.to_wire(),
                "encryption_key": mallory.to_wire()["encryption_key"],
                "encryption_key_signature": mallory.to_wire()["encryption_key_signature"],
            },
            "own_keys_changed",
        ),
    ]:
        wire = {k: v for k, v in published.items() if k != "username"}
        identity = PublicIdentity(
            Username("alice"),
            b64decode(wire["signing_key"]),
            b64decode(wire["encryption_key"]),
            b64decode(wire["encryption_key_signature"]),
        )
        result = decide_own_keys(people.private["alice"], identity)
        actual = "accepted" if result is None else result.reason
        if actual != expected:
            raise RuntimeError(f"decisions.own_keys {name}: {actual}")
        cases.append({"name": name, "note": note, "me": "alice", "published": wire, "expected": expected})
    return cases


def peer_cases() -> list[dict[str, Any]]:
    alice_bob = direct_conversation_id(Username("alice"), Username("bob"))
    cases = []
    for name, note, candidates, expected in [
        ("listed_pair", "the server lists alice and bob", ["alice", "bob"], "bob"),
        ("extra_name_first", "the server lists mallory before bob", ["mallory", "bob"], "bob"),
        (
            "only_mallory",
            "the server lists mallory as alice's contact in alice and bob's conversation",
            ["alice", "mallory"],
            None,
        ),
        ("nobody", "the server lists no one", [], None),
    ]:
        actual = direct_peer(Username("alice"), alice_bob, candidates)
        if actual != expected:
            raise RuntimeError(f"decisions.direct_peers {name}: {actual}")
        cases.append(
            {
                "name": name,
                "note": note,
                "me": "alice",
                "conversation_id": alice_bob,
                "candidates": candidates,
                "expected": expected,
            }
        )
    return cases


def _receipt_outcome(decision: Any) -> dict[str, Any]:
    if isinstance(decision, Refused):
        return {"outcome": "refused", "reason": decision.reason}
    return {
        "outcome": "accepted",
        "conversation_id": decision.conversation_id,
        "reader": decision.reader,
        "status": decision.status,
        "message_ids": list(decision.message_ids),
    }


def run_receipt_case(people: People, case: Mapping[str, Any]) -> dict[str, Any]:
    """What the Python core decides for one ``decisions.receipts`` case."""
    decision = decide_receipt(
        case["frame"], me=case["me"], pins=_pins(people, case["pins"]), sent=case["sent"]
    )
    return _receipt_outcome(decision)


def receipt_cases(people: People, group_id: str, t0: int) -> list[dict[str, Any]]:
    """PROTOCOL.md 14.7, from alice's side: she sent two messages to bob, one to the group
    while carol was a member and one after carol's removal."""
    alice, bob = Username("alice"), Username("bob")
    dm = direct_conversation_id(alice, bob)
    m1 = "a1000000-0000-4000-8000-000000000001"
    m2 = "a1000000-0000-4000-8000-000000000002"
    m3 = "a1000000-0000-4000-8000-000000000003"
    m4 = "a1000000-0000-4000-8000-000000000004"
    from_bob = "b0000000-0000-4000-8000-000000000001"
    sent = {
        dm: {m1: ["alice", "bob"], m2: ["alice", "bob"]},
        group_id: {m3: ["alice", "bob", "carol"], m4: ["alice", "bob"]},
    }
    everyone = _everyone("alice", "bob", "carol", "mallory")
    cases: list[dict[str, Any]] = []

    def signed(reader: str, conversation: str, status: str, ids: list[str]) -> dict[str, Any]:
        return make_receipt(people.private[reader], conversation, status, ids).to_wire()

    def frame(receipt: object, **server: Any) -> dict[str, Any]:
        """The inbox entry as the server relays it: its own view beside the signed receipt."""
        view = {"message_ids": [m1], "recipient": "bob", "status": "delivered", "at": t0}
        return {"type": "receipt", "seq": 5, **view, **server, "receipt": receipt}

    def add(name: str, note: str, expected: dict[str, Any], entry: object, **inputs: Any) -> None:
        case = {
            "name": name,
            "note": note,
            "me": inputs.get("me", "alice"),
            "frame": entry,
            "pins": inputs.get("pins", everyone),
            "sent": inputs.get("sent", sent),
            "expected": expected,
        }
        actual = run_receipt_case(people, case)
        if actual != expected:
            raise RuntimeError(f"decisions.receipts {name}: expected {expected}, got {actual}")
        cases.append(case)

    def accepted(conversation: str, reader: str, status: str, ids: list[str]) -> dict[str, Any]:
        return {
            "outcome": "accepted",
            "conversation_id": conversation,
            "reader": reader,
            "status": status,
            "message_ids": ids,
        }

    def refused(reason: str) -> dict[str, Any]:
        return {"outcome": "refused", "reason": reason}

    delivered = signed("bob", dm, "delivered", [m1, m2])
    read = signed("bob", dm, "read", [m1])
    add(
        "delivered_direct",
        "bob has both of alice's messages",
        accepted(dm, "bob", "delivered", [m1, m2]),
        frame(delivered, message_ids=[m1, m2]),
    )
    add(
        "read_direct",
        "bob has read alice's first message",
        accepted(dm, "bob", "read", [m1]),
        frame(read, status="read"),
    )
    add(
        "read_in_group",
        "carol's receipt names alice's message and one of bob's: only alice's is hers to move",
        accepted(group_id, "carol", "read", [m3]),
        frame(signed("carol", group_id, "read", [m3, from_bob]), recipient="carol", status="read"),
    )
    add(
        "some_ids_unknown",
        "bob's receipt names a message alice never sent, beside one she did",
        accepted(dm, "bob", "read", [m1]),
        frame(signed("bob", dm, "read", [m1, "c0000000-0000-4000-8000-000000000009"]), status="read"),
    )
    add(
        "server_view_ignored",
        "the server's members beside the receipt say carol read m2; the signed receipt says bob has m1",
        accepted(dm, "bob", "delivered", [m1]),
        frame(signed("bob", dm, "delivered", [m1]), message_ids=[m2], recipient="carol", status="read"),
    )
    # The attack of issue 11, 3.10: receipts the server makes up.
    server_claim = {"type": "receipt", "seq": 5, "message_ids": [m1], "recipient": "bob", "at": t0}
    add(
        "unsigned_read",
        "a read receipt the server made (no reader's signature): it moves nothing",
        refused("unsigned"),
        {**server_claim, "status": "read"},
    )
    add(
        "unsigned_delivered",
        "a delivery receipt the server made from an acknowledgement: the server's claim only",
        refused("unsigned"),
        {**server_claim, "status": "delivered"},
    )
    add(
        "status_changed",
        "bob's delivery receipt with its status changed to read",
        refused("bad_signature"),
        frame({**delivered, "status": "read"}),
    )
    add(
        "id_added",
        "bob's read receipt for m1 with m2 added",
        refused("bad_signature"),
        frame({**read, "message_ids": [m1, m2]}),
    )
    add(
        "reader_changed",
        "bob's receipt presented as carol's",
        refused("bad_signature"),
        frame({**read, "reader": "carol"}),
    )
    forged_bytes = receipt_signed_bytes(dm, "bob", "read", [m1, m2])
    add(
        "forged_with_servers_key",
        "a read receipt in bob's name, signed with another key (mallory's)",
        refused("bad_signature"),
        frame(
            {
                **read,
                "message_ids": [m1, m2],
                "signature": b64encode(ed25519_sign(people.private["mallory"].signing_private, forged_bytes)),
            }
        ),
    )
    add(
        "reader_not_pinned",
        "no pinned key for the reader",
        refused("unknown_sender"),
        frame(read),
        pins={k: v for k, v in everyone.items() if k != "bob"},
    )
    add(
        "key_changed",
        "alice pinned mallory's keys for bob before a key change; bob's real keys are pending",
        refused("key_changed"),
        frame(read),
        pins={**everyone, "bob": {"identity": "mallory", "pending": "bob"}},
    )
    add(
        "reader_not_a_recipient",
        "mallory validly signs that she read alice's message to bob",
        refused("wrong_members"),
        frame(signed("mallory", dm, "read", [m1]), recipient="mallory"),
    )
    add(
        "removed_member",
        "carol, removed before m4 was sent, validly signs that she read it",
        refused("wrong_members"),
        frame(signed("carol", group_id, "read", [m4]), recipient="carol"),
    )
    add(
        "own_receipt",
        "alice's own read receipt for her message, delivered back to her",
        refused("wrong_members"),
        frame(signed("alice", dm, "read", [m1]), recipient="alice"),
    )
    add(
        "not_my_message",
        "bob's receipt for his own message, delivered to alice",
        refused("not_for_me"),
        frame(signed("bob", dm, "read", [from_bob])),
    )
    add(
        "other_conversation",
        "bob's receipt names alice's direct message under the group's id",
        refused("not_for_me"),
        frame(signed("bob", group_id, "read", [m1])),
    )
    add(
        "nothing_sent",
        "a genuine receipt for a device that has no record of sending anything",
        refused("not_for_me"),
        frame(read),
        sent={},
    )
    add(
        "ids_unsorted",
        "a receipt whose ids are out of order",
        refused("malformed"),
        frame({**delivered, "message_ids": [m2, m1]}),
    )
    add("receipt_null", "the signed receipt is null", refused("malformed"), frame(None))
    add("frame_not_object", "the inbox entry is a list", refused("malformed"), [frame(read)])
    add(
        "future_version",
        "a receipt of protocol version 2",
        refused("unsupported_version"),
        frame({**read, "v": 2}),
    )
    return cases


def decisions_section(
    people: People,
    factory: Factory,
    envelopes: Mapping[str, Any],
    groups: Mapping[str, Any],
    *,
    group_id: str,
    t0: int,
) -> dict[str, Any]:
    envelopes = copy.deepcopy(dict(envelopes))
    return {
        "messages": message_cases(people, factory, envelopes, group_id),
        **group_cases(people, groups, group_id),
        "group_names": name_cases(),
        "invites": invite_cases(people, groups, group_id, t0),
        "own_keys": own_key_cases(people),
        "direct_peers": peer_cases(),
        "receipts": receipt_cases(people, group_id, t0),
    }


__all__ = ["Callable", "decisions_section", "run_message_case", "run_receipt_case"]
