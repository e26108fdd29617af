"""The identity-transition cases of tests/data/decisions_v2_vectors.json (PROTOCOL.md 15.11).

Imported by ``make_v2_decision_vectors.py`` (sections ``identity_transitions`` and
``identity_transition_signing``). Keys come from ``make_v2_vectors.secret``, so the cases
are deterministic (Ed25519 signing is). Each case's outcome and reason are written here
by hand; the Python core is run from the JSON inputs and the script stops if it
disagrees. The rest of the expected decision is what the code returns.
"""

from __future__ import annotations

import copy
from typing import Any

from make_v2_vectors import T0, secret

from securechat.client.core.v2.transitions import (
    IdentityPin,
    accept_identity_transition,
    current_key_from_wire,
    pin_from_wire,
    transition_decision_to_wire,
)
from securechat.protocol.encoding import b64encode
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.primitives import ed25519_raw_public, ed25519_sign_raw
from securechat.protocol.v2.transitions import MAX_TRANSITIONS, make_transition, transition_bytes

ALICE = Username("alice")
SEEDS = {name: secret("identity", "alice", name) for name in ("k1", "k2", "k3", "k4")}
KEYS = {name: ed25519_raw_public(seed) for name, seed in SEEDS.items()}
T1, T2, T3 = T0 + 86_400_000, T0 + 2 * 86_400_000, T0 + 3 * 86_400_000
# A small-order Ed25519 point (5.1's list): a key that every party can "sign" for.
SMALL_ORDER = bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000")


def step(old: str, new: str, at: int, username: Username = ALICE) -> dict[str, Any]:
    return make_transition(SEEDS[old], SEEDS[new], username, at).to_wire()


def pin(key: str, since: int | None = None, verified: bool = True) -> dict[str, Any]:
    return IdentityPin(ALICE, KEYS[key], since, verified).to_wire()


def _resigned(wire: dict[str, Any], member: str, seed_name: str) -> dict[str, Any]:
    """The same transition with ``member`` signed by another key over the same bytes."""
    out = copy.deepcopy(wire)
    t = make_transition(SEEDS["k1"], SEEDS["k2"], ALICE, T1)
    out[member] = b64encode(ed25519_sign_raw(SEEDS[seed_name], t.signed_bytes))
    return out


def _small_order(member: str) -> dict[str, Any]:
    out = step("k1", "k2", T1)
    out[member] = b64encode(SMALL_ORDER)
    return out


def _cases() -> list[tuple[str, str, dict[str, Any], str, list[Any], dict[str, Any]]]:
    """(name, note, pin, current key name or raw key, chain, expected outcome/reason)."""
    missing_new = step("k1", "k2", T1)
    del missing_new["new_signature"]
    v3 = step("k1", "k2", T1)
    v3["v"] = 3
    same_key = step("k1", "k2", T1)
    same_key["new_key"] = same_key["old_key"]
    long_chain = [step("k1", "k2", T1)] * (MAX_TRANSITIONS + 1)
    accepted = {"outcome": "accepted"}

    def refused(reason: str) -> dict[str, Any]:
        return {"outcome": "refused", "reason": reason}

    return [
        ("valid_single_step", "one hand-over from the pinned key, signed by both keys: re-pin, verified mark off",
         pin("k1"), "k2", [step("k1", "k2", T1)], accepted),
        ("valid_two_steps", "two hand-overs in order from the pinned key to the served one",
         pin("k1"), "k3", [step("k1", "k2", T1), step("k2", "k3", T2)], accepted),
        ("valid_after_an_earlier_transition", "the pin came from a transition at T1; the next one is later",
         pin("k2", T1, verified=False), "k3", [step("k2", "k3", T2)], accepted),
        ("unchanged", "the server serves the pinned key and no transition",
         pin("k1"), "k1", [], {"outcome": "unchanged"}),
        ("unsigned_key_change", "another key served without a transition: 8.3's key change, sending stays blocked",
         pin("k1"), "k2", [], refused("key_changed")),
        ("chain_not_starting_at_pin", "the first transition's old key is not the pinned key",
         pin("k1"), "k3", [step("k2", "k3", T2)], refused("transition_invalid")),
        ("broken_link", "the second transition does not start at the first one's new key",
         pin("k1"), "k4", [step("k1", "k2", T1), step("k3", "k4", T2)], refused("transition_invalid")),
        ("at_not_increasing", "the second transition is not later than the first",
         pin("k1"), "k3", [step("k1", "k2", T2), step("k2", "k3", T2)], refused("transition_invalid")),
        ("key_comes_back", "a chain that hands the account back to a key it left",
         pin("k1"), "k1", [step("k1", "k2", T1), step("k2", "k1", T2)], refused("transition_invalid")),
        ("ends_elsewhere", "a valid chain that does not end at the key the server serves",
         pin("k1"), "k3", [step("k1", "k2", T1)], refused("transition_invalid")),
        ("missing_new_signature", "no new_signature member: does not parse",
         pin("k1"), "k2", [missing_new], refused("malformed")),
        ("wrong_new_signature", "new_signature made by another key than new_key: no proof of possession",
         pin("k1"), "k2", [_resigned(step("k1", "k2", T1), "new_signature", "k3")], refused("bad_signature")),
        ("old_signature_by_another_key", "old_signature made by another key than the pinned old key",
         pin("k1"), "k2", [_resigned(step("k1", "k2", T1), "old_signature", "k3")], refused("bad_signature")),
        ("rollback_older_transition_replayed", "the pin is k3 (after k1->k2->k3); the server replays k1->k2",
         pin("k3", T2, verified=False), "k2", [step("k1", "k2", T1)], refused("transition_invalid")),
        ("rollback_not_newer_than_pin", "a transition from the pinned key dated no later than the pin's last one",
         pin("k1", T3, verified=False), "k2", [step("k1", "k2", T1)], refused("transition_invalid")),
        ("another_username", "a transition signed by both keys, but for bob",
         pin("k1"), "k2", [step("k1", "k2", T1, Username("bob"))], refused("transition_invalid")),
        ("small_order_new_key", "new_key of small order (5.1): malformed",
         pin("k1"), "k2", [_small_order("new_key")], refused("malformed")),
        ("small_order_old_key", "old_key of small order (5.1): malformed",
         pin("k1"), "k2", [_small_order("old_key")], refused("malformed")),
        ("same_old_and_new_key", "a transition that changes nothing is malformed",
         pin("k1"), "k1", [same_key], refused("malformed")),
        ("unsupported_version", "v = 3", pin("k1"), "k2", [v3], refused("unsupported_version")),
        ("too_many_steps", "17 transitions: more than a chain may hold",
         pin("k1"), "k2", long_chain, refused("malformed")),
    ]  # fmt: skip


def transition_cases() -> list[dict[str, Any]]:
    out = []
    for name, note, pin_wire, current, chain, expected in _cases():
        inputs = {"pin": pin_wire, "current_key": b64encode(KEYS[current]), "transitions": chain}
        decision = transition_decision_to_wire(
            accept_identity_transition(
                pin_from_wire(inputs["pin"]),
                current_key_from_wire(inputs["current_key"]),
                inputs["transitions"],
            )
        )
        for member, value in expected.items():
            if decision.get(member) != value:
                raise SystemExit(
                    f"identity_transitions/{name}: expected {member}={value!r}, the code gives {decision.get(member)!r}"
                )
        out.append({"name": name, "note": note, "input": inputs, "expected": decision})
    return out


def signing_cases() -> list[dict[str, Any]]:
    """The owning side: seeds, the signed bytes and the transition (deterministic Ed25519)."""
    out = []
    for old, new, at in (("k1", "k2", T1), ("k2", "k3", T2)):
        t = make_transition(SEEDS[old], SEEDS[new], ALICE, at)
        out.append(
            {
                "username": ALICE,
                "old_seed": b64encode(SEEDS[old]),
                "new_seed": b64encode(SEEDS[new]),
                "at": at,
                "signed_bytes": transition_bytes(ALICE, t.old_key, t.new_key, at).hex(),
                "transition": t.to_wire(),
            }
        )
    return out
