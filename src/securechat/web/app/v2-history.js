/**
 * The v2 messages this device keeps (PROTOCOL.md 15.10): with forward secrecy the server
 * cannot serve a v2 message again (its message key is deleted once used), so each one
 * accepted, each one sent and each unverifiable item (its reason and what it claimed)
 * is stored here, AES-GCM-sealed under the profile's non-extractable key (device-keys.js
 * `Sealer`), in the same IndexedDB transaction as the session set, seen record and inbox
 * position that accepting it changes. A conversation's items are keyed
 * `[me, "msg", conversationId, sentAt, messageId]`, so a page is one key range, in the
 * order history shows them (sent_at, then message id). The key (conversation id, time,
 * message id) is in the clear, as the seen records' ids already are; the item is not.
 *
 * No DOM.
 *
 * @module
 */

import { Sealer } from "./device-keys.js";
import { keptFile, restoredFile } from "./v2-files.js";
import * as store from "./store.js";

/** @import { ChatMessage } from "./conversations.js" */
/** @import { Write } from "./store.js" */
/** @import { BackupMessage } from "../protocol/v2/backup.js" */

/** Items of a conversation read at most in one go when they lie inside a v1 page's span. */
const SPAN_LIMIT = 10_000;

/**
 * The time an item is ordered by: the sender's signed clock, else the server's.
 *
 * @param {Pick<ChatMessage, "sentAt" | "serverTs">} item
 */
export function itemTime(item) {
  return item.sentAt ?? item.serverTs ?? 0;
}

/**
 * History order: by time, then message id (stable whatever order they arrived in).
 *
 * @param {ChatMessage} a
 * @param {ChatMessage} b
 */
export function historyOrder(a, b) {
  const dt = itemTime(a) - itemTime(b);
  if (dt !== 0) return dt;
  return a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0;
}

export class LocalHistory {
  /**
   * @param {string} me
   * @param {Sealer} sealer
   */
  constructor(me, sealer) {
    this.me = me;
    this.sealer = sealer;
  }

  /**
   * The history kept for `me` in this profile, if anything was ever sealed here.
   *
   * @param {string} me
   * @returns {Promise<LocalHistory | null>}
   */
  static async existing(me) {
    const sealer = await Sealer.existing(me);
    return sealer ? new LocalHistory(me, sealer) : null;
  }

  /**
   * @param {string} conversationId
   * @param {number} sentAt
   * @param {string} messageId
   * @returns {IDBValidKey[]}
   */
  path(conversationId, sentAt, messageId) {
    return [this.me, "msg", conversationId, sentAt, messageId];
  }

  /**
   * The sealed write of an item, for a transaction with what accepting it changed. Only
   * what is shown is kept: no transfer state, no receipt sets (a status that receipts
   * moved is the item's `status`, written again by v2-receipts.js, 15.17); a
   * shared file's descriptor, key included, is (15.18).
   *
   * @param {ChatMessage} item
   * @returns {Promise<Write>}
   */
  write(item) {
    /** @type {ChatMessage} */
    const kept = {
      messageId: item.messageId,
      conversationId: item.conversationId,
      sender: item.sender,
      text: item.text,
      sentAt: item.sentAt,
      serverTs: item.serverTs,
      verified: item.verified,
      refusal: item.refusal,
      reason: item.reason,
      status: item.status,
      envelopeText: item.envelopeText,
      // A shared file's descriptor in its payload form, sealed with the rest (15.18).
      file: /** @type {any} */ (keptFile(item.file)),
    };
    if (item.kind) kept.kind = item.kind;
    if (item.imported) kept.imported = true;
    return this.sealer.write(this.path(item.conversationId, itemTime(item), item.messageId), kept);
  }

  /**
   * Store an item again (an own message's status after the server's answer).
   *
   * @param {ChatMessage} item
   */
  async put(item) {
    await store.writeAll([await this.write(item)]);
  }

  /**
   * One item, as stored by this or another tab of the profile.
   *
   * @param {string} conversationId
   * @param {number} sentAt
   * @param {string} messageId
   * @returns {Promise<ChatMessage | null>}
   */
  async find(conversationId, sentAt, messageId) {
    const item = await this.sealer.read(this.path(conversationId, sentAt, messageId));
    return item ? this.shown(item) : null;
  }

  /**
   * The message ids this profile keeps, each with its item's path. An item's key holds
   * its conversation and time too, so only this finds a kept message whatever the time
   * or conversation a row gives it.
   *
   * @returns {Promise<Map<string, IDBValidKey[]>>}
   */
  async keptPaths() {
    const prefix = [this.me, "msg"];
    /** @type {Map<string, IDBValidKey[]>} */
    const kept = new Map();
    for (const key of await store.keys("v2", prefix, [...prefix, []])) {
      const id = Array.isArray(key) ? key[4] : undefined;
      if (typeof id === "string") kept.set(id, /** @type {IDBValidKey[]} */ (key));
    }
    return kept;
  }

  /**
   * Messages of a 15.10.1 archive (a restored backup, or a device's hand-over, 15.10.2)
   * that this profile does not keep yet, as verified items: the writes that keep them and
   * each item with its peer, for the caller to write in one transaction and then show.
   * A message is found by its id alone (`keptPaths`): a row with a kept id is never a
   * second copy, whatever its time or conversation, and the copy here stays (it was
   * checked here; the row is only as trustworthy as whoever made the archive). An id
   * twice in the archive is taken once, from its first row.
   *
   * @param {BackupMessage[]} messages
   * @returns {Promise<{writes: Write[], added: {item: ChatMessage, peer: string}[], present: number, differing: number}>}
   *   `present`: rows whose id is kept here; `differing`: of those, rows whose
   *   conversation, sender or text differ from the copy here
   */
  async importWrites(messages) {
    const kept = await this.keptPaths();
    /** @type {Set<string>} */
    const taken = new Set();
    /** @type {Write[]} */
    const writes = [];
    /** @type {{item: ChatMessage, peer: string}[]} */
    const added = [];
    let present = 0;
    let differing = 0;
    for (const message of messages) {
      const path = kept.get(message.message_id);
      if (path !== undefined) {
        present += 1;
        const here = /** @type {ChatMessage | null} */ (await this.sealer.read(path));
        if (here && (here.conversationId !== message.conversation_id || here.sender !== message.sender || here.text !== message.text)) differing += 1;
        continue;
      }
      if (taken.has(message.message_id)) continue;
      taken.add(message.message_id);
      /** @type {ChatMessage} */
      const item = {
        messageId: message.message_id,
        conversationId: message.conversation_id,
        sender: message.sender,
        text: message.text,
        sentAt: message.sent_at,
        serverTs: message.server_ts,
        verified: true,
        refusal: null,
        reason: null,
        status: message.sender === this.me ? "sent" : "received",
        envelopeText: null,
        file: null,
        // Never shown instead of a message this device verifies itself (conversations.js).
        imported: true,
      };
      writes.push(await this.write(item));
      added.push({ item, peer: message.peer });
    }
    return { writes, added, present, differing };
  }

  /**
   * An item as read back: an own message stored while sending that never got an answer
   * is shown failed (it can be sent again: its envelope is kept). A verified message
   * kept without an envelope came from an archive: items imported before archives' rows
   * were marked are marked here.
   *
   * @param {ChatMessage} item
   * @returns {ChatMessage}
   */
  shown(item) {
    const read = { ...item, file: restoredFile(item.file) };
    if (read.verified && !read.kind && read.envelopeText === null && !read.imported) read.imported = true;
    return read.status === "sending" ? { ...read, status: "failed", reason: "Not confirmed by the server before the page closed." } : read;
  }

  /**
   * Of `messageIds`, those kept here in `conversationId` as accepted messages of others:
   * the received set an own "read" receipt is decided against (15.17), whether or not the
   * conversation is on screen. The message id is in the key, so only named items open.
   *
   * @param {string} conversationId
   * @param {readonly string[]} messageIds
   * @returns {Promise<string[]>}
   */
  async received(conversationId, messageIds) {
    const wanted = new Set(messageIds);
    if (wanted.size === 0) return [];
    const prefix = [this.me, "msg", conversationId];
    /** @type {string[]} */
    const found = [];
    for (const key of await store.keys("v2", prefix, [...prefix, []])) {
      const id = Array.isArray(key) ? key[4] : undefined;
      if (typeof id !== "string" || !wanted.has(id)) continue;
      const item = await this.sealer.read(/** @type {IDBValidKey[]} */ (key));
      if (item && typeof item === "object" && item.verified === true && item.sender !== this.me) found.push(id);
    }
    return found;
  }

  /**
   * Items of a conversation older than `before` (a key suffix `[sentAt, messageId]`, or
   * none: the newest), newest first: all of them down to `from` (inclusive) when given,
   * else at most `limit`. Items that do not open (sealed under a key deleted since, or
   * altered) are left out.
   *
   * @param {string} conversationId
   * @param {{from: number | null, before: IDBValidKey[] | null, limit: number}} range
   * @returns {Promise<{items: ChatMessage[], oldest: IDBValidKey[] | null, full: boolean}>}
   *   items oldest first; `oldest` the key suffix of the oldest read; `full` when the limit
   *   stopped the read
   */
  async page(conversationId, { from, before, limit }) {
    const prefix = [this.me, "msg", conversationId];
    const lower = from === null ? prefix : [...prefix, from];
    const upper = before === null ? [...prefix, []] : [...prefix, ...before];
    const max = from === null ? limit : SPAN_LIMIT;
    const found = await store.entries("v2", lower, upper, { reverse: true, limit: max });
    /** @type {ChatMessage[]} */
    const items = [];
    for (const { key, value } of found) {
      const item = await this.sealer.open(key, value);
      if (item && typeof item === "object") items.push(this.shown(/** @type {ChatMessage} */ (item)));
    }
    const last = found.at(-1);
    const oldest = last ? /** @type {IDBValidKey[]} */ (last.key).slice(3) : null;
    return { items: items.reverse(), oldest, full: found.length >= max };
  }
}
