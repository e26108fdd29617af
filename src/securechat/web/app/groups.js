/**
 * Groups in the browser (PROTOCOL.md 13), as the terminal client's `GroupBook`: each
 * group's signed membership chain is kept per user in IndexedDB, replayed with the
 * pinned keys (signers are pinned on first use), and only ever extended: a chain from
 * the server that does not extend the one verified here, or does not verify, makes the
 * group unverifiable and nothing is sent to it. Messages are sealed only for the
 * verified members, after checking that the server's member list is the same. No DOM.
 *
 * @module
 */

import {
  GroupChange,
  Invite,
  ProtocolError,
  PublicIdentity,
  VerificationFailed,
  checkGroupName,
  extend,
  genesis,
  makeInvite,
  parseConversationId,
  parseMessageId,
  parseUsername,
  signChange,
} from "../protocol/index.js";
import { ApiError } from "./api.js";
import * as store from "./store.js";

const CONFLICT_RETRIES = 3;
export const MAX_INVITE_HOURS = 24 * 30;
export const RECIPIENTS_DIFFER = "recipient list differs from the group's signed membership";

/** The group's membership cannot be verified, or sending to it is refused. */
export class GroupProblem extends Error {}

/** The chain does not verify, or does not extend the one verified on this device. */
export class GroupUnverifiable extends GroupProblem {
  /** @param {string} reason */
  constructor(reason) {
    super(`This group's membership cannot be verified: ${reason}. Nothing is sent to it.`);
    this.reason = reason;
  }
}

/** The server's member list differs from the verified one (PROTOCOL.md 13.5). */
export class MembershipMismatch extends GroupProblem {
  /** @param {{extra: string[], missing: string[]}} difference */
  constructor(difference) {
    super(mismatchText(difference));
    this.extra = difference.extra;
    this.missing = difference.missing;
  }
}

/**
 * @typedef {object} GroupRecord
 * @property {string} id
 * @property {import("../protocol/groups.js").GroupChangeWire[]} chain the verified changes, wire
 *   form (as {@link GroupChange#toWire} writes them)
 * @property {Record<string, object>[]} signers for each change of `chain`, the keys (public
 *   identity, wire form) its actor and inviter had pinned here when it was verified: the
 *   stored chain is replayed with those, so a member's later key change does not void
 *   what it signed before (PROTOCOL.md 13.7)
 * @property {import("../protocol/groups.js").GroupState | null} state the verified state of `chain`
 * @property {string | null} name from the latest group_info of a current admin
 * @property {number} nameAt that group_info's signed `sent_at`: the newest name wins on every
 *   device alike, whatever order the server delivers them in (history comes newest first)
 * @property {"member" | "removed"} status
 * @property {string | null} problem why the chain is unverifiable (then nothing is sent)
 * @property {string[] | null} serverMembers the server's member list, as last fetched
 * @property {{extra: string[], missing: string[]} | null} mismatch server list vs verified members
 */

/**
 * "alice", "alice and bob", "alice, bob and carol".
 *
 * @param {string[]} names
 * @returns {string}
 */
export function listNames(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

/**
 * What the UI says about a difference between the server's list and the chain.
 *
 * @param {{extra: string[], missing: string[]}} mismatch
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
 * The seq at which `name`'s latest stretch of membership began; null if never a member.
 * Unlike {@link GroupState#joinedAt} this also answers for a member who has since left,
 * so that what was sent to them while they were in still opens.
 *
 * @param {import("../protocol/groups.js").GroupState} state
 * @param {string} name
 * @returns {number | null}
 */
export function membershipStart(state, name) {
  let k = state.history.length - 1;
  while (k >= 0 && !state.history[k].includes(name)) k -= 1;
  if (k < 0) return null;
  while (k > 0 && state.history[k - 1].includes(name)) k -= 1;
  return k;
}

/** @param {readonly string[]} verified @param {readonly string[]} listed */
function difference(verified, listed) {
  const extra = [...new Set(listed)].filter((name) => !verified.includes(name)).sort();
  const missing = verified.filter((name) => !listed.includes(name));
  return extra.length || missing.length ? { extra, missing } : null;
}

/** @param {object} a @param {object} b wire changes made by toWire (same member order) */
function sameWire(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** @param {unknown} error */
function describeError(error) {
  return error instanceof Error && error.message ? error.message : "unknown error";
}

export class GroupBook {
  /**
   * @param {import("./messenger.js").Messenger} messenger for the API, the pins and the
   *   conversations; the book calls `messenger.groupAdopted(record, changes)` for changes
   *   newly verified and `messenger.groupChanged(record)` when anything else about a
   *   group changed
   */
  constructor(messenger) {
    this.m = messenger;
    /** @type {Map<string, GroupRecord>} */
    this.records = new Map();
    /** @type {Map<string, Promise<void>>} */
    this.locks = new Map();
  }

  get me() {
    return this.m.username;
  }

  // Records ----------------------------------------------------------------------------
  /** Load this user's groups and verify each stored chain again. */
  async load() {
    for (const saved of await store.allFor("groups", this.me)) {
      if (!saved || typeof saved.id !== "string" || !Array.isArray(saved.chain)) continue;
      const record = this.record(saved.id);
      Object.assign(record, {
        chain: saved.chain,
        signers: Array.isArray(saved.signers) ? saved.signers : [],
        name: typeof saved.name === "string" ? saved.name : null,
        nameAt: Number(saved.nameAt) || 0,
        status: saved.status === "removed" ? "removed" : "member",
      });
      if (record.chain.length === 0) continue;
      try {
        record.state = await this.replay(record.id, record.chain.map((wire) => GroupChange.fromWire(wire)), record.signers);
      } catch (error) {
        record.problem = error instanceof GroupUnverifiable ? error.reason : "its stored membership chain is unreadable";
      }
      this.m.groupChanged(record);
    }
  }

  /**
   * The record of a group, made (empty, with its conversation) on first use.
   *
   * @param {string} id a group conversation id
   * @returns {GroupRecord}
   */
  record(id) {
    let record = this.records.get(id);
    if (!record) {
      record = {
        id,
        chain: [],
        signers: [],
        state: null,
        name: null,
        nameAt: 0,
        status: "member",
        problem: null,
        serverMembers: null,
        mismatch: null,
      };
      this.records.set(id, record);
      this.m.ensureGroupConversation(record);
    }
    return record;
  }

  /** @param {GroupRecord} record */
  async save(record) {
    await store.put("groups", [this.me, record.id], {
      id: record.id,
      chain: record.chain,
      signers: record.signers,
      name: record.name,
      nameAt: record.nameAt,
      status: record.status,
    });
  }

  /**
   * Run `action` alone for this group: the chain is read, extended and stored by one
   * caller at a time (the inbox and the user's own changes race otherwise).
   *
   * @template T
   * @param {string} id
   * @param {() => Promise<T>} action
   * @returns {Promise<T>}
   */
  async locked(id, action) {
    const previous = this.locks.get(id) ?? Promise.resolve();
    /** @type {() => void} */
    let release = () => {};
    const mine = new Promise((resolve) => {
      release = () => resolve(undefined);
    });
    const tail = previous.then(() => mine);
    this.locks.set(id, tail);
    await previous;
    try {
      return await action();
    } finally {
      release();
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  // Verification -----------------------------------------------------------------------
  /**
   * The identity pinned for a name, or null: chains verify with pinned keys only.
   *
   * @param {string} name
   * @returns {PublicIdentity | null}
   */
  lookup = (name) => {
    const pin = this.m.pins.get(name);
    return pin ? PublicIdentity.fromWire(name, pin.identity) : null;
  };

  /**
   * Pin (trust on first use) whoever signed one of these changes or invites.
   *
   * @param {GroupChange[]} changes
   */
  async pinSigners(changes) {
    const names = new Set();
    for (const change of changes) {
      names.add(change.actor);
      if (change.invite) names.add(change.invite.inviter);
    }
    for (const name of [...names].sort()) {
      if (this.m.pins.has(name)) continue;
      try {
        await this.m.trustedIdentity(name);
      } catch {
        // No pin: the change fails to verify, which is the right outcome.
      }
    }
  }

  /**
   * The keys a change's signers have pinned now (recorded once the change verifies).
   *
   * @param {GroupChange} change
   * @returns {Record<string, object>}
   */
  signersOf(change) {
    /** @type {Record<string, object>} */
    const keys = {};
    for (const name of [change.actor, change.invite?.inviter]) {
      const pin = name ? this.m.pins.get(name) : undefined;
      if (name && pin) keys[name] = pin.identity;
    }
    return keys;
  }

  /**
   * Replay a whole chain from its first change (PROTOCOL.md 13.3): the first
   * `signers.length` changes with the keys recorded when this device verified them, the
   * rest with the keys pinned now (signers are pinned on first use).
   *
   * @param {string} id
   * @param {GroupChange[]} changes
   * @param {Record<string, object>[]} [signers]
   * @returns {Promise<import("../protocol/groups.js").GroupState>}
   * @throws {GroupUnverifiable}
   */
  async replay(id, changes, signers = []) {
    await this.pinSigners(changes.slice(signers.length));
    try {
      if (changes.length === 0) throw new VerificationFailed();
      let state = null;
      for (const [index, change] of changes.entries()) {
        const recorded = index < signers.length ? signers[index] : null;
        const lookup = recorded
          ? (/** @type {string} */ name) => (Object.hasOwn(recorded, name) ? PublicIdentity.fromWire(name, recorded[name]) : null)
          : this.lookup;
        state = state === null ? await genesis(change, lookup) : await state.apply(change, lookup);
        if (state.groupId !== id) throw new VerificationFailed(); // the chain is for another group
      }
      return /** @type {import("../protocol/groups.js").GroupState} */ (state);
    } catch (error) {
      if (error instanceof ProtocolError) throw new GroupUnverifiable("its membership chain does not verify");
      throw error;
    }
  }

  /**
   * Parse and verify `wires` as this group's chain. It must extend the chain verified
   * here (the server cannot roll a client back or fork it); only then is it stored.
   * Call inside {@link locked}.
   *
   * @param {GroupRecord} record
   * @param {unknown[]} wires
   * @returns {Promise<GroupRecord>}
   * @throws {GroupUnverifiable}
   */
  async adopt(record, wires) {
    let changes;
    try {
      if (!Array.isArray(wires)) throw new TypeError("not a list");
      changes = wires.map((wire) => GroupChange.fromWire(wire));
    } catch (error) {
      throw this.fail(record, `its membership chain is malformed (${describeError(error)})`);
    }
    const normal = changes.map((change) => change.toWire());
    const local = record.chain;
    if (normal.length < local.length || local.some((wire, index) => !sameWire(wire, normal[index]))) {
      throw this.fail(record, "the server's membership chain does not extend the one verified on this device");
    }
    if (normal.length === local.length && record.state && !record.problem) return record;
    const added = changes.slice(local.length);
    let state;
    try {
      if (record.state && local.length > 0) {
        await this.pinSigners(added);
        state = await extend(record.state, added, this.lookup);
      } else {
        state = await this.replay(record.id, changes, record.signers.slice(0, local.length));
      }
    } catch (error) {
      if (error instanceof GroupUnverifiable) throw this.fail(record, error.reason);
      if (error instanceof ProtocolError) throw this.fail(record, "its membership chain does not verify");
      throw error;
    }
    record.signers = changes.map((change, index) => record.signers[index] ?? this.signersOf(change));
    record.chain = normal;
    record.state = state;
    record.problem = null;
    record.status = state.members.includes(this.me) ? "member" : "removed";
    if (added.length && record.serverMembers) {
      // The server's list was for the old membership: fetch it again (once out of the lock).
      record.serverMembers = null;
      record.mismatch = null;
      if (record.status === "member") setTimeout(() => void this.check(record.id), 0);
    }
    await this.save(record);
    this.m.groupAdopted(record, added);
    return record;
  }

  /**
   * Mark the group unverifiable; returns the error to throw.
   *
   * @param {GroupRecord} record
   * @param {string} reason
   * @returns {GroupUnverifiable}
   */
  fail(record, reason) {
    record.problem = reason;
    this.m.groupChanged(record);
    return new GroupUnverifiable(reason);
  }

  /**
   * Fetch the whole chain from the server and adopt it (inside {@link locked}).
   *
   * @param {GroupRecord} record
   * @returns {Promise<GroupRecord>}
   */
  async fetchAndAdopt(record) {
    const answer = await this.m.api.groupChanges(record.id);
    return this.adopt(record, answer?.changes);
  }

  /**
   * Bring a group's chain up to date with the server's.
   *
   * @param {string} id
   * @returns {Promise<GroupRecord>}
   * @throws {GroupUnverifiable | ApiError}
   */
  refresh(id) {
    const record = this.record(id);
    return this.locked(id, () => this.fetchAndAdopt(record));
  }

  /**
   * Take in one change (from the inbox, or made here): known already, the next one, or
   * else fetch the chain it belongs to. `base`: the chain it was made on, if known.
   *
   * @param {string} id
   * @param {GroupChange} change
   * @param {object[]} [base]
   * @returns {Promise<{record: GroupRecord, known: boolean}>}
   */
  integrate(id, change, base) {
    const record = this.record(id);
    return this.locked(id, async () => {
      const wire = change.toWire();
      const local = record.chain;
      if (local.length > change.seq && sameWire(local[change.seq], wire) && record.state && !record.problem) {
        return { record, known: true };
      }
      if (local.length === change.seq && (record.state || local.length === 0)) {
        await this.adopt(record, [...local, wire]);
      } else if (base && base.length === change.seq) {
        await this.adopt(record, [...base, wire]);
      } else {
        await this.fetchAndAdopt(record);
      }
      return { record, known: false };
    });
  }

  /**
   * An inbox entry `{"type": "group", "group_id", "change"}`.
   *
   * @param {any} frame the entry as parsed from JSON, checked here
   * @returns {Promise<{groupId: string, change: GroupChange | null, known: boolean, problem: string | null}>}
   */
  async onFrame(frame) {
    let groupId;
    let change;
    try {
      groupId = parseConversationId(frame.group_id);
      if (!groupId.startsWith("grp-")) throw new Error("not a group id");
      change = GroupChange.fromWire(frame.change);
      if (change.groupId !== groupId) throw new Error("the change is for another group");
    } catch (error) {
      return { groupId: groupId ?? "", change: null, known: false, problem: `malformed group change (${describeError(error)})` };
    }
    try {
      const { known } = await this.integrate(groupId, change);
      return { groupId, change, known, problem: null };
    } catch (error) {
      const problem =
        error instanceof GroupUnverifiable ? error.reason : `cannot fetch the group's changes (${describeError(error)})`;
      return { groupId, change, known: false, problem };
    }
  }

  // Receiving --------------------------------------------------------------------------
  /**
   * The member set a group message may be opened against (PROTOCOL.md 13.5): its
   * recipients, if some verified position from my join on had exactly those members,
   * the sender among them. The chain is fetched once if not; null if still not.
   *
   * @param {import("../protocol/envelope.js").Envelope} envelope
   * @returns {Promise<string[] | null>}
   */
  async recipientsFor(envelope) {
    const id = envelope.header.conversationId;
    const recipients = [...envelope.recipients];
    const sender = envelope.header.sender;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      let state = null;
      if (attempt === 0) {
        state = this.records.get(id)?.state ?? null;
      } else {
        const record = this.records.get(id);
        if (record?.status === "removed" && record.state) break; // nothing more to fetch
        try {
          state = (await this.refresh(id)).state;
        } catch {
          state = null;
        }
      }
      if (!state) continue;
      const since = membershipStart(state, this.me);
      if (since !== null && state.acceptsRecipients(recipients, sender, { since })) return recipients;
    }
    return null;
  }

  /**
   * A verified group_info: the name counts only from a current admin, and only if it is
   * not older, by the admin's signed clock, than the name already shown.
   *
   * @param {string} id
   * @param {string} sender
   * @param {string} name
   * @param {number} sentAt the envelope's signed `sent_at`
   * @returns {Promise<boolean>} whether the sender may name the group
   */
  async noteInfo(id, sender, name, sentAt) {
    const record = this.records.get(id);
    if (!record?.state || !record.state.admins.includes(sender)) return false;
    const at = sentAt;
    if (at >= record.nameAt && (record.name !== name || at !== record.nameAt)) {
      record.name = name;
      record.nameAt = at;
      await this.save(record);
      this.m.groupChanged(record);
    }
    return true;
  }

  // The server's list ----------------------------------------------------------------
  /**
   * Compare the server's member list with the verified members. A difference is first
   * checked against a fresh chain (a change may simply not have arrived yet).
   *
   * @param {string} id
   * @param {string[]} listed
   * @param {{fetched?: boolean}} [options] fetched: the chain was just refreshed
   */
  async compareServerList(id, listed, { fetched = false } = {}) {
    const record = this.record(id);
    record.serverMembers = [...listed];
    let state = record.state;
    if (!fetched && (!state || difference(state.members, listed)) && !record.problem) {
      try {
        state = (await this.refresh(id)).state;
      } catch {
        state = record.state;
      }
      record.serverMembers = [...listed];
    }
    record.mismatch = state ? difference(state.members, listed) : null;
    this.m.groupChanged(record);
    return record.mismatch;
  }

  /**
   * The server's member list for a group, from `GET /conversations` (empty if not listed).
   *
   * @param {string} id
   * @returns {Promise<string[]>}
   */
  async fetchServerList(id) {
    const answer = await this.m.api.conversations();
    const listed = (answer?.conversations ?? []).find(
      (/** @type {{id?: unknown, members?: unknown} | null} */ item) => item?.id === id,
    );
    return Array.isArray(listed?.members) ? listed.members.map((/** @type {unknown} */ name) => String(name)) : [];
  }

  /**
   * Refresh the chain and compare with the server's list; never throws (the record shows it).
   *
   * @param {string} id
   */
  async check(id) {
    const record = this.records.get(id);
    // A former member's chain ends at its removal: the server has nothing more for it.
    if (record?.status === "removed" && record.state) return;
    try {
      await this.refresh(id);
      await this.compareServerList(id, await this.fetchServerList(id), { fetched: true });
    } catch {
      // The record holds the problem, if it is one; a network error is shown elsewhere.
    }
  }

  // Sending --------------------------------------------------------------------------
  /**
   * Everything sending checks first (PROTOCOL.md 13.5): an up-to-date verified chain
   * with me in it, and a server list equal to it.
   *
   * @param {string} id
   * @returns {Promise<import("../protocol/groups.js").GroupState>}
   * @throws {GroupProblem | ApiError}
   */
  async checkForSending(id) {
    const record = this.record(id);
    if (record.status === "removed" && record.state) {
      throw new GroupProblem("You are no longer a member of this group.");
    }
    let state;
    try {
      state = (await this.refresh(id)).state;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        throw new GroupProblem("The server says you are not a member of this group.");
      }
      throw error;
    }
    if (!state || !state.members.includes(this.me)) throw new GroupProblem("You are no longer a member of this group.");
    const mismatch = await this.compareServerList(id, await this.fetchServerList(id), { fetched: true });
    if (mismatch) throw new MembershipMismatch(mismatch);
    return state;
  }

  // Making changes ---------------------------------------------------------------------
  /**
   * The user's contacts for a change: normalised, pinned (a key change is refused).
   *
   * @param {string[]} names
   * @returns {Promise<string[]>}
   */
  async contacts(names) {
    /** @type {string[]} */
    const result = [];
    for (const raw of names) {
      const name = parseUsername(raw);
      try {
        await this.m.trustedIdentity(name);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) throw new Error(`There is no user named ${name}.`);
        throw error;
      }
      if (!result.includes(name)) result.push(name);
    }
    return result;
  }

  /**
   * Create a group with a name and members; the name follows as a group_info message.
   *
   * @param {string} name
   * @param {string[]} members usernames
   * @returns {Promise<string>} the group id
   */
  async create(name, members) {
    checkGroupName(name);
    const targets = (await this.contacts(members)).filter((member) => member !== this.me);
    const change = await signChange(this.m.me, null, "create", targets, { at: Date.now() });
    await this.m.api.createGroup(change.toWire());
    const { record } = await this.integrate(change.groupId, change, []);
    record.name = name;
    record.nameAt = 0;
    await this.save(record);
    this.m.groupChanged(record);
    return change.groupId;
  }

  /**
   * Sign and submit the next change, fetching and retrying if someone got there first.
   *
   * @param {string} id
   * @param {"add" | "remove" | "promote" | "leave"} action
   * @param {string[]} [members] the targets
   * @returns {Promise<GroupChange>}
   */
  async change(id, action, members = []) {
    const targets = action === "add" ? await this.contacts(members) : members.map((name) => parseUsername(name));
    for (let attempt = 0; attempt < CONFLICT_RETRIES; attempt += 1) {
      const record = await this.refresh(id);
      const state = record.state;
      if (!state) throw new GroupUnverifiable("there is no verified membership chain");
      if (!state.members.includes(this.me)) throw new GroupProblem("You are not a member of this group.");
      if (action !== "leave" && !state.admins.includes(this.me)) {
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
      const change = await signChange(this.m.me, state, action, action === "leave" ? [] : targets, {
        at: Math.max(Date.now(), state.at),
      });
      try {
        await this.m.api.addGroupChange(id, change.toWire());
      } catch (error) {
        if (error instanceof ApiError && error.code === "group_conflict") continue;
        throw error;
      }
      await this.integrate(id, change, record.chain);
      return change;
    }
    throw new Error("The group keeps changing; please try again.");
  }

  /**
   * Sign an invite (an admin only) and give the server a copy; its id is the code.
   *
   * @param {string} id
   * @param {{hours: number, uses: number}} options
   * @returns {Promise<Invite>}
   */
  async makeInvite(id, { hours, uses }) {
    if (!(Number.isFinite(hours) && hours > 0 && hours <= MAX_INVITE_HOURS)) {
      throw new Error(`An invite is valid for more than 0 and at most ${MAX_INVITE_HOURS} hours.`);
    }
    if (!(Number.isInteger(uses) && uses >= 1 && uses <= 1000)) {
      throw new Error("An invite can be used 1 to 1000 times.");
    }
    const record = await this.refresh(id);
    if (!record.state?.admins.includes(this.me)) throw new GroupProblem("Only the group's admins can make invites.");
    const invite = await makeInvite(this.m.me, id, { expiresAt: Date.now() + Math.round(hours * 3_600_000), maxUses: uses });
    await this.m.api.createInvite(id, invite.toWire());
    return invite;
  }

  /**
   * Join with an invite code: check the invite's signature with the inviter's key, that
   * the inviter is an admin by the verified chain, then sign a join extending it.
   *
   * @param {string} code
   * @returns {Promise<string>} the group id
   */
  async join(code) {
    const trimmed = code.trim().toLowerCase();
    try {
      parseMessageId(trimmed);
    } catch {
      throw new Error("That is not an invite code: a code looks like 3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f.");
    }
    for (let attempt = 0; attempt < CONFLICT_RETRIES; attempt += 1) {
      let answer;
      try {
        answer = await this.m.api.getInvite(trimmed);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) throw new Error("This invite code is unknown, expired or used up.");
        throw error;
      }
      let invite;
      try {
        invite = Invite.fromWire(answer?.invite);
      } catch (error) {
        throw new GroupUnverifiable(`the invite is malformed (${describeError(error)})`);
      }
      const id = invite.groupId;
      if (answer.group_id !== id) throw new GroupUnverifiable("the server's answer is for another group than the invite");
      const inviter = await this.m.trustedIdentity(invite.inviter);
      try {
        await invite.verify(inviter);
      } catch {
        throw new GroupUnverifiable("the invite's signature does not verify with the inviter's key");
      }
      const wires = Array.isArray(answer.changes) ? answer.changes : [];
      const state = await this.verifyCandidate(id, wires);
      if (state.members.includes(this.me)) {
        await this.refresh(id);
        return id;
      }
      if (!state.admins.includes(invite.inviter)) throw new GroupUnverifiable(`${invite.inviter} is not an admin of the group`);
      const at = Math.max(Date.now(), state.at);
      if (at > invite.expiresAt) throw new Error("This invite has expired.");
      const change = await signChange(this.m.me, state, "join", [], { invite, at });
      try {
        await this.m.api.addGroupChange(id, change.toWire());
      } catch (error) {
        if (error instanceof ApiError && error.code === "group_conflict") continue;
        if (error instanceof ApiError && error.status === 403) throw new Error("This invite code is unknown, expired or used up.");
        throw error;
      }
      await this.integrate(id, change, wires);
      return id;
    }
    throw new Error("The group keeps changing; please try again.");
  }

  /**
   * Verify the chain an invite came with, without keeping it: it must extend any chain
   * verified here before (a former member's), and it becomes this device's only once the
   * join is accepted.
   *
   * @param {string} id
   * @param {unknown[]} wires
   */
  async verifyCandidate(id, wires) {
    let changes;
    try {
      changes = wires.map((wire) => GroupChange.fromWire(wire));
    } catch (error) {
      throw new GroupUnverifiable(`its membership chain is malformed (${describeError(error)})`);
    }
    const record = this.records.get(id);
    const local = record?.chain ?? [];
    const normal = changes.map((change) => change.toWire());
    if (normal.length < local.length || local.some((wire, index) => !sameWire(wire, normal[index]))) {
      throw new GroupUnverifiable("the server's membership chain does not extend the one verified on this device");
    }
    return this.replay(id, changes, record?.signers.slice(0, local.length) ?? []);
  }
}
