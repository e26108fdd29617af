// Receipts in the browser app (app/receipts.js), without a DOM or IndexedDB: the page
// signs "delivered" per conversation and sender, "read" once per message, and a receipt
// moves an own message only when the core accepts it (PROTOCOL.md 9.3, 14.7).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ReceiptBook, chunks, sentRecordFrom, showStatus, statusOf } from "../../src/securechat/web/app/receipts.js";
import { Receipt, directConversationId, makeReceipt } from "../../src/securechat/web/protocol/index.js";
import { privateIdentity } from "./support.mjs";

const ID_1 = "00000000-0000-4000-8000-000000000001";
const ID_2 = "00000000-0000-4000-8000-000000000002";
const ID_3 = "00000000-0000-4000-8000-000000000003";
const GROUP = `grp-${"0123456789abcdef".repeat(2)}`;

/** A book for `me`, with `pinned` identities, records in memory, sent receipts collected. */
async function book(me, pinned = []) {
  const identity = await privateIdentity(me);
  const pins = new Map();
  for (const name of pinned) pins.set(name, { identity: (await privateIdentity(name)).public, pending: null });
  const stored = new Map();
  const sent = [];
  const receipts = new ReceiptBook({
    me: identity,
    pinOf: async (name) => new Map(pins.has(name) ? [[name, pins.get(name)]] : []),
    send: async (receipt) => void sent.push(Receipt.fromWire(receipt)),
    get: async (id) => stored.get(id),
    put: async (id, record) => void stored.set(id, structuredClone(record)),
  });
  return { receipts, stored, sent };
}

describe("app receipts: making", () => {
  test("delivered: one receipt per conversation and sender, ids sorted, none for my own", async () => {
    const { receipts, sent } = await book("bob");
    const dm = await directConversationId("alice", "bob");
    receipts.delivered(GROUP, "carol", ID_2);
    receipts.delivered(dm, "alice", ID_3);
    receipts.delivered(GROUP, "carol", ID_1);
    receipts.delivered(GROUP, "alice", ID_3);
    receipts.delivered(dm, "bob", ID_1);
    await receipts.sendDelivered();
    assert.deepEqual(
      sent.map((r) => [r.conversationId, r.reader, r.status, [...r.messageIds]]),
      [
        [dm, "bob", "delivered", [ID_3]],
        [GROUP, "bob", "delivered", [ID_3]],
        [GROUP, "bob", "delivered", [ID_1, ID_2]],
      ],
    );
    await receipts.sendDelivered();
    assert.equal(sent.length, 3);
  });

  test("read: only verified messages of others shown, once each, per sender", async () => {
    const { receipts, sent } = await book("bob");
    const message = (messageId, sender, verified = true) => ({ messageId, sender, verified, conversationId: GROUP });
    const items = [message(ID_1, "carol"), message(ID_2, "alice"), message(ID_3, "bob"), message("x", "dave", false)];
    await receipts.read(GROUP, items, [ID_1, ID_2, ID_3, "x"]);
    await receipts.read(GROUP, items, [ID_1, ID_2]);
    assert.deepEqual(
      sent.map((r) => [r.status, [...r.messageIds]]),
      [
        ["read", [ID_2]],
        ["read", [ID_1]],
      ],
    );
  });

  test("chunks of at most 100 ids", () => {
    const ids = Array.from({ length: 250 }, (_, i) => `id-${String(i).padStart(3, "0")}`);
    assert.deepEqual(
      chunks([...ids, ids[0]]).map((chunk) => chunk.length),
      [100, 100, 50],
    );
  });
});

describe("app receipts: checking", () => {
  test("only a receipt its reader signed moves my message, and it is kept", async () => {
    const { receipts, stored } = await book("alice", ["bob", "mallory"]);
    const dm = await directConversationId("alice", "bob");
    await receipts.noteSent(dm, ID_1, ["alice", "bob"]);
    const bob = await privateIdentity("bob");
    const mallory = await privateIdentity("mallory");

    const claim = { type: "receipt", seq: 5, message_ids: [ID_1], recipient: "bob", status: "read" };
    assert.deepEqual(await receipts.decide(claim), { outcome: "refused", reason: "unsigned", claim: null });
    const forged = { ...(await makeReceipt(mallory, dm, "read", [ID_1])).toWire(), reader: "bob" };
    assert.equal((await receipts.decide({ ...claim, receipt: forged })).reason, "bad_signature");
    const malloryOwn = (await makeReceipt(mallory, dm, "read", [ID_1])).toWire();
    assert.equal((await receipts.decide({ ...claim, receipt: malloryOwn })).reason, "wrong_members");
    assert.deepEqual(stored.get(ID_1), { conversationId: dm, recipients: ["alice", "bob"], deliveredTo: [], readBy: [] });
    assert.deepEqual(
      receipts.refusals.map((r) => r.reason),
      ["bad_signature", "wrong_members"],
    );

    const genuine = (await makeReceipt(bob, dm, "read", [ID_1, ID_2])).toWire();
    const decision = await receipts.decide({ type: "receipt", receipt: genuine });
    assert.equal(decision.outcome, "accepted");
    assert.deepEqual([...decision.messageIds], [ID_1]);
    const record = sentRecordFrom(stored.get(ID_1));
    assert.deepEqual(record, { conversationId: dm, recipients: ["alice", "bob"], deliveredTo: ["bob"], readBy: ["bob"] });
    const message = { status: "sent" };
    showStatus(message, record, "alice");
    assert.equal(message.status, "read");
  });

  test("a group message is delivered once every other recipient has it", () => {
    const record = { conversationId: GROUP, recipients: ["alice", "bob", "carol"], deliveredTo: ["bob"], readBy: [] };
    assert.equal(statusOf(record, "alice"), "sent");
    assert.equal(statusOf({ ...record, readBy: ["carol"] }, "alice"), "delivered");
    assert.equal(statusOf({ ...record, readBy: ["bob", "carol"] }, "alice"), "read");
    assert.equal(sentRecordFrom({ conversationId: 1, recipients: [] }), undefined);
  });
});
