/**
 * Thin wrappers over Web Crypto (`globalThis.crypto.subtle`) for the primitives of
 * protocol v1, mirroring `securechat/protocol/primitives.py` (PROTOCOL.md 11).
 *
 * Every failure to decrypt, unwrap or verify throws {@link VerificationFailed}; nothing
 * returns a boolean. Web Crypto is more lenient than the protocol in places (AES-GCM
 * IVs of other lengths, RSA keys of any size and exponent, PKCS#8 with trailing bytes,
 * RSA private keys whose parts disagree, and not every platform enforces S < L for
 * Ed25519), so the protocol's own rules are applied here as well. The Wycheproof
 * vectors in `tests/data/wycheproof` run against these functions.
 *
 * @module
 */

import { checkRsaPkcs8, parseRsaSpki } from "./der.js";
import { asBytes, bytesEqual, concatBytes, fromHex } from "./encoding.js";
import { MalformedInput, VerificationFailed, WeakParameters } from "./errors.js";

export const AES_KEY_BYTES = 32;
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;
export const RSA_ALLOWED_BITS = Object.freeze([2048, 3072, 4096]);
export const RSA_EXPONENT = 65537;
export const ED25519_SIGNATURE_BYTES = 64;
/** The DER prefix of every Ed25519 SubjectPublicKeyInfo (RFC 8410); 32 key bytes follow. */
export const ED25519_SPKI_PREFIX = fromHex("302a300506032b6570032100");
/** The DER prefix of the 48-byte Ed25519 PKCS#8 form; the 32-byte seed follows. */
export const ED25519_PKCS8_PREFIX = fromHex("302e020100300506032b657004220420");

const RSA_OAEP = Object.freeze({ name: "RSA-OAEP", hash: "SHA-256" });
const ED25519 = Object.freeze({ name: "Ed25519" });
const HKDF_MAX_BYTES = 255 * 32;
// The order of the Ed25519 base point, L = 2^252 + 27742317777372353535851937790883648493.
const ED25519_ORDER = (1n << 252n) + 27742317777372353535851937790883648493n;
const EXPONENT_65537 = Uint8Array.of(0x01, 0x00, 0x01);

/** @returns {SubtleCrypto} */
function subtle() {
  return globalThis.crypto.subtle;
}

/**
 * The same bytes, typed as Web Crypto's `BufferSource`; the argument is returned as it is.
 *
 * TypeScript types a plain `Uint8Array` as possibly a view of a SharedArrayBuffer, which
 * Web Crypto refuses. This client never allocates shared memory (and its pages are not
 * cross-origin isolated, so browsers would not give it any), so every Uint8Array it has
 * is a view of an ArrayBuffer: this assertion is true, and costs nothing at run time.
 *
 * @param {Uint8Array} bytes
 * @returns {Uint8Array<ArrayBuffer>}
 */
function bufferSource(bytes) {
  return /** @type {Uint8Array<ArrayBuffer>} */ (bytes);
}

/**
 * @param {Uint8Array} key 16, 24 or 32 bytes
 * @param {KeyUsage[]} usages
 * @returns {Promise<CryptoKey>}
 */
async function importAesKey(key, usages) {
  // pyca and Node (OpenSSL) take 128-, 192- and 256-bit keys; Chromium (BoringSSL)
  // refuses 192-bit ones. The protocol only uses 256-bit message keys and the envelope
  // code insists on them itself (PROTOCOL.md 7.9 step 6), so this only has to fail the
  // same way everywhere: a RangeError, never a platform DOMException.
  if (![16, 24, 32].includes(key.length)) {
    throw new RangeError("AES key must be 16, 24 or 32 bytes");
  }
  try {
    return await subtle().importKey("raw", bufferSource(key), "AES-GCM", false, usages);
  } catch {
    throw new RangeError(`this platform does not support ${key.length * 8}-bit AES keys`);
  }
}

/**
 * AES-GCM with a 12-byte IV and a 16-byte tag; returns ciphertext ‖ tag.
 *
 * @param {Uint8Array} key
 * @param {Uint8Array} iv exactly 12 bytes (Web Crypto would take any length)
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} aad
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 * @throws {MalformedInput} for an IV that is not 12 bytes (a caller's mistake)
 */
export async function aesGcmEncrypt(key, iv, plaintext, aad) {
  if (asBytes(iv).length !== GCM_IV_BYTES) {
    throw new MalformedInput("AES-GCM IV must be 12 bytes");
  }
  const cryptoKey = await importAesKey(asBytes(key), ["encrypt"]);
  const sealed = await subtle().encrypt(
    { name: "AES-GCM", iv: bufferSource(iv), additionalData: bufferSource(aad), tagLength: GCM_TAG_BYTES * 8 },
    cryptoKey,
    bufferSource(plaintext),
  );
  return new Uint8Array(sealed);
}

/**
 * AES-GCM decryption; any failure (wrong key size, IV size, short input, tag) is the
 * same opaque error.
 *
 * @param {Uint8Array} key
 * @param {Uint8Array} iv
 * @param {Uint8Array} ciphertext ciphertext ‖ tag
 * @param {Uint8Array} aad
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 * @throws {VerificationFailed}
 */
export async function aesGcmDecrypt(key, iv, ciphertext, aad) {
  if (iv.length !== GCM_IV_BYTES || ciphertext.length < GCM_TAG_BYTES) {
    throw new VerificationFailed();
  }
  try {
    const cryptoKey = await importAesKey(key, ["decrypt"]);
    const opened = await subtle().decrypt(
      { name: "AES-GCM", iv: bufferSource(iv), additionalData: bufferSource(aad), tagLength: GCM_TAG_BYTES * 8 },
      cryptoKey,
      bufferSource(ciphertext),
    );
    return new Uint8Array(opened);
  } catch {
    throw new VerificationFailed();
  }
}

/**
 * RSA-OAEP with SHA-256 and MGF1-SHA-256, with an explicit label.
 *
 * @param {CryptoKey} publicKey from {@link loadRsaPublicKey}
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} label
 * @returns {Promise<Uint8Array>}
 */
export async function rsaOaepEncrypt(publicKey, plaintext, label) {
  return new Uint8Array(await subtle().encrypt({ name: "RSA-OAEP", label: bufferSource(label) }, publicKey, bufferSource(plaintext)));
}

/**
 * @param {CryptoKey} privateKey from {@link importRsaPrivateKey}
 * @param {Uint8Array} ciphertext
 * @param {Uint8Array} label
 * @returns {Promise<Uint8Array>}
 * @throws {VerificationFailed}
 */
export async function rsaOaepDecrypt(privateKey, ciphertext, label) {
  try {
    return new Uint8Array(await subtle().decrypt({ name: "RSA-OAEP", label: bufferSource(label) }, privateKey, bufferSource(ciphertext)));
  } catch {
    throw new VerificationFailed();
  }
}

/**
 * @param {CryptoKey} privateKey from {@link importEd25519PrivateKey}
 * @param {Uint8Array} message
 * @returns {Promise<Uint8Array>} the 64-byte signature R ‖ S
 */
export async function ed25519Sign(privateKey, message) {
  return new Uint8Array(await subtle().sign(ED25519, privateKey, bufferSource(message)));
}

/**
 * True if the S half of a 64-byte Ed25519 signature is below the group order L.
 *
 * RFC 8032 section 5.1.7 requires verifiers to reject S >= L (otherwise S + L is a second
 * valid signature for the same message). Some Web Crypto implementations do not check
 * it, so {@link ed25519Verify} does, whatever the platform.
 *
 * @param {Uint8Array} signature
 * @returns {boolean}
 */
export function isCanonicalEd25519Signature(signature) {
  if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
  let scalar = 0n;
  for (let index = ED25519_SIGNATURE_BYTES - 1; index >= 32; index -= 1) {
    scalar = (scalar << 8n) | BigInt(signature[index]);
  }
  return scalar < ED25519_ORDER;
}

/**
 * Throw unless `signature` is a valid Ed25519 signature of `message`; never a boolean.
 *
 * @param {CryptoKey} publicKey from {@link loadEd25519PublicKey}
 * @param {Uint8Array} signature
 * @param {Uint8Array} message
 * @returns {Promise<void>}
 * @throws {VerificationFailed}
 */
export async function ed25519Verify(publicKey, signature, message) {
  if (!isCanonicalEd25519Signature(signature)) {
    throw new VerificationFailed();
  }
  let valid = false;
  try {
    valid = await subtle().verify(ED25519, publicKey, bufferSource(signature), bufferSource(message));
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new VerificationFailed();
  }
}

/**
 * HKDF-SHA256 (RFC 5869, extract then expand).
 *
 * @param {Uint8Array} ikm
 * @param {{salt: Uint8Array, info: Uint8Array, length: number}} options length in bytes
 * @returns {Promise<Uint8Array>}
 * @throws {RangeError} for a length above 255 * 32 (a caller's mistake, as in Python)
 */
export async function hkdfSha256(ikm, { salt, info, length }) {
  if (!Number.isInteger(length) || length < 0 || length > HKDF_MAX_BYTES) {
    throw new RangeError(`HKDF-SHA256 output must be 0 to ${HKDF_MAX_BYTES} bytes`);
  }
  if (length === 0) return new Uint8Array(0);
  const key = await subtle().importKey("raw", bufferSource(ikm), "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt: bufferSource(salt), info: bufferSource(info) }, key, length * 8));
}

/**
 * PBKDF2-HMAC-SHA256 (RFC 8018).
 *
 * @param {Uint8Array} password
 * @param {Uint8Array} salt
 * @param {number} iterations
 * @param {number} length in bytes
 * @returns {Promise<Uint8Array>}
 */
export async function pbkdf2Sha256(password, salt, iterations, length) {
  const key = await subtle().importKey("raw", bufferSource(password), "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(
    await subtle().deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: bufferSource(salt), iterations }, key, length * 8),
  );
}

/**
 * HMAC-SHA256 (RFC 2104), the full 32 bytes.
 *
 * @param {Uint8Array} key
 * @param {Uint8Array} message
 * @returns {Promise<Uint8Array>}
 */
export async function hmacSha256(key, message) {
  // An empty HMAC key is valid (RFC 2104) but Web Crypto refuses to import one; HMAC pads
  // the key with zeros to the block size, so one zero byte gives the same MAC.
  const rawKey = key.length === 0 ? new Uint8Array(1) : key;
  const cryptoKey = await subtle().importKey("raw", bufferSource(rawKey), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle().sign("HMAC", cryptoKey, bufferSource(message)));
}

/**
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 */
export async function sha256(data) {
  return new Uint8Array(await subtle().digest("SHA-256", bufferSource(data)));
}

/**
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 */
export async function sha512(data) {
  return new Uint8Array(await subtle().digest("SHA-512", bufferSource(data)));
}

/**
 * Parse an RSA public key (SPKI DER) and refuse weak or odd parameters (PROTOCOL.md
 * 5.2, in its order): not a SubjectPublicKeyInfo or not RSA → MalformedInput; modulus
 * not 2048, 3072 or 4096 bits or exponent not 65537 → WeakParameters; not canonical
 * DER → MalformedInput.
 *
 * @param {Uint8Array} spkiDer
 * @returns {Promise<CryptoKey>} an RSA-OAEP/SHA-256 key for encryption
 * @throws {MalformedInput | WeakParameters}
 */
export async function loadRsaPublicKey(spkiDer) {
  const der = asBytes(spkiDer);
  const parsed = parseRsaSpki(der);
  if (!parsed.isRsa) {
    throw new MalformedInput("not an RSA public key");
  }
  if (!RSA_ALLOWED_BITS.includes(parsed.modulusBits)) {
    throw new WeakParameters("RSA key size must be 2048, 3072 or 4096 bits");
  }
  if (!bytesEqual(parsed.exponent, EXPONENT_65537)) {
    throw new WeakParameters("RSA public exponent must be 65537");
  }
  if (!bytesEqual(parsed.canonicalDer, der)) {
    throw new MalformedInput("RSA public key is not in canonical DER form");
  }
  let key;
  try {
    key = await subtle().importKey("spki", bufferSource(der), RSA_OAEP, true, ["encrypt"]);
  } catch {
    throw new MalformedInput("malformed RSA public key");
  }
  // Belt and braces: the platform must have read the key as the DER parser did.
  const algorithm = /** @type {RsaHashedKeyAlgorithm} */ (key.algorithm);
  if (algorithm.modulusLength !== parsed.modulusBits || !bytesEqual(algorithm.publicExponent, EXPONENT_65537)) {
    throw new MalformedInput("malformed RSA public key");
  }
  return key;
}

/**
 * Every encoding of a point of small order (the eight-point torsion subgroup), sign bit
 * cleared: 0 and p (order 4), 1 and p + 1 (the identity), p - 1 (order 2) and the two
 * y-coordinates of order 8. As in `protocol/der.py`; libsodium refuses the same list.
 */
const SMALL_ORDER_ENCODINGS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map(fromHex);

/**
 * True if a 32-byte Ed25519 point encoding is one of a point of small order, with
 * either sign bit: with such a key pinned, signatures anyone can make would verify.
 *
 * @param {Uint8Array} point
 * @returns {boolean}
 */
export function isSmallOrderEd25519Point(point) {
  const cleared = Uint8Array.from(point);
  cleared[31] &= 0x7f;
  return SMALL_ORDER_ENCODINGS.some((encoding) => bytesEqual(encoding, cleared));
}

/**
 * Parse an Ed25519 public key: exactly the 44-byte SPKI of RFC 8410, not of small order
 * (PROTOCOL.md 5.1).
 *
 * @param {Uint8Array} spkiDer
 * @returns {Promise<CryptoKey>} a key for verification
 * @throws {MalformedInput}
 */
export async function loadEd25519PublicKey(spkiDer) {
  const der = asBytes(spkiDer);
  if (der.length !== ED25519_SPKI_PREFIX.length + 32 || !bytesEqual(der.subarray(0, ED25519_SPKI_PREFIX.length), ED25519_SPKI_PREFIX)) {
    throw new MalformedInput("malformed Ed25519 public key");
  }
  if (isSmallOrderEd25519Point(der.subarray(ED25519_SPKI_PREFIX.length))) {
    throw new MalformedInput("an Ed25519 public key of small order");
  }
  try {
    return await subtle().importKey("spki", bufferSource(der), ED25519, true, ["verify"]);
  } catch {
    throw new MalformedInput("malformed Ed25519 public key");
  }
}

/**
 * Import an RSA private key (PKCS#8 DER) for RSA-OAEP/SHA-256 decryption.
 *
 * @param {Uint8Array} pkcs8Der
 * @param {{extractable?: boolean}} [options]
 * @returns {Promise<CryptoKey>}
 * @throws {MalformedInput}
 */
export async function importRsaPrivateKey(pkcs8Der, { extractable = false } = {}) {
  try {
    checkRsaPkcs8(asBytes(pkcs8Der));
    return await subtle().importKey("pkcs8", bufferSource(asBytes(pkcs8Der)), RSA_OAEP, extractable, ["decrypt"]);
  } catch {
    throw new MalformedInput("malformed RSA private key");
  }
}

/**
 * Import an Ed25519 private key (PKCS#8 DER) for signing.
 *
 * @param {Uint8Array} pkcs8Der
 * @param {{extractable?: boolean}} [options]
 * @returns {Promise<CryptoKey>}
 * @throws {MalformedInput}
 */
export async function importEd25519PrivateKey(pkcs8Der, { extractable = false } = {}) {
  try {
    const der = asBytes(pkcs8Der);
    if (der.length !== ED25519_PKCS8_PREFIX.length + 32 || !bytesEqual(der.subarray(0, ED25519_PKCS8_PREFIX.length), ED25519_PKCS8_PREFIX)) {
      throw new MalformedInput("an Ed25519 private key must be the 48-byte PKCS#8 form");
    }
    return await subtle().importKey("pkcs8", bufferSource(der), ED25519, extractable, ["sign"]);
  } catch {
    throw new MalformedInput("malformed Ed25519 private key");
  }
}

/**
 * The 48-byte PKCS#8 form of an Ed25519 private key from its 32-byte seed.
 *
 * @param {Uint8Array} seed
 * @returns {Uint8Array}
 */
export function ed25519Pkcs8FromSeed(seed) {
  if (seed.length !== 32) throw new RangeError("an Ed25519 seed is 32 bytes");
  return concatBytes(ED25519_PKCS8_PREFIX, seed);
}

/**
 * The public key (SPKI DER) of an RSA private key given as PKCS#8.
 *
 * @param {Uint8Array} pkcs8Der
 * @returns {Promise<Uint8Array>}
 * @throws {MalformedInput}
 */
export async function rsaPublicSpkiFromPkcs8(pkcs8Der) {
  // Web Crypto has no "public key of this private key"; the JWK export carries n and e.
  const privateKey = await importRsaPrivateKey(pkcs8Der, { extractable: true });
  const jwk = await subtle().exportKey("jwk", privateKey);
  checkRsaPrivateKey(jwk);
  const publicKey = await subtle().importKey(
    "jwk",
    { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RSA-OAEP-256", ext: true },
    RSA_OAEP,
    true,
    ["encrypt"],
  );
  return new Uint8Array(await subtle().exportKey("spki", publicKey));
}

/**
 * The public key (SPKI DER) of an Ed25519 private key given as PKCS#8.
 *
 * @param {Uint8Array} pkcs8Der
 * @returns {Promise<Uint8Array>}
 * @throws {MalformedInput}
 */
export async function ed25519PublicSpkiFromPkcs8(pkcs8Der) {
  const privateKey = await importEd25519PrivateKey(pkcs8Der, { extractable: true });
  const jwk = await subtle().exportKey("jwk", privateKey);
  const publicKey = await subtle().importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x, ext: true }, ED25519, true, [
    "verify",
  ]);
  return new Uint8Array(await subtle().exportKey("spki", publicKey));
}

/**
 * @param {string | undefined} text base64url, as in a JWK
 * @returns {bigint}
 */
function jwkInteger(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]+$/.test(text)) {
    throw new MalformedInput("malformed RSA private key");
  }
  let value = 0n;
  let bits = 0;
  let buffer = 0n;
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (const character of text) {
    buffer = (buffer << 6n) | BigInt(alphabet.indexOf(character));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      value = (value << 8n) | (buffer >> BigInt(bits));
      buffer &= (1n << BigInt(bits)) - 1n;
    }
  }
  return value;
}

/**
 * Check that the components of an RSA private key agree with each other, as pyca's
 * loader does (OpenSSL's RSA_check_key, except for the primality of p and q): Web
 * Crypto imports an inconsistent key without complaint.
 *
 * @param {JsonWebKey} jwk the key's JWK export
 * @throws {MalformedInput}
 */
function checkRsaPrivateKey(jwk) {
  if (jwk.oth !== undefined) throw new MalformedInput("multi-prime RSA keys are not supported");
  const [n, e, d, p, q, dp, dq, qi] = [jwk.n, jwk.e, jwk.d, jwk.p, jwk.q, jwk.dp, jwk.dq, jwk.qi].map(jwkInteger);
  const consistent =
    p > 1n &&
    q > 1n &&
    p * q === n &&
    e > 1n &&
    (e * d) % (p - 1n) === 1n &&
    (e * d) % (q - 1n) === 1n &&
    d % (p - 1n) === dp &&
    d % (q - 1n) === dq &&
    (qi * q) % p === 1n;
  if (!consistent) throw new MalformedInput("inconsistent RSA private key");
}
