/**
 * Identity key pairs, public identities, the sealed private-key bundle, fingerprints
 * and safety numbers (PROTOCOL.md 5 and 6), mirroring `securechat/protocol/keys.py`.
 *
 * @module
 */

import {
  b64decode,
  b64encode,
  bytesEqual,
  canonical,
  concatBytes,
  hasExactKeys,
  isPlainObject,
  splitCanonical,
  toHex,
} from "./encoding.js";
import { MalformedInput, UnsupportedVersion, VerificationFailed } from "./errors.js";
import {
  ENCRYPTION_KEY_BINDING,
  KEY_BUNDLE_AAD,
  KEY_BUNDLE_PLAINTEXT,
  SAFETY_NUMBER,
} from "./labels.js";
import {
  GCM_IV_BYTES,
  RSA_EXPONENT,
  aesGcmDecrypt,
  aesGcmEncrypt,
  ed25519PublicSpkiFromPkcs8,
  ed25519Sign,
  ed25519Verify,
  importEd25519PrivateKey,
  importRsaPrivateKey,
  loadEd25519PublicKey,
  loadRsaPublicKey,
  rsaPublicSpkiFromPkcs8,
  sha256,
  sha512,
} from "./primitives.js";

/** @import { Username } from "./identifiers.js" */

export const KEY_BUNDLE_VERSION = 1;
export const MAX_PUBLIC_KEY_BYTES = 1024;
export const MAX_BUNDLE_BYTES = 8192;
export const SAFETY_NUMBER_ITERATIONS = 5200;
const SIGNATURE_BYTES = 64;
const KEY_BUNDLE_FIELDS = Object.freeze(["v", "iv", "ciphertext"]);

/**
 * @typedef {object} PublicIdentityWire
 * @property {string} username
 * @property {string} signing_key base64 SPKI
 * @property {string} encryption_key base64 SPKI
 * @property {string} encryption_key_signature base64, 64 bytes
 */

/**
 * A user's published keys: Ed25519 for signatures, RSA-OAEP for key wrapping. The
 * encryption key is signed by the signing key, binding it to the username.
 */
export class PublicIdentity {
  /**
   * @param {{username: Username, signingKey: Uint8Array, encryptionKey: Uint8Array, encryptionKeySignature: Uint8Array}} fields
   *   the keys as SPKI DER
   */
  constructor({ username, signingKey, encryptionKey, encryptionKeySignature }) {
    /** @readonly */
    this.username = username;
    /** @readonly */
    this.signingKey = signingKey;
    /** @readonly */
    this.encryptionKey = encryptionKey;
    /** @readonly */
    this.encryptionKeySignature = encryptionKeySignature;
    Object.freeze(this);
  }

  /**
   * Check key formats, parameters and the binding signature (PROTOCOL.md 5.4 steps 2-4);
   * return this identity.
   *
   * @returns {Promise<PublicIdentity>}
   * @throws {MalformedInput | WeakParameters | VerificationFailed}
   */
  async verified() {
    const signing = await loadEd25519PublicKey(this.signingKey);
    await loadRsaPublicKey(this.encryptionKey);
    await ed25519Verify(signing, this.encryptionKeySignature, encryptionKeyBinding(this.username, this.encryptionKey));
    return this;
  }

  /** @returns {PublicIdentityWire} */
  toWire() {
    return {
      username: this.username,
      signing_key: b64encode(this.signingKey),
      encryption_key: b64encode(this.encryptionKey),
      encryption_key_signature: b64encode(this.encryptionKeySignature),
    };
  }

  /**
   * Parse a public identity fetched for `username` (the name the client asked for; the
   * response's own `username` member is not used). Call {@link PublicIdentity#verified}
   * before trusting it.
   *
   * @param {Username} username
   * @param {unknown} data
   * @returns {PublicIdentity}
   * @throws {MalformedInput}
   */
  static fromWire(username, data) {
    if (!isPlainObject(data)) {
      throw new MalformedInput("public identity must be an object");
    }
    /**
     * @param {string} name
     * @param {number} limit
     * @returns {Uint8Array}
     */
    const field = (name, limit) => {
      const value = Object.hasOwn(data, name) ? data[name] : undefined;
      if (typeof value !== "string") {
        throw new MalformedInput(`${name} must be a base64 string`);
      }
      return b64decode(value, { maxBytes: limit });
    };
    return new PublicIdentity({
      username,
      signingKey: field("signing_key", MAX_PUBLIC_KEY_BYTES),
      encryptionKey: field("encryption_key", MAX_PUBLIC_KEY_BYTES),
      encryptionKeySignature: field("encryption_key_signature", SIGNATURE_BYTES),
    });
  }

  /**
   * Same username and the same three byte strings.
   *
   * @param {PublicIdentity} other
   * @returns {boolean}
   */
  equals(other) {
    return (
      other instanceof PublicIdentity &&
      this.username === other.username &&
      bytesEqual(this.signingKey, other.signingKey) &&
      bytesEqual(this.encryptionKey, other.encryptionKey) &&
      bytesEqual(this.encryptionKeySignature, other.encryptionKeySignature)
    );
  }
}

/**
 * A user's private keys (as non-extractable CryptoKeys for use, and as PKCS#8 for the
 * key bundle) and the public identity derived from them.
 */
export class PrivateIdentity {
  /**
   * Use {@link PrivateIdentity.generate} or {@link PrivateIdentity.fromPrivateKeys}.
   *
   * @param {{username: Username, signingPrivate: CryptoKey, encryptionPrivate: CryptoKey,
   *   signingPkcs8: Uint8Array | null, encryptionPkcs8: Uint8Array | null, publicIdentity: PublicIdentity}} fields
   *   the PKCS#8 bytes are null in an identity that keeps only its non-extractable CryptoKeys
   */
  constructor({ username, signingPrivate, encryptionPrivate, signingPkcs8, encryptionPkcs8, publicIdentity }) {
    /** @readonly */
    this.username = username;
    /** @readonly Ed25519, for signing */
    this.signingPrivate = signingPrivate;
    /** @readonly RSA-OAEP/SHA-256, for unwrapping message keys */
    this.encryptionPrivate = encryptionPrivate;
    /** @readonly PKCS#8 DER of the signing key */
    this.signingPkcs8 = signingPkcs8;
    /** @readonly PKCS#8 DER of the encryption key */
    this.encryptionPkcs8 = encryptionPkcs8;
    /** @readonly */
    this.public = publicIdentity;
    Object.freeze(this);
  }

  /**
   * Generate both key pairs on this device (PROTOCOL.md 5.1).
   *
   * @param {Username} username
   * @param {{rsaBits?: 2048 | 3072 | 4096}} [options]
   * @returns {Promise<PrivateIdentity>}
   */
  static async generate(username, { rsaBits = 2048 } = {}) {
    const subtle = globalThis.crypto.subtle;
    const exponent = Uint8Array.of((RSA_EXPONENT >> 16) & 0xff, (RSA_EXPONENT >> 8) & 0xff, RSA_EXPONENT & 0xff);
    const [signing, encryption] = await Promise.all([
      /** @type {Promise<CryptoKeyPair>} */ (subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])),
      subtle.generateKey({ name: "RSA-OAEP", modulusLength: rsaBits, publicExponent: exponent, hash: "SHA-256" }, true, [
        "encrypt",
        "decrypt",
      ]),
    ]);
    const [signingPkcs8, encryptionPkcs8] = await Promise.all([
      subtle.exportKey("pkcs8", signing.privateKey),
      subtle.exportKey("pkcs8", encryption.privateKey),
    ]);
    return PrivateIdentity.fromPrivateKeys(username, new Uint8Array(signingPkcs8), new Uint8Array(encryptionPkcs8));
  }

  /**
   * Build an identity from both private keys (PKCS#8 DER): derive the public keys and
   * sign the encryption-key binding (PROTOCOL.md 5.3).
   *
   * The PKCS#8 bytes are re-exported by the platform, so they are in the same canonical
   * form that the Python code writes (48 bytes for Ed25519).
   *
   * @param {Username} username
   * @param {Uint8Array} signingPkcs8 Ed25519
   * @param {Uint8Array} encryptionPkcs8 RSA
   * @returns {Promise<PrivateIdentity>}
   * @throws {MalformedInput} if either key does not import
   */
  static async fromPrivateKeys(username, signingPkcs8, encryptionPkcs8) {
    const subtle = globalThis.crypto.subtle;
    const [signingExportable, encryptionExportable] = await Promise.all([
      importEd25519PrivateKey(signingPkcs8, { extractable: true }),
      importRsaPrivateKey(encryptionPkcs8, { extractable: true }),
    ]);
    const [signingDer, encryptionDer] = (
      await Promise.all([subtle.exportKey("pkcs8", signingExportable), subtle.exportKey("pkcs8", encryptionExportable)])
    ).map((buffer) => new Uint8Array(buffer));
    const [signingPrivate, encryptionPrivate, signingKey, encryptionKey] = await Promise.all([
      importEd25519PrivateKey(signingDer),
      importRsaPrivateKey(encryptionDer),
      ed25519PublicSpkiFromPkcs8(signingDer),
      rsaPublicSpkiFromPkcs8(encryptionDer),
    ]);
    const encryptionKeySignature = await ed25519Sign(signingPrivate, encryptionKeyBinding(username, encryptionKey));
    const publicIdentity = new PublicIdentity({ username, signingKey, encryptionKey, encryptionKeySignature });
    return new PrivateIdentity({
      username,
      signingPrivate,
      encryptionPrivate,
      signingPkcs8: signingDer,
      encryptionPkcs8: encryptionDer,
      publicIdentity,
    });
  }
}

/**
 * The byte string the signing key signs to bind the encryption key (PROTOCOL.md 5.3).
 *
 * @param {Username} username
 * @param {Uint8Array} encryptionSpki
 * @returns {Uint8Array}
 */
export function encryptionKeyBinding(username, encryptionSpki) {
  return canonical(ENCRYPTION_KEY_BINDING, [username, encryptionSpki]);
}

/**
 * The AES-GCM associated data of a key bundle: the version as the ASCII digit, not u64.
 *
 * @param {Username} username
 * @param {number} [version]
 * @returns {Uint8Array}
 */
export function keyBundleAad(username, version = KEY_BUNDLE_VERSION) {
  return canonical(KEY_BUNDLE_AAD, [username, String(version)]);
}

/**
 * @typedef {object} KeyBundleWire
 * @property {number} v
 * @property {string} iv base64, 12 bytes
 * @property {string} ciphertext base64, tag included
 */

/**
 * Seal both private keys (PKCS#8, RSA first) under the wrap key (PROTOCOL.md 6); the
 * result is opaque to the server.
 *
 * @param {PrivateIdentity} identity
 * @param {Uint8Array} wrapKey
 * @param {{iv?: Uint8Array}} [options] the IV, injectable for test vectors; fresh by default
 * @returns {Promise<KeyBundleWire>}
 * @throws {TypeError} for an identity that no longer holds its PKCS#8 bytes
 */
export async function sealKeyBundle(identity, wrapKey, { iv } = {}) {
  if (!identity.encryptionPkcs8 || !identity.signingPkcs8) {
    throw new TypeError("this identity no longer holds its private key bytes");
  }
  const nonce = iv ?? globalThis.crypto.getRandomValues(new Uint8Array(GCM_IV_BYTES));
  const plaintext = canonical(KEY_BUNDLE_PLAINTEXT, [identity.encryptionPkcs8, identity.signingPkcs8]);
  const ciphertext = await aesGcmEncrypt(wrapKey, nonce, plaintext, keyBundleAad(identity.username));
  return { v: KEY_BUNDLE_VERSION, iv: b64encode(nonce), ciphertext: b64encode(ciphertext) };
}

/**
 * Unseal a key bundle for the user logging in (PROTOCOL.md 6, in order).
 *
 * @param {unknown} bundle
 * @param {Uint8Array} wrapKey
 * @param {Username} username
 * @returns {Promise<PrivateIdentity>}
 * @throws {MalformedInput | UnsupportedVersion | VerificationFailed} VerificationFailed for a
 *   wrong password, another user's bundle or tampering
 */
export async function openKeyBundle(bundle, wrapKey, username) {
  if (!isPlainObject(bundle)) {
    throw new MalformedInput("key bundle must be an object");
  }
  if (!hasExactKeys(bundle, KEY_BUNDLE_FIELDS)) {
    throw new MalformedInput("key bundle fields must be exactly v, iv, ciphertext");
  }
  const version = bundle.v;
  if (typeof version !== "number" || !Number.isInteger(version)) {
    throw new MalformedInput("key bundle version must be an integer");
  }
  if (version !== KEY_BUNDLE_VERSION) {
    throw new UnsupportedVersion("unsupported key bundle version");
  }
  if (typeof bundle.iv !== "string" || typeof bundle.ciphertext !== "string") {
    throw new MalformedInput("key bundle fields must be base64 strings");
  }
  const iv = b64decode(bundle.iv, { maxBytes: GCM_IV_BYTES });
  const ciphertext = b64decode(bundle.ciphertext, { maxBytes: MAX_BUNDLE_BYTES });
  const plaintext = await aesGcmDecrypt(wrapKey, iv, ciphertext, keyBundleAad(username));
  try {
    const fields = splitCanonical(plaintext, KEY_BUNDLE_PLAINTEXT);
    if (fields.length !== 2) {
      throw new VerificationFailed();
    }
    const [encryptionPkcs8, signingPkcs8] = fields;
    return await PrivateIdentity.fromPrivateKeys(username, signingPkcs8, encryptionPkcs8);
  } catch {
    // A wrong layout, a key that does not import, or any other failure on bytes that
    // came from the server: all look the same.
    throw new VerificationFailed();
  }
}

/**
 * SHA-256 of a key's SPKI, as upper-case hex in 16 groups of four (PROTOCOL.md 5.5).
 *
 * @param {Uint8Array} spkiDer
 * @returns {Promise<string>}
 */
export async function fingerprint(spkiDer) {
  const digest = toHex(await sha256(spkiDer)).toUpperCase();
  return /** @type {RegExpMatchArray} */ (digest.match(/.{4}/g)).join(" ");
}

/**
 * 30 digits for one user: iterated SHA-512, truncated to six 5-digit groups (PROTOCOL.md 5.6).
 *
 * @param {PublicIdentity} identity
 * @returns {Promise<string>}
 */
export async function safetyNumberHalf(identity) {
  const keys = canonical(SAFETY_NUMBER, [identity.signingKey, identity.encryptionKey]);
  let digest = await sha512(canonical(SAFETY_NUMBER, [identity.username, keys]));
  // One buffer for digest ‖ keys, rewritten in place: 5200 rounds allocate nothing.
  const input = concatBytes(digest, keys);
  for (let round = 0; round < SAFETY_NUMBER_ITERATIONS; round += 1) {
    input.set(digest, 0);
    digest = await sha512(input);
  }
  let digits = "";
  for (let offset = 0; offset < 30; offset += 5) {
    // A 40-bit value: exact as a Number (below 2^53), no 32-bit bit operations.
    let value = 0;
    for (const byte of digest.subarray(offset, offset + 5)) value = value * 256 + byte;
    digits += String(value % 100000).padStart(5, "0");
  }
  return digits;
}

/**
 * A 60-digit number both users compute identically, whichever way round.
 *
 * @param {PublicIdentity} first
 * @param {PublicIdentity} second
 * @returns {Promise<string>}
 */
export async function safetyNumber(first, second) {
  const halves = await Promise.all([safetyNumberHalf(first), safetyNumberHalf(second)]);
  return halves.sort().join("");
}

/**
 * The display form: 12 groups of 5 digits separated by single spaces.
 *
 * @param {string} number
 * @returns {string}
 */
export function formatSafetyNumber(number) {
  return (number.match(/.{1,5}/g) ?? []).join(" ");
}
