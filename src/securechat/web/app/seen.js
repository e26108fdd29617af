/**
 * Seen records (PROTOCOL.md 14.2): for each message id this device accepted, the
 * accepted envelope's signature and the inbox position it first came at (null: first
 * seen in history, or sent from here). The core decides with them; this module only
 * reads and writes them. No DOM; storage is injected.
 *
 * @module
 */

import { isPlainObject } from "../protocol/index.js";

/** @import { SeenRecord } from "../core/messages.js" */

/**
 * Where records are kept: by message id (the messenger gives IndexedDB, per account).
 *
 * @typedef {object} SeenStorage
 * @property {(messageId: string) => Promise<unknown>} get
 * @property {(messageId: string, value: SeenRecord) => Promise<unknown>} put
 */

/**
 * The message id and signature an envelope claims, before anything is checked: what to
 * look its seen record up by (null where the envelope has none).
 *
 * @param {unknown} wire
 * @returns {{messageId: string | null, signature: string | null}}
 */
export function claimedIds(wire) {
  if (!isPlainObject(wire)) return { messageId: null, signature: null };
  const messageId = Object.hasOwn(wire, "message_id") ? wire.message_id : null;
  const signature = Object.hasOwn(wire, "signature") ? wire.signature : null;
  return {
    messageId: typeof messageId === "string" ? messageId : null,
    signature: typeof signature === "string" ? signature : null,
  };
}

/**
 * A stored value as a seen record, or undefined for none.
 *
 * Before records held signatures, this store kept only the inbox position a message id
 * was accepted at (a number; 0 for an own message). Such a record says the id was
 * accepted, not with which signature: it is read as accepted with the signature now
 * offered (a different envelope under the same id would then pass the replay check once,
 * as it did when the record was written).
 *
 * @param {unknown} stored
 * @param {string | null} signature the signature the envelope at hand carries
 * @returns {SeenRecord | undefined}
 */
export function seenRecordFrom(stored, signature) {
  if (isPlainObject(stored) && typeof stored.signature === "string") {
    const seq = stored.seq;
    if (seq === null || (typeof seq === "number" && Number.isSafeInteger(seq) && seq > 0)) {
      return Object.freeze({ signature: stored.signature, seq });
    }
    return undefined;
  }
  if (typeof stored === "number" && Number.isSafeInteger(stored) && stored >= 0 && signature !== null) {
    return Object.freeze({ signature, seq: stored > 0 ? stored : null });
  }
  return undefined;
}

/** The seen records of one account, read through a cache. */
export class SeenBook {
  /** @param {SeenStorage} storage */
  constructor(storage) {
    this.storage = storage;
    /** @type {Map<string, SeenRecord>} */
    this.cache = new Map();
  }

  /**
   * The records the core needs for this envelope: its message id's, if any.
   *
   * @param {unknown} wire
   * @returns {Promise<Map<string, SeenRecord>>}
   */
  async recordsFor(wire) {
    const { messageId, signature } = claimedIds(wire);
    /** @type {Map<string, SeenRecord>} */
    const records = new Map();
    if (messageId === null) return records;
    let record = this.cache.get(messageId);
    if (record === undefined) {
      const stored = await this.storage.get(messageId);
      record = seenRecordFrom(stored, signature);
      // An old record (a bare position) is read again each time, with the signature then offered.
      if (record !== undefined && typeof stored !== "number") this.cache.set(messageId, record);
    }
    if (record !== undefined) records.set(messageId, record);
    return records;
  }

  /**
   * Keep the record the core returned (only on acceptance, or a duplicate's update).
   *
   * @param {string} messageId
   * @param {SeenRecord} record
   */
  async put(messageId, record) {
    const plain = { signature: record.signature, seq: record.seq };
    this.cache.set(messageId, plain);
    await this.storage.put(messageId, plain);
  }
}
