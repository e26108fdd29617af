/**
 * Group membership as a signed hash chain (PROTOCOL.md 13), mirroring
 * `securechat/protocol/groups.py`.
 *
 * Who belongs to a group is not the server's word: it is the result of replaying a chain
 * of membership changes, each signed by the member who made it and each naming the hash
 * of the one before. Every client replays the chain itself and refuses to send to, or
 * accept from, a recipient list that no position of the verified chain allowed. A server
 * that inserts a member, reorders, drops or forges a change is caught here.
 *
 * Pure: identities are looked up through a function the caller supplies (the client's
 * pinned keys), `lookup(name)`, which returns the {@link PublicIdentity} pinned for
 * `name`, or `null`/`undefined` if there is none; it may return a Promise.
 *
 * Differences in form from the Python code, none in outcome:
 *
 * - Hashing is Web Crypto's, so everything that needs a hash is async:
 *   {@link GroupChange#signedBytes} (it contains the invite's hash),
 *   {@link GroupChange#digest}, {@link Invite#digest}, {@link Invite#verify},
 *   {@link GroupState#apply}, {@link genesis}, {@link verifyChain}, {@link extend},
 *   {@link signChange}, {@link makeInvite} and {@link changeSignedBytes}. Parsing
 *   ({@link GroupChange.fromWire}, {@link Invite.fromWire}) and
 *   {@link inviteSignedBytes} are synchronous.
 * - A {@link GroupState} is immutable: its member and admin sets, and each set of its
 *   history, are frozen arrays of usernames sorted in ascending (byte) order, so they
 *   compare with `assert.deepEqual` and print as the vectors write them; `head` and
 *   `inviteUses` are copies. `apply` returns a new state.
 * - {@link signChange} and {@link makeInvite} refuse (MalformedInput) to make what
 *   {@link GroupChange.fromWire} / {@link Invite.fromWire} would refuse to parse (a bad
 *   action, time, group id, too many targets); Python leaves that to the receiver. They
 *   do not check the rules of 13.3: the receivers do, with {@link GroupState#apply}.
 * - {@link GroupState#membersAt} and {@link GroupState#acceptsRecipients} take
 *   non-negative integer positions only (RangeError otherwise), where Python would index
 *   from the end for a negative one and take the whole history for `since=None`.
 *
 * Errors are those of PROTOCOL.md 1.1: parsing gives MalformedInput or
 * UnsupportedVersion; every failed rule, signature or lookup while replaying gives the
 * same opaque VerificationFailed.
 *
 * @module
 */

import {
  b64decode,
  b64encode,
  bytesEqual,
  canonical,
  fromHex,
  hasExactKeys,
  isPlainObject,
  toHex,
  u64,
} from "./encoding.js";
import { MalformedInput, UnsupportedVersion, VerificationFailed } from "./errors.js";
import {
  newGroupConversationId,
  newMessageId,
  parseConversationId,
  parseMessageId,
  parseNormalisedUsername,
} from "./identifiers.js";
import { PrivateIdentity, PublicIdentity } from "./keys.js";
import { GROUP_CHANGE, GROUP_CHANGE_HASH, GROUP_INVITE, GROUP_INVITE_HASH } from "./labels.js";
import { ED25519_SIGNATURE_BYTES, ed25519Sign, ed25519Verify, loadEd25519PublicKey, sha256 } from "./primitives.js";

/** @import { ConversationId, MessageId, Username } from "./identifiers.js" */
/**
 * @typedef {(name: Username) => PublicIdentity | null | undefined | Promise<PublicIdentity | null | undefined>} IdentityLookup
 *   the identity pinned for a username, or nothing if there is none
 */

export const GROUP_VERSION = 1;
export const MAX_GROUP_MEMBERS = 256;
export const MAX_INVITE_USES = 1000;
/** Exclusive bound of `at` and `expires_at` (milliseconds). */
const MAX_TIME = 2 ** 53;
/** Exclusive bound of `seq`. */
const MAX_SEQ = 2 ** 32;
export const GROUP_ACTIONS = Object.freeze(["create", "add", "remove", "leave", "promote", "join"]);
export const GROUP_CHANGE_FIELDS = Object.freeze([
  "v",
  "group_id",
  "seq",
  "prev",
  "actor",
  "action",
  "members",
  "invite",
  "at",
  "signature",
]);
export const GROUP_INVITE_FIELDS = Object.freeze([
  "v",
  "group_id",
  "invite_id",
  "inviter",
  "expires_at",
  "max_uses",
  "signature",
]);
const HEX64 = /^[0-9a-f]{64}$/;
const EMPTY = new Uint8Array(0);

/**
 * @typedef {object} InviteWire
 * @property {number} v
 * @property {string} group_id
 * @property {string} invite_id
 * @property {string} inviter
 * @property {number} expires_at
 * @property {number} max_uses
 * @property {string} signature base64, 64 bytes
 */

/**
 * An admin's signed permission for anyone holding its id to join, until a time, a
 * number of times (PROTOCOL.md 13.4). Made by {@link makeInvite} or {@link Invite.fromWire}.
 */
export class Invite {
  /**
   * @param {{groupId: ConversationId, inviteId: MessageId, inviter: Username, expiresAt: number, maxUses: number, signature: Uint8Array}} fields
   */
  constructor({ groupId, inviteId, inviter, expiresAt, maxUses, signature }) {
    /** @readonly */
    this.groupId = groupId;
    /** @readonly the invite code people pass on */
    this.inviteId = inviteId;
    /** @readonly */
    this.inviter = inviter;
    /** @readonly milliseconds, the inviter's clock */
    this.expiresAt = expiresAt;
    /** @readonly */
    this.maxUses = maxUses;
    /** @readonly 64 bytes */
    this.signature = signature;
    Object.freeze(this);
  }

  /**
   * The bytes the inviter signed (PROTOCOL.md 13.4).
   *
   * @returns {Uint8Array}
   */
  signedBytes() {
    return inviteSignedBytes(this.groupId, this.inviteId, this.inviter, this.expiresAt, this.maxUses);
  }

  /**
   * What a join change signs: SHA-256 of the signed bytes and the signature.
   *
   * @returns {Promise<Uint8Array>} 32 bytes
   */
  async digest() {
    return sha256(canonical(GROUP_INVITE_HASH, [this.signedBytes(), this.signature]));
  }

  /** @returns {InviteWire} */
  toWire() {
    return {
      v: GROUP_VERSION,
      group_id: this.groupId,
      invite_id: this.inviteId,
      inviter: this.inviter,
      expires_at: this.expiresAt,
      max_uses: this.maxUses,
      signature: b64encode(this.signature),
    };
  }

  /**
   * Parse strictly: exactly the members of 13.4, in Python's order of checks.
   *
   * @param {unknown} data the parsed JSON
   * @returns {Invite}
   * @throws {MalformedInput | UnsupportedVersion}
   */
  static fromWire(data) {
    if (!isPlainObject(data) || !hasExactKeys(data, GROUP_INVITE_FIELDS)) {
      throw new MalformedInput(`an invite has exactly the members ${[...GROUP_INVITE_FIELDS].sort().join(", ")}`);
    }
    checkVersion(data);
    const groupId = parseGroupId(ownValue(data, "group_id"));
    const inviteId = parseMessageId(ownValue(data, "invite_id"));
    const inviter = parseNormalisedUsername(ownValue(data, "inviter"), "inviter");
    const expiresAt = integerMember(data, "expires_at", 0, MAX_TIME);
    const maxUses = integerMember(data, "max_uses", 1, MAX_INVITE_USES + 1);
    const signature = parseSignature(ownValue(data, "signature"));
    return new Invite({ groupId, inviteId, inviter, expiresAt, maxUses, signature });
  }

  /**
   * Check the signature with the inviter's pinned identity.
   *
   * @param {PublicIdentity | null | undefined} inviterIdentity
   * @returns {Promise<void>}
   * @throws {VerificationFailed}
   */
  async verify(inviterIdentity) {
    await verifySignature(inviterIdentity, this.inviter, this.signature, this.signedBytes());
  }
}

/**
 * `canonical(GROUP_INVITE, u64(1), group_id, invite_id, inviter, u64(expires_at), u64(max_uses))`.
 *
 * @param {ConversationId} groupId
 * @param {MessageId} inviteId
 * @param {Username} inviter
 * @param {number} expiresAt
 * @param {number} maxUses
 * @returns {Uint8Array}
 * @throws {MalformedInput} for an integer out of range
 */
export function inviteSignedBytes(groupId, inviteId, inviter, expiresAt, maxUses) {
  return canonical(GROUP_INVITE, [u64(GROUP_VERSION), groupId, inviteId, inviter, u64(expiresAt), u64(maxUses)]);
}

/**
 * Sign an invite to a group as `admin` (PROTOCOL.md 13.4). Whether `admin` is an admin
 * is for the members' clients (and the server) to check.
 *
 * @param {PrivateIdentity} admin
 * @param {ConversationId} groupId
 * @param {{expiresAt: number, maxUses: number, inviteId?: MessageId}} options inviteId:
 *   injectable for test vectors; fresh by default
 * @returns {Promise<Invite>}
 * @throws {MalformedInput} for a group id, time, use count or invite id that
 *   {@link Invite.fromWire} would refuse
 */
export async function makeInvite(admin, groupId, { expiresAt, maxUses, inviteId } = /** @type {any} */ ({})) {
  if (!(admin instanceof PrivateIdentity)) {
    throw new TypeError("makeInvite expects the admin's PrivateIdentity");
  }
  const id = inviteId === undefined || inviteId === null ? newMessageId() : parseMessageId(inviteId);
  if (typeof maxUses !== "number" || !Number.isInteger(maxUses) || maxUses < 1 || maxUses > MAX_INVITE_USES) {
    throw new MalformedInput("max_uses out of range");
  }
  // Stricter than Python, which signs any group id and time: an invite nobody can parse
  // is of no use.
  const group = parseGroupId(groupId);
  checkTime(expiresAt, "expires_at");
  const signed = inviteSignedBytes(group, id, admin.username, expiresAt, maxUses);
  const signature = await ed25519Sign(admin.signingPrivate, signed);
  return new Invite({ groupId: group, inviteId: id, inviter: admin.username, expiresAt, maxUses, signature });
}

/**
 * @typedef {object} GroupChangeWire
 * @property {number} v
 * @property {string} group_id
 * @property {number} seq
 * @property {string} prev 64 lower-case hex digits, or "" for seq 0
 * @property {string} actor
 * @property {string} action
 * @property {string[]} members the targets, ascending
 * @property {InviteWire | null} invite
 * @property {number} at
 * @property {string} signature base64, 64 bytes
 */

/** One signed change of a group's membership (PROTOCOL.md 13.1). */
export class GroupChange {
  /**
   * @param {{groupId: ConversationId, seq: number, prev: Uint8Array, actor: Username, action: string,
   *   members: readonly Username[], invite: Invite | null, at: number, signature: Uint8Array}} fields
   *   prev: the previous change's hash, empty for the first change; members: the
   *   change's targets, ascending
   */
  constructor({ groupId, seq, prev, actor, action, members, invite, at, signature }) {
    /** @readonly */
    this.groupId = groupId;
    /** @readonly */
    this.seq = seq;
    /** @readonly 32 bytes, or empty for seq 0 */
    this.prev = prev;
    /** @readonly who made and signed the change */
    this.actor = actor;
    /** @readonly one of {@link GROUP_ACTIONS} */
    this.action = action;
    /** @readonly the change's targets, ascending */
    this.members = Object.freeze([...members]);
    /** @readonly */
    this.invite = invite;
    /** @readonly milliseconds, the actor's clock */
    this.at = at;
    /** @readonly 64 bytes */
    this.signature = signature;
    Object.freeze(this);
  }

  /**
   * The bytes the actor signed (PROTOCOL.md 13.2); async because they contain the
   * invite's hash.
   *
   * @returns {Promise<Uint8Array>}
   */
  signedBytes() {
    return changeSignedBytes(this.groupId, this.seq, this.prev, this.actor, this.action, this.members, this.invite, this.at);
  }

  /**
   * The hash the next change names as `prev`: SHA-256 of the signed bytes and the signature.
   *
   * @returns {Promise<Uint8Array>} 32 bytes
   */
  async digest() {
    return sha256(canonical(GROUP_CHANGE_HASH, [await this.signedBytes(), this.signature]));
  }

  /** @returns {GroupChangeWire} */
  toWire() {
    return {
      v: GROUP_VERSION,
      group_id: this.groupId,
      seq: this.seq,
      prev: toHex(this.prev),
      actor: this.actor,
      action: this.action,
      members: [...this.members],
      invite: this.invite === null ? null : this.invite.toWire(),
      at: this.at,
      signature: b64encode(this.signature),
    };
  }

  /**
   * Parse strictly (shape only, PROTOCOL.md 13.1, in Python's order of checks);
   * {@link GroupState#apply} checks the rules.
   *
   * @param {unknown} data the parsed JSON
   * @returns {GroupChange}
   * @throws {MalformedInput | UnsupportedVersion}
   */
  static fromWire(data) {
    if (!isPlainObject(data) || !hasExactKeys(data, GROUP_CHANGE_FIELDS)) {
      throw new MalformedInput(`a group change has exactly the members ${[...GROUP_CHANGE_FIELDS].sort().join(", ")}`);
    }
    checkVersion(data);
    const groupId = parseGroupId(ownValue(data, "group_id"));
    const seq = integerMember(data, "seq", 0, MAX_SEQ);
    const prevText = ownValue(data, "prev");
    if (typeof prevText !== "string" || !(prevText === "" || HEX64.test(prevText))) {
      throw new MalformedInput("prev must be empty or 64 lower-case hex digits");
    }
    const actor = parseNormalisedUsername(ownValue(data, "actor"), "actor");
    const action = ownValue(data, "action");
    if (typeof action !== "string" || !GROUP_ACTIONS.includes(action)) {
      throw new MalformedInput(`action must be one of ${GROUP_ACTIONS.join(", ")}`);
    }
    const rawMembers = ownValue(data, "members");
    if (!Array.isArray(rawMembers) || rawMembers.length > MAX_GROUP_MEMBERS) {
      throw new MalformedInput(`members must be a list of at most ${MAX_GROUP_MEMBERS} usernames`);
    }
    const members = rawMembers.map((member) => parseNormalisedUsername(member, "members"));
    for (let index = 1; index < members.length; index += 1) {
      if (!(members[index - 1] < members[index])) {
        throw new MalformedInput("members must be sorted and distinct");
      }
    }
    const rawInvite = ownValue(data, "invite");
    const invite = rawInvite === null ? null : Invite.fromWire(rawInvite);
    const at = integerMember(data, "at", 0, MAX_TIME);
    const signature = parseSignature(ownValue(data, "signature"));
    return new GroupChange({ groupId, seq, prev: fromHex(prevText), actor, action, members, invite, at, signature });
  }
}

/**
 * `canonical(GROUP_CHANGE, u64(1), group_id, u64(seq), prev, actor, action, u64(n),
 * member_1, …, member_n, invite_hash or "", u64(at))` (PROTOCOL.md 13.2).
 *
 * @param {ConversationId} groupId
 * @param {number} seq
 * @param {Uint8Array} prev
 * @param {Username} actor
 * @param {string} action
 * @param {readonly Username[]} members the targets, in the order they are signed (ascending)
 * @param {Invite | null} invite
 * @param {number} at
 * @returns {Promise<Uint8Array>}
 * @throws {MalformedInput} for an integer out of range
 */
export async function changeSignedBytes(groupId, seq, prev, actor, action, members, invite, at) {
  return canonical(GROUP_CHANGE, [
    u64(GROUP_VERSION),
    groupId,
    u64(seq),
    prev,
    actor,
    action,
    u64(members.length),
    ...members,
    invite ? await invite.digest() : EMPTY,
    u64(at),
  ]);
}

/**
 * Make the next change of `state` (`null`: a new group), signed by `actor`.
 *
 * @param {PrivateIdentity} actor
 * @param {GroupState | null} state the verified state the change extends
 * @param {string} action one of {@link GROUP_ACTIONS}
 * @param {Iterable<Username>} [members] the targets (normalised; sorted and de-duplicated here)
 * @param {{groupId?: ConversationId, invite?: Invite | null, at: number}} [options]
 *   groupId: only for a new group (fresh by default; with a state it must be the
 *   state's, if given); invite: for a join; at: the actor's clock in milliseconds
 * @returns {Promise<GroupChange>}
 * @throws {MalformedInput} for an argument that would make a change
 *   {@link GroupChange.fromWire} refuses
 */
export async function signChange(actor, state, action, members = [], options = /** @type {any} */ ({})) {
  const { groupId, invite = null, at } = options;
  if (!(actor instanceof PrivateIdentity)) {
    throw new TypeError("signChange expects the actor's PrivateIdentity");
  }
  if (state !== null && !(state instanceof GroupState)) {
    throw new TypeError("signChange expects a GroupState or null");
  }
  if (invite !== null && invite !== undefined && !(invite instanceof Invite)) {
    throw new TypeError("invite must be an Invite or null");
  }
  let group;
  let seq;
  let prev;
  if (state === null) {
    group = groupId === undefined || groupId === null ? newGroupConversationId() : parseGroupId(groupId);
    seq = 0;
    prev = EMPTY;
  } else {
    if (groupId !== undefined && groupId !== null && groupId !== state.groupId) {
      throw new MalformedInput("the change is for the state's group");
    }
    group = state.groupId;
    seq = state.seq + 1;
    prev = state.head;
  }
  // Stricter than Python (which signs anything): what the receivers could not parse.
  if (typeof action !== "string" || !GROUP_ACTIONS.includes(action)) {
    throw new MalformedInput(`action must be one of ${GROUP_ACTIONS.join(", ")}`);
  }
  if (seq >= MAX_SEQ) {
    throw new MalformedInput("the chain is full");
  }
  checkTime(at, "at");
  const targets = [...new Set([...members].map((member) => parseNormalisedUsername(member, "members")))].sort();
  if (targets.length > MAX_GROUP_MEMBERS) {
    throw new MalformedInput(`a change has at most ${MAX_GROUP_MEMBERS} targets`);
  }
  const inviteOrNull = invite ?? null;
  const signed = await changeSignedBytes(group, seq, prev, actor.username, action, targets, inviteOrNull, at);
  const signature = await ed25519Sign(actor.signingPrivate, signed);
  return new GroupChange({
    groupId: group,
    seq,
    prev,
    actor: actor.username,
    action,
    members: targets,
    invite: inviteOrNull,
    at,
    signature,
  });
}

/**
 * The verified result of a chain (PROTOCOL.md 13.3): who is in, who may change it, and
 * its history. Immutable; made by {@link genesis}, {@link verifyChain},
 * {@link GroupState#apply} and {@link extend}, which are what verify it.
 */
export class GroupState {
  /** @type {Uint8Array} */
  #head;
  /** @type {Map<MessageId, number>} */
  #inviteUses;

  /**
   * @param {{groupId: ConversationId, seq: number, head: Uint8Array, at: number,
   *   members: Iterable<Username>, admins: Iterable<Username>,
   *   inviteUses?: Map<MessageId, number>, history: Iterable<Iterable<Username>>}} fields
   *   head: the hash of change `seq`; inviteUses: joins so far by invite id;
   *   history: the member set after each change, by seq
   */
  constructor({ groupId, seq, head, at, members, admins, inviteUses = new Map(), history }) {
    /** @readonly */
    this.groupId = groupId;
    /** @readonly the head's seq */
    this.seq = seq;
    this.#head = Uint8Array.from(head);
    /** @readonly the head's `at` */
    this.at = at;
    /** @readonly @type {readonly Username[]} ascending */
    this.members = sortedNames(members);
    /** @readonly @type {readonly Username[]} ascending */
    this.admins = sortedNames(admins);
    this.#inviteUses = new Map(inviteUses);
    /**
     * The member set after each change, by seq: what a message's recipients may equal.
     *
     * @readonly
     * @type {readonly (readonly Username[])[]}
     */
    this.history = Object.freeze([...history].map((members) => sortedNames(members)));
    Object.freeze(this);
  }

  /** @returns {Uint8Array} the head change's hash (a copy), 32 bytes */
  get head() {
    return this.#head.slice();
  }

  /** @returns {Map<MessageId, number>} joins so far by invite id (a copy) */
  get inviteUses() {
    return new Map(this.#inviteUses);
  }

  /**
   * The member set after change `seq`.
   *
   * @param {number} seq 0 <= seq <= this.seq
   * @returns {readonly Username[]} ascending
   * @throws {RangeError}
   */
  membersAt(seq) {
    return this.history[position(seq, this.history.length, "seq")];
  }

  /**
   * True if some verified position at or after `since` had exactly these members, the
   * sender among them (PROTOCOL.md 13.5; `since` is the receiver's {@link GroupState#joinedAt}).
   *
   * @param {Iterable<Username>} recipients an envelope's recipients
   * @param {Username} sender
   * @param {{since?: number}} [options] a position past the head gives false
   * @returns {boolean}
   * @throws {RangeError} for a `since` that is not a non-negative integer (null included)
   */
  acceptsRecipients(recipients, sender, { since = 0 } = {}) {
    if (typeof since !== "number" || !Number.isInteger(since) || since < 0) {
      throw new RangeError("since must be a non-negative integer");
    }
    const wanted = new Set(recipients);
    return this.history
      .slice(since)
      .some(
        (members) =>
          members.length === wanted.size && members.every((name) => wanted.has(name)) && members.includes(sender),
      );
  }

  /**
   * The seq from which `name` has been a member without a break.
   *
   * @param {Username} name
   * @returns {number | null} null: not a member now
   */
  joinedAt(name) {
    if (!this.members.includes(name)) {
      return null;
    }
    let index = this.history.length - 1;
    while (index > 0 && this.history[index - 1].includes(name)) {
      index -= 1;
    }
    return index;
  }

  /**
   * The state after `change`, checked by PROTOCOL.md 13.3 rules 2 to 5.
   *
   * `checkSignature: false` is for a change this client verified before, with the keys
   * pinned then (13.7): its rules and hashes are still checked, its signatures (the
   * change's and a join's invite's) are not. As Python's `apply(check_signature=...)`.
   *
   * @param {GroupChange} change
   * @param {IdentityLookup} lookup
   * @param {{checkSignature?: boolean}} [options]
   * @returns {Promise<GroupState>}
   * @throws {VerificationFailed} if the change breaks a rule or a signature fails
   * @throws {TypeError} for arguments of the wrong type (a programming error)
   */
  async apply(change, lookup, { checkSignature = true } = {}) {
    if (!(change instanceof GroupChange) || typeof lookup !== "function") {
      throw new TypeError("apply expects a GroupChange and an identity lookup function");
    }
    if (change.groupId !== this.groupId || change.seq !== this.seq + 1 || !bytesEqual(change.prev, this.#head)) {
      throw new VerificationFailed(); // the change does not extend the chain
    }
    if (change.at < this.at) {
      throw new VerificationFailed(); // dated before the previous change
    }
    if (checkSignature) {
      await checkChangeSignature(change, lookup);
    }
    const members = new Set(this.members);
    const admins = new Set(this.admins);
    const uses = new Map(this.#inviteUses);
    const targets = change.members;
    const actor = change.actor;
    if (change.action !== "join" && change.invite !== null) {
      throw new VerificationFailed(); // only a join carries an invite
    }
    switch (change.action) {
      case "add":
        // Only an admin adds, and only non-members.
        ensure(admins.has(actor) && targets.length > 0 && !targets.some((name) => members.has(name)));
        for (const name of targets) members.add(name);
        break;
      case "remove":
        // Only an admin removes, only members, and not itself.
        ensure(
          admins.has(actor) &&
            targets.length > 0 &&
            targets.every((name) => members.has(name)) &&
            !targets.includes(actor),
        );
        for (const name of targets) {
          members.delete(name);
          admins.delete(name);
        }
        break;
      case "promote":
        // Only an admin promotes, and only members who are not admins.
        ensure(admins.has(actor) && targets.length > 0 && targets.every((name) => members.has(name) && !admins.has(name)));
        for (const name of targets) admins.add(name);
        break;
      case "leave":
        // Only a member leaves, and only itself.
        ensure(members.has(actor) && targets.length === 0);
        members.delete(actor);
        admins.delete(actor);
        break;
      case "join": {
        const invite = change.invite;
        ensure(invite !== null && !members.has(actor) && targets.length === 0);
        const used = uses.get(invite.inviteId) ?? 0;
        // An admin's invite to this group, not expired, not used up, signed by its inviter.
        ensure(invite.groupId === this.groupId && admins.has(invite.inviter));
        ensure(change.at <= invite.expiresAt);
        ensure(used < invite.maxUses);
        if (checkSignature) {
          await invite.verify(await lookup(invite.inviter));
        }
        uses.set(invite.inviteId, used + 1);
        members.add(actor);
        break;
      }
      default:
        // "create" is only valid as the first change.
        throw new VerificationFailed();
    }
    ensure(members.size <= MAX_GROUP_MEMBERS);
    const after = sortedNames(members);
    return new GroupState({
      groupId: this.groupId,
      seq: change.seq,
      head: await change.digest(),
      at: change.at,
      members: after,
      admins,
      inviteUses: uses,
      history: [...this.history, after],
    });
  }
}

/**
 * The state a `create` change makes (PROTOCOL.md 13.3 rule 1).
 *
 * @param {GroupChange} change
 * @param {IdentityLookup} lookup
 * @param {{checkSignature?: boolean}} [options] as for {@link GroupState#apply}
 * @returns {Promise<GroupState>}
 * @throws {VerificationFailed}
 */
export async function genesis(change, lookup, { checkSignature = true } = {}) {
  if (!(change instanceof GroupChange) || typeof lookup !== "function") {
    throw new TypeError("genesis expects a GroupChange and an identity lookup function");
  }
  // A chain starts with a create: seq 0, no prev, no invite, the actor not among at most 255 targets.
  ensure(change.seq === 0 && change.prev.length === 0 && change.action === "create");
  ensure(change.invite === null && !change.members.includes(change.actor));
  ensure(change.members.length < MAX_GROUP_MEMBERS);
  if (checkSignature) {
    await checkChangeSignature(change, lookup);
  }
  const members = sortedNames([change.actor, ...change.members]);
  return new GroupState({
    groupId: change.groupId,
    seq: 0,
    head: await change.digest(),
    at: change.at,
    members,
    admins: [change.actor],
    history: [members],
  });
}

/**
 * Replay a whole chain from its first change (PROTOCOL.md 13.3); any fault is
 * VerificationFailed.
 *
 * The signatures of the first `verifiedPrefix` changes are not checked again: a client
 * verifies each change once, with the keys pinned when it first saw it, so a member's
 * later key change does not void what it signed before (13.7). Their rules and hashes
 * are. As Python's `verify_chain(verified_prefix=...)`.
 *
 * @param {readonly GroupChange[]} changes
 * @param {IdentityLookup} lookup
 * @param {{groupId?: ConversationId | null, verifiedPrefix?: number}} [options] groupId:
 *   the group the chain must be for; verifiedPrefix: how many leading changes this client
 *   verified before (default 0: all are checked)
 * @returns {Promise<GroupState>}
 * @throws {VerificationFailed}
 * @throws {RangeError} for a verifiedPrefix that is not a non-negative integer
 */
export async function verifyChain(changes, lookup, { groupId, verifiedPrefix = 0 } = {}) {
  if (!Number.isSafeInteger(verifiedPrefix) || verifiedPrefix < 0) {
    throw new RangeError("verifiedPrefix must be a non-negative integer");
  }
  if (changes.length === 0) {
    throw new VerificationFailed(); // an empty chain
  }
  let state = await genesis(changes[0], lookup, { checkSignature: verifiedPrefix < 1 });
  if (groupId !== undefined && groupId !== null && state.groupId !== groupId) {
    throw new VerificationFailed(); // the chain is for another group
  }
  for (const [index, change] of changes.slice(1).entries()) {
    state = await state.apply(change, lookup, { checkSignature: index + 1 >= verifiedPrefix });
  }
  return state;
}

/**
 * Apply further changes to a verified state (the chain must continue from it).
 *
 * @param {GroupState} state
 * @param {readonly GroupChange[]} changes
 * @param {IdentityLookup} lookup
 * @returns {Promise<GroupState>}
 * @throws {VerificationFailed}
 */
export async function extend(state, changes, lookup) {
  if (!(state instanceof GroupState)) {
    throw new TypeError("extend expects a GroupState");
  }
  let current = state;
  for (const change of changes) {
    current = await current.apply(change, lookup);
  }
  return current;
}

/**
 * @param {GroupChange} change
 * @param {IdentityLookup} lookup
 * @returns {Promise<void>}
 * @throws {VerificationFailed}
 */
async function checkChangeSignature(change, lookup) {
  await verifySignature(await lookup(change.actor), change.actor, change.signature, await change.signedBytes());
}

/**
 * Throw unless `identity` is `signer`'s and its signing key verifies `signature`.
 *
 * @param {unknown} identity what the lookup returned
 * @param {Username} signer
 * @param {Uint8Array} signature
 * @param {Uint8Array} message
 * @returns {Promise<void>}
 * @throws {VerificationFailed}
 */
async function verifySignature(identity, signer, signature, message) {
  // No pinned identity (null, undefined or anything else) is a failed check, as in openMessage.
  if (!(identity instanceof PublicIdentity) || identity.username !== signer) {
    throw new VerificationFailed();
  }
  let key;
  try {
    key = await loadEd25519PublicKey(identity.signingKey);
  } catch (error) {
    if (error instanceof MalformedInput) throw new VerificationFailed();
    throw error;
  }
  await ed25519Verify(key, signature, message);
}

/**
 * @param {unknown} condition
 * @returns {asserts condition}
 * @throws {VerificationFailed}
 */
function ensure(condition) {
  if (!condition) {
    throw new VerificationFailed();
  }
}

/**
 * `v`: an integer (else malformed), and 1 (else unsupported_version). JSON.parse cannot
 * tell 1 from 1.0 (PROTOCOL.md Appendix A.4); Number.isInteger (not isSafeInteger) keeps
 * Python's outcome for huge integers: another version.
 *
 * @param {Record<string, unknown>} data
 */
function checkVersion(data) {
  const value = ownValue(data, "v");
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new MalformedInput("v must be an integer");
  }
  if (value !== GROUP_VERSION) {
    throw new UnsupportedVersion(`group version ${value} is not supported`);
  }
}

/**
 * An integer member in [low, high) (high <= 2^53), not a boolean; -0 is read as 0.
 *
 * @param {Record<string, unknown>} data
 * @param {string} name
 * @param {number} low
 * @param {number} high
 * @returns {number}
 * @throws {MalformedInput}
 */
function integerMember(data, name, low, high) {
  const value = ownValue(data, name);
  if (typeof value !== "number" || !Number.isInteger(value) || value < low || value >= high) {
    throw new MalformedInput(`${name} must be an integer in [${low}, ${high})`);
  }
  return value + 0;
}

/**
 * @param {unknown} value
 * @param {string} name
 * @throws {MalformedInput}
 */
function checkTime(value, name) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= MAX_TIME) {
    throw new MalformedInput(`${name} must be an integer in [0, 2^53)`);
  }
}

/**
 * @param {unknown} value
 * @returns {ConversationId}
 * @throws {MalformedInput}
 */
function parseGroupId(value) {
  const groupId = parseConversationId(value);
  if (!groupId.startsWith("grp-")) {
    throw new MalformedInput("group_id must be a group conversation id");
  }
  return groupId;
}

/**
 * @param {unknown} value
 * @returns {Uint8Array} 64 bytes
 * @throws {MalformedInput}
 */
function parseSignature(value) {
  if (typeof value !== "string") {
    throw new MalformedInput("signature must be a string");
  }
  const signature = b64decode(value, { maxBytes: ED25519_SIGNATURE_BYTES });
  if (signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new MalformedInput("signature must be 64 bytes");
  }
  return signature;
}

/**
 * @param {number} value
 * @param {number} length
 * @param {string} name
 * @returns {number}
 * @throws {RangeError}
 */
function position(value, length, name) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= length) {
    throw new RangeError(`${name} must be an integer in [0, ${length})`);
  }
  return value;
}

/** The arrays {@link sortedNames} made: already frozen and sorted, so shared, not copied. */
const SORTED = new WeakSet();

/**
 * A frozen, ascending (UTF-16 code unit, i.e. byte order for usernames) array of distinct
 * names. An array this function made is returned as it is, so a state's history shares
 * the sets of the state before it instead of sorting them all again on every change.
 *
 * @param {Iterable<Username>} names
 * @returns {readonly Username[]}
 */
function sortedNames(names) {
  if (SORTED.has(/** @type {object} */ (names))) {
    return /** @type {readonly Username[]} */ (names);
  }
  const sorted = Object.freeze([...new Set(names)].sort());
  SORTED.add(sorted);
  return sorted;
}

/**
 * @param {Record<string, unknown>} object
 * @param {string} name
 * @returns {unknown}
 */
function ownValue(object, name) {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}
