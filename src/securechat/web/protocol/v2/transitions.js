/**
 * Identity-key transitions: an account replacing its identity key (PROTOCOL.md 15.11),
 * mirroring `securechat/protocol/v2/transitions.py`.
 *
 * Both keys sign the same bytes: the old key's signature hands the account over, the new
 * key's proves that whoever publishes it holds the new private key. The chain rules are
 * the client core's (`web/core/v2/transitions.js`).
 *
 * @module
 */

import { b64encode, bytesEqual, canonical, u64 } from "../encoding.js";
import { parseNormalisedUsername } from "../identifiers.js";
import { MalformedInput } from "./errors.js";
import { IDENTITY_TRANSITION } from "./labels.js";
import {
  KEY_BYTES,
  SIGNATURE_BYTES,
  checkEd25519Raw,
  ed25519RawPublic,
  ed25519SignRaw,
  ed25519VerifyRaw,
} from "./primitives.js";
import { exactBytes, integer, members, versionTwo } from "./wire.js";

/** At most this many transitions are served, or accepted, in one chain (15.11). */
export const MAX_TRANSITIONS = 16;

const TRANSITION_FIELDS = Object.freeze(["v", "username", "old_key", "new_key", "at", "old_signature", "new_signature"]);

/**
 * @param {string} username
 * @param {Uint8Array} oldKey
 * @param {Uint8Array} newKey
 * @param {number} at
 * @returns {Uint8Array}
 */
export function transitionBytes(username, oldKey, newKey, at) {
  return canonical(IDENTITY_TRANSITION, [username, oldKey, newKey, u64(at)]);
}

/** A parsed (or made) identity transition; nothing about it is checked by constructing it. */
export class IdentityTransition {
  /**
   * @param {{username: string, oldKey: Uint8Array, newKey: Uint8Array, at: number,
   *   oldSignature: Uint8Array, newSignature: Uint8Array}} fields
   */
  constructor({ username, oldKey, newKey, at, oldSignature, newSignature }) {
    this.username = username;
    this.oldKey = oldKey;
    this.newKey = newKey;
    this.at = at;
    this.oldSignature = oldSignature;
    this.newSignature = newSignature;
    Object.freeze(this);
  }

  /** @returns {Uint8Array} */
  get signedBytes() {
    return transitionBytes(this.username, this.oldKey, this.newKey, this.at);
  }

  /** @returns {Record<string, unknown>} */
  toWire() {
    return {
      v: 2,
      username: this.username,
      old_key: b64encode(this.oldKey),
      new_key: b64encode(this.newKey),
      at: this.at,
      old_signature: b64encode(this.oldSignature),
      new_signature: b64encode(this.newSignature),
    };
  }
}

/**
 * The owning side: both keys sign the hand-over from the old key to the new one.
 *
 * @param {Uint8Array} oldSeed
 * @param {Uint8Array} newSeed
 * @param {string} username
 * @param {number} at
 * @returns {Promise<IdentityTransition>}
 */
export async function makeTransition(oldSeed, newSeed, username, at) {
  const oldKey = await ed25519RawPublic(oldSeed);
  const newKey = await ed25519RawPublic(newSeed);
  const signed = transitionBytes(username, oldKey, newKey, at);
  return new IdentityTransition({
    username,
    oldKey,
    newKey,
    at,
    oldSignature: await ed25519SignRaw(oldSeed, signed),
    newSignature: await ed25519SignRaw(newSeed, signed),
  });
}

/**
 * 15.11 step 1: exactly the members, strict base64 of the sizes, keys that pass 15.1 and
 * differ, `0 <= at < 2^53`. Checks no signature.
 *
 * @param {unknown} data
 * @returns {IdentityTransition}
 * @throws {MalformedInput | import("./errors.js").UnsupportedVersion}
 */
export function parseTransition(data) {
  const obj = members(data, TRANSITION_FIELDS);
  versionTwo(obj.v);
  const username = parseNormalisedUsername(obj.username);
  const oldKey = exactBytes(obj.old_key, KEY_BYTES);
  const newKey = exactBytes(obj.new_key, KEY_BYTES);
  checkEd25519Raw(oldKey);
  checkEd25519Raw(newKey);
  if (bytesEqual(oldKey, newKey)) {
    throw new MalformedInput("a transition changes the key");
  }
  const at = integer(obj.at);
  const oldSignature = exactBytes(obj.old_signature, SIGNATURE_BYTES);
  const newSignature = exactBytes(obj.new_signature, SIGNATURE_BYTES);
  return new IdentityTransition({ username, oldKey, newKey, at, oldSignature, newSignature });
}

/**
 * A list of 0 to {@link MAX_TRANSITIONS} transitions, each parsed as above.
 *
 * @param {unknown} data
 * @returns {readonly IdentityTransition[]}
 * @throws {MalformedInput | import("./errors.js").UnsupportedVersion}
 */
export function parseTransitionChain(data) {
  if (!Array.isArray(data) || data.length > MAX_TRANSITIONS) {
    throw new MalformedInput("a chain is a list of at most 16 transitions");
  }
  return Object.freeze(data.map((item) => parseTransition(item)));
}

/**
 * Both signatures over the transition's bytes: the old key's first, then the new key's.
 * Rejects with VerificationFailed for the first that does not verify.
 *
 * @param {IdentityTransition} transition
 * @returns {Promise<void>}
 */
export async function verifyTransition(transition) {
  const signed = transition.signedBytes;
  await ed25519VerifyRaw(transition.oldKey, transition.oldSignature, signed);
  await ed25519VerifyRaw(transition.newKey, transition.newSignature, signed);
}
