/**
 * Identifiers (PROTOCOL.md 3), parsed once at the edge, mirroring
 * `securechat/protocol/identifiers.py`. Parsed values are plain strings; the JSDoc
 * aliases say which kind of string a function expects.
 *
 * @module
 */

import { canonical, isWellFormed, toHex } from "./encoding.js";
import { MalformedInput } from "./errors.js";
import { DIRECT_CONVERSATION } from "./labels.js";

/** @typedef {string} Username a normalised username, `^[a-z0-9._-]{3,32}$` */
/** @typedef {string} MessageId a lower-case UUIDv4 */
/** @typedef {string} ConversationId `dm-` or `grp-` and 32 lower-case hex digits */

export const USERNAME_MIN = 3;
export const USERNAME_MAX = 32;
// The longest input considered before normalising, in code points (as in Python).
const USERNAME_INPUT_MAX = 256;
const USERNAME_RE = /^[a-z0-9._-]{3,32}$/;
const MESSAGE_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CONVERSATION_ID_RE = /^(dm|grp)-[0-9a-f]{32}$/;

/**
 * Refuse NUL characters, lone surrogates and over-long text in a text field.
 *
 * @param {string} value
 * @param {{field: string, maxChars: number}} options maxChars counts code points, as Python's len()
 * @returns {string}
 * @throws {MalformedInput}
 */
export function checkText(value, { field, maxChars }) {
  if (codePointLength(value, maxChars) > maxChars) {
    throw new MalformedInput(`${field} is too long`);
  }
  if (value.includes("\u0000")) {
    throw new MalformedInput(`${field} contains a NUL character`);
  }
  if (!isWellFormed(value)) {
    throw new MalformedInput(`${field} is not valid Unicode`);
  }
  return value;
}

/**
 * NFKC-normalise and lower-case a username, then check it is 3-32 of [a-z0-9._-].
 *
 * NFKC comes first, then the locale-independent lower-case mapping. Both depend on the
 * Unicode version of the JavaScript engine, which may be newer than Python's.
 *
 * @param {unknown} value
 * @returns {Username}
 * @throws {MalformedInput}
 */
export function parseUsername(value) {
  if (typeof value !== "string") {
    throw new MalformedInput("username must be a string");
  }
  checkText(value, { field: "username", maxChars: USERNAME_INPUT_MAX });
  const normalised = value.normalize("NFKC").toLowerCase();
  if (!USERNAME_RE.test(normalised)) {
    throw new MalformedInput("username must be 3-32 characters of a-z, 0-9, '.', '_' or '-'");
  }
  return normalised;
}

/**
 * A username that must already be in normalised form (as on the wire): parsing it must
 * not change it.
 *
 * @param {unknown} value
 * @param {string} field the field's name, for the error message
 * @returns {Username}
 * @throws {MalformedInput}
 */
export function parseNormalisedUsername(value, field = "username") {
  const parsed = parseUsername(value);
  if (parsed !== value) {
    throw new MalformedInput(`${field} must be in normalised form`);
  }
  return parsed;
}

/**
 * A message id is a lower-case random (version 4) UUID in its canonical text form.
 *
 * @param {unknown} value
 * @returns {MessageId}
 * @throws {MalformedInput}
 */
export function parseMessageId(value) {
  if (typeof value !== "string" || !MESSAGE_ID_RE.test(value)) {
    throw new MalformedInput("message_id must be a lower-case UUIDv4");
  }
  return value;
}

/**
 * A fresh message id.
 *
 * @returns {MessageId}
 */
export function newMessageId() {
  return globalThis.crypto.randomUUID();
}

/**
 * @param {unknown} value
 * @returns {ConversationId}
 * @throws {MalformedInput}
 */
export function parseConversationId(value) {
  if (typeof value !== "string" || !CONVERSATION_ID_RE.test(value)) {
    throw new MalformedInput("conversation_id is malformed");
  }
  return value;
}

/**
 * The id of the direct conversation between two users; order-independent.
 *
 * Deterministic, so both clients know it without asking the server, and a server cannot
 * move a direct message into another conversation unnoticed. The default string sort
 * (UTF-16 code units) is byte order for the ASCII names of v1; not `localeCompare`.
 *
 * @param {Username} first
 * @param {Username} second
 * @returns {Promise<ConversationId>}
 */
export async function directConversationId(first, second) {
  const [low, high] = [first, second].sort();
  const digest = await globalThis.crypto.subtle.digest("SHA-256", canonical(DIRECT_CONVERSATION, [low, high]));
  return "dm-" + toHex(new Uint8Array(digest)).slice(0, 32);
}

/**
 * A fresh group conversation id: "grp-" and 32 random lower-case hex digits.
 *
 * @returns {ConversationId}
 */
export function newGroupConversationId() {
  return "grp-" + globalThis.crypto.randomUUID().replaceAll("-", "");
}

/**
 * The number of code points in `text`, counting no further than `limit + 1`.
 *
 * @param {string} text
 * @param {number} limit
 * @returns {number}
 */
function codePointLength(text, limit) {
  // A UTF-16 length within the limit is a code-point length within it too.
  if (text.length <= limit) return text.length;
  let count = 0;
  for (const _ of text) {
    count += 1;
    if (count > limit) break;
  }
  return count;
}
