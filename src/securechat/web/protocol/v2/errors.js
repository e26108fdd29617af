/**
 * Refusals of protocol v2 with the reason codes of PROTOCOL.md 15.14, mirroring
 * `securechat/protocol/v2/errors.py`:
 *
 *     ProtocolError (../errors.js)
 *     ├── MalformedInput, UnsupportedVersion   as in v1: input that does not parse
 *     ├── VerificationFailed                   as in v1: a signature or AEAD check (opaque)
 *     └── Refusal                              a v2 check failed; `reason` says which decision
 *
 * A refusal's reason is for the client core and its user (which decision refused the
 * input), never for the sender: `ratchet_failed` stays as opaque as v1's
 * `VerificationFailed` about which cryptographic check failed.
 *
 * The reasons of section 14 that the core gives for a whole envelope (`bad_signature`,
 * `not_for_me`, `undecryptable`, ...) are not raised here, as in Python: the envelope
 * functions throw `VerificationFailed` and the core names the step that failed.
 *
 * @module
 */

import { MalformedInput, ProtocolError, UnsupportedVersion, VerificationFailed } from "../errors.js";

// Re-exported so that code speaking v2 imports its whole error tree from one place.
export { MalformedInput, ProtocolError, UnsupportedVersion, VerificationFailed };

/**
 * @typedef {"device_list_invalid" | "device_certificate_invalid" | "device_list_rollback"
 *   | "device_not_listed" | "prekey_invalid" | "prekey_stale" | "prekey_unknown"
 *   | "session_unknown" | "ratchet_duplicate" | "ratchet_too_far" | "ratchet_failed"} V2Reason
 */

/**
 * What a v2 operation gave: `ok`, a v2 reason, or a v1 error kind (PROTOCOL.md 1.1).
 *
 * @typedef {"ok" | V2Reason | "malformed" | "unsupported_version" | "unverifiable"} V2Outcome
 */

/** @type {readonly V2Reason[]} */
export const V2_REASONS = Object.freeze([
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
]);

/** A v2 check refused its input; `reason` is one of {@link V2_REASONS}. */
export class Refusal extends ProtocolError {
  /**
   * @param {V2Reason} reason
   */
  constructor(reason) {
    if (!V2_REASONS.includes(reason)) {
      // A caller's mistake, not a refusal: an unknown reason would reach the user.
      throw new TypeError(`not a v2 reason: ${String(reason)}`);
    }
    super(reason);
    /** @type {V2Reason} */
    this.reason = reason;
  }
}

/**
 * The outcome an error stands for: a refusal's reason, or the kind of a v1 protocol
 * error. Anything else (a programming mistake) is thrown again, so it can never pass as
 * a refusal.
 *
 * @param {unknown} error
 * @returns {Exclude<V2Outcome, "ok">}
 */
export function refusalReason(error) {
  if (error instanceof Refusal) return error.reason;
  if (error instanceof UnsupportedVersion) return "unsupported_version";
  if (error instanceof MalformedInput) return "malformed";
  if (error instanceof ProtocolError) return "unverifiable";
  throw error;
}
