/**
 * What the page says for each reason code of the client core (PROTOCOL.md 14): the one
 * table from a refusal's stable code to readable text. The code is what the core decided
 * and what tests compare; the text is only how the page puts it. No DOM.
 *
 * Each text completes a sentence such as "This message failed a security check and is
 * not shown (…)", "This group's membership cannot be verified: …" or "Cannot join: …".
 *
 * @module
 */

/**
 * By reason code. Typed by string, not by the core's `Reason` union, so that a code the
 * core gains does not stop the type check before it has its text here; the Node test
 * tests/js/app_reasons.test.mjs requires a text for every code in `REASONS`.
 *
 * @type {Readonly<Record<string, string>>}
 */
export const REASON_TEXTS = Object.freeze({
  malformed: "it is malformed",
  unsupported_version: "it uses a protocol version this app does not know",
  unknown_sender: "the sender's keys are unknown",
  bad_signature: "its signature does not verify with the sender's keys: it may be forged",
  key_changed: "it is signed with new keys for the sender that you have not accepted: compare the safety number first",
  wrong_conversation: "it belongs to another conversation than the one it was delivered in, or its conversation is not the sender's",
  unknown_group: "it is for a group whose signed membership is not verified on this device",
  wrong_members: "its recipients are not the members of the conversation (for a group: of its signed membership)",
  replayed: "replayed: this message was delivered before",
  not_for_me: "it was not encrypted for you (you were not a member when it was sent)",
  undecryptable: "it does not decrypt: the ciphertext or its key was altered",
  bad_payload: "its content is not valid",
  chain_invalid: "its membership chain does not verify",
  chain_fork: "the server's membership chain does not extend the one verified on this device",
  invite_mismatch: "the server answered this code with another invite: it is not the invite the code names",
  not_admin: "it is not signed by an admin of the group",
  older_name: "a newer name is known",
  invite_expired: "the invite has expired",
  own_keys_changed: "the server publishes keys for your account that are not the ones this device holds",
  unsigned: "it is not signed by its author: only the server's word",
  device_list_invalid: "the account's device list is not signed by its pinned key",
  device_certificate_invalid: "a device in the account's list is not certified by the account's key",
  device_list_rollback: "the server offers an older device list than the one accepted on this device",
  device_not_listed: "it comes from, or names, a device that is not in the account's device list",
  prekey_invalid: "the device's prekey is not signed by that device",
  prekey_stale: "the device's signed prekey is more than 30 days old",
  prekey_unknown: "it starts a session with a prekey this device no longer holds",
  session_unknown: "this device has no session with the sending device that opens it; a new one will be started",
  ratchet_duplicate: "its key was used before or has expired: a repeat, or a session that was replaced",
  ratchet_too_far: "it claims to skip more than 25,000 messages",
  ratchet_failed: "it does not decrypt with the session of the sending device; a new one will be started",
  transition_invalid: "the contact's new identity key does not follow from the pinned one by a valid signed hand-over",
});

/**
 * The text for a reason code; a code this table does not know (only a bug makes one)
 * still reads as a failed check, never as success.
 *
 * @param {string | null | undefined} code
 * @returns {string}
 */
export function reasonText(code) {
  if (typeof code === "string" && Object.hasOwn(REASON_TEXTS, code)) {
    return REASON_TEXTS[code];
  }
  return "it failed a security check";
}
