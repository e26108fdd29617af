/**
 * Session sets with other devices (PROTOCOL.md 15.9.1), kept in IndexedDB sealed under
 * this profile's AES-GCM key (15.7.6: a state holds private keys), with the flag that
 * the next send to a device starts a new session (15.9 `repair_needed`). No DOM.
 *
 * @module
 */

import { EMPTY, sessionSetFromWire, sessionSetToWire } from "../core/v2/index.js";
import { targetKey } from "../protocol/v2/index.js";
import * as store from "./store.js";

/** @import { SessionSet } from "../core/v2/index.js" */
/** @import { Sealer } from "./device-keys.js" */

/**
 * @typedef {object} StoredSessions
 * @property {SessionSet} sessions
 * @property {boolean} repair the next send to this device starts a new session
 */

export class SessionBook {
  /**
   * @param {string} me
   * @param {Sealer} sealer
   */
  constructor(me, sealer) {
    this.me = me;
    this.sealer = sealer;
    /** @type {Map<string, StoredSessions>} */
    this.cache = new Map();
  }

  /** @param {string} username @param {string} deviceId */
  path(username, deviceId) {
    return [this.me, "sessions", username, deviceId];
  }

  /**
   * @param {string} username
   * @param {string} deviceId
   * @returns {Promise<StoredSessions>}
   */
  async get(username, deviceId) {
    const key = targetKey(username, deviceId);
    const known = this.cache.get(key);
    if (known) return known;
    const value = await this.sealer.read(this.path(username, deviceId));
    let found = { sessions: EMPTY, repair: false };
    if (value) {
      try {
        found = { sessions: sessionSetFromWire(value.sessions), repair: Boolean(value.repair) };
      } catch {
        // A stored set that no longer parses counts as none: the next send sets up anew.
      }
    }
    this.cache.set(key, found);
    return found;
  }

  /**
   * A sealed write of a device's set, for one transaction with other writes; the cache
   * follows once the transaction is done ({@link remember}).
   *
   * @param {string} username
   * @param {string} deviceId
   * @param {StoredSessions} value
   */
  write(username, deviceId, value) {
    return this.sealer.write(this.path(username, deviceId), { sessions: sessionSetToWire(value.sessions), repair: value.repair });
  }

  /** @param {string} username @param {string} deviceId @param {StoredSessions} value */
  remember(username, deviceId, value) {
    this.cache.set(targetKey(username, deviceId), value);
  }

  /**
   * @param {string} username
   * @param {string} deviceId
   * @param {StoredSessions} value
   */
  async put(username, deviceId, value) {
    await store.writeAll([await this.write(username, deviceId, value)]);
    this.remember(username, deviceId, value);
  }

  /** A device removed from (or re-certified in) its account's list loses its sessions (15.3). @param {string} username @param {string} deviceId */
  async drop(username, deviceId) {
    await store.remove("v2", this.path(username, deviceId));
    this.cache.delete(targetKey(username, deviceId));
  }
}
