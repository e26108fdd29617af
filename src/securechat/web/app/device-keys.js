/**
 * This browser profile's v2 device (PROTOCOL.md 15.3, 15.4, 15.7.6, 15.15): its signing
 * and DH keys, its signed and one-time prekeys, all generated with Web Crypto and kept in
 * IndexedDB sealed under a non-extractable AES-GCM key that never leaves this profile.
 * Nothing here goes to the server but public, signed material, and nothing is sealed
 * under the password (15.12: the password-sealed bundle keeps only the v1 keys).
 *
 * The protocol functions take raw private bytes (the state is serialised, 15.15), so the
 * bytes are kept, sealed; the AES-GCM key that seals them cannot be read by any script.
 *
 * @module
 */

import { b64decode, b64encode } from "../protocol/encoding.js";
import { ED25519_SPKI_PREFIX } from "../protocol/primitives.js";
import {
  Device,
  ONE_TIME_PREKEY_BATCH,
  ONE_TIME_PREKEY_LOW_WATER,
  SIGNED_PREKEY_ROTATION_MS,
  certifyDeviceWith,
  cryptoKeySigner,
  deviceId,
  makeOneTimePrekey,
  makeSignedPrekey,
  randomX25519Private,
  signedPrekeyPrivateExpired,
  x25519Public,
} from "../protocol/v2/index.js";
import { ApiError } from "./api.js";
import { heldAccountKey } from "./rotation.js";
import * as store from "./store.js";

/** @import { PrivateIdentity } from "../protocol/index.js" */
/** @import { MeV2 } from "../core/v2/index.js" */
/** @import { Api } from "./api.js" */

const ED25519_PKCS8_SEED_OFFSET = 16;

/**
 * Values sealed under this profile's AES-GCM key; the key path is the associated data,
 * so a sealed value moved under another key does not open.
 */
export class Sealer {
  /** @param {CryptoKey} key non-extractable */
  constructor(key) {
    this.key = key;
  }

  /**
   * The account's sealing key, made on first use. Generated non-extractable: IndexedDB
   * keeps the CryptoKey by structured clone and no script can read its bytes.
   *
   * @param {string} username
   * @returns {Promise<Sealer>}
   */
  static async forAccount(username) {
    const path = [username, "sealing-key"];
    let key = await store.get("v2", path);
    if (!(key instanceof CryptoKey)) {
      key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
      await store.put("v2", path, key);
    }
    return new Sealer(/** @type {CryptoKey} */ (key));
  }

  /**
   * The account's sealing key if this profile has one (none: nothing was sealed here).
   *
   * @param {string} username
   * @returns {Promise<Sealer | null>}
   */
  static async existing(username) {
    const key = await store.get("v2", [username, "sealing-key"]);
    return key instanceof CryptoKey ? new Sealer(key) : null;
  }

  /**
   * @param {IDBValidKey} path where the value is stored
   * @param {unknown} value JSON
   * @returns {Promise<{iv: Uint8Array, data: Uint8Array}>}
   */
  async seal(path, value) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const plain = new TextEncoder().encode(JSON.stringify(value));
    const aad = new TextEncoder().encode(JSON.stringify(path));
    const data = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, this.key, plain));
    return { iv, data };
  }

  /**
   * @param {IDBValidKey} path
   * @param {unknown} sealed as stored
   * @returns {Promise<any>} the value, or null if there is none or it does not open
   */
  async open(path, sealed) {
    const box = /** @type {{iv?: unknown, data?: unknown} | null | undefined} */ (sealed);
    if (!box || !(box.iv instanceof Uint8Array) || !(box.data instanceof Uint8Array)) return null;
    const iv = new Uint8Array(box.iv);
    const data = new Uint8Array(box.data);
    try {
      const aad = new TextEncoder().encode(JSON.stringify(path));
      const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, this.key, data);
      return JSON.parse(new TextDecoder().decode(plain));
    } catch {
      return null;
    }
  }

  /**
   * A sealed write for {@link store.writeAll}.
   *
   * @param {IDBValidKey[]} path
   * @param {unknown} value
   */
  async write(path, value) {
    return { store: "v2", key: path, value: await this.seal(path, value) };
  }

  /** @param {IDBValidKey[]} path */
  async read(path) {
    return this.open(path, await store.get("v2", path));
  }
}

/**
 * The sealed record of this device.
 *
 * @typedef {object} DeviceRecord
 * @property {string} signingSeed b64 Ed25519 seed
 * @property {string} dhPrivate b64 X25519 scalar
 * @property {{device_id: string, signing_key: string, dh_key: string, created_at: number, certificate: string}} device
 * @property {{id: number, private: string, createdAt: number, replacedAt: number | null}[]} signed newest first
 * @property {Record<string, string>} oneTime id → b64 private half, until a setup names it
 * @property {number} nextSigned the next signed prekey id (ids only go up, 15.16)
 * @property {number} nextOneTime
 * @property {boolean} [listed] this device was in the account's list once (if it is not
 *   any more, it was revoked, and its keys are not listed again)
 */

/**
 * The raw 32-byte account key of an identity (v1's Ed25519 signing key, 15.12).
 *
 * @param {{signingKey: Uint8Array}} publicIdentity
 * @returns {Uint8Array}
 */
export function rawAccountKey(publicIdentity) {
  return publicIdentity.signingKey.slice(ED25519_SPKI_PREFIX.length);
}

export class DeviceKeys {
  /**
   * @param {PrivateIdentity} identity
   * @param {Sealer} sealer
   * @param {DeviceRecord} record
   */
  constructor(identity, sealer, record) {
    this.identity = identity;
    this.sealer = sealer;
    this.record = record;
    this.username = identity.username;
    this.accountKey = rawAccountKey(identity.public);
    /**
     * The account key after a rotation (15.11), opened from its sealed copy; null: v1's
     * signing key is the account key here.
     *
     * @type {{publicKey: Uint8Array, privateKey: CryptoKey} | null}
     */
    this.accountPrivate = heldAccountKey(identity.username);
    const wire = record.device;
    this.device = new Device({
      deviceId: wire.device_id,
      signingKey: b64decode(wire.signing_key),
      dhKey: b64decode(wire.dh_key),
      createdAt: wire.created_at,
      certificate: b64decode(wire.certificate),
    });
  }

  get path() {
    return [this.username, "device"];
  }

  get deviceId() {
    return this.device.deviceId;
  }

  get signingSeed() {
    return b64decode(this.record.signingSeed);
  }

  /**
   * This profile's device for the account: the stored one, else a new one certified by
   * the account key (which signs here through its non-extractable CryptoKey).
   *
   * @param {PrivateIdentity} identity
   * @param {number} now
   * @param {{fresh?: boolean}} [options] fresh: replace a stored device (it was revoked)
   * @returns {Promise<DeviceKeys>}
   */
  static async load(identity, now, { fresh = false } = {}) {
    const sealer = await Sealer.forAccount(identity.username);
    const path = [identity.username, "device"];
    const stored = fresh ? null : await sealer.read(path);
    if (stored) return new DeviceKeys(identity, sealer, stored);
    const pair = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]));
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const seed = pkcs8.slice(ED25519_PKCS8_SEED_OFFSET);
    pkcs8.fill(0);
    const signingKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const dhPrivate = await randomX25519Private();
    const dhKey = await x25519Public(dhPrivate);
    const id = await deviceId(signingKey);
    // After a rotation the account key is the one opened from its sealed copy (15.11).
    const rotated = heldAccountKey(identity.username);
    const signer = rotated ? cryptoKeySigner(rotated.publicKey, rotated.privateKey) : cryptoKeySigner(rawAccountKey(identity.public), identity.signingPrivate);
    const { certificate } = await certifyDeviceWith(signer, identity.username, signingKey, dhKey, now);
    /** @type {DeviceRecord} */
    const record = {
      signingSeed: b64encode(seed),
      dhPrivate: b64encode(dhPrivate),
      device: {
        device_id: id,
        signing_key: b64encode(signingKey),
        dh_key: b64encode(dhKey),
        created_at: now,
        certificate: b64encode(certificate),
      },
      signed: [],
      oneTime: {},
      nextSigned: 1,
      nextOneTime: 1,
    };
    seed.fill(0);
    const keys = new DeviceKeys(identity, sealer, record);
    await keys.save();
    return keys;
  }

  /** The record as stored now (another tab may have changed it). */
  async reload() {
    const stored = await this.sealer.read(this.path);
    if (stored && stored.device?.device_id === this.deviceId) this.record = stored;
  }

  async save() {
    await store.writeAll([await this.writeRecord()]);
  }

  /** The record as a sealed write, for a transaction with other writes. */
  writeRecord() {
    return this.sealer.write(this.path, this.record);
  }

  /**
   * The core's view of this device (web/core/v2 receive.js `MeV2`).
   *
   * @returns {MeV2}
   */
  me() {
    return {
      username: this.username,
      accountKey: this.accountKey,
      device: this.device,
      dhPrivate: b64decode(this.record.dhPrivate),
      signedPrekeys: new Map(this.record.signed.map((entry) => [entry.id, b64decode(entry.private)])),
      oneTimePrekeys: new Map(Object.entries(this.record.oneTime).map(([id, key]) => [Number(id), b64decode(key)])),
    };
  }

  /**
   * The record without a one-time prekey's private half (15.4: deleted as soon as a
   * setup naming it has opened its first message), as a write for the same transaction.
   *
   * @param {number} id
   */
  forgetOneTime(id) {
    const oneTime = { ...this.record.oneTime };
    delete oneTime[String(id)];
    this.record = { ...this.record, oneTime };
    return this.writeRecord();
  }

  /**
   * 15.4's schedule: a signed prekey every 7 days (old private halves kept 30 days after
   * their replacement), one-time prekeys in batches of 100 when fewer than 20 are left.
   * Private halves are stored before the public ones are uploaded, so every prekey the
   * server can hand out opens here.
   *
   * @param {Api} api
   * @param {number} now
   */
  async publishPrekeys(api, now) {
    const base = `/devices/${this.deviceId}`;
    const current = this.record.signed[0];
    if (!current || now - current.createdAt >= SIGNED_PREKEY_ROTATION_MS) {
      const id = this.record.nextSigned;
      const privateKey = await randomX25519Private();
      const prekey = await makeSignedPrekey(this.signingSeed, this.username, this.deviceId, id, privateKey, now);
      const kept = this.record.signed
        .map((entry) => (entry.replacedAt === null ? { ...entry, replacedAt: now } : entry))
        .filter((entry) => entry.replacedAt === null || !signedPrekeyPrivateExpired(entry.replacedAt, now));
      this.record = {
        ...this.record,
        signed: [{ id, private: b64encode(privateKey), createdAt: now, replacedAt: null }, ...kept],
        nextSigned: id + 1,
      };
      await this.save();
      const answer = await api.request("PUT", `${base}/signed-prekey`, { body: prekey.toWire() });
      if (typeof answer?.next_prekey_id === "number") this.record.nextSigned = Math.max(this.record.nextSigned, answer.next_prekey_id);
    } else {
      // Drop private halves past their grace even when nothing rotates.
      const kept = this.record.signed.filter((entry) => entry.replacedAt === null || !signedPrekeyPrivateExpired(entry.replacedAt, now));
      if (kept.length !== this.record.signed.length) {
        this.record = { ...this.record, signed: kept };
        await this.save();
      }
    }
    const { remaining } = await api.request("GET", `${base}/one-time-prekeys/count`);
    if (typeof remaining === "number" && remaining < ONE_TIME_PREKEY_LOW_WATER) {
      await this.uploadOneTime(api, base);
    }
  }

  /**
   * @param {Api} api
   * @param {string} base
   * @param {boolean} [again] a second try after the server named a higher next id
   */
  async uploadOneTime(api, base, again = false) {
    const first = this.record.nextOneTime;
    const oneTime = { ...this.record.oneTime };
    const prekeys = [];
    for (let id = first; id < first + ONE_TIME_PREKEY_BATCH; id += 1) {
      const privateKey = await randomX25519Private();
      prekeys.push((await makeOneTimePrekey(this.signingSeed, this.username, this.deviceId, id, privateKey)).toWire());
      oneTime[String(id)] = b64encode(privateKey);
    }
    this.record = { ...this.record, oneTime, nextOneTime: first + ONE_TIME_PREKEY_BATCH };
    await this.save();
    try {
      await api.request("POST", `${base}/one-time-prekeys`, { body: { prekeys } });
    } catch (error) {
      const next = error instanceof ApiError ? error.details.next_prekey_id : undefined;
      if (!again && error instanceof ApiError && error.code === "prekey_id_reused" && typeof next === "number") {
        this.record = { ...this.record, nextOneTime: Math.max(next, this.record.nextOneTime) };
        await this.uploadOneTime(api, base, true);
        return;
      }
      throw error;
    }
  }
}
