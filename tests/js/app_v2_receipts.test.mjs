// v2 receipts in the browser app (app/v2-receipts.js and receipts.js's routing), without a
// DOM or IndexedDB (PROTOCOL.md 15.17): delivered per peer after the ack, read in v2 for
// v2 messages only, and a receipt moves an own message only forward and only as the core
// decides, in the sent record and in the kept v2 copy.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ReceiptBook, isV2Item } from "../../src/securechat/web/app/receipts.js";
import { DEFAULT_PAUSE_MS, RECEIPT_INTERVAL_MS, RECEIPTS_PER_MINUTE, V2Receipts } from "../../src/securechat/web/app/v2-receipts.js";
import { directConversationId } from "../../src/securechat/web/protocol/index.js";
import { privateIdentity } from "./support.mjs";

const ID_1 = "00000000-0000-4000-8000-000000000001";
const ID_2 = "00000000-0000-4000-8000-000000000002";
const ID_3 = "00000000-0000-4000-8000-000000000003";
const V2_ENVELOPE = JSON.stringify({ v: 2, message_id: ID_1 });
const V1_ENVELOPE = JSON.stringify({ v: 1, header: {} });

/**
 * alice's page: a v1 book with records in memory, a kept v2 history in memory.
 *
 * @param {string} [me]
 * @param {Set<string>} [readStore] what survives a reload: the ids receipted read
 */
async function page(me = "alice", readStore = new Set()) {
  const identity = await privateIdentity(me);
  const stored = new Map();
  const v1Sent = [];
  const book = new ReceiptBook({
    me: identity,
    pinOf: async () => new Map(),
    send: async (receipt) => void v1Sent.push(receipt),
    get: async (id) => stored.get(id),
    put: async (id, record) => void stored.set(id, structuredClone(record)),
  });
  const kept = new Map();
  const local = {
    find: async (conversationId, sentAt, messageId) => kept.get(`${conversationId}/${sentAt}/${messageId}`) ?? null,
    put: async (item) => void kept.set(`${item.conversationId}/${item.sentAt}/${item.messageId}`, { ...item }),
    // As LocalHistory.received: kept, accepted messages of others in the conversation.
    received: async (conversationId, ids) =>
      [...kept.values()].filter((i) => i.conversationId === conversationId && i.verified === true && i.sender !== me && ids.includes(i.messageId)).map((i) => i.messageId),
  };
  const posted = [];
  const applied = [];
  const shown = [];
  const receipts = new V2Receipts({
    me,
    book,
    local: /** @type {any} */ (local),
    send: async (peer, payload) => void posted.push([peer, payload]),
    shownIn: () => shown,
    applied: (decision) => void applied.push(decision),
    unread: async (ids) => ids.filter((id) => !readStore.has(id)),
    noteRead: async (ids) => void ids.forEach((id) => readStore.add(id)),
  });
  return { book, receipts, kept, local, posted, applied, shown, stored, v1Sent };
}

/** @param {string} sender @param {string} conversationId @param {unknown} payload */
function accepted(sender, conversationId, payload) {
  return /** @type {any} */ ({ outcome: "accepted", sender, conversationId, payload });
}

describe("app v2 receipts: making", () => {
  test("delivered: one receipt per peer, ids sorted, none for my own, sent once", async () => {
    const { receipts, posted } = await page("bob");
    receipts.delivered("alice", ID_2);
    receipts.delivered("alice", ID_1);
    receipts.delivered("bob", ID_3);
    await receipts.sendDelivered();
    await receipts.sendDelivered();
    assert.deepEqual(posted, [["alice", { type: "receipt", status: "delivered", message_ids: [ID_1, ID_2] }]]);
  });

  test("read: v2 messages go in v2, v1 ones in v1, each once", async () => {
    const { book, posted, v1Sent, receipts } = await page("bob");
    book.v2Read = (peer, ids) => receipts.read(peer, ids);
    const dm = await directConversationId("alice", "bob");
    const item = (messageId, envelopeText) => ({ messageId, sender: "alice", verified: true, conversationId: dm, envelopeText });
    const items = [item(ID_1, V2_ENVELOPE), item(ID_2, V1_ENVELOPE)];
    await book.read(dm, /** @type {any} */ (items), [ID_1, ID_2]);
    await book.read(dm, /** @type {any} */ (items), [ID_1, ID_2]);
    assert.deepEqual(posted, [["alice", { type: "receipt", status: "read", message_ids: [ID_1] }]]);
    assert.deepEqual(v1Sent.map((r) => r.message_ids), [[ID_2]]);
  });

  test("read: a v2 message is not receipted at all while v2 does not run on the page", async () => {
    const { book, v1Sent } = await page("bob");
    const dm = await directConversationId("alice", "bob");
    const items = [{ messageId: ID_1, sender: "alice", verified: true, conversationId: dm, envelopeText: V2_ENVELOPE }];
    await book.read(dm, /** @type {any} */ (items), [ID_1]);
    assert.deepEqual(v1Sent, []);
    assert.equal(book.receiptedRead.has(ID_1), false);
  });

  test("read: a reload does not receipt again what was receipted read, here or on another device", async () => {
    const readStore = new Set();
    const dm = await directConversationId("alice", "bob");
    const items = [ID_1, ID_2, ID_3].map((messageId) => ({ messageId, sender: "alice", verified: true, conversationId: dm, envelopeText: V2_ENVELOPE }));
    const first = await page("bob", readStore);
    first.book.v2Read = (peer, ids) => first.receipts.read(peer, ids);
    first.shown.push(items[2]);
    await first.receipts.decide(accepted("bob", dm, { type: "receipt", status: "read", message_ids: [ID_3] }));
    await first.book.read(dm, /** @type {any} */ (items.slice(0, 1)), [ID_1]);
    assert.deepEqual(first.posted.map(([, payload]) => payload.message_ids), [[ID_1]]);
    const reloaded = await page("bob", readStore);
    reloaded.book.v2Read = (peer, ids) => reloaded.receipts.read(peer, ids);
    await reloaded.book.read(dm, /** @type {any} */ (items), [ID_1, ID_2, ID_3]);
    assert.deepEqual(reloaded.posted.map(([, payload]) => payload.message_ids), [[ID_2]]);
  });

  test("read elsewhere: an own read receipt for a kept message not on screen is taken, and it is not receipted again", async () => {
    const readStore = new Set();
    const { book, receipts, local, posted, shown } = await page("bob", readStore);
    book.v2Read = (peer, ids) => receipts.read(peer, ids);
    const dm = await directConversationId("alice", "bob");
    const other = await directConversationId("bob", "carol");
    // Kept from an earlier visit; the conversation on screen is another one.
    const item = { messageId: ID_1, sender: "alice", verified: true, conversationId: dm, sentAt: 1000, envelopeText: V2_ENVELOPE };
    await local.put(item);
    await local.put({ messageId: ID_2, sender: "alice", verified: false, conversationId: dm, sentAt: 1001, envelopeText: V2_ENVELOPE });
    await local.put({ messageId: ID_3, sender: "carol", verified: true, conversationId: other, sentAt: 1002, envelopeText: V2_ENVELOPE });
    shown.length = 0;
    const decision = await receipts.decide(accepted("bob", dm, { type: "receipt", status: "read", message_ids: [ID_1, ID_2, ID_3] }));
    assert.equal(decision.outcome, "accepted");
    // Only the accepted message of the peer in this conversation: not the unverifiable
    // one, not another conversation's.
    assert.deepEqual(decision.outcome === "accepted" && [decision.own, decision.messageIds], [true, [ID_1]]);
    assert.deepEqual([...readStore], [ID_1]);
    await book.read(dm, /** @type {any} */ ([item]), [ID_1]);
    assert.deepEqual(posted, []);
  });

  test("read elsewhere: an own read receipt naming nothing kept is refused not_for_me", async () => {
    const { receipts } = await page("bob");
    const dm = await directConversationId("alice", "bob");
    const decision = await receipts.decide(accepted("bob", dm, { type: "receipt", status: "read", message_ids: [ID_1] }));
    assert.deepEqual(decision.outcome === "refused" && decision.reason, "not_for_me");
  });

  test("isV2Item looks at the envelope's version only", () => {
    assert.equal(isV2Item({ envelopeText: V2_ENVELOPE }), true);
    assert.equal(isV2Item({ envelopeText: V1_ENVELOPE }), false);
    assert.equal(isV2Item({ envelopeText: null }), false);
    assert.equal(isV2Item({ envelopeText: "not json" }), false);
  });
});

describe("app v2 receipts: checking", () => {
  test("delivered then read moves the record, the kept copy and the screen, only forward", async () => {
    const { book, receipts, kept, local, applied } = await page();
    const dm = await directConversationId("alice", "bob");
    await receipts.noteSent(dm, ID_1, "bob", 1000);
    await local.put({ messageId: ID_1, conversationId: dm, sentAt: 1000, sender: "alice", status: "sent" });
    const key = `${dm}/1000/${ID_1}`;

    await receipts.decide(accepted("bob", dm, { type: "receipt", status: "delivered", message_ids: [ID_1] }));
    assert.equal(kept.get(key).status, "delivered");
    await receipts.decide(accepted("bob", dm, { type: "receipt", status: "read", message_ids: [ID_1] }));
    assert.equal(kept.get(key).status, "read");
    // A late "delivered" and a repeated "read" change nothing.
    await receipts.decide(accepted("bob", dm, { type: "receipt", status: "delivered", message_ids: [ID_1] }));
    await receipts.decide(accepted("bob", dm, { type: "receipt", status: "read", message_ids: [ID_1] }));
    assert.equal(kept.get(key).status, "read");
    assert.deepEqual(await book.load(ID_1), { conversationId: dm, recipients: ["alice", "bob"], deliveredTo: ["bob"], readBy: ["bob"], sentAt: 1000 });
    assert.deepEqual(applied.map((d) => d.status), ["delivered", "read", "delivered", "read"]);
  });

  test("a receipt from someone the message was not sealed for, or naming none of mine, moves nothing", async () => {
    const { receipts, kept, local, applied } = await page();
    const dm = await directConversationId("alice", "bob");
    const withMallory = await directConversationId("alice", "mallory");
    await receipts.noteSent(dm, ID_1, "bob", 1000);
    await local.put({ messageId: ID_1, conversationId: dm, sentAt: 1000, sender: "alice", status: "sent" });
    const mallory = await receipts.decide(accepted("mallory", withMallory, { type: "receipt", status: "read", message_ids: [ID_1] }));
    const unknown = await receipts.decide(accepted("bob", dm, { type: "receipt", status: "read", message_ids: [ID_2] }));
    const bad = await receipts.decide(accepted("bob", dm, { type: "receipt", status: "read", message_ids: [ID_1, ID_1] }));
    assert.deepEqual([mallory, unknown, bad].map((d) => d.outcome === "refused" && d.reason), ["not_for_me", "not_for_me", "malformed"]);
    assert.equal(kept.get(`${dm}/1000/${ID_1}`).status, "sent");
    assert.deepEqual(applied, []);
    assert.deepEqual(receipts.refusals.map((r) => r.reason), ["not_for_me", "not_for_me", "malformed"]);
  });

  test("read on another of my devices: this page sends no read receipt for those messages", async () => {
    const { book, receipts, shown, posted } = await page("bob");
    book.v2Read = (peer, ids) => receipts.read(peer, ids);
    const dm = await directConversationId("alice", "bob");
    const item = { messageId: ID_1, sender: "alice", verified: true, conversationId: dm, envelopeText: V2_ENVELOPE };
    shown.push(item);
    const decision = await receipts.decide(accepted("bob", dm, { type: "receipt", status: "read", message_ids: [ID_1] }));
    assert.equal(decision.outcome === "accepted" && decision.own, true);
    await book.read(dm, /** @type {any} */ ([item]), [ID_1]);
    assert.deepEqual(posted, []);
  });
});

/**
 * A receipt maker with a hand-moved clock and timers run by hand (no waiting): what it
 * posted, and whether the server answers 429 (with `retry_after_ms`).
 *
 * @param {string} [me]
 */
function paced(me = "bob") {
  const clock = { now: 1_000 };
  /** @type {{at: number, run: () => void}[]} */
  const timers = [];
  /** @type {[string, {status: string, message_ids: string[]}][]} */
  const posted = [];
  const server = { refuse: /** @type {number | null} */ (null), refused: 0 };
  const noted = new Set();
  const receipts = new V2Receipts(
    /** @type {any} */ ({
      me,
      send: async (peer, payload) => {
        if (server.refuse !== null) {
          server.refused += 1;
          throw Object.assign(new Error("slow down"), { status: 429, code: "rate_limited", details: { retry_after_ms: server.refuse } });
        }
        posted.push([peer, payload]);
      },
      noteRead: async (ids) => void ids.forEach((id) => noted.add(id)),
      now: () => clock.now,
      later: (delayMs, run) => void timers.push({ at: clock.now + delayMs, run }),
    }),
  );
  /** Move the clock and run the timers due by then. */
  async function advance(ms) {
    clock.now += ms;
    for (const timer of timers.filter((t) => t.at <= clock.now)) {
      timers.splice(timers.indexOf(timer), 1);
      timer.run();
    }
    await receipts.flushing;
  }
  return { receipts, posted, server, noted, timers, advance };
}

/** @param {number} n */
const idOf = (n) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

describe("app v2 receipts: pacing (15.17)", () => {
  test("a trickle of messages from a peer makes one delivered receipt per interval, and loses none", async () => {
    const { receipts, posted, advance } = paced();
    for (let n = 0; n < 60; n += 1) {
      receipts.delivered("alice", idOf(n));
      await receipts.sendDelivered();
      if (n < 59) await advance(1_000);
    }
    // In the minute, one receipt every interval: not one a message.
    assert.equal(posted.length, 60_000 / RECEIPT_INTERVAL_MS);
    await advance(RECEIPT_INTERVAL_MS);
    assert.deepEqual(posted.flatMap(([, payload]) => payload.message_ids).sort(), Array.from({ length: 60 }, (_, n) => idOf(n)));
  });

  test("many peers: at most the minute's allowance goes, the rest waits for the timer", async () => {
    const { receipts, posted, advance } = paced();
    for (let n = 0; n < 3 * RECEIPTS_PER_MINUTE; n += 1) receipts.delivered(`peer${n}`, idOf(n));
    await receipts.sendDelivered();
    assert.equal(posted.length, RECEIPTS_PER_MINUTE);
    await advance(30_000);
    assert.equal(posted.length, RECEIPTS_PER_MINUTE);
    await advance(30_000);
    assert.equal(posted.length, 2 * RECEIPTS_PER_MINUTE);
    await advance(60_000);
    assert.equal(new Set(posted.map(([peer]) => peer)).size, 3 * RECEIPTS_PER_MINUTE);
  });

  test("read receipts are batched per peer too, and noted read only once they went", async () => {
    const { receipts, posted, noted, advance } = paced();
    await receipts.read("alice", [idOf(1)]);
    await receipts.read("alice", [idOf(2)]);
    await receipts.read("alice", [idOf(3)]);
    assert.deepEqual(posted.map(([, p]) => p.message_ids), [[idOf(1)]]);
    assert.deepEqual([...noted], [idOf(1)]);
    await advance(RECEIPT_INTERVAL_MS);
    assert.deepEqual(posted.map(([, p]) => p.message_ids), [[idOf(1)], [idOf(2), idOf(3)]]);
    assert.deepEqual([...noted].sort(), [idOf(1), idOf(2), idOf(3)]);
  });

  test("a batch still waiting when the device stops (a logout) is never sent or noted read", async () => {
    const { receipts, posted, noted, timers, advance } = paced();
    await receipts.read("alice", [idOf(1)]);
    await receipts.read("alice", [idOf(2)]);
    assert.equal(timers.length, 1);
    receipts.stop();
    await advance(RECEIPT_INTERVAL_MS);
    await receipts.read("alice", [idOf(3)]);
    assert.deepEqual(posted.map(([, p]) => p.message_ids), [[idOf(1)]]);
    assert.deepEqual([...noted], [idOf(1)]);
  });

  test("a receipt refused with 429 keeps its ids, nothing is tried before the server's wait, then they go", async () => {
    const { receipts, posted, server, noted, advance } = paced();
    server.refuse = 20_000;
    receipts.delivered("alice", idOf(1));
    await receipts.sendDelivered();
    await receipts.read("carol", [idOf(2)]);
    assert.equal(server.refused, 1);
    server.refuse = null;
    receipts.delivered("alice", idOf(3));
    await advance(19_000);
    await receipts.sendDelivered();
    assert.deepEqual(posted, []);
    assert.deepEqual([...noted], []);
    await advance(1_000);
    assert.deepEqual(posted, [
      ["alice", { type: "receipt", status: "delivered", message_ids: [idOf(1), idOf(3)] }],
      ["carol", { type: "receipt", status: "read", message_ids: [idOf(2)] }],
    ]);
    assert.deepEqual([...noted], [idOf(2)]);
  });

  test("a 429 for the user's own message pauses receipts (the budget is the user's first)", async () => {
    const { receipts, posted, advance } = paced();
    receipts.pause(undefined);
    receipts.delivered("alice", idOf(1));
    await receipts.sendDelivered();
    await advance(DEFAULT_PAUSE_MS - 1);
    assert.deepEqual(posted, []);
    await advance(1);
    assert.equal(posted.length, 1);
  });
});
