/**
 * Receipts signed by their reader (PROTOCOL.md 9.3, 14.7; v2 conversations: 15.17 in
 * v2-receipts.js, which shares the sent records kept here), as the terminal client's
 * `client/receipts.py`: the ones this device makes, and the state the core needs to
 * check the ones it gets. No DOM; storage and sending are injected.
 *
 * Making: a message accepted from someone else is queued for a signed "delivered"
 * receipt, sent right after the acknowledgement that covers it; messages of others shown
 * to the user get a signed "read" receipt (the caller respects the user's switch).
 * Receipts are signed per conversation and per sender (the server gives each sender
 * named in a receipt the whole receipt, so one per sender tells nobody about another's
 * messages), with at most 100 ids each.
 *
 * Checking: the decision is the core's `decideReceipt`. Its inputs come from local state
 * only: the reader's pin (a receipt never makes the page fetch or pin keys: its readers
 * are people this user sent to) and, for each message this user sent, who it was sealed
 * for. That record also keeps who has said "delivered" or "read", so a message's status
 * survives a reload without taking the server's word for it.
 *
 * @module
 */

import { decideReceipt } from "../core/index.js";
import { MAX_RECEIPT_IDS, isPlainObject, makeReceipt } from "../protocol/index.js";
import * as store from "./store.js";

/** @import { PrivateIdentity, ReceiptWire } from "../protocol/index.js" */
/** @import { Pins } from "../core/messages.js" */
/** @import { ReceiptAccepted, ReceiptDecision } from "../core/receipts.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage } from "./conversations.js" */
/** @import { InboxSocket } from "./inbox.js" */
/** @import { Trust } from "./trust.js" */

/**
 * What this device knows of a message its user sent: where, to whom it was sealed, and
 * who has said (in a receipt that passed 14.7) they have it or have read it.
 *
 * @typedef {object} SentRecord
 * @property {string} conversationId
 * @property {string[]} recipients as sealed, the sender included
 * @property {string[]} deliveredTo
 * @property {string[]} readBy
 * @property {number} [sentAt] a v2 message's signed time: where its kept copy is (15.17)
 */

/**
 * @typedef {object} ReceiptHost
 * @property {PrivateIdentity} me
 * @property {(name: string) => Promise<Pins>} pinOf the reader's pin if this device has
 *   one, else an empty map (never fetched)
 * @property {(receipt: ReceiptWire) => Promise<void>} send relay one signed receipt
 * @property {(messageId: string) => Promise<unknown>} get a stored sent record
 * @property {(messageId: string, record: SentRecord) => Promise<unknown>} put
 */

/**
 * Ids in ascending order, de-duplicated, in receipts of at most 100.
 *
 * @param {Iterable<string>} ids
 * @returns {string[][]}
 */
export function chunks(ids) {
  const ordered = [...new Set(ids)].sort();
  /** @type {string[][]} */
  const result = [];
  for (let start = 0; start < ordered.length; start += MAX_RECEIPT_IDS) {
    result.push(ordered.slice(start, start + MAX_RECEIPT_IDS));
  }
  return result;
}

/**
 * @param {unknown} value
 * @returns {string[]}
 */
function names(value) {
  return Array.isArray(value) ? value.filter((name) => typeof name === "string") : [];
}

/**
 * A stored value as a sent record, or undefined for none (or one that does not parse).
 *
 * @param {unknown} stored
 * @returns {SentRecord | undefined}
 */
export function sentRecordFrom(stored) {
  if (!isPlainObject(stored) || typeof stored.conversationId !== "string" || !Array.isArray(stored.recipients)) {
    return undefined;
  }
  /** @type {SentRecord} */
  const record = {
    conversationId: stored.conversationId,
    recipients: names(stored.recipients),
    deliveredTo: names(stored.deliveredTo),
    readBy: names(stored.readBy),
  };
  if (typeof stored.sentAt === "number") record.sentAt = stored.sentAt;
  return record;
}

/**
 * Whether an item came in protocol v2 (its envelope is a 15.8 one): its receipts go in v2.
 *
 * @param {Pick<ChatMessage, "envelopeText">} message
 */
export function isV2Item(message) {
  if (!message.envelopeText) return false;
  try {
    const envelope = JSON.parse(message.envelopeText);
    return isPlainObject(envelope) && envelope.v === 2;
  } catch {
    return false;
  }
}

/**
 * An own message's status from what its recipients (other than me) have said: "read"
 * once all have read it, "delivered" once all have it, else "sent".
 *
 * @param {SentRecord} record
 * @param {string} me
 * @returns {"sent" | "delivered" | "read"}
 */
export function statusOf(record, me) {
  const others = record.recipients.filter((name) => name !== me);
  if (others.every((name) => record.readBy.includes(name))) return "read";
  const have = new Set([...record.deliveredTo, ...record.readBy]);
  return others.every((name) => have.has(name)) ? "delivered" : "sent";
}

/**
 * Show an own message as its record says (a page of history, after a reload).
 *
 * @param {ChatMessage} message
 * @param {SentRecord} record
 * @param {string} me
 */
export function showStatus(message, record, me) {
  message.deliveredTo = new Set([...record.deliveredTo, ...record.readBy]);
  message.readBy = new Set(record.readBy);
  message.status = statusOf(record, me);
}

export class ReceiptBook {
  /** @param {ReceiptHost} host */
  constructor(host) {
    this.host = host;
    this.me = host.me.username;
    /** @type {Map<string, Set<string>>} `${conversation}\n${sender}` → ids awaiting "delivered" */
    this.pending = new Map();
    /** @type {Map<string, SentRecord>} */
    this.cache = new Map();
    /** @type {Set<string>} ids already receipted as read from this page */
    this.receiptedRead = new Set();
    /** @type {{reason: string, at: number}[]} the last refused signed receipts, newest last (not shown as a status) */
    this.refusals = [];
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
    /**
     * Read receipts for v2 messages (v2-receipts.js, 15.17), while v2 runs on this page.
     * @type {((peer: string, ids: string[]) => Promise<void>) | null}
     */
    this.v2Read = null;
  }

  /**
   * Records are read and written one operation at a time.
   *
   * @template T
   * @param {() => Promise<T>} action
   * @returns {Promise<T>}
   */
  serial(action) {
    const run = this.queue.then(action, action);
    this.queue = run.catch(() => {});
    return run;
  }

  /** @param {string} messageId @returns {Promise<SentRecord | undefined>} */
  async load(messageId) {
    const cached = this.cache.get(messageId);
    if (cached) return cached;
    const record = sentRecordFrom(await this.host.get(messageId));
    if (record) this.cache.set(messageId, record);
    return record;
  }

  /** @param {string} messageId @param {SentRecord} record */
  async save(messageId, record) {
    this.cache.set(messageId, record);
    await this.host.put(messageId, record);
  }

  // Making -------------------------------------------------------------------------
  /**
   * A message from `sender` was accepted: receipt it with the next acknowledgement.
   *
   * @param {string} conversationId
   * @param {string} sender
   * @param {string} messageId
   */
  delivered(conversationId, sender, messageId) {
    if (sender === this.me) return;
    const key = `${conversationId}\n${sender}`;
    const ids = this.pending.get(key) ?? new Set();
    ids.add(messageId);
    this.pending.set(key, ids);
  }

  /** Sign and send the queued "delivered" receipts (after the acknowledgement). */
  async sendDelivered() {
    const pending = [...this.pending].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.pending.clear();
    for (const [key, ids] of pending) {
      const conversationId = key.slice(0, key.indexOf("\n"));
      for (const chunk of chunks(ids)) await this.sign(conversationId, "delivered", chunk);
    }
  }

  /**
   * Sign and send "read" receipts for messages of others shown to the user, once each.
   *
   * @param {string} conversationId
   * @param {readonly ChatMessage[]} messages the conversation's items
   * @param {readonly string[]} shown the ids of those on screen
   */
  async read(conversationId, messages, shown) {
    /** @type {Map<string, string[]>} */
    const bySender = new Map();
    /** @type {Map<string, string[]>} */
    const bySenderV2 = new Map();
    const v2Read = this.v2Read;
    for (const message of messages) {
      if (!shown.includes(message.messageId) || !message.verified || message.sender === this.me || message.conversationId !== conversationId) continue;
      if (this.receiptedRead.has(message.messageId)) continue;
      // A v2 message is receipted in v2 (15.17), and only while v2 runs here to seal it.
      const v2 = isV2Item(message);
      if (v2 && v2Read === null) continue;
      this.receiptedRead.add(message.messageId);
      const table = v2 ? bySenderV2 : bySender;
      table.set(message.sender, [...(table.get(message.sender) ?? []), message.messageId]);
    }
    for (const sender of [...bySender.keys()].sort()) {
      for (const chunk of chunks(bySender.get(sender) ?? [])) await this.sign(conversationId, "read", chunk);
    }
    for (const sender of [...bySenderV2.keys()].sort()) {
      if (v2Read) await v2Read(sender, bySenderV2.get(sender) ?? []);
    }
  }

  /**
   * @param {string} conversationId
   * @param {"delivered" | "read"} status
   * @param {string[]} ids
   */
  async sign(conversationId, status, ids) {
    try {
      const receipt = await makeReceipt(this.host.me, conversationId, status, ids);
      await this.host.send(receipt.toWire());
    } catch {
      // Refused (a group left since) or not delivered: a receipt is news for the sender,
      // never a reason to stop reading the inbox.
    }
  }

  // Checking -----------------------------------------------------------------------
  /**
   * Keep who an own message was sealed for (when it is sent, or arrives from another
   * device or a page of history); the record as stored, with any receipts it had.
   *
   * @param {string} conversationId
   * @param {string} messageId
   * @param {readonly string[]} recipients
   * @param {number} [sentAt] a v2 message's signed time (its kept copy's place)
   * @returns {Promise<SentRecord>}
   */
  noteSent(conversationId, messageId, recipients, sentAt) {
    return this.serial(async () => {
      const known = await this.load(messageId);
      if (known && known.conversationId === conversationId) return known;
      /** @type {SentRecord} */
      const record = { conversationId, recipients: [...recipients], deliveredTo: [], readBy: [] };
      if (sentAt !== undefined) record.sentAt = sentAt;
      await this.save(messageId, record);
      return record;
    });
  }

  /**
   * The core's decision (14.7) on an inbox receipt, with its inputs from local state;
   * an accepted one is recorded.
   *
   * @param {Record<string, unknown>} frame
   * @returns {Promise<ReceiptDecision>}
   */
  decide(frame) {
    return this.serial(async () => {
      const claimed = isPlainObject(frame.receipt) ? frame.receipt : {};
      const reader = typeof claimed.reader === "string" ? claimed.reader : null;
      const pins = reader === null ? new Map() : await this.host.pinOf(reader);
      /** @type {Map<string, Map<string, string[]>>} */
      const sent = new Map();
      const ids = Array.isArray(claimed.message_ids) ? claimed.message_ids.slice(0, MAX_RECEIPT_IDS) : [];
      for (const id of ids) {
        const record = typeof id === "string" ? await this.load(id) : undefined;
        if (!record) continue;
        const here = sent.get(record.conversationId) ?? new Map();
        here.set(/** @type {string} */ (id), record.recipients);
        sent.set(record.conversationId, here);
      }
      const decision = await decideReceipt(frame, { me: this.me, pins, sent });
      if (decision.outcome === "accepted") {
        await this.record(decision);
      } else if (decision.reason !== "unsigned") {
        this.refusals = [...this.refusals.slice(-19), { reason: decision.reason, at: Date.now() }];
      }
      return decision;
    });
  }

  /** @param {ReceiptAccepted} decision */
  async record(decision) {
    for (const id of decision.messageIds) {
      const record = await this.load(id);
      if (!record) continue;
      const add = (/** @type {string[]} */ list) => (list.includes(decision.reader) ? list : [...list, decision.reader]);
      const updated = { ...record, deliveredTo: add(record.deliveredTo) };
      if (decision.status === "read") updated.readBy = add(record.readBy);
      await this.save(id, updated);
    }
  }
}

/**
 * The book of one account: records in IndexedDB (the `seen` store, beside the seen
 * records), receipts sent over the socket, or over HTTP when it is down.
 *
 * @param {{me: PrivateIdentity, api: Pick<Api, "request">, socket: Pick<InboxSocket, "sendFrame">,
 *   trust: Pick<Trust, "pin" | "corePins">}} parts
 * @returns {ReceiptBook}
 */
export function receiptBook({ me, api, socket, trust }) {
  const key = (/** @type {string} */ id) => [me.username, `sent:${id}`];
  return new ReceiptBook({
    me,
    pinOf: async (name) => (trust.pin(name) ? trust.corePins([name]) : new Map()),
    send: async (receipt) => {
      if (!socket.sendFrame({ type: "receipt", receipt })) await api.request("POST", "/receipts", { body: { receipt } });
    },
    get: (id) => store.get("seen", key(id)),
    put: (id, record) => store.put("seen", key(id), record),
  });
}
