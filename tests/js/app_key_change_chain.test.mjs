// A member's key change and the group chains a browser already verified (PROTOCOL.md
// 13.7, 14.3): the core checks each change's signature once, with the keys pinned when it
// first saw the change, as the Python core does (`verify_chain(verified_prefix=...)`).
// Before web/protocol/groups.js had `verifiedPrefix`, the browser re-checked the whole
// chain with the keys pinned now and refused, after alice's accepted key change, the
// chain Python accepts.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { decideGroupChain } from "../../src/securechat/web/core/index.js";
import {
  GroupChange,
  PrivateIdentity,
  VerificationFailed,
  makeInvite,
  signChange,
  verifyChain,
} from "../../src/securechat/web/protocol/index.js";
import { privateIdentity } from "./support.mjs";

const AT = 1_767_225_600_000;

/** A chain alice starts with her first keys; what follows is signed with her new ones. */
async function scenario() {
  const alice = await privateIdentity("alice");
  const bob = await privateIdentity("bob");
  const newAlice = await PrivateIdentity.generate("alice");
  const create = await signChange(alice, null, "create", ["bob"], { at: AT });
  const first = await verifyChain([create], () => alice.public);
  const add = await signChange(newAlice, first, "add", ["carol"], { at: AT + 1 });
  // Pins after bob accepted alice's key change: her new keys.
  const pins = new Map([
    ["alice", { identity: newAlice.public, pending: null }],
    ["bob", { identity: bob.public, pending: null }],
  ]);
  return { alice, newAlice, create, add, first, pins };
}

describe("a chain verified before a member's key change", () => {
  test("extends with the new key: the verified prefix is not checked again", async () => {
    const { create, add, pins } = await scenario();
    const decision = await decideGroupChain([create.toWire()], [create.toWire(), add.toWire()], {
      groupId: create.groupId,
      pins,
    });
    assert.equal(decision.outcome, "accepted");
    assert.deepEqual(
      decision.new.map((change) => change.seq),
      [1],
    );
    assert.deepEqual(decision.state.members, ["alice", "bob", "carol"]);
  });

  test("is re-read from storage alone (the whole chain as its own prefix) after the change", async () => {
    const { create, add, pins } = await scenario();
    const wires = [create.toWire(), add.toWire()];
    const decision = await decideGroupChain(wires, wires, { groupId: create.groupId, pins });
    assert.equal(decision.outcome, "accepted");
    assert.deepEqual(decision.new, []);
  });

  test("first met after the change, it does not verify (13.7)", async () => {
    const { create, add, pins } = await scenario();
    const decision = await decideGroupChain([], [create.toWire(), add.toWire()], { groupId: create.groupId, pins });
    assert.deepEqual(decision, { outcome: "refused", reason: "chain_invalid", claim: null });
  });

  test("a forged change after the prefix is still refused", async () => {
    const { create, first, pins } = await scenario();
    const mallory = await privateIdentity("mallory");
    const forged = await signChange(mallory, first, "add", ["mallory"], { at: AT + 1 });
    const wire = { ...forged.toWire(), actor: "alice" };
    const decision = await decideGroupChain([create.toWire()], [create.toWire(), wire], {
      groupId: create.groupId,
      pins,
    });
    assert.equal(decision.outcome, "refused");
    assert.equal(decision.reason, "chain_invalid");
  });

  test("the prefix's rules and hashes are checked even though its signatures are not", async () => {
    const { create, add, pins } = await scenario();
    // The prefix claims seq 1 comes right after a change it does not hash to.
    const broken = { ...add.toWire(), prev: "00".repeat(32) };
    const decision = await decideGroupChain([create.toWire(), broken], [create.toWire(), broken], {
      groupId: create.groupId,
      pins,
    });
    assert.equal(decision.outcome, "refused");
    assert.equal(decision.reason, "chain_invalid");
  });
});

describe("verifyChain's verifiedPrefix", () => {
  test("a join in the prefix keeps its invite unchecked too; after it, checked", async () => {
    const { alice, newAlice, create, first } = await scenario();
    const carol = await privateIdentity("carol");
    const invite = await makeInvite(alice, create.groupId, { expiresAt: AT + 10_000, maxUses: 1 });
    const join = await signChange(carol, first, "join", [], { invite, at: AT + 2 });
    const lookup = (/** @type {string} */ name) =>
      name === "alice" ? newAlice.public : name === "carol" ? carol.public : null;
    const changes = [create, GroupChange.fromWire(join.toWire())];
    const state = await verifyChain(changes, lookup, { verifiedPrefix: 2 });
    assert.deepEqual(state.members, ["alice", "bob", "carol"]);
    // With only the create verified before, the invite is checked with alice's new key.
    await assert.rejects(verifyChain(changes, lookup, { verifiedPrefix: 1 }), VerificationFailed);
    await assert.rejects(verifyChain(changes, lookup), VerificationFailed);
  });

  test("refuses a prefix that is not a non-negative integer", async () => {
    const { create } = await scenario();
    for (const verifiedPrefix of [-1, 0.5, Number.NaN]) {
      await assert.rejects(verifyChain([create], () => null, { verifiedPrefix }), RangeError);
    }
  });
});
