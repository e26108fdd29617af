/**
 * The stable reason codes of PROTOCOL.md 14: what tests and vectors compare. As
 * `securechat/client/core/reasons.py`, in the same order.
 *
 * @module
 */

/**
 * @typedef {"malformed" | "unsupported_version" | "unknown_sender" | "bad_signature" | "key_changed"
 *   | "wrong_conversation" | "unknown_group" | "wrong_members" | "replayed" | "not_for_me"
 *   | "undecryptable" | "bad_payload" | "chain_invalid" | "chain_fork" | "invite_mismatch"
 *   | "not_admin" | "older_name" | "invite_expired" | "own_keys_changed" | "unsigned"
 *   | "device_list_invalid" | "device_certificate_invalid" | "device_list_rollback"
 *   | "device_not_listed" | "prekey_invalid" | "prekey_stale" | "prekey_unknown"
 *   | "session_unknown" | "ratchet_duplicate" | "ratchet_too_far" | "ratchet_failed"
 *   | "transition_invalid"} Reason
 */

/** @type {readonly Reason[]} */
export const REASONS = Object.freeze([
  "malformed",
  "unsupported_version",
  "unknown_sender",
  "bad_signature",
  "key_changed",
  "wrong_conversation",
  "unknown_group",
  "wrong_members",
  "replayed",
  "not_for_me",
  "undecryptable",
  "bad_payload",
  "chain_invalid",
  "chain_fork",
  "invite_mismatch",
  "not_admin",
  "older_name",
  "invite_expired",
  "own_keys_changed",
  "unsigned",
  // Version 2 (PROTOCOL.md 15.14): device lists, bundles and the receive decision of 15.8.
  "device_list_invalid",
  "device_certificate_invalid",
  "device_list_rollback",
  "device_not_listed",
  "prekey_invalid",
  "prekey_stale",
  "prekey_unknown",
  "session_unknown",
  "ratchet_duplicate",
  "ratchet_too_far",
  "ratchet_failed",
  // Identity-key rotation (PROTOCOL.md 15.11).
  "transition_invalid",
]);

/**
 * What a refused message claims about itself (PROTOCOL.md 14.1): to show, marked as
 * unverified, never as established.
 *
 * @typedef {object} Claim
 * @property {string} messageId
 * @property {string} conversationId
 * @property {string} sender
 * @property {number} sentAt
 */

/**
 * A refusal: shown, never dropped, never as valid (PROTOCOL.md 7.9's invariant).
 *
 * @typedef {object} Refused
 * @property {"refused"} outcome
 * @property {Reason} reason
 * @property {Claim | null} claim what the refused input claimed, where it parsed far
 *   enough to say (a message's header); null otherwise
 */

/**
 * @param {Reason} reason
 * @param {Claim | null} [claim]
 * @returns {Refused}
 */
export function refused(reason, claim = null) {
  return Object.freeze({ outcome: /** @type {const} */ ("refused"), reason, claim });
}

/**
 * Look a key up in a Map or in a plain object's own members (never its prototype's, so a
 * user called `constructor` finds nothing unless there is an entry for that name).
 *
 * @template T
 * @param {ReadonlyMap<string, T> | Readonly<Record<string, T>>} table
 * @param {string} key
 * @returns {T | undefined}
 */
export function entry(table, key) {
  if (table instanceof Map) {
    return table.get(key);
  }
  const record = /** @type {Readonly<Record<string, T>>} */ (table);
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
