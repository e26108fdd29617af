/**
 * Group decisions (PROTOCOL.md 14.3-14.5): a change from the inbox, a chain offered by
 * the server, a group's name, and an invite code. As `securechat/client/core/groups.py`.
 *
 * Differences in form from the Python code, none in outcome on the shared vectors:
 *
 * - Hashing is Web Crypto's, so {@link decideGroupChain}, {@link inviteCode} and
 *   {@link decideInvite} are async.
 * - A decision that is not a refusal carries `outcome: "accepted"` (Python's
 *   `NameRecord` has no `outcome`; its type tells it from a `Refused`).
 *
 * @module
 */

import {
  GroupChange,
  Invite,
  MalformedInput,
  ProtocolError,
  bytesEqual,
  fromHex,
  isPlainObject,
  parseMessageId,
  toHex,
  utf8Encode,
  verifyChain,
} from "../protocol/index.js";
import { entry, refused } from "./reasons.js";

/** @import { GroupState, PublicIdentity } from "../protocol/index.js" */
/** @import { Refused } from "./reasons.js" */
/** @import { Pins } from "./messages.js" */

/**
 * What the decisions need of a verified group (PROTOCOL.md 13.3): its member sets by seq,
 * and its admins at the head. A {@link GroupState} is one.
 *
 * @typedef {object} GroupView
 * @property {readonly (readonly string[])[]} history the member set after each change, by seq
 * @property {readonly string[]} admins
 */

/**
 * The seq at which `name`'s latest stretch of membership began (null: never a member).
 * Unlike {@link GroupState#joinedAt}, a member who has since left or been removed has one.
 *
 * @param {GroupView} group
 * @param {string} name
 * @returns {number | null}
 */
export function membershipStart(group, name) {
  let position = -1;
  for (let seq = group.history.length - 1; seq >= 0; seq -= 1) {
    if (group.history[seq].includes(name)) {
      position = seq;
      break;
    }
  }
  if (position < 0) {
    return null;
  }
  while (position > 0 && group.history[position - 1].includes(name)) {
    position -= 1;
  }
  return position;
}

/**
 * The identity lookup of PROTOCOL.md 13.3: the pinned (never the pending) identity.
 *
 * @param {Pins} pins
 * @returns {(name: string) => PublicIdentity | null}
 */
function pinnedIdentity(pins) {
  return (name) => entry(pins, name)?.identity ?? null;
}

/**
 * Equal as JSON values: objects by their members in any order, arrays in order, numbers,
 * strings, booleans and null by value (as Python compares the parsed JSON).
 *
 * @param {unknown} first
 * @param {unknown} second
 * @returns {boolean}
 */
function jsonEqual(first, second) {
  if (first === second) {
    return true;
  }
  if (Array.isArray(first) || Array.isArray(second)) {
    return (
      Array.isArray(first) &&
      Array.isArray(second) &&
      first.length === second.length &&
      first.every((item, index) => jsonEqual(item, second[index]))
    );
  }
  if (isPlainObject(first) && isPlainObject(second)) {
    const keys = Object.keys(first);
    return (
      keys.length === Object.keys(second).length &&
      keys.every((key) => Object.hasOwn(second, key) && jsonEqual(first[key], second[key]))
    );
  }
  return false;
}

/** @typedef {"known" | "next" | "ahead" | "fork"} ChangePosition */

/**
 * Where an inbox entry's change stands against the verified local chain (14.3): already
 * `known` (never shown again), the `next` one, `ahead` (fetch the chain), or a `fork` of
 * what was verified; `malformed` if it does not parse.
 *
 * @param {readonly unknown[]} local the verified chain's wire changes, by seq
 * @param {unknown} change the inbox entry's wire change
 * @returns {ChangePosition | Refused}
 */
export function changePosition(local, change) {
  let seq;
  try {
    seq = GroupChange.fromWire(change).seq;
  } catch (error) {
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
  if (seq < local.length) {
    return jsonEqual(local[seq], change) ? "known" : "fork";
  }
  return seq === local.length ? "next" : "ahead";
}

/**
 * @typedef {object} ChainAccepted
 * @property {"accepted"} outcome
 * @property {GroupState} state
 * @property {readonly GroupChange[]} new the changes after the local chain, in order: each
 *   is shown once
 */

/** @typedef {ChainAccepted | Refused} ChainDecision */

/**
 * 14.3: the offered chain must parse, start with the local one, and verify as a whole.
 *
 * The local changes' signatures were checked when they were accepted, with the keys
 * pinned then; they are not checked again (13.7: `verifiedPrefix`, as Python's
 * `verified_prefix=len(local)`), so a member's accepted key change does not void what it
 * signed before. Their rules and hashes are checked again.
 *
 * @param {readonly unknown[]} local the verified chain's wire changes ([] if none)
 * @param {readonly unknown[]} offered the wire changes the server offers, from seq 0
 * @param {{groupId: string, pins: Pins}} context
 * @returns {Promise<ChainDecision>}
 */
export async function decideGroupChain(local, offered, { groupId, pins }) {
  /** @type {GroupChange[]} */
  let changes;
  try {
    changes = offered.map((wire) => GroupChange.fromWire(wire));
  } catch (error) {
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
  const prefix = offered.slice(0, local.length);
  if (prefix.length !== local.length || !prefix.every((wire, index) => jsonEqual(wire, local[index]))) {
    return refused("chain_fork");
  }
  let state;
  try {
    state = await verifyChain(changes, pinnedIdentity(pins), { groupId, verifiedPrefix: local.length });
  } catch (error) {
    if (error instanceof ProtocolError) return refused("chain_invalid");
    throw error;
  }
  return Object.freeze({
    outcome: /** @type {const} */ ("accepted"),
    state,
    new: Object.freeze(changes.slice(local.length)),
  });
}

/**
 * The name a group has on this device, and the naming message it came from.
 *
 * @typedef {object} NameRecord
 * @property {string} name
 * @property {number} sentAt
 * @property {string} messageId
 */

/** @typedef {NameRecord & {outcome: "accepted"}} NameAccepted */
/** @typedef {NameAccepted | Refused} NameDecision */

/**
 * Byte order of the UTF-8 forms (Python compares `message_id.encode()`).
 *
 * @param {string} first
 * @param {string} second
 * @returns {number} negative, zero or positive
 */
function compareUtf8(first, second) {
  const a = utf8Encode(first);
  const b = utf8Encode(second);
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index += 1) {
    if (a[index] !== b[index]) return a[index] - b[index];
  }
  return a.length - b.length;
}

/**
 * 14.4: an accepted `group_info` message renames the group if an admin sent it and it is
 * newer, by the admin's signed clock (then by message id), than the current name.
 *
 * @param {NameRecord | null} current
 * @param {{sender: string, name: string, sentAt: number, messageId: string, group: GroupView}} message
 * @returns {NameDecision}
 */
export function decideGroupName(current, { sender, name, sentAt, messageId, group }) {
  if (!group.admins.includes(sender)) {
    return refused("not_admin");
  }
  if (
    current !== null &&
    (sentAt < current.sentAt || (sentAt === current.sentAt && compareUtf8(messageId, current.messageId) <= 0))
  ) {
    return refused("older_name");
  }
  return Object.freeze({ outcome: /** @type {const} */ ("accepted"), name, sentAt, messageId });
}

/** 14.5: the commitment is the first 16 bytes of the invite's hash. */
export const INVITE_COMMITMENT_BYTES = 16;
const INVITE_CODE = /^([0-9a-f-]{36})\.([0-9a-f]{32})$/;
// PROTOCOL.md 14.5: only ASCII white space (tab, line feed, vertical tab, form feed,
// carriage return, space) around a code is removed; anything else makes it malformed.
const SPACE = "\\t\\n\\v\\f\\r ";
const SURROUNDING_SPACE = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, "g");

/**
 * The code people pass on: it names the invite and commits to all of it (14.5).
 *
 * @param {Invite} invite
 * @returns {Promise<string>}
 */
export async function inviteCode(invite) {
  const digest = await invite.digest();
  return `${invite.inviteId}.${toHex(digest.slice(0, INVITE_COMMITMENT_BYTES))}`;
}

/**
 * The invite id and the commitment of a code as typed (surrounding white space removed).
 *
 * @param {string} code
 * @returns {{inviteId: string, commitment: Uint8Array}}
 * @throws {MalformedInput} for anything else, a bare invite id included
 */
export function parseInviteCode(code) {
  const match = typeof code === "string" ? INVITE_CODE.exec(code.replace(SURROUNDING_SPACE, "")) : null;
  if (match === null) {
    throw new MalformedInput("an invite code is the invite id, a dot and 32 hex digits");
  }
  return { inviteId: parseMessageId(match[1]), commitment: fromHex(match[2]) };
}

/**
 * @typedef {object} InviteAccepted
 * @property {"accepted"} outcome
 * @property {Invite} invite
 * @property {GroupState} state the group to sign the join against
 */

/** @typedef {InviteAccepted | Refused} InviteDecision */

/**
 * 14.5: may I join with this code, given what the server answered for it?
 *
 * @param {string} code as typed
 * @param {unknown} answer the server's answer: `{invite, changes}`
 * @param {{pins: Pins, local: readonly unknown[], now: number}} context local: the
 *   group's verified chain on this device ([] if none); now: milliseconds
 * @returns {Promise<InviteDecision>}
 */
export async function decideInvite(code, answer, { pins, local, now }) {
  let inviteId;
  let commitment;
  let invite;
  let offered;
  try {
    ({ inviteId, commitment } = parseInviteCode(code));
    // Python reads `answer.get(...)`, so it assumes an object; anything else is malformed here.
    if (!isPlainObject(answer)) {
      throw new MalformedInput("the answer must be an object");
    }
    invite = Invite.fromWire(Object.hasOwn(answer, "invite") ? answer.invite : undefined);
    offered = Object.hasOwn(answer, "changes") ? answer.changes : undefined;
    if (!Array.isArray(offered) || !offered.every((wire) => isPlainObject(wire))) {
      throw new MalformedInput("changes must be a list of objects");
    }
  } catch (error) {
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
  const digest = await invite.digest();
  if (invite.inviteId !== inviteId || !bytesEqual(digest.slice(0, INVITE_COMMITMENT_BYTES), commitment)) {
    return refused("invite_mismatch");
  }
  const chain = await decideGroupChain(local, offered, { groupId: invite.groupId, pins });
  if (chain.outcome === "refused") {
    return chain;
  }
  const pin = entry(pins, invite.inviter);
  if (pin === undefined || pin === null) {
    return refused("unknown_sender");
  }
  try {
    await invite.verify(pin.identity);
  } catch (error) {
    if (error instanceof ProtocolError) return refused("bad_signature");
    throw error;
  }
  if (!chain.state.admins.includes(invite.inviter)) {
    return refused("not_admin");
  }
  if (now > invite.expiresAt) {
    return refused("invite_expired");
  }
  return Object.freeze({ outcome: /** @type {const} */ ("accepted"), invite, state: chain.state });
}
