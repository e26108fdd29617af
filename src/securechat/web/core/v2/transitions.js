/**
 * Does this chain of transitions hand a contact's pinned identity key over to the key the
 * server now serves (PROTOCOL.md 15.11), as `securechat/client/core/v2/transitions.py`.
 *
 * A signed hand-over is accepted with a notice and re-pins, always without the *verified*
 * mark; a changed key without a chain is 8.3's key change (`key_changed`), which keeps
 * the old pin and blocks sending until the user accepts.
 *
 * @module
 */

import { b64decode, b64encode, bytesEqual } from "../../protocol/encoding.js";
import { parseNormalisedUsername } from "../../protocol/identifiers.js";
import {
  MalformedInput,
  ProtocolError,
  UnsupportedVersion,
  exactBytes,
  integer,
  members,
  parseTransitionChain,
  verifyTransition,
} from "../../protocol/v2/index.js";
import { refused } from "../reasons.js";

/** @import { DeviceList } from "../../protocol/v2/index.js" */
/** @import { Refused } from "../reasons.js" */

export const TRANSITION_NOTICE = "identity_key_rotated";

/**
 * What a client pins for a contact in v2: the account key, the `at` of the last
 * transition it accepted (null: pinned on first use, or accepted by the user), and the
 * user's *verified* mark, which belongs to this key only.
 *
 * @typedef {object} IdentityPin
 * @property {string} username
 * @property {Uint8Array} key
 * @property {number | null} since
 * @property {boolean} verified
 */

/**
 * Re-pin to `pin` (not verified) and show `notice` in the contact's conversations.
 *
 * @typedef {object} TransitionAccepted
 * @property {"accepted"} outcome
 * @property {IdentityPin} pin
 * @property {Uint8Array} previousKey
 * @property {number} steps
 * @property {"identity_key_rotated"} notice
 */

/**
 * The server serves the pinned key and no transition: nothing to do.
 *
 * @typedef {object} TransitionUnchanged
 * @property {"unchanged"} outcome
 */

/** @typedef {TransitionAccepted | TransitionUnchanged | Refused} TransitionDecision */

/**
 * @param {unknown} data `{username, key, since, verified}`
 * @returns {IdentityPin}
 */
export function pinFromWire(data) {
  const obj = members(data, ["username", "key", "since", "verified"]);
  if (typeof obj.verified !== "boolean") throw new MalformedInput("pin");
  return Object.freeze({
    username: parseNormalisedUsername(obj.username),
    key: exactBytes(obj.key, 32),
    since: obj.since === null ? null : integer(obj.since),
    verified: obj.verified,
  });
}

/**
 * @param {IdentityPin} pin
 * @returns {Record<string, unknown>}
 */
export function pinToWire(pin) {
  return { username: pin.username, key: b64encode(pin.key), since: pin.since, verified: pin.verified };
}

/**
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function currentKeyFromWire(value) {
  if (typeof value !== "string") throw new MalformedInput("current_key");
  return b64decode(value);
}

/**
 * 15.11's checks, in order; the first failure is the refusal.
 *
 * @param {IdentityPin} pin
 * @param {Uint8Array} currentKey the account key the server serves now (its list's `account_key`)
 * @param {unknown} transitions the chain fetched from the pinned key, as parsed JSON
 * @returns {Promise<TransitionDecision>}
 */
export async function acceptIdentityTransition(pin, currentKey, transitions) {
  let chain;
  try {
    chain = parseTransitionChain(transitions);
  } catch (error) {
    if (error instanceof UnsupportedVersion) return refused("unsupported_version");
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
  if (chain.length === 0) {
    // No hand-over offered: either nothing changed or an unsigned change (8.3).
    return bytesEqual(currentKey, pin.key) ? Object.freeze({ outcome: /** @type {const} */ ("unchanged") }) : refused("key_changed");
  }
  /** @type {Uint8Array[]} */
  const seen = [pin.key];
  let key = pin.key;
  let since = pin.since;
  for (const step of chain) {
    if (
      step.username !== pin.username ||
      !bytesEqual(step.oldKey, key) ||
      (since !== null && step.at <= since) ||
      seen.some((earlier) => bytesEqual(earlier, step.newKey))
    ) {
      return refused("transition_invalid");
    }
    try {
      await verifyTransition(step);
    } catch (error) {
      if (error instanceof ProtocolError) return refused("bad_signature");
      throw error;
    }
    seen.push(step.newKey);
    key = step.newKey;
    since = step.at;
  }
  if (!bytesEqual(key, currentKey)) return refused("transition_invalid");
  return Object.freeze({
    outcome: /** @type {const} */ ("accepted"),
    pin: Object.freeze({ username: pin.username, key, since, verified: false }),
    previousKey: pin.key,
    steps: chain.length,
    notice: /** @type {const} */ ("identity_key_rotated"),
  });
}

/**
 * The devices whose session sets go when the first list under a new identity key replaces
 * `before`: those it leaves out and those whose keys or `createdAt` changed. A
 * certificate re-issued by the new key is not a change: sessions continue (15.11).
 *
 * @param {DeviceList} before
 * @param {DeviceList} after
 * @returns {readonly string[]}
 */
export function rotationDropSessions(before, after) {
  const now = new Map(after.devices.map((device) => [device.deviceId, device]));
  const dropped = before.devices
    .filter((device) => {
      const kept = now.get(device.deviceId);
      return (
        kept === undefined ||
        !bytesEqual(kept.signingKey, device.signingKey) ||
        !bytesEqual(kept.dhKey, device.dhKey) ||
        kept.createdAt !== device.createdAt
      );
    })
    .map((device) => device.deviceId);
  return Object.freeze(dropped.sort());
}

/**
 * @param {TransitionDecision} decision
 * @returns {Record<string, unknown>}
 */
export function transitionDecisionToWire(decision) {
  if (decision.outcome === "accepted") {
    return {
      outcome: "accepted",
      pin: pinToWire(decision.pin),
      previous_key: b64encode(decision.previousKey),
      steps: decision.steps,
      notice: decision.notice,
    };
  }
  if (decision.outcome === "unchanged") return { outcome: "unchanged" };
  return { outcome: "refused", reason: decision.reason };
}
