/**
 * Accounts in the browser: register, log in, unlock, remember this device, change the
 * password, log out (PROTOCOL.md 4-6).
 *
 * Private keys are held as non-extractable CryptoKeys. The PKCS#8 bytes that exist for
 * a moment (generated keys, an opened bundle) are overwritten as soon as the CryptoKeys
 * are made, and the identity kept in memory has no copy of them.
 *
 * @module
 */

import {
  KdfParams,
  PrivateIdentity,
  PublicIdentity,
  b64encode,
  deriveKeys,
  openKeyBundle,
  parseUsername,
  sealKeyBundle,
} from "../protocol/index.js";
import { decideOwnKeys, refused } from "../core/index.js";
import { ApiError } from "./api.js";
import { reasonText } from "./reasons.js";
import { loadAccountKey, resealAccountKey } from "./rotation.js";
import * as store from "./store.js";

const DEVICE_KEY = "identity";

/** Raised when the server's answer shows it is not playing by the protocol. */
export class ServerMisbehaved extends Error {}

/**
 * @param {PrivateIdentity} full an identity that still holds PKCS#8 bytes
 * @returns {PrivateIdentity} the same keys without them
 */
function withoutKeyBytes(full) {
  const trimmed = new PrivateIdentity({
    username: full.username,
    signingPrivate: full.signingPrivate,
    encryptionPrivate: full.encryptionPrivate,
    signingPkcs8: null,
    encryptionPkcs8: null,
    publicIdentity: full.public,
  });
  full.signingPkcs8?.fill(0);
  full.encryptionPkcs8?.fill(0);
  return trimmed;
}

/**
 * @param {import("./api.js").Api} api
 * @param {string} username
 * @param {string} password
 * @param {(step: string) => void} progress
 * @returns {Promise<PrivateIdentity>}
 */
export async function register(api, username, password, progress) {
  const name = parseUsername(username);
  const params = KdfParams.generate();
  progress("Deriving keys from your password…");
  const derived = await deriveKeys(password, params);
  progress("Generating your key pairs…");
  const identity = await PrivateIdentity.generate(name);
  progress("Sealing your private keys…");
  const bundle = await sealKeyBundle(identity, derived.wrapKey);
  derived.wrapKey.fill(0);
  progress("Creating your account…");
  const { username: _, ...publicKeys } = identity.public.toWire();
  await api.register({
    username: name,
    auth_key: b64encode(derived.authKey),
    kdf: params.toWire(),
    public_keys: publicKeys,
    key_bundle: bundle,
  });
  return withoutKeyBytes(identity);
}

/**
 * Open the sealed key bundle with the password's wrap key.
 *
 * @param {unknown} bundle the key bundle as the server sent it
 * @param {Uint8Array} wrapKey overwritten with zeros once used
 * @param {string} name the parsed username
 * @returns {Promise<PrivateIdentity>}
 */
async function openBundle(bundle, wrapKey, name) {
  try {
    return withoutKeyBytes(await openKeyBundle(bundle, wrapKey, name));
  } catch {
    throw new ServerMisbehaved("Your key bundle does not open with this password.");
  } finally {
    wrapKey.fill(0);
  }
}

/**
 * Start a new session and unlock the keys.
 *
 * @param {import("./api.js").Api} api
 * @param {string} username
 * @param {string} password
 * @param {(step: string) => void} progress
 * @returns {Promise<PrivateIdentity>}
 */
export async function login(api, username, password, progress) {
  const name = parseUsername(username);
  progress("Deriving keys from your password…");
  const params = KdfParams.fromWire((await api.prelogin(name)).kdf);
  const derived = await deriveKeys(password, params);
  progress("Signing in…");
  const answer = await api.login(name, b64encode(derived.authKey));
  progress("Unlocking your keys…");
  const identity = await openBundle(answer.key_bundle, derived.wrapKey, name);
  await checkOwnKeys(api, identity);
  // After a rotation the account key is sealed under the password too (15.11).
  await loadAccountKey(api, identity, derived.wrapKey);
  return identity;
}

/**
 * Unlock the keys within the current session (after a reload without a remembered device).
 *
 * @param {import("./api.js").Api} api
 * @param {string} username
 * @param {string} password
 * @param {(step: string) => void} progress
 * @returns {Promise<PrivateIdentity>}
 */
export async function unlock(api, username, password, progress) {
  progress("Deriving keys from your password…");
  const answer = await api.keyBundle();
  const params = KdfParams.fromWire(answer.kdf);
  const derived = await deriveKeys(password, params);
  progress("Unlocking your keys…");
  const identity = await openBundle(answer.key_bundle, derived.wrapKey, parseUsername(username));
  await checkOwnKeys(api, identity);
  await loadAccountKey(api, identity, derived.wrapKey);
  return identity;
}

/**
 * The directory must publish exactly this device's keys for its user (PROTOCOL.md 14.6,
 * the core's decideOwnKeys); anything else is substitution, and the app stops: it must
 * not sign, seal or open anything with keys the server no longer vouches for.
 *
 * @param {Pick<import("./api.js").Api, "publicKeys">} api
 * @param {PrivateIdentity} identity
 * @throws {ServerMisbehaved} with the reason text of `own_keys_changed`
 */
export async function checkOwnKeys(api, identity) {
  const data = await api.publicKeys(identity.username);
  let published;
  try {
    published = PublicIdentity.fromWire(identity.username, data);
  } catch {
    published = null;
  }
  const refusal = published === null ? refused("own_keys_changed") : decideOwnKeys(identity, published);
  if (refusal !== null) {
    throw new ServerMisbehaved(
      `Stopped: ${reasonText(refusal.reason)}. Nothing was signed, sent or opened. ` +
        "Someone may be trying to read your messages; compare safety numbers with your contacts before you trust this server again.",
    );
  }
}

/**
 * Re-seal the keys under a new password; the server ends every other session.
 *
 * @param {import("./api.js").Api} api
 * @param {string} username
 * @param {string} current the current password
 * @param {string} next the new password
 * @param {(step: string) => void} progress
 * @returns {Promise<number>} how many sessions were ended
 */
export async function changePassword(api, username, current, next, progress) {
  const name = parseUsername(username);
  progress("Checking your current password…");
  const answer = await api.keyBundle();
  const oldKeys = await deriveKeys(current, KdfParams.fromWire(answer.kdf));
  let full;
  try {
    full = await openKeyBundle(answer.key_bundle, oldKeys.wrapKey, name);
  } catch {
    oldKeys.wrapKey.fill(0);
    throw new ApiError(401, "wrong_current_password", "The current password is not right.");
  }
  progress("Re-sealing your keys under the new password…");
  const params = KdfParams.generate();
  const newKeys = await deriveKeys(next, params);
  let bundle;
  let accountSeal;
  try {
    bundle = await sealKeyBundle(full, newKeys.wrapKey);
    // A rotated account key is sealed under the password too (15.11): sealed again.
    accountSeal = await resealAccountKey(api, name, oldKeys.wrapKey, newKeys.wrapKey);
  } finally {
    oldKeys.wrapKey.fill(0);
    newKeys.wrapKey.fill(0);
    withoutKeyBytes(full);
  }
  const result = await api.changePassword({
    current_auth_key: b64encode(oldKeys.authKey),
    new_auth_key: b64encode(newKeys.authKey),
    kdf: params.toWire(),
    key_bundle: bundle,
    // In the same request: the password and the seal change together or not at all.
    ...(accountSeal ? { account_key_seal: accountSeal } : {}),
  });
  return result.revoked_sessions;
}

/**
 * Keep the non-extractable keys on this device ("remember this device").
 *
 * @param {PrivateIdentity} identity
 */
export async function rememberDevice(identity) {
  await store.put("device", DEVICE_KEY, {
    username: identity.username,
    signingPrivate: identity.signingPrivate,
    encryptionPrivate: identity.encryptionPrivate,
    public: identity.public.toWire(),
  });
}

/**
 * The remembered identity for `username`, if this device keeps one.
 *
 * @param {string} username
 * @returns {Promise<PrivateIdentity | null>}
 */
export async function rememberedIdentity(username) {
  const saved = await store.get("device", DEVICE_KEY);
  if (!saved || saved.username !== username) return null;
  const publicIdentity = PublicIdentity.fromWire(saved.username, saved.public);
  return new PrivateIdentity({
    username: saved.username,
    signingPrivate: saved.signingPrivate,
    encryptionPrivate: saved.encryptionPrivate,
    signingPkcs8: null,
    encryptionPkcs8: null,
    publicIdentity,
  });
}

export function forgetDevice() {
  return store.remove("device", DEVICE_KEY);
}
