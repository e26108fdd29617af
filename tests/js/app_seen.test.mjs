// Seen records and replay in the browser app (app/seen.js, app/receive.js), without a
// DOM or IndexedDB: the receiver asks the core (PROTOCOL.md 14.1, 14.2) with the record
// of each message id and stores what it returns. A message first seen in history is
// seen; the server delivering it again into the inbox is never a new message.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Receiver, refusedItem } from "../../src/securechat/web/app/receive.js";
import { SeenBook, claimedIds, seenRecordFrom } from "../../src/securechat/web/app/seen.js";
import { directConversationId, sealMessage } from "../../src/securechat/web/protocol/index.js";
import { privateIdentity } from "./support.mjs";

const MESSAGE_ID = "3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f";

/** A receiver for alice, bob pinned, with a seen store in memory (what IndexedDB holds). */
async function aliceReceiving(stored = new Map()) {
  const alice = await privateIdentity("alice");
  const bob = await privateIdentity("bob");
  const pinned = new Map([
    ["alice", alice.public],
    ["bob", bob.public],
  ]);
  const seen = new SeenBook({
    get: async (id) => stored.get(id),
    put: async (id, record) => void stored.set(id, record),
  });
  const receiver = new Receiver({
    me: alice,
    seen,
    pins: async (names) =>
      new Map([...names].filter((name) => pinned.has(name)).map((name) => [name, { identity: pinned.get(name), pending: null }])),
    groupState: async () => null,
    noteName: async () => "unverified",
  });
  return { alice, bob, receiver, stored };
}

/** bob's message to alice, as the inbox and history carry it. */
async function fromBob(text, { messageId = MESSAGE_ID, sentAt = 1_767_225_600_000 } = {}) {
  const alice = await privateIdentity("alice");
  const bob = await privateIdentity("bob");
  const conversation = await directConversationId("alice", "bob");
  const envelope = await sealMessage(bob, conversation, new Map([["alice", alice.public], ["bob", bob.public]]), { type: "text", text }, { messageId, sentAt });
  return { conversation, wire: envelope.toWire() };
}

/** @param {object} wire @param {number} seq */
const frame = (wire, seq) => ({ type: "message", seq, envelope: wire, server_ts: 99, sender: "bob", message_id: MESSAGE_ID });

describe("seen records", () => {
  test("are {signature, seq}; an old bare position reads as seen with the offered signature", () => {
    assert.deepEqual(seenRecordFrom({ signature: "c2ln", seq: 4 }, "other"), { signature: "c2ln", seq: 4 });
    assert.deepEqual(seenRecordFrom({ signature: "c2ln", seq: null }, null), { signature: "c2ln", seq: null });
    assert.deepEqual(seenRecordFrom(4, "c2ln"), { signature: "c2ln", seq: 4 });
    assert.deepEqual(seenRecordFrom(0, "c2ln"), { signature: "c2ln", seq: null });
    for (const garbage of [undefined, null, "4", -1, 1.5, { signature: 1, seq: 1 }, { signature: "x", seq: 0 }, { signature: "x" }]) {
      assert.equal(seenRecordFrom(garbage, "c2ln"), undefined, JSON.stringify(garbage));
    }
    assert.equal(seenRecordFrom(4, null), undefined);
  });

  test("an envelope's claimed id and signature are read without trusting them", () => {
    assert.deepEqual(claimedIds({ message_id: "m", signature: "s" }), { messageId: "m", signature: "s" });
    assert.deepEqual(claimedIds({ message_id: 3 }), { messageId: null, signature: null });
    assert.deepEqual(claimedIds("text"), { messageId: null, signature: null });
  });
});

describe("the inbox", () => {
  test("a new message is shown and its position kept; the same entry again is a transport repeat", async () => {
    const { receiver, stored } = await aliceReceiving();
    const { wire } = await fromBob("hello");
    const first = await receiver.inboxMessage(frame(wire, 5), 5);
    assert.equal(first?.item.verified, true);
    assert.equal(first?.item.text, "hello");
    assert.equal(first?.peer, "bob");
    assert.deepEqual(stored.get(MESSAGE_ID), { signature: wire.signature, seq: 5 });
    assert.equal(await receiver.inboxMessage(frame(wire, 5), 5), null);
  });

  test("the same message at another position is a replay, shown as one", async () => {
    const { receiver, stored } = await aliceReceiving();
    const { wire } = await fromBob("hello");
    await receiver.inboxMessage(frame(wire, 5), 5);
    const again = await receiver.inboxMessage(frame(wire, 9), 9);
    assert.equal(again?.item.verified, false);
    assert.equal(again?.item.refusal, "replayed");
    assert.equal(again?.item.text, null);
    assert.equal(again?.item.sender, "bob");
    assert.deepEqual(stored.get(MESSAGE_ID), { signature: wire.signature, seq: 5 });
  });

  test("another envelope under an id already accepted is a replay", async () => {
    const { receiver } = await aliceReceiving();
    await receiver.inboxMessage(frame((await fromBob("hello")).wire, 5), 5);
    const other = await receiver.inboxMessage(frame((await fromBob("changed", { sentAt: 1_767_225_600_001 })).wire, 6), 6);
    assert.equal(other?.item.refusal, "replayed");
  });
});

describe("history counts as seen", () => {
  test("a message history showed is not new when the inbox brings it, and a second copy is a replay", async () => {
    const { receiver, stored } = await aliceReceiving();
    const { conversation, wire } = await fromBob("hello");
    const shown = await receiver.historyItem(conversation, { envelope: wire, server_ts: 99 });
    assert.equal(shown.verified, true);
    assert.deepEqual(stored.get(MESSAGE_ID), { signature: wire.signature, seq: null });
    assert.equal(await receiver.inboxMessage(frame(wire, 7), 7), null);
    assert.deepEqual(stored.get(MESSAGE_ID), { signature: wire.signature, seq: 7 });
    const replay = await receiver.inboxMessage(frame(wire, 8), 8);
    assert.equal(replay?.item.refusal, "replayed");
  });

  test("a page of history shows a message already seen (it holds no plaintext) without changing its record", async () => {
    const { receiver, stored } = await aliceReceiving();
    const { conversation, wire } = await fromBob("hello");
    await receiver.inboxMessage(frame(wire, 5), 5);
    const again = await receiver.historyItem(conversation, { envelope: wire, server_ts: 99 });
    assert.equal(again.verified, true);
    assert.equal(again.text, "hello");
    assert.deepEqual(stored.get(MESSAGE_ID), { signature: wire.signature, seq: 5 });
  });

  test("a list preview is not remembered: the message's inbox entry is still new", async () => {
    const { receiver, stored } = await aliceReceiving();
    const { conversation, wire } = await fromBob("hello");
    const preview = await receiver.historyItem(conversation, { envelope: wire }, { remember: false });
    assert.equal(preview.verified, true);
    assert.equal(stored.has(MESSAGE_ID), false);
    assert.equal((await receiver.inboxMessage(frame(wire, 3), 3))?.item.verified, true);
  });

  test("history delivered into another conversation than the envelope names is refused", async () => {
    const { receiver, stored } = await aliceReceiving();
    const { wire } = await fromBob("hello");
    const moved = await receiver.historyItem(await directConversationId("alice", "mallory"), { envelope: wire });
    assert.equal(moved.refusal, "wrong_conversation");
    assert.equal(stored.size, 0);
  });
});

describe("records written before", () => {
  test("a bare inbox position: the same position repeats, another replays", async () => {
    const { wire } = await fromBob("hello");
    const { receiver } = await aliceReceiving(new Map([[MESSAGE_ID, 5]]));
    assert.equal(await receiver.inboxMessage(frame(wire, 5), 5), null);
    assert.equal((await receiver.inboxMessage(frame(wire, 6), 6))?.item.refusal, "replayed");
  });

  test("an own message (position 0) is a duplicate when it comes back through the inbox", async () => {
    const { wire } = await fromBob("hello");
    const { receiver } = await aliceReceiving(new Map([[MESSAGE_ID, 0]]));
    assert.equal(await receiver.inboxMessage(frame(wire, 6), 6), null);
  });
});

test("what cannot be parsed is shown under the server's word, marked as such", () => {
  const item = refusedItem(
    { outcome: "refused", reason: "malformed", claim: null },
    { delivery: { messageId: "<b>id</b>", conversationId: "x", sender: "<svg>", serverTs: null }, envelopeText: "{}" },
  );
  assert.deepEqual(
    { id: item.messageId, sender: item.sender, text: item.text, verified: item.verified, refusal: item.refusal },
    { id: "<b>id</b>", sender: "<svg>", text: null, verified: false, refusal: "malformed" },
  );
});

test("a conversation whose contact the server's list did not give learns it from an accepted message in its history", async () => {
  const { History } = await import("../../src/securechat/web/app/history.js");
  const { Conversations } = await import("../../src/securechat/web/app/conversations.js");
  const { receiver } = await aliceReceiving();
  const { conversation: id, wire } = await fromBob("hello");
  const conversations = new Conversations("alice");
  const conversation = conversations.direct(id, null);
  let listChanged = 0;
  const history = new History({
    api: { history: async () => ({ messages: [{ envelope: wire, server_ts: 99 }], next_before: null }) },
    me: "alice",
    receiver,
    conversations,
    changed: () => {},
    listChanged: () => void (listChanged += 1),
  });
  await history.loadOlder(conversation);
  assert.equal(conversation.peer, "bob");
  assert.equal(listChanged, 1);
  assert.deepEqual(
    conversation.messages.map((m) => [m.text, m.verified]),
    [["hello", true]],
  );
});
