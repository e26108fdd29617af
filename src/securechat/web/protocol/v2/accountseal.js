/**
 * The account private key sealed under the password (PROTOCOL.md 15.11, "The account's
 * other devices"), as `securechat/protocol/v2/account_key_seal.py`.
 *
 * After a rotation the account key is no longer v1's signing key, so the v1 key bundle
 * (6) no longer carries it: the rotating device seals the new 32-byte seed under the
 * password's wrap key (4.2), and a device opens it when it logs in. The username and the
 * public key are the associated data.
 *
 * @module
 */

import { b64encode, bytesEqual, canonical } from "../encoding.js";
import { VerificationFailed } from "../errors.js";
import { aesGcmDecrypt, aesGcmEncrypt, ed25519Pkcs8FromSeed, importEd25519PrivateKey } from "../primitives.js";
import { KEY_BYTES, checkEd25519Raw, ed25519RawPublic } from "./primitives.js";
import { exactBytes, members, versionTwo } from "./wire.js";

/**
 * Open a seal to the raw 32-byte seed (to seal it again under a new password); the caller
 * zeroes it.
 *
 * @param {Uint8Array} wrapKey
 * @param {string} username
 * @param {unknown} data
 * @returns {Promise<Uint8Array>}
 * @throws {VerificationFailed}
 */
export async function openAccountKeySeed(wrapKey, username, data) {
  const seal = parseAccountKeySeal(data);
  const seed = await aesGcmDecrypt(wrapKey, seal.iv, seal.ciphertext, sealAad(username, seal.accountKey));
  if (seed.length !== KEY_BYTES || !bytesEqual(await ed25519RawPublic(seed), seal.accountKey)) {
    seed.fill(0);
    throw new VerificationFailed();
  }
  return seed;
}

export const ACCOUNT_KEY_SEAL = "securechat/v2/account-key-seal";
const IV_BYTES = 12;
const SEALED_BYTES = KEY_BYTES + 16;

/**
 * @param {string} username
 * @param {Uint8Array} accountKey
 */
function sealAad(username, accountKey) {
  return canonical(ACCOUNT_KEY_SEAL, [username, accountKey]);
}

/**
 * Exactly `v, account_key, iv, ciphertext`; strict base64 of 32, 12 and 48 bytes; a key
 * that passes 15.1.
 *
 * @param {unknown} data
 * @returns {{accountKey: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array}}
 * @throws {import("./errors.js").MalformedInput | import("./errors.js").UnsupportedVersion}
 */
export function parseAccountKeySeal(data) {
  const obj = members(data, ["v", "account_key", "iv", "ciphertext"]);
  versionTwo(obj.v);
  const accountKey = exactBytes(obj.account_key, KEY_BYTES);
  checkEd25519Raw(accountKey);
  return { accountKey, iv: exactBytes(obj.iv, IV_BYTES), ciphertext: exactBytes(obj.ciphertext, SEALED_BYTES) };
}

/**
 * @param {Uint8Array} wrapKey
 * @param {string} username
 * @param {Uint8Array} seed
 * @param {Uint8Array} iv 12 fresh random bytes (from the caller: no randomness here)
 * @returns {Promise<Record<string, unknown>>} the wire form
 */
export async function sealAccountKey(wrapKey, username, seed, iv) {
  const accountKey = await ed25519RawPublic(seed);
  const ciphertext = await aesGcmEncrypt(wrapKey, iv, seed, sealAad(username, accountKey));
  return { v: 2, account_key: b64encode(accountKey), iv: b64encode(iv), ciphertext: b64encode(ciphertext) };
}

/**
 * Open a seal: the public key and the private key as a non-extractable CryptoKey.
 *
 * @param {Uint8Array} wrapKey
 * @param {string} username
 * @param {unknown} data
 * @returns {Promise<{publicKey: Uint8Array, privateKey: CryptoKey}>}
 * @throws {VerificationFailed} another password, account or key, or any change
 */
export async function openAccountKey(wrapKey, username, data) {
  const seal = parseAccountKeySeal(data);
  const seed = await openAccountKeySeed(wrapKey, username, data);
  try {
    const pkcs8 = ed25519Pkcs8FromSeed(seed);
    const privateKey = await importEd25519PrivateKey(pkcs8);
    pkcs8.fill(0);
    return { publicKey: seal.accountKey, privateKey };
  } finally {
    seed.fill(0);
  }
}
