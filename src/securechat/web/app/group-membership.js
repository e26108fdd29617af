/**
 * The server's member list against the verified one (PROTOCOL.md 13.5): compared
 * whenever the list is fetched, shown when they differ, and required to agree, with
 * the chain up to date and this user in it, before anything is sealed for the group.
 * The server's list is never used as the members. No DOM.
 *
 * @module
 */

import { ApiError } from "./api.js";
import { listDifference, mismatchText } from "./group-text.js";
import { GroupProblem } from "./groups.js";

/** @import { GroupState } from "../protocol/index.js" */
/** @import { GroupBook } from "./groups.js" */

/** The server's member list differs from the verified one. */
export class MembershipMismatch extends GroupProblem {
  /** @param {{extra: string[], missing: string[]}} difference */
  constructor(difference) {
    super(mismatchText(difference));
    this.extra = difference.extra;
    this.missing = difference.missing;
  }
}

/**
 * Compare the server's member list with the verified members. A difference is first
 * checked against a fresh chain (a change may simply not have arrived yet).
 *
 * @param {GroupBook} book
 * @param {string} id
 * @param {string[]} listed
 * @param {{fetched?: boolean}} [options] fetched: the chain was just refreshed
 */
export async function compareServerList(book, id, listed, { fetched = false } = {}) {
  const record = book.record(id);
  record.serverMembers = [...listed];
  let state = record.state;
  if (!fetched && (!state || listDifference(state.members, listed)) && !record.problem) {
    try {
      state = (await book.refresh(id)).state;
    } catch {
      state = record.state;
    }
    record.serverMembers = [...listed];
  }
  record.mismatch = state ? listDifference(state.members, listed) : null;
  book.host.changed(record);
  return record.mismatch;
}

/**
 * The server's member list for a group, from `GET /conversations` (empty if not listed).
 *
 * @param {GroupBook} book
 * @param {string} id
 * @returns {Promise<string[]>}
 */
async function serverList(book, id) {
  const answer = await book.host.api.conversations();
  const listed = (answer?.conversations ?? []).find(
    (/** @type {{id?: unknown, members?: unknown} | null} */ item) => item?.id === id,
  );
  return Array.isArray(listed?.members) ? listed.members.map((/** @type {unknown} */ name) => String(name)) : [];
}

/**
 * Refresh the chain and compare with the server's list; never throws (the record shows it).
 *
 * @param {GroupBook} book
 * @param {string} id
 */
export async function checkGroup(book, id) {
  const record = book.records.get(id);
  // A former member's chain ends at its removal: the server has nothing more for it.
  if (record?.status === "removed" && record.state) return;
  try {
    await book.refresh(id);
    await compareServerList(book, id, await serverList(book, id), { fetched: true });
  } catch {
    // The record holds the problem, if it is one; a network error is shown elsewhere.
  }
}

/**
 * Everything sending checks first: an up-to-date verified chain with me in it, and a
 * server list equal to it. The verified state to seal for.
 *
 * @param {GroupBook} book
 * @param {string} id
 * @returns {Promise<GroupState>}
 * @throws {GroupProblem | ApiError}
 */
export async function membersForSending(book, id) {
  const record = book.record(id);
  if (record.status === "removed" && record.state) {
    throw new GroupProblem("You are no longer a member of this group.");
  }
  let state;
  try {
    state = (await book.refresh(id)).state;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      throw new GroupProblem("The server says you are not a member of this group.");
    }
    throw error;
  }
  if (!state || !state.members.includes(book.me)) throw new GroupProblem("You are no longer a member of this group.");
  const mismatch = await compareServerList(book, id, await serverList(book, id), { fetched: true });
  if (mismatch) throw new MembershipMismatch(mismatch);
  return state;
}
