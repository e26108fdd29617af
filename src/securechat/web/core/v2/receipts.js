/**
 * Does this v2 receipt move any of my messages forward (PROTOCOL.md 15.17)? As
 * `securechat/client/core/v2/receipts.py`, step for step.
 *
 * A v2 receipt is an ordinary v2 message (15.8) whose payload is
 * `{type: "receipt", status, message_ids}`: `receiveDirectV2` has already checked who sent
 * it (a listed device of the reader, by its signature), in which direct conversation, and
 * that it is new. This decides only what it says: which of my messages, sent in that
 * conversation with the reader among their recipients, it covers; or, sent by one of my
 * own other devices, which messages I received there its user has read.
 *
 * @module
 */

import { MAX_RECEIPT_IDS, MalformedInput, ProtocolError, RECEIPT_STATUSES, isPlainObject, parseMessageId } from "../../protocol/index.js";
import { entry, refused } from "../reasons.js";

/** @import { Refused } from "../reasons.js" */

export const RECEIPT_TYPE = "receipt";
const RECEIPT_PAYLOAD_FIELDS = Object.freeze(["message_ids", "status", "type"]);

/**
 * @typedef {object} ReceiptV2Accepted
 * @property {"accepted"} outcome
 * @property {string} conversationId
 * @property {string} reader the account whose device sent the receipt
 * @property {"delivered" | "read"} status
 * @property {readonly string[]} messageIds ascending; from a peer, my messages it covers;
 *   from my own other device (`own`), messages of others I received there
 * @property {boolean} own
 */

/** @typedef {ReceiptV2Accepted | Refused} ReceiptV2Decision */

/**
 * @typedef {ReadonlyMap<string, Iterable<string>> | Readonly<Record<string, Iterable<string>>>} SentInConversationV2
 *   message id → the accounts it was sealed for (an array or a Set)
 */
/**
 * @typedef {ReadonlyMap<string, SentInConversationV2> | Readonly<Record<string, SentInConversationV2>>} SentV2
 *   conversation id → the messages this user sent there
 */
/**
 * @typedef {ReadonlyMap<string, Iterable<string>> | Readonly<Record<string, Iterable<string>>>} ReceivedV2
 *   conversation id → ids of messages of others this device accepted there
 */

/**
 * A payload that is a receipt, well-formed or not: never shown as a chat item and never
 * itself receipted (15.17).
 *
 * @param {unknown} payload
 */
export function isReceiptPayload(payload) {
  return isPlainObject(payload) && payload.type === RECEIPT_TYPE;
}

/**
 * The status and ids of a receipt payload; throws `MalformedInput` for anything else.
 *
 * @param {unknown} payload
 * @returns {{status: "delivered" | "read", messageIds: string[]}}
 */
export function parseReceiptPayload(payload) {
  if (!isPlainObject(payload) || Object.keys(payload).sort().join(",") !== RECEIPT_PAYLOAD_FIELDS.join(",")) {
    throw new MalformedInput("a receipt payload has exactly type, status and message_ids");
  }
  if (payload.type !== RECEIPT_TYPE) throw new MalformedInput("not a receipt payload");
  const status = payload.status;
  if (typeof status !== "string" || !RECEIPT_STATUSES.includes(status)) throw new MalformedInput("status must be delivered or read");
  const raw = payload.message_ids;
  if (!Array.isArray(raw) || raw.length < 1 || raw.length > MAX_RECEIPT_IDS) throw new MalformedInput("message_ids must hold 1 to 100 ids");
  const messageIds = raw.map((id) => parseMessageId(id));
  for (let index = 1; index < messageIds.length; index += 1) {
    if (!(messageIds[index - 1] < messageIds[index])) throw new MalformedInput("message_ids must be strictly ascending");
  }
  return { status: /** @type {"delivered" | "read"} */ (status), messageIds };
}

/**
 * The payload a reader seals (ids sorted, at most 100: the caller splits).
 *
 * @param {"delivered" | "read"} status
 * @param {Iterable<string>} messageIds
 */
export function receiptPayload(status, messageIds) {
  const ids = [...new Set(messageIds)].sort();
  if (!RECEIPT_STATUSES.includes(status) || ids.length < 1 || ids.length > MAX_RECEIPT_IDS) {
    throw new MalformedInput("a receipt names 1 to 100 ids with status delivered or read");
  }
  return { type: RECEIPT_TYPE, status, message_ids: ids };
}

/**
 * @param {Iterable<string> | undefined} names an array or a Set
 * @param {string} name
 */
function has(names, name) {
  if (names instanceof Set) return names.has(name);
  return Array.isArray(names) && names.includes(name);
}

/**
 * PROTOCOL.md 15.17: accepted, or refused with its reason.
 *
 * @param {{sender: string, conversationId: string, payload: unknown}} message an accepted v2 message
 * @param {{me: string, sent: SentV2, received: ReceivedV2}} context only the messages the
 *   receipt names need be given
 * @returns {ReceiptV2Decision}
 */
export function decideReceiptV2({ sender, conversationId, payload }, { me, sent, received }) {
  let parsed;
  try {
    parsed = parseReceiptPayload(payload);
  } catch (error) {
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
  const { status, messageIds } = parsed;
  if (sender === me) {
    // One of my other devices: what its user has seen here counts as seen.
    const mine = entry(received, conversationId);
    const named = messageIds.filter((id) => has(mine, id));
    if (named.length === 0) return refused("not_for_me");
    return Object.freeze({ outcome: /** @type {const} */ ("accepted"), conversationId, reader: sender, status, messageIds: named, own: true });
  }
  const here = entry(sent, conversationId);
  const inConversation = here === undefined ? [] : messageIds.filter((id) => entry(here, id) !== undefined);
  if (inConversation.length === 0) return refused("not_for_me");
  const covered = inConversation.filter((id) => has(entry(/** @type {SentInConversationV2} */ (here), id), sender));
  if (covered.length === 0) return refused("wrong_members");
  return Object.freeze({ outcome: /** @type {const} */ ("accepted"), conversationId, reader: sender, status, messageIds: covered, own: false });
}

/**
 * A decision in the vector file's form.
 *
 * @param {ReceiptV2Decision} decision
 */
export function receiptV2DecisionToWire(decision) {
  if (decision.outcome === "refused") return { outcome: "refused", reason: decision.reason };
  return {
    outcome: "accepted",
    conversation_id: decision.conversationId,
    reader: decision.reader,
    status: decision.status,
    message_ids: [...decision.messageIds],
    own: decision.own,
  };
}
