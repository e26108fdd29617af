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
import { KdfParams, deriveKeys, openKeyBundle } from "../protocol/index.js";
import { ED25519_SPKI_PREFIX, importEd25519PrivateKey } from "../protocol/primitives.js";
import { openAccountKey, openAccountKeySeed, sealAccountKey } from "../protocol/v2/accountseal.js";
import { IdentityTransition, certifyDeviceWith, checkDeviceList, cryptoKeySigner, signDeviceListWith, transitionBytes } from "../protocol/v2/index.js";
import { ApiError } from "./api.js";
import * as store from "./store.js";

/** @import { DeviceList } from "../protocol/v2/index.js" */
/** @import { IdentityPin } from "../core/v2/transitions.js" */
/** @import { Api } from "./api.js" */
/** @import { DeviceBook } from "./devices.js" */
/** @import { DeviceKeys } from "./device-keys.js" */
/** @import { SessionBook } from "./v2-sessions.js" */

/**
 * The account key opened at login from its sealed copy (15.11), per account, for this
 * page only: never written anywhere.
 *
 * @type {Map<string, {publicKey: Uint8Array, privateKey: CryptoKey}>}
 */
const held = new Map();

/** @param {string} username */
export function heldAccountKey(username) {
  return held.get(username) ?? null;
}

/** The server's sealed account key opens, but not to the account's current key. */
export class SealNotCurrent extends Error {
  constructor() {
    super("The server's sealed identity key is not your account's current identity key (an old seal served again): it was refused, and the key this browser holds is kept.");
  }
}

/**
 * At login or unlock, with the password's wrap key: open the account key the server keeps
 * sealed if the account rotated (nothing to do otherwise), and hold it only if it is the
 * account's current key: the key this profile pinned for its own account, or one a signed
 * chain from that pin (v1's key if none) leads to (15.11, the core's
 * acceptIdentityTransition). A seal of a retired key (an old one served again) never
 * replaces the key this page holds: SealNotCurrent. A seal that does not open is left:
 * this page then signs no list and says why (StaleAccountKey).
 *
 * @param {Pick<Api, "request">} api
 * @param {import("../protocol/index.js").PrivateIdentity} identity
 * @param {Uint8Array} wrapKey
 * @param {Pick<RotationPins, "get">} [pins] this profile's pins (the stored ones)
 */
export async function loadAccountKey(api, identity, wrapKey, pins = new RotationPins(identity.username)) {
  const username = identity.username;
  let sealed;
  try {
    sealed = (await api.request("GET", "/account/identity-key-seal"))?.account_key_seal;
  } catch (error) {
    console.warn("the sealed account key could not be fetched:", error);
    return;
  }
  if (sealed === null || sealed === undefined) return; // never rotated: v1's bundle carries it
  let opened;
  try {
    opened = await openAccountKey(wrapKey, username, sealed);
  } catch (error) {
    console.warn("the sealed account key does not open with this password:", error);
    return;
  }
  const v1Key = identity.public.signingKey.slice(ED25519_SPKI_PREFIX.length);
  const pin = (await pins.get(username)) ?? { username, key: v1Key, since: null, verified: false };
  if (!(await leadsTo(api, pin, opened.publicKey))) throw new SealNotCurrent();
  held.set(username, opened);
}

/**
 * Is `key` the pin's key or where a signed chain from it ends (the server's whole chain)?
 *
 * @param {Pick<Api, "request">} api
 * @param {IdentityPin} pin
 * @param {Uint8Array} key
 */
async function leadsTo(api, pin, key) {
  if (bytesEqual(pin.key, key)) return true;
  let transitions;
  try {
    const answer = await api.request("GET", `/users/${encodeURIComponent(pin.username)}/identity-transitions?since_key=${hex(pin.key)}`);
    transitions = answer?.transitions;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return false;
    throw error;
  }
  return (await acceptIdentityTransition(pin, key, transitions)).outcome === "accepted";
}

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

/**
 * For a password change, before anything changes: the account key's seal (if the account
 * rotated) opened with the old wrap key and sealed under the new one, sent in the change
 * itself (15.11; the server takes it only if it names the account's current key); null if
 * the account never rotated.
 *
 * @param {Pick<Api, "request">} api
 * @param {string} username
 * @param {Uint8Array} oldWrap
 * @param {Uint8Array} newWrap
 * @returns {Promise<Record<string, unknown> | null>}
 */
export async function resealAccountKey(api, username, oldWrap, newWrap) {
  const sealed = (await api.request("GET", "/account/identity-key-seal"))?.account_key_seal;
  if (sealed === null || sealed === undefined) return null;
  const seed = await openAccountKeySeed(oldWrap, username, sealed);
  try {
    return await sealAccountKey(newWrap, username, seed, crypto.getRandomValues(new Uint8Array(12)));
  } finally {
    seed.fill(0);
  }
}

/**
 * Rotate this account's identity key from this browser (15.11 "Rotating"): the password
 * is checked (it opens the key bundle) and its wrap key seals the new key for the other
 * devices; the transition is signed by the old and the new key, every listed device is
 * certified again under the new key, the list is signed as the next version, and all of
 * it is published at once. Afterwards this page holds and pins the new key.
 *
 * @param {{api: Api, book: DeviceBook, keys: DeviceKeys, sessions: SessionBook | null}} parts
 * @param {string} password
 * @param {number} now
 * @returns {Promise<{oldKey: Uint8Array, newKey: Uint8Array, version: number, devices: number}>}
 */
export async function rotateAccountKey({ api, book, keys, sessions }, password, now) {
  const me = keys.username;
  const answer = await api.keyBundle();
  const derived = await deriveKeys(password, KdfParams.fromWire(answer.kdf));
  try {
    try {
      await openKeyBundle(answer.key_bundle, derived.wrapKey, me);
    } catch {
      throw new ApiError(401, "wrong_password", "The password is not right.");
    }
    const current = await book.refresh(me);
    if (!current || !current.devices.some((device) => device.deviceId === keys.deviceId)) {
      throw new Error("This browser is not in your device list: switch protocol v2 on first.");
    }
    const oldSigner = await book.accountSigner();
    const pin = await book.identityPin(me);
    const pair = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]));
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const seed = pkcs8.slice(pkcs8.length - 32);
    const newKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const privateKey = await importEd25519PrivateKey(pkcs8);
    pkcs8.fill(0);
    let seal;
    try {
      seal = await sealAccountKey(derived.wrapKey, me, seed, crypto.getRandomValues(new Uint8Array(12)));
    } finally {
      seed.fill(0);
    }
    const newSigner = cryptoKeySigner(newKey, privateKey);
    const at = pin.since === null || now > pin.since ? now : pin.since + 1;
    const signed = transitionBytes(me, oldSigner.accountKey, newKey, at);
    const transition = new IdentityTransition({
      username: me,
      oldKey: oldSigner.accountKey,
      newKey,
      at,
      oldSignature: await oldSigner.sign(signed),
      newSignature: await newSigner.sign(signed),
    });
    const devices = [];
    for (const device of current.devices) {
      devices.push(await certifyDeviceWith(newSigner, me, device.signingKey, device.dhKey, device.createdAt));
    }
    const list = await signDeviceListWith(newSigner, me, current.version + 1, now, devices);
    await checkDeviceList(list.toWire(), me, newKey, null);
    await api.request("POST", "/account/identity-transition", {
      body: { transition: transition.toWire(), device_list: list.toWire(), account_key_seal: seal },
    });
    const rotated = { publicKey: newKey, privateKey };
    held.set(me, rotated);
    keys.accountPrivate = rotated;
    keys.accountKey = newKey;
    await book.rotations.put({ username: me, key: newKey, since: at, verified: false });
    await store.put("v2", book.path(me), list.toWire());
    book.lists.set(me, list);
    // This device's unanswered setups bound the old key (15.5's session id): set up again.
    if (sessions) {
      for (const [username, accepted] of book.lists) {
        for (const device of accepted.devices) {
          const stored = await sessions.get(username, device.deviceId);
          if (stored.sessions.active && stored.sessions.active.pendingSetup.length > 0 && !stored.repair) {
            await store.writeAll([await sessions.write(username, device.deviceId, { ...stored, repair: true })]);
          }
        }
      }
    }
    return { oldKey: oldSigner.accountKey, newKey, version: list.version, devices: devices.length };
  } finally {
    derived.wrapKey.fill(0);
  }
}
