/**
 * Signed and one-time prekeys (PROTOCOL.md 15.4), mirroring
 * `securechat/protocol/v2/prekeys.py`.
 *
 * @module
 */

import { b64encode, canonical, u64 } from "../encoding.js";
import { refuseUnverified } from "./devices.js";
import { Refusal } from "./errors.js";
import { ONE_TIME_PREKEY, SIGNED_PREKEY } from "./labels.js";
import { KEY_BYTES, SIGNATURE_BYTES, checkX25519Raw, ed25519SignRaw, ed25519VerifyRaw, x25519Public } from "./primitives.js";
import { exactBytes, integer, members } from "./wire.js";


export const DAY_MS = 86_400_000;
export const SIGNED_PREKEY_ROTATION_MS = 7 * DAY_MS;
export const SIGNED_PREKEY_GRACE_MS = 30 * DAY_MS;
export const SIGNED_PREKEY_MAX_AGE_MS = 30 * DAY_MS;
export const ONE_TIME_PREKEY_BATCH = 100;
export const ONE_TIME_PREKEY_LOW_WATER = 20;
export const PREKEY_ID_LIMIT = 2 ** 32;

const SIGNED_FIELDS = Object.freeze(["prekey_id", "public_key", "created_at", "signature"]);
const ONE_TIME_FIELDS = Object.freeze(["prekey_id", "public_key", "signature"]);

export class SignedPrekey {
  /**
   * @param {{prekeyId: number, publicKey: Uint8Array, createdAt: number, signature: Uint8Array}} fields
   */
  constructor({ prekeyId, publicKey, createdAt, signature }) {
    this.prekeyId = prekeyId;
    this.publicKey = publicKey;
    this.createdAt = createdAt;
    this.signature = signature;
    Object.freeze(this);
  }

  /** @returns {Record<string, unknown>} */
  toWire() {
    return {
      prekey_id: this.prekeyId,
      public_key: b64encode(this.publicKey),
      created_at: this.createdAt,
      signature: b64encode(this.signature),
    };
  }
}

export class OneTimePrekey {
  /**
   * @param {{prekeyId: number, publicKey: Uint8Array, signature: Uint8Array}} fields
   */
  constructor({ prekeyId, publicKey, signature }) {
    this.prekeyId = prekeyId;
    this.publicKey = publicKey;
    this.signature = signature;
    Object.freeze(this);
  }

  /** @returns {Record<string, unknown>} */
  toWire() {
    return { prekey_id: this.prekeyId, public_key: b64encode(this.publicKey), signature: b64encode(this.signature) };
  }
}

/**
 * @param {string} username
 * @param {string} deviceId
 * @param {number} prekeyId
 * @param {Uint8Array} publicKey
 * @param {number} createdAt
 * @returns {Uint8Array}
 */
export function signedPrekeyBytes(username, deviceId, prekeyId, publicKey, createdAt) {
  return canonical(SIGNED_PREKEY, [username, deviceId, u64(prekeyId), publicKey, u64(createdAt)]);
}

/**
 * @param {string} username
 * @param {string} deviceId
 * @param {number} prekeyId
 * @param {Uint8Array} publicKey
 * @returns {Uint8Array}
 */
export function oneTimePrekeyBytes(username, deviceId, prekeyId, publicKey) {
  return canonical(ONE_TIME_PREKEY, [username, deviceId, u64(prekeyId), publicKey]);
}

/**
 * The owning device signs a signed prekey from its private half.
 *
 * @param {Uint8Array} deviceSeed
 * @param {string} username
 * @param {string} deviceId
 * @param {number} prekeyId
 * @param {Uint8Array} privateKey
 * @param {number} createdAt
 * @returns {Promise<SignedPrekey>}
 */
export async function makeSignedPrekey(deviceSeed, username, deviceId, prekeyId, privateKey, createdAt) {
  const publicKey = await x25519Public(privateKey);
  const signed = signedPrekeyBytes(username, deviceId, prekeyId, publicKey, createdAt);
  return new SignedPrekey({ prekeyId, publicKey, createdAt, signature: await ed25519SignRaw(deviceSeed, signed) });
}

/**
 * @param {Uint8Array} deviceSeed
 * @param {string} username
 * @param {string} deviceId
 * @param {number} prekeyId
 * @param {Uint8Array} privateKey
 * @returns {Promise<OneTimePrekey>}
 */
export async function makeOneTimePrekey(deviceSeed, username, deviceId, prekeyId, privateKey) {
  const publicKey = await x25519Public(privateKey);
  const signed = oneTimePrekeyBytes(username, deviceId, prekeyId, publicKey);
  return new OneTimePrekey({ prekeyId, publicKey, signature: await ed25519SignRaw(deviceSeed, signed) });
}

/**
 * Parse (`MalformedInput`), verify with the listed device's key (`prekey_invalid`) and
 * refuse one older than 30 days (`prekey_stale`).
 *
 * @param {unknown} data
 * @param {string} username the device's account
 * @param {import("./devices.js").Device} device from an accepted list
 * @param {number} now milliseconds since the epoch
 * @returns {Promise<SignedPrekey>}
 */
export async function checkSignedPrekey(data, username, device, now) {
  const obj = members(data, SIGNED_FIELDS);
  const prekey = new SignedPrekey({
    prekeyId: integer(obj.prekey_id, { below: PREKEY_ID_LIMIT }),
    publicKey: checkX25519Raw(exactBytes(obj.public_key, KEY_BYTES)),
    createdAt: integer(obj.created_at),
    signature: exactBytes(obj.signature, SIGNATURE_BYTES),
  });
  const signed = signedPrekeyBytes(username, device.deviceId, prekey.prekeyId, prekey.publicKey, prekey.createdAt);
  await refuseUnverified(() => ed25519VerifyRaw(device.signingKey, prekey.signature, signed), "prekey_invalid");
  if (now - prekey.createdAt > SIGNED_PREKEY_MAX_AGE_MS) {
    throw new Refusal("prekey_stale");
  }
  return prekey;
}

/**
 * Parse (`MalformedInput`) and verify with the listed device's key (`prekey_invalid`).
 *
 * @param {unknown} data
 * @param {string} username
 * @param {import("./devices.js").Device} device
 * @returns {Promise<OneTimePrekey>}
 */
export async function checkOneTimePrekey(data, username, device) {
  const obj = members(data, ONE_TIME_FIELDS);
  const prekey = new OneTimePrekey({
    prekeyId: integer(obj.prekey_id, { below: PREKEY_ID_LIMIT }),
    publicKey: checkX25519Raw(exactBytes(obj.public_key, KEY_BYTES)),
    signature: exactBytes(obj.signature, SIGNATURE_BYTES),
  });
  const signed = oneTimePrekeyBytes(username, device.deviceId, prekey.prekeyId, prekey.publicKey);
  await refuseUnverified(() => ed25519VerifyRaw(device.signingKey, prekey.signature, signed), "prekey_invalid");
  return prekey;
}

/**
 * Whether the owning device must delete a signed prekey's private half now: 30 days
 * after a newer signed prekey replaced it (15.4).
 *
 * @param {number | null} replacedAt
 * @param {number} now
 * @returns {boolean}
 */
export function signedPrekeyPrivateExpired(replacedAt, now) {
  return replacedAt !== null && now - replacedAt >= SIGNED_PREKEY_GRACE_MS;
}
