/**
 * Changing groups from this device (PROTOCOL.md 13): create one, add, remove, promote,
 * leave, make an invite (its code commits to it, 14.5), join with a code (the core's
 * decideInvite checks what the server answered for it). Each signs a change on the chain
 * the group book verified and gives the extended chain back to the book. No DOM.
 *
 * @module
 */

import { decideInvite, inviteCode, parseInviteCode } from "../core/index.js";
import { Invite, checkGroupName, makeInvite, parseUsername, signChange } from "../protocol/index.js";
import { ApiError } from "./api.js";
import { listNames } from "./group-text.js";
import { GroupProblem, GroupUnverifiable, offeredChanges, signersOf } from "./groups.js";
import { reasonText } from "./reasons.js";

/** @import { GroupChange } from "../protocol/index.js" */
/** @import { GroupBook } from "./groups.js" */

const CONFLICT_RETRIES = 3;
export const MAX_INVITE_HOURS = 24 * 30;
const UNKNOWN_CODE = "This invite code is unknown, expired or used up.";
const NOT_A_CODE =
  "That is not an invite code: a code is the invite id, a dot and 32 hex digits (ask the admin for a new one).";

/** Joining was refused: what the server answered for the code is not what it names. */
export class InviteRefused extends GroupProblem {
  /**
   * @param {import("../core/reasons.js").Reason} reason
   * @param {string} [message] what to say instead of the reason's text
   */
  constructor(reason, message) {
    super(message ?? `This invite cannot be used: ${reasonText(reason)}.`);
    this.reason = reason;
  }
}

/**
 * The user's contacts for a change: normalised, pinned (a key change is refused).
 *
 * @param {GroupBook} book
 * @param {string[]} names
 * @returns {Promise<string[]>}
 */
async function contacts(book, names) {
  /** @type {string[]} */
  const result = [];
  for (const raw of names) {
    const name = parseUsername(raw);
    try {
      await book.host.checkContact(name);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) throw new Error(`There is no user named ${name}.`);
      throw error;
    }
    if (!result.includes(name)) result.push(name);
  }
  return result;
}

/**
 * Create a group with these members; its name follows as a group_info message.
 *
 * @param {GroupBook} book
 * @param {string} name checked here, sent by the caller
 * @param {string[]} members usernames
 * @returns {Promise<string>} the group id
 */
export async function createGroup(book, name, members) {
  checkGroupName(name);
  const targets = (await contacts(book, members)).filter((member) => member !== book.me);
  const change = await signChange(book.host.me, null, "create", targets, { at: Date.now() });
  await book.host.api.createGroup(change.toWire());
  await book.adoptOwn(change.groupId, [change.toWire()]);
  return change.groupId;
}

/**
 * Sign and submit the next change, fetching and retrying if someone got there first.
 *
 * @param {GroupBook} book
 * @param {string} id
 * @param {"add" | "remove" | "promote" | "leave"} action
 * @param {string[]} [members] the targets
 * @returns {Promise<GroupChange>}
 */
export async function changeGroup(book, id, action, members = []) {
  const targets = action === "add" ? await contacts(book, members) : members.map((name) => parseUsername(name));
  for (let attempt = 0; attempt < CONFLICT_RETRIES; attempt += 1) {
    const record = await book.refresh(id);
    const state = record.state;
    if (!state) throw new GroupUnverifiable("chain_invalid");
    if (!state.members.includes(book.me)) throw new GroupProblem("You are not a member of this group.");
    if (action !== "leave" && !state.admins.includes(book.me)) {
      throw new GroupProblem("Only the group's admins can do that.");
    }
    if (action === "add") {
      const already = targets.filter((name) => state.members.includes(name));
      if (already.length) throw new GroupProblem(`${listNames(already)} ${already.length === 1 ? "is" : "are"} already in the group.`);
    }
    if (action === "remove" || action === "promote") {
      const strangers = targets.filter((name) => !state.members.includes(name));
      if (strangers.length) throw new GroupProblem(`${listNames(strangers)} ${strangers.length === 1 ? "is" : "are"} not in the group.`);
    }
    const chain = record.chain;
    const change = await signChange(book.host.me, state, action, action === "leave" ? [] : targets, {
      at: Math.max(Date.now(), state.at),
    });
    try {
      await book.host.api.addGroupChange(id, change.toWire());
    } catch (error) {
      if (error instanceof ApiError && error.code === "group_conflict") continue;
      throw error;
    }
    await book.adoptOwn(id, [...chain, change.toWire()]);
    return change;
  }
  throw new Error("The group keeps changing; please try again.");
}

/**
 * Sign an invite (an admin only) and give the server a copy. What people pass on is its
 * code, which commits to the whole signed invite (14.5).
 *
 * @param {GroupBook} book
 * @param {string} id
 * @param {{hours: number, uses: number}} options
 * @returns {Promise<{invite: Invite, code: string}>}
 */
export async function makeGroupInvite(book, id, { hours, uses }) {
  if (!(Number.isFinite(hours) && hours > 0 && hours <= MAX_INVITE_HOURS)) {
    throw new Error(`An invite is valid for more than 0 and at most ${MAX_INVITE_HOURS} hours.`);
  }
  if (!(Number.isInteger(uses) && uses >= 1 && uses <= 1000)) {
    throw new Error("An invite can be used 1 to 1000 times.");
  }
  const record = await book.refresh(id);
  if (!record.state?.admins.includes(book.me)) throw new GroupProblem("Only the group's admins can make invites.");
  const invite = await makeInvite(book.host.me, id, { expiresAt: Date.now() + Math.round(hours * 3_600_000), maxUses: uses });
  await book.host.api.createInvite(id, invite.toWire());
  return { invite, code: await inviteCode(invite) };
}

/**
 * Join with an invite code: the server's answer for it goes to the core (14.5), which
 * checks that it is the invite the code names, that the chain verifies and extends any
 * chain of that group verified here, and the inviter's signature and role; then a join
 * is signed on the state it verified.
 *
 * @param {GroupBook} book
 * @param {string} code as typed
 * @returns {Promise<string>} the group id
 */
export async function joinGroup(book, code) {
  let inviteId;
  try {
    ({ inviteId } = parseInviteCode(code));
  } catch {
    // A bare invite id (the old form of a code) commits to nothing: it is refused too.
    throw new InviteRefused("malformed", NOT_A_CODE);
  }
  for (let attempt = 0; attempt < CONFLICT_RETRIES; attempt += 1) {
    let answer;
    try {
      answer = await book.host.api.getInvite(inviteId);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) throw new Error(UNKNOWN_CODE);
      throw error;
    }
    const offered = offeredChanges(answer) ?? [];
    // The chain of the group the invite names, if this device verified one (a former member).
    let groupId = null;
    let inviter = null;
    try {
      ({ groupId, inviter } = Invite.fromWire(answer?.invite));
    } catch {
      // The core says the answer is malformed.
    }
    const local = groupId === null ? [] : book.records.get(groupId)?.chain ?? [];
    const pins = await book.host.pins([...signersOf(offered), ...(inviter === null ? [] : [inviter])]);
    const decision = await decideInvite(code, answer, { pins, local, now: Date.now() });
    if (decision.outcome === "refused") throw new InviteRefused(decision.reason);
    const { invite, state } = decision;
    if (state.members.includes(book.me)) {
      await book.refresh(invite.groupId);
      return invite.groupId;
    }
    const at = Math.max(Date.now(), state.at);
    if (at > invite.expiresAt) throw new InviteRefused("invite_expired");
    const change = await signChange(book.host.me, state, "join", [], { invite, at });
    try {
      await book.host.api.addGroupChange(invite.groupId, change.toWire());
    } catch (error) {
      if (error instanceof ApiError && error.code === "group_conflict") continue;
      if (error instanceof ApiError && error.status === 403) throw new Error(UNKNOWN_CODE);
      throw error;
    }
    await book.adoptOwn(invite.groupId, [...offered, change.toWire()]);
    return invite.groupId;
  }
  throw new Error("The group keeps changing; please try again.");
}
