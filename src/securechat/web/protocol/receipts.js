/**
 * Receipts signed by their reader (PROTOCOL.md 9.3), mirroring
 * `securechat/protocol/receipts.py`.
 *
 * A receipt says: in this conversation, this reader has these messages ("delivered") or
 * has shown them ("read"). The reader signs it with its Ed25519 key, as it signs its
 * messages, so a server can relay a receipt but not make one up, alter it, or move it to
 * another reader, status or message. Senders check it with the client core's
 * `decideReceipt` (PROTOCOL.md 14.7).
 *
 * Parsing ({@link Receipt.fromWire}) and {@link receiptSignedBytes} are synchronous;
 * {@link Receipt#verify} and {@link makeReceipt} are async (Web Crypto). Errors are those
 * of PROTOCOL.md 1.1: MalformedInput, UnsupportedVersion, VerificationFailed.
 *
 * @module
 */

import { b64decode, b64encode, canonical, hasExactKeys, isPlainObject, u64 } from "./encoding.js";
import { MalformedInput, UnsupportedVersion, VerificationFailed } from "./errors.js";
import { parseConversationId, parseMessageId, parseNormalisedUsername } from "./identifiers.js";
import { PrivateIdentity, PublicIdentity } from "./keys.js";
import { RECEIPT } from "./labels.js";
import { ED25519_SIGNATURE_BYTES, ed25519Sign, ed25519Verify, loadEd25519PublicKey } from "./primitives.js";

/** @import { ConversationId, MessageId, Username } from "./identifiers.js" */

export const RECEIPT_VERSION = 1;
export const RECEIPT_STATUSES = Object.freeze(["delivered", "read"]);
/** Message ids in one receipt; a reader with more to report signs several. */
export const MAX_RECEIPT_IDS = 100;
export const RECEIPT_FIELDS = Object.freeze(["v", "conversation_id", "reader", "status", "message_ids", "signature"]);

/**
 * @typedef {object} ReceiptWire
 * @property {number} v
 * @property {string} conversation_id
 * @property {string} reader
 * @property {"delivered" | "read"} status
 * @property {string[]} message_ids strictly ascending, 1 to 100
 * @property {string} signature base64, 64 bytes
 */

/** A reader's signed statement about messages of one conversation (PROTOCOL.md 9.3). */
export class Receipt {
  /**
   * @param {{conversationId: ConversationId, reader: Username, status: "delivered" | "read",
   *   messageIds: readonly MessageId[], signature: Uint8Array}} fields messageIds: strictly ascending
   */
  constructor({ conversationId, reader, status, messageIds, signature }) {
    /** @readonly */
    this.conversationId = conversationId;
    /** @readonly */
    this.reader = reader;
    /** @readonly */
    this.status = status;
    /** @readonly strictly ascending */
    this.messageIds = Object.freeze([...messageIds]);
    /** @readonly 64 bytes */
    this.signature = signature;
    Object.freeze(this);
  }

  /**
   * The bytes the reader signed.
   *
   * @returns {Uint8Array}
   */
  signedBytes() {
    return receiptSignedBytes(this.conversationId, this.reader, this.status, this.messageIds);
  }

  /** @returns {ReceiptWire} */
  toWire() {
    return {
      v: RECEIPT_VERSION,
      conversation_id: this.conversationId,
      reader: this.reader,
      status: this.status,
      message_ids: [...this.messageIds],
      signature: b64encode(this.signature),
    };
  }

  /**
   * Parse strictly (shape only), in Python's order of checks; {@link Receipt#verify}
   * checks the signature.
   *
   * @param {unknown} data the parsed JSON
   * @returns {Receipt}
   * @throws {MalformedInput | UnsupportedVersion}
   */
  static fromWire(data) {
    if (!isPlainObject(data) || !hasExactKeys(data, RECEIPT_FIELDS)) {
      throw new MalformedInput(`a receipt has exactly the members ${[...RECEIPT_FIELDS].sort().join(", ")}`);
    }
    const version = data.v;
    // JSON.parse cannot tell 1 from 1.0 (PROTOCOL.md Appendix A.4).
    if (typeof version !== "number" || !Number.isInteger(version)) {
      throw new MalformedInput("v must be an integer");
    }
    if (version !== RECEIPT_VERSION) {
      throw new UnsupportedVersion(`receipt version ${version} is not supported`);
    }
    const conversationId = parseConversationId(data.conversation_id);
    const reader = parseNormalisedUsername(data.reader, "reader");
    const status = data.status;
    if (status !== "delivered" && status !== "read") {
      throw new MalformedInput(`status must be one of ${RECEIPT_STATUSES.join(", ")}`);
    }
    const rawIds = data.message_ids;
    if (!Array.isArray(rawIds) || rawIds.length < 1 || rawIds.length > MAX_RECEIPT_IDS) {
      throw new MalformedInput(`message_ids must be a list of 1 to ${MAX_RECEIPT_IDS} message ids`);
    }
    const messageIds = rawIds.map((id) => parseMessageId(id));
    for (let index = 1; index < messageIds.length; index += 1) {
      if (!(messageIds[index - 1] < messageIds[index])) {
        throw new MalformedInput("message_ids must be sorted and distinct");
      }
    }
    if (typeof data.signature !== "string") {
      throw new MalformedInput("signature must be a string");
    }
    const signature = b64decode(data.signature, { maxBytes: ED25519_SIGNATURE_BYTES });
    if (signature.length !== ED25519_SIGNATURE_BYTES) {
      throw new MalformedInput("signature must be 64 bytes");
    }
    return new Receipt({ conversationId, reader, status, messageIds, signature });
  }

  /**
   * Check the signature with the reader's pinned identity.
   *
   * @param {PublicIdentity | null | undefined} readerIdentity
   * @returns {Promise<void>}
   * @throws {VerificationFailed}
   */
  async verify(readerIdentity) {
    if (!(readerIdentity instanceof PublicIdentity) || readerIdentity.username !== this.reader) {
      throw new VerificationFailed();
    }
    let key;
    try {
      key = await loadEd25519PublicKey(readerIdentity.signingKey);
    } catch (error) {
      if (error instanceof MalformedInput) throw new VerificationFailed();
      throw error;
    }
    // S < L is enforced by ed25519Verify.
    await ed25519Verify(key, this.signature, this.signedBytes());
  }
}

/**
 * `canonical(RECEIPT, u64(1), conversation_id, reader, status, u64(n), id_1, …, id_n)`.
 *
 * @param {ConversationId} conversationId
 * @param {Username} reader
 * @param {string} status
 * @param {readonly MessageId[]} messageIds in the order they are signed (ascending)
 * @returns {Uint8Array}
 */
export function receiptSignedBytes(conversationId, reader, status, messageIds) {
  return canonical(RECEIPT, [u64(RECEIPT_VERSION), conversationId, reader, status, u64(messageIds.length), ...messageIds]);
}

/**
 * Sign a receipt as `reader`; the ids are sorted and de-duplicated here. Refuses
 * (MalformedInput) what {@link Receipt.fromWire} would refuse, so nothing is signed that
 * no receiver could parse.
 *
 * @param {PrivateIdentity} reader
 * @param {string} conversationId
 * @param {"delivered" | "read"} status
 * @param {Iterable<string>} messageIds
 * @returns {Promise<Receipt>}
 * @throws {MalformedInput}
 */
export async function makeReceipt(reader, conversationId, status, messageIds) {
  if (!(reader instanceof PrivateIdentity)) {
    throw new TypeError("makeReceipt expects the reader's PrivateIdentity");
  }
  const conversation = parseConversationId(conversationId);
  if (status !== "delivered" && status !== "read") {
    throw new MalformedInput(`status must be one of ${RECEIPT_STATUSES.join(", ")}`);
  }
  const ids = [...new Set([...messageIds].map((id) => parseMessageId(id)))].sort();
  if (ids.length < 1 || ids.length > MAX_RECEIPT_IDS) {
    throw new MalformedInput(`a receipt names 1 to ${MAX_RECEIPT_IDS} message ids`);
  }
  const signature = await ed25519Sign(reader.signingPrivate, receiptSignedBytes(conversation, reader.username, status, ids));
  return new Receipt({ conversationId: conversation, reader: reader.username, status, messageIds: ids, signature });
}
