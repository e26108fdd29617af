/**
 * Identity-key rotation in the browser (PROTOCOL.md 15.11): the v2 pins that follow a
 * signed hand-over, following one when a served device list names another account key,
 * and rotating this account's key. As `securechat/client/v2/rotation.py`; the decisions
 * are the core's (`acceptIdentityTransition`, `acceptDeviceList`). No DOM.
 *
 * The pin starts as v1's (the account key is v1's signing key until the first rotation,
 * 15.12) and moves only on a chain the core accepts. After a rotation the account private
 * key is the seed sealed under the password (`account-key-seal.js`), opened at login.
 *
 * @module
 */

import { acceptDeviceList } from "../core/v2/device_lists.js";
import { acceptIdentityTransition, pinFromWire, pinToWire, rotationDropSessions } from "../core/v2/transitions.js";
import { b64decode, bytesEqual } from "../protocol/encoding.js";
import { ApiError } from "./api.js";
import * as store from "./store.js";

/** @import { DeviceList } from "../protocol/v2/index.js" */
/** @import { IdentityPin } from "../core/v2/transitions.js" */
/** @import { Api } from "./api.js" */

/** @param {string} username */
export function rotatedNotice(username) {
  return `${username}'s identity key changed; the change is signed by the previous key`;
}

/** This device holds an account key the account rotated away from. */
export class StaleAccountKey extends Error {
  constructor() {
    super("Your account's identity key was rotated on another device and this browser does not hold the new one yet: log out and log in again to load it.");
  }
}

/** @param {Uint8Array} bytes */
function hex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * The `account_key` a served list names, if it has that form (else the list's own checks
 * refuse it).
 *
 * @param {unknown} document
 * @returns {Uint8Array | null}
 */
export function servedKey(document) {
  const value = document && typeof document === "object" ? /** @type {Record<string, unknown>} */ (document).account_key : null;
  if (typeof value !== "string") return null;
  try {
    const key = b64decode(value);
    return key.length === 32 ? key : null;
  } catch {
    return null;
  }
}

/** The pins a followed rotation left, per account, in IndexedDB (public keys only). */
export class RotationPins {
  /** @param {string} me */
  constructor(me) {
    this.me = me;
    /** @type {Map<string, IdentityPin>} */
    this.pins = new Map();
  }

  /** @param {string} username */
  path(username) {
    return [this.me, "pin", username];
  }

  /**
   * @param {string} username
   * @returns {Promise<IdentityPin | null>}
   */
  async get(username) {
    const known = this.pins.get(username);
    if (known) return known;
    const wire = await store.get("v2", this.path(username));
    if (!wire) return null;
    try {
      const pin = pinFromWire(wire);
      this.pins.set(username, pin);
      return pin;
    } catch {
      return null;
    }
  }

  /** @param {IdentityPin} pin */
  async put(pin) {
    await store.put("v2", this.path(pin.username), pinToWire(pin));
    this.pins.set(pin.username, pin);
  }
}

/**
 * @typedef {object} Followed
 * @property {"accepted"} outcome
 * @property {IdentityPin} pin
 * @property {DeviceList} deviceList
 * @property {readonly string[]} added
 * @property {readonly string[]} removed
 * @property {readonly string[]} dropSessions
 */

/**
 * The served list names a key other than the pin: fetch the chain from the pinned key and
 * let the core decide (15.11). Accepted: the new pin and the list, checked under the new
 * key with the one accepted before, and the sessions to drop (`rotationDropSessions`).
 * Anything else: the reason, and nothing changes.
 *
 * @param {Pick<Api, "request">} api
 * @param {string} username
 * @param {unknown} document the served list
 * @param {Uint8Array} served its `account_key`
 * @param {IdentityPin} pin
 * @param {DeviceList | null} before
 * @returns {Promise<Followed | {outcome: "refused", reason: string}>}
 */
export async function followRotation(api, username, document, served, pin, before) {
  /** @type {unknown} */
  let transitions = [];
  try {
    const answer = await api.request("GET", `/users/${encodeURIComponent(username)}/identity-transitions?since_key=${hex(pin.key)}`);
    transitions = answer?.transitions;
  } catch (error) {
    // The server knows no chain from the pin: an unsigned change (key_changed).
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  const decision = await acceptIdentityTransition(pin, served, transitions);
  if (decision.outcome !== "accepted") {
    return { outcome: "refused", reason: decision.outcome === "refused" ? decision.reason : "device_list_invalid" };
  }
  const listed = await acceptDeviceList(document, username, decision.pin.key, before);
  if (listed.outcome !== "accepted") {
    return { outcome: "refused", reason: listed.outcome === "refused" ? listed.reason : "device_list_invalid" };
  }
  const dropSessions = before ? rotationDropSessions(before, listed.deviceList) : listed.dropSessions;
  return { outcome: "accepted", pin: decision.pin, deviceList: listed.deviceList, added: listed.added, removed: listed.removed, dropSessions };
}

/**
 * @param {Uint8Array} pinned
 * @param {Uint8Array} held the public key of the account private key this device holds
 */
export function checkHolds(pinned, held) {
  if (!bytesEqual(pinned, held)) throw new StaleAccountKey();
}
