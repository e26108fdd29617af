/**
 * Is this v2 envelope a genuine new direct message for this device (PROTOCOL.md 15.8), as
 * `securechat/client/core/v2/receive.py`, step for step.
 *
 * 15.8's receiving order as one decision: parse, the sender device in the sender's
 * accepted list, its signature, the conversation and members, the targets, replay (14.2),
 * the session or setup (15.5, 15.9.1), the ratchet, the binding and body, the payload.
 * Nothing is changed in place: an acceptance returns the new session set and seen record
 * to store together; a refusal returns no state at all.
 *
 * @module
 */

import { b64encode } from "../../protocol/encoding.js";
import { decodePayload } from "../../protocol/envelope.js";
import { directConversationId } from "../../protocol/identifiers.js";
import {
  EnvelopeV2,
  Party,
  ProtocolError,
  Refusal,
  UnsupportedVersion,
  acceptSession,
  openBody,
  openKeySlot,
  setupSessionId,
  targetKey,
  verifyEnvelope,
} from "../../protocol/v2/index.js";
import { replay } from "../messages.js";
import { entry, refused } from "../reasons.js";
import { EMPTY, openMessage } from "./sessions.js";

/** @import { Payload } from "../../protocol/index.js" */
/** @import { Device, DeviceList, HeaderV2, RatchetMessage } from "../../protocol/v2/index.js" */
/** @import { Duplicate, SeenRecord } from "../messages.js" */
/** @import { Claim, Reason } from "../reasons.js" */
/** @import { Notice, SessionSet } from "./sessions.js" */

/**
 * Refusals after which this device's next send to the sender device starts a new session
 * (15.9): the session is missing or out of step. Nothing else triggers a repair.
 *
 * @type {ReadonlySet<Reason>}
 */
export const REPAIR_REASONS = Object.freeze(new Set(/** @type {Reason[]} */ (["session_unknown", "ratchet_failed"])));

/**
 * This device: its account, listed entry, DH key and the prekeys it still holds.
 *
 * @typedef {object} MeV2
 * @property {string} username
 * @property {Uint8Array} accountKey
 * @property {Device} device
 * @property {Uint8Array} dhPrivate
 * @property {ReadonlyMap<number, Uint8Array>} signedPrekeys prekey id → private half,
 *   including those still in their 30-day grace
 * @property {ReadonlyMap<number, Uint8Array>} oneTimePrekeys
 */

/**
 * @typedef {object} AcceptedV2
 * @property {"accepted"} outcome
 * @property {string} messageId
 * @property {string} conversationId
 * @property {string} peer the other member of the direct conversation, derived from the id, never the server
 * @property {string} sender
 * @property {string} senderDevice
 * @property {number} sentAt
 * @property {Payload} payload
 * @property {SeenRecord} seen store together, atomically, with `sessions`
 * @property {SessionSet} sessions the sender device's session set
 * @property {number | null} oneTimePrekeyUsed the one-time prekey whose private half the caller deletes now
 * @property {readonly Notice[]} notices
 */

/**
 * A refused v2 message: shown as unverifiable under what it claims, never dropped.
 * `repairNeeded`: the next send to the sender device starts a new session (15.9).
 *
 * @typedef {object} RefusedV2
 * @property {"refused"} outcome
 * @property {Reason} reason
 * @property {Claim | null} claim
 * @property {boolean} repairNeeded
 */

/** @typedef {AcceptedV2 | Duplicate | RefusedV2} ReceiveDecision */

/**
 * What the caller knows, never the envelope's or the server's word.
 *
 * @typedef {object} ReceiveContext
 * @property {MeV2} me
 * @property {string | null} deliveredIn the conversation being read, null for the inbox
 * @property {ReadonlyMap<string, DeviceList> | Readonly<Record<string, DeviceList>>} deviceLists
 *   the accepted list per username
 * @property {ReadonlyMap<string, SeenRecord> | Readonly<Record<string, SeenRecord>>} seen
 *   message id → its seen record
 * @property {number | null} inboxSeq the inbox position, null for history
 * @property {ReadonlyMap<string, SessionSet>} sessions the session sets by `targetKey(username, device id)`
 * @property {number} now
 */

/**
 * @param {Reason} reason
 * @param {Claim | null} [claim]
 * @returns {RefusedV2}
 */
function refusedV2(reason, claim = null) {
  return Object.freeze({ ...refused(reason, claim), repairNeeded: REPAIR_REASONS.has(reason) });
}

/**
 * 15.8's conversation and members: a direct id of `me` and the derived peer, whose
 * accounts are exactly the targets' (14.1 step 5).
 *
 * @param {HeaderV2} header
 * @param {string} me
 * @returns {Promise<{reason: Reason | null, peer: string | null}>}
 */
async function peerOf(header, me) {
  const accounts = new Set(header.targets.map((target) => target.username));
  /** @type {string | null} */
  let peer;
  if (header.sender !== me) {
    peer = header.sender;
  } else {
    const others = [...accounts].filter((name) => name !== me).sort();
    peer = others.length === 1 ? others[0] : others.length === 0 ? me : null;
  }
  if (peer === null || (await directConversationId(me, peer)) !== header.conversationId) {
    return { reason: "wrong_conversation", peer: null };
  }
  const wanted = new Set([me, peer]);
  if (accounts.size !== wanted.size || ![...accounts].every((name) => wanted.has(name))) {
    return { reason: "wrong_members", peer: null };
  }
  return { reason: null, peer };
}

/**
 * Every target device is in its account's list of the named version, where this device
 * has accepted that version (a newer one is the caller's to fetch first).
 *
 * @param {HeaderV2} header
 * @param {ReceiveContext["deviceLists"]} deviceLists
 * @returns {boolean}
 */
function targetsListed(header, deviceLists) {
  for (const target of header.targets) {
    const accepted = entry(deviceLists, target.username);
    if (accepted !== undefined && accepted !== null && accepted.version === target.deviceListVersion) {
      const listed = new Set(accepted.devices.map((device) => device.deviceId));
      if (!target.devices.every((id) => listed.has(id))) return false;
    }
  }
  return true;
}

/**
 * PROTOCOL.md 15.8: accepted, duplicate, or refused with its reason. The checks run in
 * 15.8's order; the first that fails is the refusal.
 *
 * @param {unknown} wire the envelope as the server delivers it to this device (its own slot)
 * @param {ReceiveContext} context
 * @returns {Promise<ReceiveDecision>}
 */
export async function receiveDirectV2(wire, { me, deliveredIn, deviceLists, seen, inboxSeq, sessions, now }) {
  let envelope;
  try {
    envelope = EnvelopeV2.fromWire(wire);
  } catch (error) {
    if (error instanceof UnsupportedVersion) return refusedV2("unsupported_version");
    if (error instanceof ProtocolError) return refusedV2("malformed");
    throw error;
  }
  const header = envelope.header;
  /** @type {Claim} */
  const claim = Object.freeze({
    messageId: header.messageId,
    conversationId: header.conversationId,
    sender: header.sender,
    sentAt: header.sentAt,
  });
  const senderList = entry(deviceLists, header.sender);
  const senderDevice = senderList?.devices.find((device) => device.deviceId === header.senderDevice);
  if (senderList === undefined || senderList === null || senderDevice === undefined) {
    return refusedV2("device_not_listed", claim);
  }
  try {
    await verifyEnvelope(envelope, senderDevice);
  } catch (error) {
    if (error instanceof ProtocolError) return refusedV2("bad_signature", claim);
    throw error;
  }
  if (deliveredIn !== null && deliveredIn !== undefined && deliveredIn !== header.conversationId) {
    return refusedV2("wrong_conversation", claim);
  }
  const { reason, peer } = await peerOf(header, me.username);
  if (reason !== null || peer === null) {
    return refusedV2(reason ?? "wrong_conversation", claim);
  }
  if (!targetsListed(header, deviceLists)) {
    return refusedV2("device_not_listed", claim);
  }
  const slot = envelope.slotFor(me.username, me.device.deviceId);
  if (slot === null) {
    return refusedV2("not_for_me", claim);
  }
  const { verdict, record } = replay(entry(seen, header.messageId), b64encode(envelope.signature), inboxSeq ?? null);
  if (verdict === "replayed") {
    return refusedV2("replayed", claim);
  }
  if (verdict === "duplicate") {
    return Object.freeze({ outcome: /** @type {const} */ ("duplicate"), messageId: header.messageId, seen: record });
  }

  const senderParty = new Party(header.sender, senderList.accountKey, senderDevice);
  const meParty = new Party(me.username, me.accountKey, me.device);
  const binding = await envelope.binding();
  /** @param {RatchetMessage} message */
  const acceptSetup = async (message) => {
    const accepted = await acceptSession(meParty, me.dhPrivate, senderParty, message, me.signedPrekeys, me.oneTimePrekeys, binding, now);
    return { plaintext: accepted.plaintext, state: accepted.state, oneTimePrekeyUsed: accepted.usedOneTimePrekeyId };
  };
  const setup = slot.message.setup;
  const setupId = setup === null ? null : await setupSessionId(senderParty, meParty, setup);
  const current = sessions.get(targetKey(header.sender, header.senderDevice)) ?? EMPTY;
  let opened;
  try {
    opened = await openMessage(current, slot.message, setupId, acceptSetup, binding, header.sentAt, now);
  } catch (error) {
    if (error instanceof Refusal) return refusedV2(error.reason, claim);
    throw error;
  }
  let payloadBytes;
  try {
    payloadBytes = await openBody(envelope, await openKeySlot(envelope, opened.plaintext));
  } catch (error) {
    if (error instanceof ProtocolError) return refusedV2("undecryptable", claim);
    throw error;
  }
  let payload;
  try {
    payload = decodePayload(payloadBytes);
  } catch (error) {
    if (error instanceof ProtocolError) return refusedV2("bad_payload", claim);
    throw error;
  }
  return Object.freeze({
    outcome: /** @type {const} */ ("accepted"),
    messageId: header.messageId,
    conversationId: header.conversationId,
    peer,
    sender: header.sender,
    senderDevice: header.senderDevice,
    sentAt: header.sentAt,
    payload,
    seen: record,
    sessions: opened.sessions,
    oneTimePrekeyUsed: opened.oneTimePrekeyUsed,
    notices: opened.notices,
  });
}
