/**
 * Session sets with other devices (PROTOCOL.md 15.9.1), kept in IndexedDB sealed under
 * this profile's AES-GCM key (15.7.6: a state holds private keys), with the flag that
 * the next send to a device starts a new session (15.9 `repair_needed`). No DOM.
 *
 * @module
 */

import { EMPTY, sessionSetFromWire, sessionSetToWire } from "../core/v2/index.js";
import * as store from "./store.js";

/** @import { SessionSet } from "../core/v2/index.js" */
/** @import { Sealer } from "./device-keys.js" */

/**
 * @typedef {object} StoredSessions
 * @property {SessionSet} sessions
 * @property {boolean} repair the next send to this device starts a new session
 */

/**
 * Run `action` while no other tab of this profile runs one for the same account (Web
 * Locks): two tabs sealing with one stored session state would derive the same message
 * key twice (a reused AES-GCM key and nonce), and two tabs opening would store diverging
 * states. Inside, state is read from IndexedDB, never from a tab's memory.
 *
 * @template T
 * @param {string} account
 * @param {() => Promise<T>} action
 * @returns {Promise<T>}
 */
export function exclusive(account, action) {
  const locks = globalThis.navigator?.locks;
  if (!locks) return action();
  return /** @type {Promise<T>} */ (locks.request(`securechat-v2:${account}`, action));
}

export class SessionBook {
  /**
   * @param {string} me
   * @param {Sealer} sealer
   */
  constructor(me, sealer) {
    this.me = me;
    this.sealer = sealer;
  }

  /** @param {string} username @param {string} deviceId */
  path(username, deviceId) {
    return [this.me, "sessions", username, deviceId];
  }

  /**
   * Read from IndexedDB each time (another tab may have moved the state on); call it
   * inside {@link exclusive}.
   *
   * @param {string} username
   * @param {string} deviceId
   * @returns {Promise<StoredSessions>}
   */
  async get(username, deviceId) {
    const value = await this.sealer.read(this.path(username, deviceId));
    if (value) {
      try {
        return { sessions: sessionSetFromWire(value.sessions), repair: Boolean(value.repair) };
      } catch {
        // A stored set that no longer parses counts as none: the next send sets up anew.
      }
    }
    return { sessions: EMPTY, repair: false };
  }

  /**
   * A sealed write of a device's set, for one transaction with other writes.
   *
   * @param {string} username
   * @param {string} deviceId
   * @param {StoredSessions} value
   */
  write(username, deviceId, value) {
    return this.sealer.write(this.path(username, deviceId), { sessions: sessionSetToWire(value.sessions), repair: value.repair });
  }

  /** A device removed from (or re-certified in) its account's list loses its sessions (15.3). @param {string} username @param {string} deviceId */
  async drop(username, deviceId) {
    await store.remove("v2", this.path(username, deviceId));
  }
}
