// What a new device of an account shows before and after it has read a group's history
// (issue 16, defects 1 and 2), without a DOM: a group without a known name is called
// after its verified members, never "Unnamed group" and never a name from the server;
// membership lines take their place by time, however late the chain was verified; the
// list's line is the newest item; an admin owes the name to whoever joined after it.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Conversations, insertByTime } from "../../src/securechat/web/app/conversations.js";
import { groupTitle } from "../../src/securechat/web/app/group-text.js";
import { GroupBook } from "../../src/securechat/web/app/groups.js";
import { changeLine, mergeChangeLines } from "../../src/securechat/web/app/history.js";
import { previewText } from "../../src/securechat/web/app/message-view.js";
import { GroupChange, makeInvite, signChange, verifyChain } from "../../src/securechat/web/protocol/index.js";
import { privateIdentity } from "./support.mjs";

const AT = 1_767_225_600_000;

/** @returns {import("../../src/securechat/web/app/conversations.js").ChatMessage} */
function message(messageId, sentAt, text = messageId) {
  return {
    messageId,
    conversationId: "grp-x",
    sender: "alice",
    text,
    sentAt,
    serverTs: sentAt + 5,
    verified: true,
    refusal: null,
    reason: null,
    status: "received",
    envelopeText: null,
  };
}

/** alice's group with bob and mallory, and carol's join with alice's invite later. */
async function group() {
  const identities = new Map();
  for (const name of ["alice", "bob", "carol", "mallory"]) identities.set(name, await privateIdentity(name));
  const alice = identities.get("alice");
  const create = await signChange(alice, null, "create", ["bob", "mallory"], { at: AT });
  const first = await verifyChain([create], (name) => identities.get(name).public);
  const invite = await makeInvite(alice, create.groupId, { expiresAt: AT + 3_600_000, maxUses: 1 });
  const join = await signChange(identities.get("carol"), first, "join", [], { invite, at: AT + 1000 });
  const joined = await verifyChain([create, join], (name) => identities.get(name).public);
  /** @param {GroupChange[]} changes @param {import("../../src/securechat/web/protocol/index.js").GroupState} state */
  const record = (changes, state, name = null) => ({
    id: create.groupId,
    chain: changes.map((change) => change.toWire()),
    state,
    name,
    status: /** @type {const} */ ("member"),
    problem: null,
    serverMembers: null,
    mismatch: null,
  });
  return { create, join, first, joined, record, groupId: create.groupId };
}

describe("a group's title", () => {
  test("its signed name when one is known, else who is in it", async () => {
    const { first, record } = await group();
    assert.deepEqual(groupTitle(record([], first, { name: "Team", sentAt: AT, messageId: "m" }), "bob"), {
      title: "Team",
      named: true,
    });
    assert.deepEqual(groupTitle(record([], first), "bob"), { title: "Group with alice and mallory", named: false });
    assert.equal(groupTitle(record([], first), "carol").title, "Group with alice, bob and mallory");
  });

  test("many members are counted, and without a verified chain nothing is claimed", () => {
    const state = { members: ["a1", "a2", "a3", "a4", "a5", "me"] };
    const base = { id: "grp-1", chain: [], name: null, status: "member", problem: null, serverMembers: null, mismatch: null };
    assert.equal(groupTitle(/** @type {any} */ ({ ...base, state }), "me").title, "Group with a1, a2, a3 and 2 others");
    assert.equal(groupTitle(/** @type {any} */ ({ ...base, state: { members: ["a1", "a2", "a3", "a4", "me"] } }), "me").title, "Group with a1, a2, a3 and a4");
    assert.equal(groupTitle(/** @type {any} */ ({ ...base, state: { members: ["me"] } }), "me").title, "Group with only you");
    assert.equal(groupTitle(/** @type {any} */ ({ ...base, state: null }), "me").title, "Group");
    assert.equal(groupTitle(/** @type {any} */ ({ ...base, state: null, problem: "chain_fork" }), "me").title, "Unverifiable group");
    assert.equal(groupTitle(undefined, "me").title, "Group");
  });
});

describe("membership lines on a new device", () => {
  test("a chain verified before the history was read: its lines go back to their time", async () => {
    const { create, first, record, groupId } = await group();
    const conversations = new Conversations("bob");
    const groupRecord = /** @type {any} */ (record([create], first));
    // The chain is verified first (its line is all there is), then a page of older messages comes.
    assert.equal(conversations.addLines(groupRecord, [changeLine(groupId, GroupChange.fromWire(create.toWire()))]), true);
    const conversation = conversations.group(groupRecord);
    const line = conversation.messages[0];
    conversation.messages = [message("named", AT + 10), message("hello", AT + 20), ...conversation.messages];
    Object.assign(conversation, { historyLoaded: true, historyComplete: true });
    mergeChangeLines(conversation);
    assert.deepEqual(
      conversation.messages.map((m) => m.messageId),
      [`change:${groupId}:0`, "named", "hello"],
    );
    // The same object: the view keeps what it drew for it.
    assert.equal(conversation.messages[0], line);
    // Placed again, nothing moves or doubles.
    mergeChangeLines(conversation);
    assert.deepEqual(conversation.messages.map((m) => m.messageId), [`change:${groupId}:0`, "named", "hello"]);
  });

  test("a line older than the oldest loaded message waits for the rest of the history", async () => {
    const { create, first, record, groupId } = await group();
    const conversations = new Conversations("bob");
    const conversation = conversations.group(/** @type {any} */ (record([create], first)));
    conversation.messages = [changeLine(groupId, GroupChange.fromWire(create.toWire()))];
    conversation.messages = [message("late", AT + 50), ...conversation.messages];
    Object.assign(conversation, { historyLoaded: true, historyComplete: false });
    mergeChangeLines(conversation);
    assert.deepEqual(conversation.messages.map((m) => m.messageId), ["late"]);
  });

  test("lines arriving later are put in their place by time", () => {
    const messages = [message("a", 10), message("c", 30)];
    insertByTime(messages, message("b", 20));
    insertByTime(messages, message("d", 40));
    insertByTime(messages, message("z", 0));
    assert.deepEqual(messages.map((m) => m.messageId), ["z", "a", "b", "c", "d"]);
  });

  test("the list shows the newest item, not an older membership line", async () => {
    const { create, first, record, groupId } = await group();
    const conversations = new Conversations("bob");
    const conversation = conversations.group(/** @type {any} */ (record([create], first)));
    conversation.messages = [changeLine(groupId, GroupChange.fromWire(create.toWire()))];
    assert.equal(previewText(conversation), "alice created the group with bob, mallory");
    conversation.preview = message("newest", AT + 100, "the newest");
    assert.equal(previewText(conversation), "alice: the newest");
    conversation.messages.push(message("live", AT + 200, "live one"));
    assert.equal(previewText(conversation), "alice: live one");
  });
});

describe("an admin owes the name", () => {
  /** @param {string} me */
  const book = (me) =>
    new GroupBook(/** @type {any} */ ({ me: { username: me }, changed: () => {}, adopted: () => {}, listStale: () => {} }));

  test("to someone who joined after it was sent, once", async () => {
    const { create, join, joined, record, groupId } = await group();
    const alice = book("alice");
    alice.records.set(groupId, /** @type {any} */ (record([create, join], joined, { name: "Team", sentAt: AT + 10, messageId: "m" })));
    assert.equal(alice.nameOwed(groupId), "Team");
    // Sent again after the join: owed no more.
    alice.records.set(groupId, /** @type {any} */ (record([create, join], joined, { name: "Team", sentAt: AT + 2000, messageId: "n" })));
    assert.equal(alice.nameOwed(groupId), null);
  });

  test("not by a member who is no admin, not without a name, not when nobody came since", async () => {
    const { create, join, first, joined, record, groupId } = await group();
    const bob = book("bob");
    bob.records.set(groupId, /** @type {any} */ (record([create, join], joined, { name: "Team", sentAt: AT + 10, messageId: "m" })));
    assert.equal(bob.nameOwed(groupId), null);
    const alice = book("alice");
    alice.records.set(groupId, /** @type {any} */ (record([create, join], joined)));
    assert.equal(alice.nameOwed(groupId), null);
    alice.records.set(groupId, /** @type {any} */ (record([create], first, { name: "Team", sentAt: AT + 10, messageId: "m" })));
    assert.equal(alice.nameOwed(groupId), null);
    assert.equal(alice.nameOwed("grp-unknown"), null);
  });
});
