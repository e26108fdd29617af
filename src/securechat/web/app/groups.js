/**
 * Groups in the browser (PROTOCOL.md 13), as the terminal client's `GroupBook`: each
 * group's signed membership chain is kept per user in IndexedDB and only ever extended.
 * Whether a chain the server offers is taken, and whether a change from the inbox is
 * new, is the core's decision (14.3: changePosition, decideGroupChain); a group's name
 * is too (14.4: decideGroupName). This module gathers what those decisions need, stores
 * what they return. No DOM.
 *
 * The rest of the app is reached only through the {@link GroupHost} it is given.
 * Making changes (create, add, invite, join) is in group-actions.js; comparing the
 * server's member list with the verified one, in group-membership.js.
 *
 * @module
 */

import { changePosition, decideGroupChain, decideGroupName } from "../core/index.js";
import { GroupChange, isPlainObject, parseConversationId } from "../protocol/index.js";
import { nameRecordFrom } from "./group-text.js";
import { reasonText } from "./reasons.js";
import * as store from "./store.js";

/** @import { GroupChangeWire, GroupState, PrivateIdentity } from "../protocol/index.js" */
/** @import { NameDecision, NameRecord } from "../core/groups.js" */
/** @import { Pins } from "../core/messages.js" */
/** @import { Reason } from "../core/reasons.js" */
/** @import { Api } from "./api.js" */

/** The group's membership cannot be verified, or sending to it is refused. */
export class GroupProblem extends Error {}

/** The chain does not verify, or does not extend the one verified on this device. */
export class GroupUnverifiable extends GroupProblem {
  /** @param {Reason} reason the core's reason code */
  constructor(reason) {
    super(`This group's membership cannot be verified: ${reasonText(reason)}. Nothing is sent to it.`);
    this.reason = reason;
  }
}

/**
 * @typedef {object} GroupRecord
 * @property {string} id
 * @property {GroupChangeWire[]} chain the verified changes, as the server sent them
 * @property {GroupState | null} state the verified state of `chain`
 * @property {NameRecord | null} name from the newest accepted group_info (14.4)
 * @property {"member" | "removed"} status
 * @property {Reason | null} problem why the offered chain was refused (then nothing is sent)
 * @property {string[] | null} serverMembers the server's member list, as last fetched
 * @property {{extra: string[], missing: string[]} | null} mismatch server list vs verified members
 */

/**
 * What the group book needs of the rest of the app: the user, the server, pins, and
 * two notices. Nothing else of the messenger is reachable from here.
 *
 * @typedef {object} GroupHost
 * @property {PrivateIdentity} me
 * @property {Pick<Api, "groupChanges" | "conversations" | "createGroup" | "addGroupChange" | "createInvite" | "getInvite">} api
 * @property {(names: Iterable<string>) => Promise<Pins>} pins the pins of these users,
 *   pinning on first use
 * @property {(name: string) => Promise<unknown>} checkContact the contact's current keys,
 *   pinned (throws if there is no such user, or a key changed)
 * @property {(record: GroupRecord, changes: readonly GroupChange[]) => void} adopted changes
 *   newly verified, each to be shown once
 * @property {(record: GroupRecord) => void} changed anything else about a group changed
 * @property {(id: string) => void} listStale the group's membership changed: the server's
 *   list is to be fetched and compared again (group-membership.js)
 */

/**
 * Who signed the changes (and invites) of these wire changes: whose pins a chain needs.
 *
 * @param {readonly unknown[]} wires
 * @returns {string[]}
 */
export function signersOf(wires) {
  /** @type {Set<string>} */
  const names = new Set();
  for (const wire of wires) {
    try {
      const change = GroupChange.fromWire(wire);
      names.add(change.actor);
      if (change.invite) names.add(change.invite.inviter);
    } catch {
      // A malformed change: the core refuses the chain.
    }
  }
  return [...names].sort();
}

/**
 * The changes of a server's answer, or null if it has none in the form of a list.
 *
 * @param {unknown} answer
 * @returns {unknown[] | null}
 */
export function offeredChanges(answer) {
  const changes = isPlainObject(answer) ? answer.changes : undefined;
  return Array.isArray(changes) ? changes : null;
}

export class GroupBook {
  /** @param {GroupHost} host */
  constructor(host) {
    this.host = host;
    /** @type {Map<string, GroupRecord>} */
    this.records = new Map();
    /** @type {Map<string, Promise<void>>} */
    this.locks = new Map();
  }

  get me() {
    return this.host.me.username;
  }

  // Records ----------------------------------------------------------------------------
  /**
   * Load this user's groups. Each stored chain was verified when it was stored, with
   * the keys pinned then: it is its own verified prefix, so the core checks its rules
   * and hashes again but no signature (13.7).
   */
  async load() {
    for (const saved of await store.allFor("groups", this.me)) {
      if (!saved || typeof saved.id !== "string" || !Array.isArray(saved.chain)) continue;
      const record = this.record(saved.id);
      Object.assign(record, {
        chain: saved.chain,
        name: nameRecordFrom(saved),
        status: saved.status === "removed" ? "removed" : "member",
      });
      if (record.chain.length === 0) continue;
      const decision = await decideGroupChain(record.chain, record.chain, { groupId: record.id, pins: new Map() });
      if (decision.outcome === "accepted") {
        record.state = decision.state;
      } else {
        record.problem = decision.reason;
      }
      this.host.changed(record);
    }
  }

  /**
   * The record of a group, made empty on first use.
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
        state: null,
        name: null,
        status: "member",
        problem: null,
        serverMembers: null,
        mismatch: null,
      };
      this.records.set(id, record);
      this.host.changed(record);
    }
    return record;
  }

  /** @param {GroupRecord} record */
  async save(record) {
    await store.put("groups", [this.me, record.id], {
      id: record.id,
      chain: record.chain,
      name: record.name,
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

  // Chains -------------------------------------------------------------------------------
  /**
   * The core's verdict on a chain offered for this group (14.3): adopted and stored if
   * accepted, else the group is marked with the reason and GroupUnverifiable thrown.
   * Call inside {@link locked}.
   *
   * @param {GroupRecord} record
   * @param {unknown[] | null} offered the wire changes from seq 0; null: the server's
   *   answer had no list of changes
   * @returns {Promise<GroupRecord>}
   * @throws {GroupUnverifiable}
   */
  async accept(record, offered) {
    const decision =
      offered === null
        ? /** @type {const} */ ({ outcome: "refused", reason: "malformed" })
        : await decideGroupChain(record.chain, offered, {
            groupId: record.id,
            pins: await this.host.pins(signersOf(offered.slice(record.chain.length))),
          });
    if (decision.outcome === "refused") {
      record.problem = decision.reason;
      this.host.changed(record);
      throw new GroupUnverifiable(decision.reason);
    }
    if (decision.new.length === 0 && record.state && !record.problem) return record;
    record.chain = /** @type {GroupChangeWire[]} */ (offered);
    record.state = decision.state;
    record.problem = null;
    record.status = decision.state.members.includes(this.me) ? "member" : "removed";
    if (decision.new.length && record.serverMembers) {
      // The server's list was for the old membership: fetch it again (once out of the lock).
      record.serverMembers = null;
      record.mismatch = null;
      if (record.status === "member") setTimeout(() => this.host.listStale(record.id), 0);
    }
    await this.save(record);
    this.host.adopted(record, decision.new);
    return record;
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
    return this.locked(id, async () => this.accept(record, offeredChanges(await this.host.api.groupChanges(id))));
  }

  /**
   * Take in a chain this device just extended (its own change, or a join it made). The
   * inbox may have brought that change, and more, first: then it is known already.
   *
   * @param {string} id
   * @param {unknown[]} offered
   */
  adoptOwn(id, offered) {
    const record = this.record(id);
    return this.locked(id, async () => {
      const own = offered.at(-1);
      if (own !== undefined && record.state && changePosition(record.chain, own) === "known") return record;
      return this.accept(record, offered);
    });
  }

  /**
   * An inbox entry `{"type": "group", "group_id", "change"}` (14.3): a change already in
   * the verified chain is not shown again; the next one, or the chain fetched for one
   * further ahead, is verified and its new changes shown (through the host) once.
   *
   * @param {Record<string, unknown>} frame the entry as parsed from JSON
   * @returns {Promise<{groupId: string | null, refusal: Reason | null, change: GroupChange | null, known: boolean}>}
   */
  async onFrame(frame) {
    let groupId;
    try {
      groupId = parseConversationId(frame.group_id);
      if (!groupId.startsWith("grp-")) throw new TypeError("not a group id");
    } catch {
      return { groupId: null, refusal: "malformed", change: null, known: false };
    }
    const id = groupId;
    const record = this.record(id);
    return this.locked(id, async () => {
      const position = changePosition(record.chain, frame.change);
      if (typeof position !== "string") return { groupId: id, refusal: position.reason, change: null, known: false };
      const change = GroupChange.fromWire(frame.change);
      if (position === "known") return { groupId: id, refusal: null, change, known: true };
      let offered;
      if (position === "next") {
        offered = [...record.chain, frame.change];
      } else {
        try {
          offered = offeredChanges(await this.host.api.groupChanges(id));
        } catch {
          return { groupId: id, refusal: "chain_invalid", change, known: false };
        }
      }
      try {
        await this.accept(record, offered);
      } catch (error) {
        if (error instanceof GroupUnverifiable) return { groupId: id, refusal: error.reason, change, known: false };
        throw error;
      }
      return { groupId: id, refusal: null, change, known: false };
    });
  }

  /**
   * The verified state a group message is decided against (14.1): the stored one, or
   * with `fresh` the chain brought up to date first (not for a former member, whose chain
   * ends at its removal); null if none verifies.
   *
   * @param {string} id
   * @param {{fresh: boolean}} options
   * @returns {Promise<GroupState | null>}
   */
  async verifiedState(id, { fresh }) {
    const record = this.records.get(id);
    if (fresh && !(record?.status === "removed" && record.state)) {
      try {
        return (await this.refresh(id)).state;
      } catch {
        // Unverifiable or unreachable: what was verified before still stands.
      }
    }
    return this.records.get(id)?.state ?? null;
  }

  // Names ------------------------------------------------------------------------------
  /**
   * The name this device's user, an admin, owes the group: someone joined or was added
   * after the newest name known here was sent (its signed time against the change's), so
   * may not have it (13.5: an admin sends the name when it sees someone join; a device
   * that was not running then, or did not know the name yet, sends it once it does).
   *
   * @param {string} id
   * @returns {string | null}
   */
  nameOwed(id) {
    const record = this.records.get(id);
    const name = record?.name;
    if (!record || !name || record.problem || !record.state?.admins.includes(this.me)) return null;
    const since = record.chain.some((wire) => (wire.action === "join" || wire.action === "add") && wire.at > name.sentAt);
    return since ? name.name : null;
  }

  /**
   * An accepted group_info message (so after the replay check): the core decides whether
   * it renames the group (14.4); "unverified" if the group has no verified state here.
   *
   * @param {string} id
   * @param {{sender: string, name: string, sentAt: number, messageId: string}} message
   * @returns {Promise<NameDecision | "unverified">}
   */
  async noteName(id, message) {
    const record = this.records.get(id);
    if (!record?.state) return "unverified";
    const decision = decideGroupName(record.name, { ...message, group: record.state });
    if (decision.outcome === "accepted") {
      record.name = { name: decision.name, sentAt: decision.sentAt, messageId: decision.messageId };
      await this.save(record);
      this.host.changed(record);
    }
    return decision;
  }
}
