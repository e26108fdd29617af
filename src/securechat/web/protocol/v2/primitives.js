/**
 * X25519 and raw Ed25519 keys for protocol v2 (PROTOCOL.md 15.1, 15.15) over Web Crypto,
 * mirroring `securechat/protocol/v2/primitives.py`.
 *
 * v2 carries public keys as their 32 raw bytes (Web Crypto's `raw` format) and private
 * X25519 keys as the 32-byte scalar, which Web Crypto takes only inside a PKCS#8
 * (RFC 8410), so every private key is imported as `X25519_PKCS8_PREFIX ‖ scalar`.
 * Hashing, HKDF, HMAC, AES-GCM and Ed25519 verification are v1's wrappers
 * (`../primitives.js`), which already apply the protocol's own rules (12-byte IVs,
 * canonical signatures) on every platform.
 *
 * @module
 */

import { b64decode, bytesEqual, canonical, concatBytes, fromHex, toHex } from "../encoding.js";
import {
  ED25519_SPKI_PREFIX,
  ed25519PublicSpkiFromPkcs8,
  ed25519Pkcs8FromSeed,
  ed25519Sign,
  ed25519Verify,
  importEd25519PrivateKey,
  isSmallOrderEd25519Point,
  sha256,
} from "../primitives.js";
import { MalformedInput, VerificationFailed } from "./errors.js";
import { DEVICE_ID } from "./labels.js";

export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** The DER prefix of an X25519 private key in PKCS#8 (RFC 8410); the 32-byte scalar follows. */
export const X25519_PKCS8_PREFIX = fromHex("302e020100300506032b656e04220420");

const X25519 = Object.freeze({ name: "X25519" });
const ED25519 = Object.freeze({ name: "Ed25519" });

/**
 * A source of randomness: `random(32)` gives a fresh X25519 private scalar (the only
 * size v2 asks for). Injected so that vectors are reproducible; in the browser it is
 * {@link randomX25519Private}.
 *
 * @typedef {(length: number) => Uint8Array | Promise<Uint8Array>} RandomSource
 */

/** @returns {SubtleCrypto} */
function subtle() {
  return globalThis.crypto.subtle;
}

/**
 * The same bytes typed as a `BufferSource` (see `bufferSource` in ../primitives.js: this
 * client never allocates shared memory, so every Uint8Array views an ArrayBuffer).
 *
 * @param {Uint8Array} bytes
 * @returns {Uint8Array<ArrayBuffer>}
 */
function buffer(bytes) {
  return /** @type {Uint8Array<ArrayBuffer>} */ (bytes);
}

/**
 * Base64url without padding (a JWK member) to bytes, through the strict decoder.
 *
 * @param {string | undefined} text
 * @returns {Uint8Array}
 */
function jwkBytes(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) {
    throw new MalformedInput("malformed JWK member");
  }
  const standard = text.replaceAll("-", "+").replaceAll("_", "/");
  return b64decode(standard + "=".repeat((4 - (standard.length % 4)) % 4));
}

/**
 * An X25519 private scalar as a Web Crypto key (PKCS#8, RFC 8410).
 *
 * @param {Uint8Array} scalar 32 bytes
 * @param {boolean} extractable
 * @returns {Promise<CryptoKey>}
 * @throws {MalformedInput}
 */
async function importX25519Private(scalar, extractable) {
  if (scalar.length !== KEY_BYTES) {
    throw new MalformedInput("an X25519 private key is 32 bytes");
  }
  try {
    return await subtle().importKey("pkcs8", buffer(concatBytes(X25519_PKCS8_PREFIX, scalar)), X25519, extractable, [
      "deriveBits",
    ]);
  } catch {
    throw new MalformedInput("malformed X25519 private key");
  }
}

/**
 * The public key of a 32-byte X25519 private scalar.
 *
 * @param {Uint8Array} privateKey
 * @returns {Promise<Uint8Array>}
 * @throws {MalformedInput}
 */
export async function x25519Public(privateKey) {
  // Web Crypto has no "public key of this private key"; the JWK export carries it as x.
  const key = await importX25519Private(privateKey, true);
  const publicKey = jwkBytes((await subtle().exportKey("jwk", key)).x);
  if (publicKey.length !== KEY_BYTES) {
    throw new MalformedInput("malformed X25519 public key");
  }
  return publicKey;
}

/**
 * X25519(private, public), or null when the output is all zero (a small-order peer key).
 *
 * Callers turn null into their own refusal. Web Crypto's `deriveBits` throws for that
 * case (PROTOCOL.md 15.15), and the zero check here makes the rule the protocol's own
 * rather than the platform's. A public key the platform will not import is refused the
 * same way: no output, so no session.
 *
 * @param {Uint8Array} privateKey 32 bytes
 * @param {Uint8Array} publicKey 32 bytes
 * @returns {Promise<Uint8Array | null>}
 * @throws {MalformedInput} for keys that are not 32 bytes
 */
export async function x25519(privateKey, publicKey) {
  if (privateKey.length !== KEY_BYTES || publicKey.length !== KEY_BYTES) {
    throw new MalformedInput("X25519 keys are 32 bytes");
  }
  const ownKey = await importX25519Private(privateKey, false);
  let shared;
  try {
    const peerKey = await subtle().importKey("raw", buffer(publicKey), X25519, false, []);
    shared = new Uint8Array(await subtle().deriveBits({ name: "X25519", public: peerKey }, ownKey, 256));
  } catch {
    return null;
  }
  return shared.every((byte) => byte === 0) ? null : shared;
}

/**
 * Ratchet private keys imported lately (PROTOCOL.md 15.7): a session's own ratchet key
 * is used by every send of its chain (for its public half) and by the next DH turn
 * (X25519), and the states are read back from storage between the two, so the cache
 * goes by the scalar's bytes, not by the array. Each entry holds a copy of the scalar
 * (compared in full on every look-up, so a hit is always the same key) with its
 * non-extractable `CryptoKey` and public key; the oldest is dropped, its copy zeroed,
 * beyond {@link RATCHET_KEY_CACHE_SIZE}. Only ratchet.js uses it, for keys a state owns.
 *
 * @type {{scalar: Uint8Array, key: Promise<CryptoKey>, publicKey: Promise<Uint8Array> | null}[]}
 */
const ratchetKeys = [];
export const RATCHET_KEY_CACHE_SIZE = 16;

/**
 * The cache entry of a ratchet private scalar (made, and moved to the newest, here).
 *
 * @param {Uint8Array} scalar 32 bytes
 */
function ratchetEntry(scalar) {
  const index = ratchetKeys.findIndex((entry) => bytesEqual(entry.scalar, scalar));
  if (index >= 0) {
    const [entry] = ratchetKeys.splice(index, 1);
    ratchetKeys.push(entry);
    return entry;
  }
  const copy = Uint8Array.from(scalar);
  const entry = { scalar: copy, key: importX25519Private(copy, false), publicKey: /** @type {Promise<Uint8Array> | null} */ (null) };
  // A key the platform refuses is not kept: the next use fails the same way again.
  entry.key.catch(() => forgetRatchetEntry(entry));
  ratchetKeys.push(entry);
  while (ratchetKeys.length > RATCHET_KEY_CACHE_SIZE) {
    const dropped = /** @type {(typeof ratchetKeys)[number]} */ (ratchetKeys.shift());
    dropped.scalar.fill(0);
  }
  return entry;
}

/** @param {(typeof ratchetKeys)[number]} entry */
function forgetRatchetEntry(entry) {
  const index = ratchetKeys.indexOf(entry);
  if (index >= 0) ratchetKeys.splice(index, 1);
}

/**
 * Drop a ratchet private key from the cache (zeroing the cache's copy), when a session
 * has replaced it; the caller's array is left alone.
 *
 * @param {Uint8Array} privateKey
 */
export function forgetX25519Ratchet(privateKey) {
  const index = ratchetKeys.findIndex((entry) => bytesEqual(entry.scalar, privateKey));
  if (index >= 0) {
    const [entry] = ratchetKeys.splice(index, 1);
    entry.scalar.fill(0);
  }
}

/**
 * {@link x25519} for a ratchet private key (the same checks, refusals and output), with
 * the private key imported once per scalar and the peer's key imported meanwhile.
 *
 * @param {Uint8Array} privateKey 32 bytes, never written to afterwards
 * @param {Uint8Array} publicKey 32 bytes
 * @returns {Promise<Uint8Array | null>}
 * @throws {MalformedInput} for keys that are not 32 bytes or a refused private key
 */
export async function x25519Ratchet(privateKey, publicKey) {
  if (privateKey.length !== KEY_BYTES || publicKey.length !== KEY_BYTES) {
    throw new MalformedInput("X25519 keys are 32 bytes");
  }
  const ownKey = ratchetEntry(privateKey).key;
  const peerKey = subtle()
    .importKey("raw", buffer(publicKey), X25519, false, [])
    .catch(() => null);
  const own = await ownKey;
  const peer = await peerKey;
  if (peer === null) return null;
  let shared;
  try {
    shared = new Uint8Array(await subtle().deriveBits({ name: "X25519", public: peer }, own, 256));
  } catch {
    return null;
  }
  return shared.every((byte) => byte === 0) ? null : shared;
}

/**
 * {@link x25519Public} of a ratchet private key, computed once per scalar.
 *
 * @param {Uint8Array} privateKey 32 bytes, never written to afterwards
 * @returns {Promise<Uint8Array>} a fresh copy
 * @throws {MalformedInput}
 */
export async function x25519RatchetPublic(privateKey) {
  if (privateKey.length !== KEY_BYTES) {
    throw new MalformedInput("an X25519 private key is 32 bytes");
  }
  const entry = ratchetEntry(privateKey);
  if (entry.publicKey === null) {
    entry.publicKey = x25519Public(entry.scalar.slice());
    entry.publicKey.catch(() => forgetRatchetEntry(entry));
  }
  return (await entry.publicKey).slice();
}

/**
 * A fresh X25519 private scalar from the platform's `generateKey`, read from its PKCS#8
 * export (PROTOCOL.md 15.15): the `RandomSource` of production code.
 *
 * @param {number} [length] must be 32, the only size v2 asks for
 * @returns {Promise<Uint8Array>}
 */
export async function randomX25519Private(length = KEY_BYTES) {
  if (length !== KEY_BYTES) {
    throw new RangeError("v2 asks its random source for 32-byte X25519 keys only");
  }
  const pair = /** @type {CryptoKeyPair} */ (await subtle().generateKey(X25519, true, ["deriveBits"]));
  const der = new Uint8Array(await subtle().exportKey("pkcs8", pair.privateKey));
  if (der.length !== X25519_PKCS8_PREFIX.length + KEY_BYTES || !bytesEqual(der.subarray(0, X25519_PKCS8_PREFIX.length), X25519_PKCS8_PREFIX)) {
    throw new Error("unexpected PKCS#8 form of a generated X25519 key");
  }
  return der.slice(X25519_PKCS8_PREFIX.length);
}

/**
 * A raw Ed25519 public key: 32 bytes and not of small order (PROTOCOL.md 5.1, 15.1).
 * Returns the key; whether it is a point at all is the signature check's business, as
 * in Python.
 *
 * @param {Uint8Array} publicKey
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function checkEd25519Raw(publicKey) {
  if (publicKey.length !== KEY_BYTES) {
    throw new MalformedInput("an Ed25519 public key is 32 bytes");
  }
  if (isSmallOrderEd25519Point(publicKey)) {
    throw new MalformedInput("an Ed25519 public key of small order");
  }
  return publicKey;
}

/**
 * A raw X25519 public key: 32 bytes (a small-order one fails where it is used).
 *
 * @param {Uint8Array} publicKey
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function checkX25519Raw(publicKey) {
  if (publicKey.length !== KEY_BYTES) {
    throw new MalformedInput("an X25519 public key is 32 bytes");
  }
  return publicKey;
}

/**
 * The raw public key of a 32-byte Ed25519 seed.
 *
 * @param {Uint8Array} seed
 * @returns {Promise<Uint8Array>}
 */
export async function ed25519RawPublic(seed) {
  const spki = await ed25519PublicSpkiFromPkcs8(ed25519Pkcs8FromSeed(seed));
  return spki.slice(ED25519_SPKI_PREFIX.length);
}

/**
 * Sign with a 32-byte Ed25519 seed (deterministic, RFC 8032).
 *
 * @param {Uint8Array} seed
 * @param {Uint8Array} message
 * @returns {Promise<Uint8Array>} 64 bytes
 */
export async function ed25519SignRaw(seed, message) {
  return ed25519Sign(await importEd25519PrivateKey(ed25519Pkcs8FromSeed(seed)), message);
}

/**
 * Throw `VerificationFailed` (or `MalformedInput` for a key of the wrong size or of
 * small order) unless the signature verifies with the raw public key.
 *
 * @param {Uint8Array} publicKey
 * @param {Uint8Array} signature
 * @param {Uint8Array} message
 * @returns {Promise<void>}
 * @throws {MalformedInput | VerificationFailed}
 */
export async function ed25519VerifyRaw(publicKey, signature, message) {
  await ed25519Verify(await ed25519VerifyKey(publicKey), signature, message);
}

/**
 * Imported Ed25519 public keys by their hex (public, so kept as text), newest last; a
 * device's key verifies every message it sends and is read back from storage each time.
 *
 * @type {Map<string, Promise<CryptoKey>>}
 */
const verifyKeys = new Map();
const VERIFY_KEY_CACHE_SIZE = 64;

/**
 * A raw Ed25519 public key as a Web Crypto verify key: `MalformedInput` for a key of the
 * wrong size or of small order, `VerificationFailed` for 32 bytes that are no point.
 *
 * @param {Uint8Array} publicKey
 * @returns {Promise<CryptoKey>}
 * @throws {MalformedInput | VerificationFailed}
 */
export async function ed25519VerifyKey(publicKey) {
  checkEd25519Raw(publicKey);
  const name = toHex(publicKey);
  let key = verifyKeys.get(name);
  if (key === undefined) {
    key = subtle().importKey("raw", buffer(Uint8Array.from(publicKey)), ED25519, false, ["verify"]);
    verifyKeys.set(name, key);
    key.catch(() => verifyKeys.delete(name));
    for (const oldest of verifyKeys.keys()) {
      if (verifyKeys.size <= VERIFY_KEY_CACHE_SIZE) break;
      verifyKeys.delete(oldest);
    }
  } else {
    verifyKeys.delete(name);
    verifyKeys.set(name, key);
  }
  try {
    return await key;
  } catch {
    // 32 bytes that are no point: no signature verifies with them.
    throw new VerificationFailed();
  }
}

/**
 * PROTOCOL.md 15.1: 32 hex digits derived from the device's signing key.
 *
 * @param {Uint8Array} signingKey
 * @returns {Promise<string>}
 */
export async function deviceId(signingKey) {
  return toHex((await sha256(canonical(DEVICE_ID, [signingKey]))).subarray(0, 16));
}
