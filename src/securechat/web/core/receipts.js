/**
 * Does this receipt move any of my messages forward (PROTOCOL.md 14.7)? As
 * `securechat/client/core/receipts.py`, step for step.
 *
 * Only a receipt signed by its reader, with the key this device pinned for the reader,
 * about messages I sent in that conversation to that reader, does. The members of the
 * inbox frame beside the signed receipt (`message_ids`, `recipient`, `status`) are the
 * server's word and are never read here.
 *
 * @module
 */

import { ProtocolError, Receipt, UnsupportedVersion, isPlainObject } from "../protocol/index.js";
import { entry, refused } from "./reasons.js";

/** @import { PublicIdentity } from "../protocol/index.js" */
/** @import { Pins, Pin } from "./messages.js" */
/** @import { Reason, Refused } from "./reasons.js" */

/**
 * @typedef {object} ReceiptAccepted
 * @property {"accepted"} outcome
 * @property {string} conversationId
 * @property {string} reader
 * @property {"delivered" | "read"} status
 * @property {readonly string[]} messageIds those of the receipt's messages that I sent in
 *   that conversation with the reader among their recipients: the only ones whose status
 *   may move (ascending)
 */

/** @typedef {ReceiptAccepted | Refused} ReceiptDecision */

/**
 * By conversation id, the messages this user sent there and who each was sealed for
 * (message id → recipients). Maps or plain objects, at either level.
 *
 * @typedef {ReadonlyMap<string, SentInConversation> | Readonly<Record<string, SentInConversation>>} SentMessages
 */
/**
 * @typedef {ReadonlyMap<string, Iterable<string>> | Readonly<Record<string, Iterable<string>>>} SentInConversation
 *   message id → the recipients it was sealed for (an array or a Set)
 */

/**
 * @typedef {object} ReceiptContext
 * @property {string} me this device's username
 * @property {Pins} pins
 * @property {SentMessages} sent only the messages the receipt names need be given
 */

/**
 * @param {Receipt} receipt
 * @param {PublicIdentity} identity
 * @returns {Promise<boolean>}
 */
async function verifies(receipt, identity) {
  try {
    await receipt.verify(identity);
    return true;
  } catch (error) {
    if (error instanceof ProtocolError) return false;
    throw error;
  }
}

/**
 * Null if the pinned key verifies the receipt; else `key_changed` if the pending key
 * does, else `bad_signature` (as 14.1 step 3).
 *
 * @param {Receipt} receipt
 * @param {Pin} pin
 * @returns {Promise<Reason | null>}
 */
async function signatureReason(receipt, pin) {
  if (await verifies(receipt, pin.identity)) {
    return null;
  }
  if (pin.pending !== undefined && pin.pending !== null && (await verifies(receipt, pin.pending))) {
    return "key_changed";
  }
  return "bad_signature";
}

/**
 * @param {Iterable<string> | undefined} recipients an array (or a Set) of usernames
 * @param {string} name
 * @returns {boolean}
 */
function includes(recipients, name) {
  if (recipients instanceof Set) return recipients.has(name);
  return Array.isArray(recipients) && recipients.includes(name);
}

/**
 * PROTOCOL.md 14.7: accepted (the reader, status and my message ids it covers), or
 * refused with its reason. The checks run in 14.7's order; the first that fails is the
 * refusal.
 *
 * @param {unknown} frame the inbox entry as parsed JSON (`{type: "receipt", ..., receipt: {...}}`)
 * @param {ReceiptContext} context
 * @returns {Promise<ReceiptDecision>}
 */
export async function decideReceipt(frame, { me, pins, sent }) {
  if (!isPlainObject(frame)) {
    return refused("malformed");
  }
  // 1. The reader's signed receipt; without one, the frame is the server's own claim.
  if (!Object.hasOwn(frame, "receipt")) {
    return refused("unsigned");
  }
  let receipt;
  try {
    receipt = Receipt.fromWire(frame.receipt);
  } catch (error) {
    if (error instanceof UnsupportedVersion) return refused("unsupported_version");
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
  // 2. The reader's pin.
  const pin = entry(pins, receipt.reader);
  if (pin === undefined || pin === null) {
    return refused("unknown_sender");
  }
  // 3. The signature.
  const reason = await signatureReason(receipt, pin);
  if (reason !== null) {
    return refused(reason);
  }
  // 4. Messages of mine in that conversation.
  const mine = entry(sent, receipt.conversationId);
  const named =
    mine === undefined || mine === null ? [] : receipt.messageIds.filter((id) => entry(mine, id) !== undefined);
  if (named.length === 0) {
    return refused("not_for_me");
  }
  // 5. Sealed for the reader, who is not me.
  const sentHere = /** @type {SentInConversation} */ (mine);
  const covered = named.filter((id) => receipt.reader !== me && includes(entry(sentHere, id), receipt.reader));
  if (covered.length === 0) {
    return refused("wrong_members");
  }
  return Object.freeze({
    outcome: /** @type {const} */ ("accepted"),
    conversationId: receipt.conversationId,
    reader: receipt.reader,
    status: /** @type {"delivered" | "read"} */ (receipt.status),
    messageIds: Object.freeze(covered),
  });
}
