/**
 * Is this envelope a genuine new message, and whose, in which conversation (PROTOCOL.md
 * 14.1, 14.2). As `securechat/client/core/messages.py`, step for step.
 *
 * @module
 */

import {
  Envelope,
  ProtocolError,
  UnsupportedVersion,
  b64encode,
  decodePayload,
  decryptPaddedPayload,
  directConversationId,
  verifySignature,
} from "../protocol/index.js";
import { membershipStart } from "./groups.js";
import { entry, refused } from "./reasons.js";

/** @import { Payload, PrivateIdentity, PublicIdentity } from "../protocol/index.js" */
/** @import { GroupView } from "./groups.js" */
/** @import { Claim, Reason, Refused } from "./reasons.js" */

/**
 * A contact's pinned identity (8.1), and the new one if a key change waits (8.3).
 *
 * @typedef {object} Pin
 * @property {PublicIdentity} identity
 * @property {PublicIdentity | null} [pending]
 */

/** @typedef {ReadonlyMap<string, Pin> | Readonly<Record<string, Pin>>} Pins username → pin */

/**
 * An accepted message (14.2): its signature (base64) and the inbox position it first came
 * at (null: first seen in history, or sent from this device).
 *
 * @typedef {object} SeenRecord
 * @property {string} signature
 * @property {number | null} seq
 */

/**
 * @typedef {object} Accepted
 * @property {"accepted"} outcome
 * @property {string} messageId
 * @property {string} conversationId
 * @property {"direct" | "group"} kind
 * @property {string | null} peer the other member of a direct conversation, derived from
 *   the id (null in a group)
 * @property {string} sender
 * @property {number} sentAt
 * @property {readonly string[]} recipients
 * @property {Payload} payload
 * @property {SeenRecord} seen what to store as seen (14.2)
 */

/**
 * The same envelope, already accepted and shown: nothing new to show.
 *
 * @typedef {object} Duplicate
 * @property {"duplicate"} outcome
 * @property {string} messageId
 * @property {SeenRecord} seen the seen record to store (it may have gained its inbox position)
 */

/** @typedef {Accepted | Duplicate | Refused} MessageDecision */

/**
 * What the caller knows, never the envelope's or the server's word.
 *
 * @typedef {object} MessageContext
 * @property {PrivateIdentity} me
 * @property {string | null} deliveredIn the conversation being read (a history page's),
 *   null for the inbox
 * @property {Pins} pins
 * @property {ReadonlyMap<string, GroupView> | Readonly<Record<string, GroupView>>} groups
 *   group id → its verified state
 * @property {ReadonlyMap<string, SeenRecord> | Readonly<Record<string, SeenRecord>>} seen
 *   message id → its seen record
 * @property {number | null} inboxSeq the inbox position, null for history
 */

/**
 * @param {Envelope} envelope
 * @returns {Claim}
 */
function claimOf(envelope) {
  const header = envelope.header;
  return Object.freeze({
    messageId: header.messageId,
    conversationId: header.conversationId,
    sender: header.sender,
    sentAt: header.sentAt,
  });
}

/**
 * 14.1 step 3: null if the pinned key verifies the signature; else `key_changed` if the
 * pending key does, else `bad_signature`.
 *
 * @param {Envelope} envelope
 * @param {Pin} pin
 * @returns {Promise<Reason | null>}
 */
async function signatureReason(envelope, pin) {
  if (await verifies(envelope, pin.identity)) {
    return null;
  }
  if (pin.pending !== undefined && pin.pending !== null && (await verifies(envelope, pin.pending))) {
    return "key_changed";
  }
  return "bad_signature";
}

/**
 * @param {Envelope} envelope
 * @param {PublicIdentity} identity
 * @returns {Promise<boolean>}
 */
async function verifies(envelope, identity) {
  try {
    await verifySignature(envelope, identity);
    return true;
  } catch (error) {
    if (error instanceof ProtocolError) return false;
    throw error;
  }
}

/**
 * @param {readonly string[]} members
 * @param {ReadonlySet<string>} wanted
 * @returns {boolean}
 */
function sameMembers(members, wanted) {
  const set = new Set(members);
  return set.size === wanted.size && [...set].every((name) => wanted.has(name));
}

/**
 * 14.1 step 5: a refusal (or null), and a direct conversation's derived peer.
 *
 * @param {Envelope} envelope
 * @param {string} me
 * @param {MessageContext["groups"]} groups
 * @returns {Promise<{reason: Reason | null, peer: string | null}>}
 */
async function membersReason(envelope, me, groups) {
  const header = envelope.header;
  const recipients = new Set(envelope.recipients);
  if (header.conversationId.startsWith("grp-")) {
    const group = entry(groups, header.conversationId);
    if (group === undefined || group === null) {
      return { reason: "unknown_group", peer: null };
    }
    const since = membershipStart(group, me);
    if (
      since === null ||
      !group.history
        .slice(since)
        .some((members) => sameMembers(members, recipients) && members.includes(header.sender))
    ) {
      return { reason: "wrong_members", peer: null };
    }
    return { reason: null, peer: null };
  }
  /** @type {string | null} */
  let peer;
  if (header.sender !== me) {
    peer = header.sender;
  } else {
    const others = [...recipients].filter((name) => name !== me).sort();
    peer = others.length === 1 ? others[0] : others.length === 0 ? me : null;
  }
  if (peer === null || (await directConversationId(me, peer)) !== header.conversationId) {
    return { reason: "wrong_conversation", peer: null };
  }
  if (!sameMembers([me, peer], recipients)) {
    return { reason: "wrong_members", peer: null };
  }
  return { reason: null, peer };
}

/**
 * 14.2's table: what a message id's seen record makes of this delivery. Exported for the
 * v2 receive decision (./v2/receive.js), which applies the same table.
 *
 * @param {SeenRecord | undefined} seen
 * @param {string} signature
 * @param {number | null} inboxSeq
 * @returns {{verdict: "new" | "duplicate" | "replayed", record: SeenRecord}}
 */
export function replay(seen, signature, inboxSeq) {
  if (seen === undefined || seen === null) {
    return { verdict: "new", record: Object.freeze({ signature, seq: inboxSeq }) };
  }
  if (seen.signature !== signature) {
    return { verdict: "replayed", record: seen };
  }
  if (inboxSeq === null || seen.seq === inboxSeq) {
    return { verdict: "duplicate", record: seen };
  }
  if (seen.seq === null) {
    return { verdict: "duplicate", record: Object.freeze({ signature, seq: inboxSeq }) };
  }
  return { verdict: "replayed", record: seen };
}

/**
 * PROTOCOL.md 14.1: accepted, duplicate, or refused with its reason. The checks run in
 * the order of 14.1; the first that fails is the refusal.
 *
 * @param {unknown} wire the envelope as parsed JSON
 * @param {MessageContext} context
 * @returns {Promise<MessageDecision>}
 */
export async function decideMessage(wire, { me, deliveredIn, pins, groups, seen, inboxSeq }) {
  // 1. Parse.
  let envelope;
  try {
    envelope = Envelope.fromWire(wire);
  } catch (error) {
    if (error instanceof UnsupportedVersion) return refused("unsupported_version");
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
  const header = envelope.header;
  const claim = claimOf(envelope);
  // 2. The sender's pin.
  const pin = entry(pins, header.sender);
  if (pin === undefined || pin === null) {
    return refused("unknown_sender", claim);
  }
  // 3. Signature, with the pinned key (or the pending one, to say so).
  const signature = await signatureReason(envelope, pin);
  if (signature !== null) {
    return refused(signature, claim);
  }
  // 4. The conversation it was delivered in.
  if (deliveredIn !== null && deliveredIn !== undefined && deliveredIn !== header.conversationId) {
    return refused("wrong_conversation", claim);
  }
  // 5. The conversation's members, from the id and local state only.
  const { reason, peer } = await membersReason(envelope, me.username, groups);
  if (reason !== null) {
    return refused(reason, claim);
  }
  // 6. Replay.
  const { verdict, record } = replay(entry(seen, header.messageId), b64encode(envelope.signature), inboxSeq ?? null);
  if (verdict === "replayed") {
    return refused("replayed", claim);
  }
  if (verdict === "duplicate") {
    return Object.freeze({ outcome: /** @type {const} */ ("duplicate"), messageId: header.messageId, seen: record });
  }
  // 7. A key for me.
  if (!envelope.recipients.includes(me.username)) {
    return refused("not_for_me", claim);
  }
  // 8. Unwrap, decrypt, unpad.
  let padded;
  try {
    padded = await decryptPaddedPayload(envelope, me);
  } catch (error) {
    if (error instanceof ProtocolError) return refused("undecryptable", claim);
    throw error;
  }
  // 9. The payload.
  let payload;
  try {
    payload = decodePayload(padded);
  } catch (error) {
    if (error instanceof ProtocolError) return refused("bad_payload", claim);
    throw error;
  }
  return Object.freeze({
    outcome: /** @type {const} */ ("accepted"),
    messageId: header.messageId,
    conversationId: header.conversationId,
    kind: header.conversationId.startsWith("grp-") ? /** @type {const} */ ("group") : /** @type {const} */ ("direct"),
    peer,
    sender: header.sender,
    sentAt: header.sentAt,
    recipients: Object.freeze(envelope.recipients),
    payload,
    seen: record,
  });
}
