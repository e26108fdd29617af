/**
 * Receipts in v2 direct conversations (PROTOCOL.md 15.17), as the terminal client's
 * `client/v2/receipts.py`: the ones this device makes, and the inputs of the core's
 * `decideReceiptV2` for the ones it gets. No DOM; sealing, sending and showing are the
 * host's.
 *
 * A v2 receipt is an ordinary v2 message (15.8) to the peer's devices and this account's
 * other devices, whose payload names the messages; the server cannot tell it from a chat
 * message. Making: each message of the peer accepted from the device inbox is queued for
 * a "delivered" receipt, sent after the acknowledgement; messages of the peer shown to the
 * user get a "read" receipt (the caller respects the user's switch). A receipt is never
 * shown as a chat item, never receipted, never makes anything be sent.
 *
 * Pacing (15.17): a receipt is a whole message and counts against the account's send
 * budget, so peers sending a trickle of messages must not make this device spend it on
 * receipts. Ids wait in a queue per (peer, status); each batch goes at most once every
 * `RECEIPT_INTERVAL_MS` (100 ids at most), receipts in all at most `RECEIPTS_PER_MINUTE`;
 * a receipt refused with 429 puts its ids back and none goes until the server's
 * `retry_after_ms` (or a minute) has passed. What waits goes from a timer.
 *
 * Checking: who each message this user sent was sealed for is the sent record that
 * receipts.js keeps for v1 (the same record, keyed by message id, with the v2 message's
 * `sentAt` so its kept copy in v2-history.js can be found); an accepted receipt moves that
 * record (so the status survives a reload), the kept copy's status and the message on
 * screen, only forward.
 *
 * @module
 */

import { decideReceiptV2, receiptPayload } from "../core/v2/index.js";
import { chunks, statusOf } from "./receipts.js";

/** @import { AcceptedV2, ReceiptV2Accepted, ReceiptV2Decision } from "../core/v2/index.js" */
/** @import { ChatMessage } from "./conversations.js" */
/** @import { ReceiptBook } from "./receipts.js" */
/** @import { LocalHistory } from "./v2-history.js" */

const ORDER = ["sending", "sent", "delivered", "read"];

/** At most one receipt per (peer, status) this often: ids arriving meanwhile join it. */
export const RECEIPT_INTERVAL_MS = 5_000;
/** At most this many receipts a minute in all: the rest of the send budget is the user's. */
export const RECEIPTS_PER_MINUTE = 20;
/** Without the server's `retry_after_ms`, how long receipts wait after a 429. */
export const DEFAULT_PAUSE_MS = 60_000;
const MINUTE_MS = 60_000;

/**
 * @typedef {object} V2ReceiptHost
 * @property {string} me
 * @property {ReceiptBook} book the sent records (shared with v1's receipts)
 * @property {LocalHistory} local the v2 messages this device keeps
 * @property {(peer: string, payload: {type: string, status: string, message_ids: string[]}) => Promise<void>} send
 *   seal and post a receipt payload to `peer` (kept nowhere)
 * @property {(conversationId: string) => readonly ChatMessage[]} shownIn the items on screen in a conversation
 * @property {(decision: ReceiptV2Accepted) => void} applied an accepted receipt, for the screen
 * @property {(messageIds: readonly string[]) => Promise<string[]>} [unread] of these, the ids
 *   not yet receipted read by this device (kept across reloads: a v2 receipt is a whole
 *   message, not worth repeating on every page load); all of them when not given
 * @property {(messageIds: readonly string[]) => Promise<void>} [noteRead] these are receipted
 *   read (by this device, or by another of the account's)
 * @property {() => number} [now] a monotonic clock in ms (`performance.now` when not given)
 * @property {(delayMs: number, run: () => void) => void} [later] run once after a delay
 *   (`setTimeout` when not given)
 */

export class V2Receipts {
  /** @param {V2ReceiptHost} host */
  constructor(host) {
    this.host = host;
    this.me = host.me;
    this.now = host.now ?? (() => performance.now());
    this.later = host.later ?? ((delayMs, run) => void setTimeout(run, delayMs));
    /** @type {Map<string, {peer: string, status: "delivered" | "read", ids: Set<string>}>} ids awaiting a receipt */
    this.queued = new Map();
    /** @type {Map<string, number>} (peer, status) → when its last receipt went */
    this.lastSent = new Map();
    /** @type {number[]} when the receipts of the last minute went, oldest first */
    this.recent = [];
    this.pausedUntil = -Infinity;
    /** @type {number | null} when the flush a timer will run is due */
    this.timerAt = null;
    /** @type {Promise<void>} flushes run one at a time */
    this.flushing = Promise.resolve();
    /** @type {{reason: string, at: number}[]} the last refused receipts, newest last */
    this.refusals = [];
    this.stopped = false;
  }

  // Making -------------------------------------------------------------------------
  /**
   * A message of `peer` (not a receipt) was accepted: receipt it after the ack.
   *
   * @param {string} peer
   * @param {string} messageId
   */
  delivered(peer, messageId) {
    if (peer === this.me) return;
    this.queue(peer, "delivered", [messageId]);
  }

  /**
   * Ids for a receipt to `peer`, sent when its batch is due.
   *
   * @param {string} peer
   * @param {"delivered" | "read"} status
   * @param {Iterable<string>} ids
   */
  queue(peer, status, ids) {
    const key = `${status} ${peer}`;
    const entry = this.queued.get(key) ?? { peer, status, ids: new Set() };
    for (const id of ids) entry.ids.add(id);
    if (entry.ids.size) this.queued.set(key, entry);
  }

  /** Send the "delivered" receipts (and any other) that are due; the rest wait. */
  sendDelivered() {
    return this.flush();
  }

  /**
   * "read" receipts for messages of `peer` shown to the user: queued, and sent when due.
   *
   * @param {string} peer
   * @param {readonly string[]} ids
   */
  async read(peer, ids) {
    const fresh = this.host.unread ? await this.host.unread(ids) : [...ids];
    this.queue(peer, "read", fresh);
    await this.flush();
  }

  /**
   * No receipt until the server's wait is over (after a 429 for a receipt, or for the
   * user's own message: the budget is the user's first).
   *
   * @param {unknown} [retryAfterMs]
   */
  pause(retryAfterMs) {
    const wait = typeof retryAfterMs === "number" && retryAfterMs > 0 ? Math.min(retryAfterMs, 600_000) : DEFAULT_PAUSE_MS;
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + wait);
  }

  /**
   * Nothing more is sent or recorded: this device stops (a logout, a revocation), and a
   * batch still waiting must not write into a profile that is being emptied.
   */
  stop() {
    this.stopped = true;
    this.queued.clear();
  }

  /** Send what is due, one flush at a time; schedule the next for what waits. */
  flush() {
    // A failure (say, noting read in the profile) must not stop every later flush.
    this.flushing = this.flushing.then(() => this.flushNow()).catch((error) => console.warn("v2 receipts were not flushed:", error));
    return this.flushing;
  }

  async flushNow() {
    if (this.stopped) return;
    for (const { peer, status, ids } of this.due()) {
      const outcome = await this.sign(peer, status, ids);
      if (this.stopped) return;
      if (outcome === "sent" && status === "read") await this.host.noteRead?.(ids);
      if (outcome === "later") this.queue(peer, status, ids);
    }
    this.schedule();
  }

  /**
   * The receipts to send now, each taken off the queue: per (peer, status) one of at
   * most 100 ids if none went within the interval; no more than the minute allows; none
   * while paused.
   *
   * @returns {{peer: string, status: "delivered" | "read", ids: string[]}[]}
   */
  due() {
    const now = this.now();
    if (now < this.pausedUntil) return [];
    this.recent = this.recent.filter((at) => now - at < MINUTE_MS);
    const due = [];
    for (const key of [...this.queued.keys()].sort()) {
      if (this.recent.length >= RECEIPTS_PER_MINUTE) break;
      const last = this.lastSent.get(key);
      if (last !== undefined && now - last < RECEIPT_INTERVAL_MS) continue;
      const entry = /** @type {{peer: string, status: "delivered" | "read", ids: Set<string>}} */ (this.queued.get(key));
      const [chunk] = chunks(entry.ids);
      for (const id of chunk) entry.ids.delete(id);
      if (!entry.ids.size) this.queued.delete(key);
      this.lastSent.set(key, now);
      this.recent.push(now);
      due.push({ peer: entry.peer, status: entry.status, ids: chunk });
    }
    return due;
  }

  /** A timer for when the next waiting batch may go (one at a time). */
  schedule() {
    if (this.stopped || !this.queued.size) return;
    const now = this.now();
    let at = Infinity;
    for (const key of this.queued.keys()) at = Math.min(at, Math.max(now, (this.lastSent.get(key) ?? -Infinity) + RECEIPT_INTERVAL_MS));
    at = Math.max(at, this.pausedUntil);
    if (this.recent.length >= RECEIPTS_PER_MINUTE) at = Math.max(at, this.recent[0] + MINUTE_MS);
    if (this.timerAt !== null && this.timerAt <= at) return;
    this.timerAt = at;
    this.later(Math.max(0, at - now), () => {
      this.timerAt = null;
      void this.flush();
    });
  }

  /**
   * @param {string} peer
   * @param {"delivered" | "read"} status
   * @param {string[]} ids
   * @returns {Promise<"sent" | "later" | "lost">} lost: news lost for the sender, never a
   *   reason to stop reading; later: 429, the ids wait for the server's wait
   */
  async sign(peer, status, ids) {
    try {
      await this.host.send(peer, receiptPayload(status, ids));
      return "sent";
    } catch (error) {
      const refused = /** @type {{status?: unknown, details?: {retry_after_ms?: unknown}}} */ (error);
      if (refused?.status === 429) {
        this.pause(refused.details?.retry_after_ms);
        return "later";
      }
      console.warn(`a v2 ${status} receipt was not sent:`, error);
      return "lost";
    }
  }

  // Checking -----------------------------------------------------------------------
  /**
   * Keep who an own v2 message was sealed for (sent here, or from another device), with
   * where its kept copy is.
   *
   * @param {string} conversationId
   * @param {string} messageId
   * @param {string} peer
   * @param {number} sentAt
   */
  noteSent(conversationId, messageId, peer, sentAt) {
    return this.host.book.noteSent(conversationId, messageId, [this.me, peer].sort(), sentAt);
  }

  /**
   * The core's decision (15.17) on an accepted receipt message, with its inputs from
   * local state; an accepted one is recorded.
   *
   * @param {AcceptedV2} message
   * @returns {Promise<ReceiptV2Decision>}
   */
  decide(message) {
    const { book } = this.host;
    return book.serial(async () => {
      const raw = message.payload.message_ids;
      const named = Array.isArray(raw) ? raw.slice(0, 100).filter((id) => typeof id === "string") : [];
      /** @type {Map<string, Map<string, string[]>>} */
      const sent = new Map();
      for (const id of named) {
        const record = await book.load(id);
        if (!record) continue;
        const here = sent.get(record.conversationId) ?? new Map();
        here.set(id, record.recipients);
        sent.set(record.conversationId, here);
      }
      // What this device accepted, from its kept history (15.10), not only what is on
      // screen: an own read receipt may name a conversation not loaded here. Only an own
      // receipt is decided against it, so only then is the history read.
      const shown = this.host.shownIn(message.conversationId);
      const mine = new Set(shown.filter((item) => item.verified && item.sender !== this.me).map((item) => item.messageId));
      if (message.sender === this.me) for (const id of await this.host.local.received(message.conversationId, named)) mine.add(id);
      const received = new Map([[message.conversationId, [...mine]]]);
      const decision = decideReceiptV2(
        { sender: message.sender, conversationId: message.conversationId, payload: message.payload },
        { me: this.me, sent, received },
      );
      if (decision.outcome === "accepted") {
        if (decision.own) {
          // Read on another of my devices: this one sends no read receipt for them again.
          if (decision.status === "read") {
            for (const id of decision.messageIds) book.receiptedRead.add(id);
            await this.host.noteRead?.(decision.messageIds);
          }
        } else {
          await this.record(decision);
          this.host.applied(decision);
        }
      } else {
        this.refusals = [...this.refusals.slice(-19), { reason: decision.reason, at: Date.now() }];
        console.warn("a v2 receipt was refused:", decision.reason);
      }
      return decision;
    });
  }

  /**
   * The sent records (as v1's, so a reload shows the status), then the kept v2 copies.
   *
   * @param {ReceiptV2Accepted} decision
   */
  async record(decision) {
    const { book, local } = this.host;
    await book.record({ ...decision, outcome: "accepted" });
    for (const id of decision.messageIds) {
      const record = await book.load(id);
      if (!record || typeof record.sentAt !== "number") continue;
      const kept = await local.find(record.conversationId, record.sentAt, id);
      if (!kept || kept.sender !== this.me) continue;
      const status = statusOf(record, this.me);
      if (ORDER.indexOf(status) > ORDER.indexOf(kept.status)) await local.put({ ...kept, status });
    }
  }
}
