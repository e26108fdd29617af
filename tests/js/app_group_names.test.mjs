// Group names and other group text in the browser app (app/group-text.js, the naming
// path of app/receive.js), without a DOM: the name is the newest by signed time, then
// message id (PROTOCOL.md 14.4), decided by the core only for accepted group_info
// messages, so a replayed naming message cannot roll it back.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  describeChange,
  groupWarning,
  listDifference,
  listNames,
  mismatchText,
  nameLine,
  nameRecordFrom,
} from "../../src/securechat/web/app/group-text.js";
import { Receiver } from "../../src/securechat/web/app/receive.js";
import { SeenBook } from "../../src/securechat/web/app/seen.js";
import { decideGroupName } from "../../src/securechat/web/core/index.js";
import { GroupChange, sealMessage, signChange, verifyChain } from "../../src/securechat/web/protocol/index.js";
import { privateIdentity } from "./support.mjs";

const AT = 1_767_225_600_000;

/**
 * bob's receiver in a group alice made with bob and carol; names kept as the group book
 * keeps them; seen records in memory.
 */
async function bobInGroup() {
  const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map((name) => privateIdentity(name)));
  const create = await signChange(alice, null, "create", ["bob", "carol"], { at: AT });
  const state = await verifyChain([create], () => alice.public);
  const publics = new Map([alice, bob, carol].map((identity) => [identity.username, identity.public]));
  /** @type {{name: import("../../src/securechat/web/core/groups.js").NameRecord | null}} */
  const record = { name: null };
  let namings = 0;
  const stored = new Map();
  const receiver = new Receiver({
    me: bob,
    seen: new SeenBook({ get: async (id) => stored.get(id), put: async (id, seen) => void stored.set(id, seen) }),
    pins: async (names) => new Map([...names].map((name) => [name, { identity: publics.get(name), pending: null }])),
    groupState: async () => state,
    noteName: async (id, message) => {
      namings += 1;
      const decision = decideGroupName(record.name, { ...message, group: state });
      if (decision.outcome === "accepted") record.name = { name: decision.name, sentAt: decision.sentAt, messageId: decision.messageId };
      return decision;
    },
  });
  /** @param {import("../../src/securechat/web/protocol/index.js").PrivateIdentity} sender */
  const naming = async (sender, name, sentAt, messageId) =>
    (await sealMessage(sender, create.groupId, publics, { type: "group_info", name }, { sentAt, messageId })).toWire();
  return { alice, carol, receiver, record, naming, groupId: create.groupId, namings: () => namings };
}

const ID = (n) => `${String(n).repeat(8)}-0000-4000-8000-000000000000`;

describe("a group's name", () => {
  test("the newest by signed time wins, whatever order the inbox brings them in", async () => {
    const { alice, receiver, record, naming } = await bobInGroup();
    const newer = await receiver.inboxMessage({ envelope: await naming(alice, "Newer", AT + 2, ID(2)) }, 1);
    const older = await receiver.inboxMessage({ envelope: await naming(alice, "Older", AT + 1, ID(1)) }, 2);
    assert.equal(newer?.item.text, "named the group “Newer”");
    assert.equal(older?.item.text, "sent a group name (“Older”), ignored: a newer name is known");
    assert.equal(record.name?.name, "Newer");
  });

  test("at the same signed time the greater message id wins", async () => {
    const { alice, receiver, record, naming } = await bobInGroup();
    await receiver.inboxMessage({ envelope: await naming(alice, "Tie winner", AT, ID(9)) }, 1);
    const loser = await receiver.inboxMessage({ envelope: await naming(alice, "Tie loser", AT, ID(1)) }, 2);
    assert.match(loser?.item.text ?? "", /ignored: a newer name is known$/);
    assert.equal(record.name?.name, "Tie winner");
  });

  test("a replayed naming message is refused before the name is considered: no roll-back", async () => {
    const { alice, receiver, record, naming, namings } = await bobInGroup();
    const old = await naming(alice, "Old", AT + 1, ID(1));
    await receiver.inboxMessage({ envelope: old }, 1);
    await receiver.inboxMessage({ envelope: await naming(alice, "New", AT + 2, ID(2)) }, 2);
    const replay = await receiver.inboxMessage({ envelope: old }, 3);
    assert.equal(replay?.item.refusal, "replayed");
    assert.equal(namings(), 2);
    assert.equal(record.name?.name, "New");
  });

  test("only an admin names it", async () => {
    const { carol, receiver, record, naming } = await bobInGroup();
    const hijack = await receiver.inboxMessage({ envelope: await naming(carol, "Hijacked", AT + 5, ID(5)) }, 1);
    assert.equal(hijack?.item.verified, true);
    assert.equal(hijack?.item.text, "sent a group name (“Hijacked”), ignored: it is not signed by an admin of the group");
    assert.equal(record.name, null);
  });

  test("in a page of history, a name since replaced reads as the name it was", async () => {
    const { alice, receiver, record, naming, groupId } = await bobInGroup();
    await receiver.inboxMessage({ envelope: await naming(alice, "New", AT + 2, ID(2)) }, 1);
    const old = await receiver.historyItem(groupId, { envelope: await naming(alice, "Old", AT + 1, ID(1)) });
    assert.equal(old.text, "named the group “Old”");
    assert.equal(record.name?.name, "New");
  });
});

describe("group text", () => {
  test("name lines for a direct chat and an unverified group", () => {
    assert.equal(nameLine("X", "direct", { live: true }), "sent a group name (“X”) in a direct chat; it is ignored");
    assert.equal(nameLine("X", "unverified", { live: false }), "sent a group name (“X”); the group is not verified here");
  });

  test("stored name records, old and new", () => {
    assert.deepEqual(nameRecordFrom({ name: { name: "A", sentAt: 5, messageId: "m" } }), { name: "A", sentAt: 5, messageId: "m" });
    assert.deepEqual(nameRecordFrom({ name: "A", nameAt: 5 }), { name: "A", sentAt: 5, messageId: "" });
    assert.deepEqual(nameRecordFrom({ name: "A" }), { name: "A", sentAt: 0, messageId: "" });
    for (const garbage of [null, {}, { name: null }, { name: { name: "A", sentAt: "5", messageId: "m" } }, "A"]) {
      assert.equal(nameRecordFrom(garbage), null, JSON.stringify(garbage));
    }
  });

  test("the server's list against the verified one", () => {
    assert.equal(listDifference(["alice", "bob"], ["bob", "alice"]), null);
    assert.deepEqual(listDifference(["alice", "bob"], ["alice", "mallory", "mallory"]), { extra: ["mallory"], missing: ["bob"] });
    assert.equal(
      mismatchText({ extra: ["mallory"], missing: [] }),
      "The server lists mallory, who was never added by a signed change. Sending is paused.",
    );
    assert.equal(listNames(["a", "b", "c"]), "a, b and c");
  });

  test("warnings and change lines", async () => {
    const base = { id: "grp-1", chain: [], state: null, name: null, status: "member", problem: null, serverMembers: null, mismatch: null };
    assert.equal(groupWarning(undefined), null);
    assert.equal(groupWarning(/** @type {any} */ (base)), null);
    assert.equal(
      groupWarning(/** @type {any} */ ({ ...base, problem: "chain_fork" })),
      "This group’s membership cannot be verified: the server's membership chain does not extend the one verified on this device. Sending is disabled.",
    );
    const alice = await privateIdentity("alice");
    const create = await signChange(alice, null, "create", ["bob"], { at: AT });
    assert.equal(describeChange(GroupChange.fromWire(create.toWire())), "created the group with bob");
  });
});
