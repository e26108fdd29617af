/**
 * Password-based key derivation (PROTOCOL.md 4): PBKDF2-HMAC-SHA256, then HKDF-SHA256,
 * mirroring `securechat/protocol/kdf.py`.
 *
 * The master key never leaves the client. The auth key is sent to the server (which
 * stores only a slow hash of it); the wrap key seals the private-key bundle.
 *
 * @module
 */

import { b64decode, b64encode, isPlainObject, isWellFormed, utf8Encode } from "./encoding.js";
import { MalformedInput, WeakParameters } from "./errors.js";
import { AUTH_KEY_INFO, WRAP_KEY_INFO } from "./labels.js";
import { hkdfSha256, pbkdf2Sha256 } from "./primitives.js";

export const KDF_ALGORITHM = "pbkdf2-sha256";
export const MIN_ITERATIONS = 600_000;
export const DEFAULT_ITERATIONS = 600_000;
/** A ceiling, so a hostile server cannot make a client spin for hours. */
export const MAX_ITERATIONS = 10_000_000;
export const SALT_BYTES = 16;
export const KEY_BYTES = 32;
const MAX_WIRE_SALT_BYTES = 64;

/**
 * @typedef {object} KdfParamsWire
 * @property {string} algorithm
 * @property {number} iterations
 * @property {string} salt base64
 */

/** PBKDF2 parameters as the server hands them out. */
export class KdfParams {
  /**
   * @param {{salt: Uint8Array, iterations: number, algorithm?: string}} fields
   */
  constructor({ salt, iterations, algorithm = KDF_ALGORITHM }) {
    /** @readonly */
    this.salt = salt;
    /** @readonly */
    this.iterations = iterations;
    /** @readonly */
    this.algorithm = algorithm;
    Object.freeze(this);
  }

  /**
   * Fresh parameters for a new account or a password change.
   *
   * @param {number} [iterations]
   * @returns {KdfParams}
   */
  static generate(iterations = DEFAULT_ITERATIONS) {
    const salt = globalThis.crypto.getRandomValues(new Uint8Array(SALT_BYTES));
    return new KdfParams({ salt, iterations }).checked();
  }

  /**
   * Parse and check parameters as a server hands them out (PROTOCOL.md 4.1, in order).
   *
   * @param {unknown} data
   * @returns {KdfParams}
   * @throws {MalformedInput | WeakParameters}
   */
  static fromWire(data) {
    if (!isPlainObject(data)) {
      throw new MalformedInput("kdf must be an object");
    }
    const { algorithm, iterations, salt } = /** @type {Record<string, unknown>} */ (data);
    // Number.isInteger, not isSafeInteger: a huge integer is too many iterations
    // (weak_parameters), as in Python, not a malformed value.
    if (typeof iterations !== "number" || !Number.isInteger(iterations)) {
      throw new MalformedInput("kdf.iterations must be an integer");
    }
    if (typeof algorithm !== "string" || typeof salt !== "string") {
      throw new MalformedInput("kdf.algorithm and kdf.salt must be strings");
    }
    return new KdfParams({ salt: b64decode(salt, { maxBytes: MAX_WIRE_SALT_BYTES }), iterations, algorithm }).checked();
  }

  /**
   * Refuse anything outside what v1 allows (a server may be hostile); return this.
   *
   * @returns {KdfParams}
   * @throws {WeakParameters}
   */
  checked() {
    if (this.algorithm !== KDF_ALGORITHM) {
      throw new WeakParameters("unsupported KDF algorithm");
    }
    if (!(this.iterations >= MIN_ITERATIONS)) {
      throw new WeakParameters(`PBKDF2 iterations below ${MIN_ITERATIONS}`);
    }
    if (this.iterations > MAX_ITERATIONS) {
      throw new WeakParameters("PBKDF2 iterations above the protocol's ceiling");
    }
    if (this.salt.length !== SALT_BYTES) {
      throw new WeakParameters("KDF salt must be 16 bytes");
    }
    return this;
  }

  /** @returns {KdfParamsWire} */
  toWire() {
    return { algorithm: this.algorithm, iterations: this.iterations, salt: b64encode(this.salt) };
  }
}

/**
 * @typedef {object} DerivedKeys
 * @property {Uint8Array} authKey sent to the server (as base64) in place of the password
 * @property {Uint8Array} wrapKey seals the key bundle; never leaves the client
 */

/**
 * Passwords are NFKC-normalised and UTF-8 encoded before PBKDF2; no trimming, no case
 * change. A password with a lone surrogate is refused rather than encoded as U+FFFD.
 *
 * @param {string} password
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function normalisePassword(password) {
  if (typeof password !== "string") {
    throw new MalformedInput("password must be a string");
  }
  if (!isWellFormed(password)) {
    throw new MalformedInput("password is not valid Unicode");
  }
  return utf8Encode(password.normalize("NFKC"));
}

/**
 * Derive the auth key and the wrap key from a password (PROTOCOL.md 4.2).
 *
 * @param {string} password
 * @param {KdfParams} params
 * @returns {Promise<DerivedKeys>}
 * @throws {MalformedInput | WeakParameters}
 */
export async function deriveKeys(password, params) {
  params.checked();
  const master = await pbkdf2Sha256(normalisePassword(password), params.salt, params.iterations, KEY_BYTES);
  const empty = new Uint8Array(0);
  const [authKey, wrapKey] = await Promise.all([
    hkdfSha256(master, { salt: empty, info: utf8Encode(AUTH_KEY_INFO), length: KEY_BYTES }),
    hkdfSha256(master, { salt: empty, info: utf8Encode(WRAP_KEY_INFO), length: KEY_BYTES }),
  ]);
  return { authKey, wrapKey };
}

