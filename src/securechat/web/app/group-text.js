/**
 * What the page says about groups: membership changes as lines, the server's list
 * against the verified one, group names. Pure functions of their input; no DOM.
 *
 * @module
 */

import { isPlainObject } from "../protocol/index.js";
import { reasonText } from "./reasons.js";

/** @import { GroupChange } from "../protocol/index.js" */
/** @import { NameDecision, NameRecord } from "../core/groups.js" */
/** @import { GroupRecord } from "./groups.js" */

/**
 * "alice", "alice and bob", "alice, bob and carol".
 *
 * @param {readonly string[]} names
 * @returns {string}
 */
export function listNames(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

/** How many other members a group without a name is called after. */
const TITLE_MEMBERS = 3;

/**
 * What a group is called: the name from an admin's signed group_info (14.4), or, while
 * none is known here (a joiner before an admin has told it, a device that has not read
 * one yet), who is in it by the verified chain, so that two such groups differ. Never a
 * name from the server.
 *
 * @param {Readonly<GroupRecord> | undefined} record
 * @param {string} me this device's user, left out of the members named
 * @returns {{title: string, named: boolean}}
 */
export function groupTitle(record, me) {
  const name = record?.name?.name;
  if (name !== undefined) return { title: name, named: true };
  const members = record?.state?.members;
  if (!members) return { title: record?.problem ? "Unverifiable group" : "Group", named: false };
  const others = members.filter((member) => member !== me);
  if (others.length === 0) return { title: "Group with only you", named: false };
  const shown = others.length > TITLE_MEMBERS + 1 ? others.slice(0, TITLE_MEMBERS) : others;
  const rest = others.length - shown.length;
  const names = rest ? [...shown, `${rest} others`] : shown;
  return { title: `Group with ${listNames(names)}`, named: false };
}

/**
 * Who the server lists that the signed changes do not make members, and the reverse;
 * null when both lists are the same.
 *
 * @param {readonly string[]} verified
 * @param {readonly string[]} listed
 * @returns {{extra: string[], missing: string[]} | null}
 */
export function listDifference(verified, listed) {
  const extra = [...new Set(listed)].filter((name) => !verified.includes(name)).sort();
  const missing = verified.filter((name) => !listed.includes(name));
  return extra.length || missing.length ? { extra, missing } : null;
}

/**
 * What the UI says about a difference between the server's list and the chain.
 *
 * @param {{extra: readonly string[], missing: readonly string[]}} mismatch
 * @returns {string}
 */
export function mismatchText({ extra, missing }) {
  const parts = [];
  if (extra.length) {
    parts.push(
      `The server lists ${listNames(extra)}, who ${extra.length === 1 ? "was" : "were"} never added by a signed change.`,
    );
  }
  if (missing.length) {
    parts.push(
      `The server does not list ${listNames(missing)}, who ${missing.length === 1 ? "is a member" : "are members"} by the signed changes.`,
    );
  }
  parts.push("Sending is paused.");
  return parts.join(" ");
}

/**
 * A membership change as a line in the conversation, without the actor (who is shown
 * before it), as the terminal client's `describe_change`.
 *
 * @param {GroupChange} change
 * @returns {string}
 */
export function describeChange(change) {
  const targets = change.members.join(", ");
  switch (change.action) {
    case "create":
      return `created the group with ${targets || "nobody else yet"}`;
    case "add":
      return `added ${targets}`;
    case "remove":
      return `removed ${targets}`;
    case "promote":
      return `made ${targets} admin`;
    case "leave":
      return "left the group";
    case "join":
      return `joined with an invite${change.invite ? ` from ${change.invite.inviter}` : ""}`;
    default:
      return change.action;
  }
}

/**
 * The line a verified `group_info` message shows, given the core's name decision
 * (PROTOCOL.md 14.4). `live`: it came from the inbox now; otherwise it is a page of
 * history, where a name that a newer one has replaced was the group's name once and
 * reads so (the decision, that the newer name stays, is the same either way).
 *
 * @param {string} name
 * @param {NameDecision | "direct" | "unverified"} decision "direct": sent in a direct chat;
 *   "unverified": the group has no verified chain here
 * @param {{live: boolean}} where
 * @returns {string}
 */
export function nameLine(name, decision, { live }) {
  if (decision === "direct") return `sent a group name (“${name}”) in a direct chat; it is ignored`;
  if (decision === "unverified") return `sent a group name (“${name}”); the group is not verified here`;
  if (decision.outcome === "accepted" || (decision.reason === "older_name" && !live)) {
    return `named the group “${name}”`;
  }
  return `sent a group name (“${name}”), ignored: ${reasonText(decision.reason)}`;
}

/**
 * A group's name record as stored, or null. Before records kept the naming message's id
 * they kept `name` and `nameAt` (its signed time): such a record reads with an empty id,
 * so a naming message of the same time still wins by its id, as 14.4 orders them.
 *
 * @param {unknown} saved
 * @returns {NameRecord | null}
 */
export function nameRecordFrom(saved) {
  if (!isPlainObject(saved)) return null;
  const record = saved.name;
  if (isPlainObject(record)) {
    const { name, sentAt, messageId } = record;
    if (typeof name === "string" && Number.isSafeInteger(sentAt) && typeof messageId === "string") {
      return { name, sentAt: /** @type {number} */ (sentAt), messageId };
    }
    return null;
  }
  if (typeof record === "string") {
    const at = saved.nameAt;
    return { name: record, sentAt: typeof at === "number" && Number.isSafeInteger(at) ? at : 0, messageId: "" };
  }
  return null;
}

/**
 * Why sending to a group is paused, or null.
 *
 * @param {Readonly<GroupRecord> | undefined} record
 * @returns {string | null}
 */
export function groupWarning(record) {
  if (!record) return null;
  if (record.problem) return `This group’s membership cannot be verified: ${reasonText(record.problem)}. Sending is disabled.`;
  if (record.status === "removed" && record.state) return "You are no longer a member of this group.";
  if (record.mismatch) return mismatchText(record.mismatch);
  return null;
}
