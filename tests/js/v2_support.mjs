// Shared helpers for the protocol v2 suites (not a test file itself): the vector file,
// its personas' devices and parties, and the outcome of an action as the vectors write it.

import assert from "node:assert/strict";

import { Device, Party, refusalReason } from "../../src/securechat/web/protocol/v2/index.js";
import { loadJson, unhex } from "./support.mjs";

export const VECTORS_V2 = loadJson("protocol_v2_vectors.json");
const DEVICES = VECTORS_V2.devices;

/**
 * "ok", a refusal's reason, or a v1 error kind (as the Python test's `outcome`); any
 * other exception is rethrown, so it fails the test instead of counting as a refusal.
 *
 * @param {() => unknown} action
 * @returns {Promise<string>}
 */
export async function outcome(action) {
  try {
    await action();
  } catch (error) {
    return refusalReason(error);
  }
  return "ok";
}

/**
 * A persona's listed device, from the vector file.
 *
 * @param {string} name e.g. "alice_laptop"
 */
export function device(name) {
  const d = DEVICES[name];
  return new Device({
    deviceId: d.device_id,
    signingKey: unhex(d.signing_key_hex),
    dhKey: unhex(d.dh_key_hex),
    createdAt: d.created_at,
    certificate: unhex(d.certificate_hex),
  });
}

/** @param {string} name */
export function party(name) {
  return new Party(DEVICES[name].username, unhex(DEVICES[name].account_key_hex), device(name));
}

/**
 * A persona's secret from the vector file, as bytes.
 *
 * @param {string} name
 * @param {string} member e.g. "dh_private_hex"
 */
export function secret(name, member) {
  return unhex(DEVICES[name][member]);
}

/**
 * A random source that gives the stored ratchet keys in order, and fails past them.
 *
 * @param {...Uint8Array} privates
 */
export function fixedRandom(...privates) {
  const queue = [...privates];
  return (/** @type {number} */ length) => {
    assert.ok(queue.length > 0, "the ratchet turned where the file says it does not");
    return /** @type {Uint8Array} */ (queue.shift()).slice(0, length);
  };
}
