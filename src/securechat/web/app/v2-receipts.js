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
 * user get a "read" receipt (the caller respects the user's switch). One receipt per peer
 * and status, at most 100 ids each. A receipt is never shown as a chat item, never
 * receipted, never makes anything be sent.
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
 */

export class V2Receipts {
  /** @param {V2ReceiptHost} host */
  constructor(host) {
    this.host = host;
    this.me = host.me;
    /** @type {Map<string, Set<string>>} peer → ids awaiting "delivered" */
    this.pending = new Map();
    /** @type {{reason: string, at: number}[]} the last refused receipts, newest last */
    this.refusals = [];
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
    const ids = this.pending.get(peer) ?? new Set();
    ids.add(messageId);
    this.pending.set(peer, ids);
  }

  /** Seal and send the queued "delivered" receipts. */
  async sendDelivered() {
    const pending = [...this.pending].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.pending.clear();
    for (const [peer, ids] of pending) {
      for (const chunk of chunks(ids)) await this.sign(peer, "delivered", chunk);
    }
  }

  /**
   * "read" receipts for messages of `peer` shown to the user.
   *
   * @param {string} peer
   * @param {readonly string[]} ids
   */
  async read(peer, ids) {
    const fresh = this.host.unread ? await this.host.unread(ids) : [...ids];
    for (const chunk of chunks(fresh)) {
      if (await this.sign(peer, "read", chunk)) await this.host.noteRead?.(chunk);
    }
  }

  /**
   * @param {string} peer
   * @param {"delivered" | "read"} status
   * @param {string[]} ids
   * @returns {Promise<boolean>} whether it went
   */
  async sign(peer, status, ids) {
    try {
      await this.host.send(peer, receiptPayload(status, ids));
      return true;
    } catch (error) {
      // Not delivered now: news lost for the sender, never a reason to stop reading.
      console.warn(`a v2 ${status} receipt was not sent:`, error);
      return false;
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
