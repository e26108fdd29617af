/**
 * Message envelopes (PROTOCOL.md 7): seal on the sender, open on each recipient,
 * mirroring `securechat/protocol/envelope.py`.
 *
 * An envelope is a header (version, message id, conversation id, sender, client time),
 * an AES-256-GCM ciphertext of the padded payload under a fresh message key, that key
 * wrapped with RSA-OAEP for every member (sender included), and an Ed25519 signature
 * over all of it.
 *
 * @module
 */

import {
  b64decode,
  b64encode,
  canonical,
  hasExactKeys,
  isPlainObject,
  isWellFormed,
  u32,
  u64,
  utf8Decode,
  utf8Encode,
} from "./encoding.js";
import { MalformedInput, UnsupportedVersion, VerificationFailed } from "./errors.js";
import { fileDescriptorFromPayload, parseFileDescriptor } from "./files.js";
import {
  checkText,
  newMessageId,
  parseConversationId,
  parseMessageId,
  parseNormalisedUsername,
} from "./identifiers.js";
import { PrivateIdentity, PublicIdentity } from "./keys.js";
import { MESSAGE_HEADER, MESSAGE_SIGNATURE, WRAPPED_KEY_LABEL } from "./labels.js";
import {
  AES_KEY_BYTES,
  GCM_IV_BYTES,
  aesGcmDecrypt,
  aesGcmEncrypt,
  ed25519Sign,
  ed25519Verify,
  loadEd25519PublicKey,
  loadRsaPublicKey,
  rsaOaepDecrypt,
  rsaOaepEncrypt,
} from "./primitives.js";

/** @import { ConversationId, MessageId, Username } from "./identifiers.js" */
/** @typedef {Record<string, unknown>} Payload a JSON object with a string `type` */

export const ENVELOPE_VERSION = 1;
export const MAX_MEMBERS = 256;
export const MAX_PAYLOAD_BYTES = 64 * 1024;
export const MIN_PADDED_BYTES = 256;
export const MAX_PADDED_BYTES = 128 * 1024;
export const MAX_CIPHERTEXT_BYTES = MAX_PADDED_BYTES + 16;
export const MAX_WRAPPED_KEY_BYTES = 512; // RSA-4096
export const MAX_TEXT_CHARS = 16_000;
export const MAX_GROUP_NAME_CHARS = 100;
export const MAX_SENT_AT = 2 ** 53; // exclusive
const SIGNATURE_BYTES = 64;
export const ENVELOPE_FIELDS = Object.freeze([
  "v",
  "message_id",
  "conversation_id",
  "sender",
  "sent_at",
  "iv",
  "ciphertext",
  "keys",
  "signature",
]);
const KEY_ENTRY_FIELDS = Object.freeze(["recipient", "wrapped_key"]);

/** The signed header of a message (PROTOCOL.md 7.1). */
export class Header {
  /**
   * @param {{version: number, messageId: MessageId, conversationId: ConversationId, sender: Username, sentAt: number}} fields
   *   sentAt: the sender's clock, milliseconds since the Unix epoch
   */
  constructor({ version, messageId, conversationId, sender, sentAt }) {
    /** @readonly */
    this.version = version;
    /** @readonly */
    this.messageId = messageId;
    /** @readonly */
    this.conversationId = conversationId;
    /** @readonly */
    this.sender = sender;
    /** @readonly */
    this.sentAt = sentAt;
    Object.freeze(this);
  }

  /**
   * The header's canonical bytes: the AEAD's associated data.
   *
   * @returns {Uint8Array}
   */
  canonical() {
    return canonical(MESSAGE_HEADER, [
      u64(this.version),
      this.messageId,
      this.conversationId,
      this.sender,
      u64(this.sentAt),
    ]);
  }
}

/** One recipient's copy of the message key. */
export class WrappedKey {
  /**
   * @param {Username} recipient
   * @param {Uint8Array} wrappedKey RSA-OAEP ciphertext of the message key
   */
  constructor(recipient, wrappedKey) {
    /** @readonly */
    this.recipient = recipient;
    /** @readonly */
    this.wrappedKey = wrappedKey;
    Object.freeze(this);
  }
}

/**
 * @typedef {object} EnvelopeWire
 * @property {number} v
 * @property {string} message_id
 * @property {string} conversation_id
 * @property {string} sender
 * @property {number} sent_at
 * @property {string} iv
 * @property {string} ciphertext
 * @property {{recipient: string, wrapped_key: string}[]} keys
 * @property {string} signature
 */

/** A sealed message as it travels (PROTOCOL.md 7.7). */
export class Envelope {
  /**
   * @param {{header: Header, iv: Uint8Array, ciphertext: Uint8Array, keys: readonly WrappedKey[], signature: Uint8Array}} fields
   */
  constructor({ header, iv, ciphertext, keys, signature }) {
    /** @readonly */
    this.header = header;
    /** @readonly */
    this.iv = iv;
    /** @readonly */
    this.ciphertext = ciphertext;
    /** @readonly */
    this.keys = Object.freeze([...keys]);
    /** @readonly */
    this.signature = signature;
    Object.freeze(this);
  }

  /** @returns {Username[]} */
  get recipients() {
    return this.keys.map((key) => key.recipient);
  }

  /**
   * The byte string the sender signed (PROTOCOL.md 7.6).
   *
   * @returns {Uint8Array}
   */
  signedBytes() {
    return signatureInput(this.header, this.iv, this.ciphertext, this.keys);
  }

  /** @returns {EnvelopeWire} */
  toWire() {
    return {
      v: this.header.version,
      message_id: this.header.messageId,
      conversation_id: this.header.conversationId,
      sender: this.header.sender,
      sent_at: this.header.sentAt,
      iv: b64encode(this.iv),
      ciphertext: b64encode(this.ciphertext),
      keys: this.keys.map((key) => ({ recipient: key.recipient, wrapped_key: b64encode(key.wrappedKey) })),
      signature: b64encode(this.signature),
    };
  }

  /**
   * The wire form as compact JSON, members in protocol order: the same text as Python's
   * `Envelope.to_json()`. Every value is an integer below 2^53, a validated identifier or
   * base64, so `JSON.stringify` escapes nothing and writes integers as Python does.
   *
   * @returns {string}
   */
  toJson() {
    return JSON.stringify(this.toWire());
  }

  /**
   * Parse strictly (PROTOCOL.md 7.7, in order): exact members, strict base64, sizes,
   * sorted unique recipients. The outcome is that of Python's `Envelope.from_wire`.
   *
   * @param {unknown} data the parsed JSON
   * @returns {Envelope}
   * @throws {MalformedInput | UnsupportedVersion}
   */
  static fromWire(data) {
    if (!isPlainObject(data)) {
      throw new MalformedInput("envelope must be an object");
    }
    if (!hasExactKeys(data, ENVELOPE_FIELDS)) {
      throw new MalformedInput("envelope fields do not match protocol v1");
    }
    const version = data.v;
    // JSON.parse cannot tell 1 from 1.0 (PROTOCOL.md Appendix A.4); Number.isInteger
    // (not isSafeInteger) keeps Python's outcome for huge integers: another version.
    if (typeof version !== "number" || !Number.isInteger(version)) {
      throw new MalformedInput("v must be an integer");
    }
    if (version !== ENVELOPE_VERSION) {
      throw new UnsupportedVersion("unsupported envelope version");
    }
    const sentAt = data.sent_at;
    if (typeof sentAt !== "number" || !Number.isInteger(sentAt) || sentAt < 0 || sentAt >= MAX_SENT_AT) {
      throw new MalformedInput("sent_at must be a non-negative integer (ms)");
    }
    const header = new Header({
      version,
      messageId: parseMessageId(data.message_id),
      conversationId: parseConversationId(data.conversation_id),
      sender: parseNormalisedUsername(data.sender, "sender"),
      // -0 is a valid JSON integer; store it as 0 so that it prints as Python's does.
      sentAt: sentAt + 0,
    });
    const iv = b64decode(stringField(data, "iv"), { maxBytes: GCM_IV_BYTES });
    if (iv.length !== GCM_IV_BYTES) {
      throw new MalformedInput("iv must be 12 bytes");
    }
    const ciphertext = b64decode(stringField(data, "ciphertext"), { maxBytes: MAX_CIPHERTEXT_BYTES });
    const signature = b64decode(stringField(data, "signature"), { maxBytes: SIGNATURE_BYTES });
    if (signature.length !== SIGNATURE_BYTES) {
      throw new MalformedInput("signature must be 64 bytes");
    }
    const rawKeys = data.keys;
    if (!Array.isArray(rawKeys) || rawKeys.length < 1 || rawKeys.length > MAX_MEMBERS) {
      throw new MalformedInput(`keys must list 1 to ${MAX_MEMBERS} recipients`);
    }
    /** @type {WrappedKey[]} */
    const keys = [];
    for (const item of rawKeys) {
      if (!isPlainObject(item) || !hasExactKeys(item, KEY_ENTRY_FIELDS)) {
        throw new MalformedInput("each key must have exactly recipient and wrapped_key");
      }
      const recipient = parseNormalisedUsername(item.recipient, "recipient");
      const wrapped = b64decode(stringField(item, "wrapped_key"), { maxBytes: MAX_WRAPPED_KEY_BYTES });
      keys.push(new WrappedKey(recipient, wrapped));
    }
    for (let index = 1; index < keys.length; index += 1) {
      if (!(keys[index - 1].recipient < keys[index].recipient)) {
        throw new MalformedInput("keys must be sorted by recipient, without duplicates");
      }
    }
    return new Envelope({ header, iv, ciphertext, keys, signature });
  }

  /**
   * Parse envelope JSON text: invalid JSON is MalformedInput, then {@link Envelope.fromWire}.
   *
   * @param {unknown} text
   * @returns {Envelope}
   * @throws {MalformedInput | UnsupportedVersion}
   */
  static fromJson(text) {
    if (typeof text !== "string") {
      throw new MalformedInput("envelope must be JSON text");
    }
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      throw new MalformedInput("envelope is not JSON");
    }
    return Envelope.fromWire(data);
  }
}

/**
 * @param {Record<string, unknown>} data
 * @param {string} name
 * @returns {string}
 */
function stringField(data, name) {
  const value = data[name];
  if (typeof value !== "string") {
    throw new MalformedInput(`${name} must be a string`);
  }
  return value;
}

/**
 * The OAEP label: a wrapped key only unwraps for this message and this recipient.
 *
 * @param {MessageId} messageId
 * @param {Username} recipient
 * @returns {Uint8Array}
 */
export function wrappedKeyLabel(messageId, recipient) {
  return canonical(WRAPPED_KEY_LABEL, [messageId, recipient]);
}

/**
 * The Ed25519 signature input (PROTOCOL.md 7.6): header bytes, IV, ciphertext, the
 * recipient count, then each recipient and wrapped key in ascending recipient order.
 *
 * @param {Header} header
 * @param {Uint8Array} iv
 * @param {Uint8Array} ciphertext
 * @param {readonly WrappedKey[]} keys
 * @returns {Uint8Array}
 */
export function signatureInput(header, iv, ciphertext, keys) {
  /** @type {(Uint8Array | string)[]} */
  const fields = [header.canonical(), iv, ciphertext, u64(keys.length)];
  // Default string comparison (UTF-16 code units): byte order for ASCII usernames.
  const sorted = [...keys].sort((a, b) => (a.recipient < b.recipient ? -1 : a.recipient > b.recipient ? 1 : 0));
  for (const key of sorted) {
    fields.push(key.recipient, key.wrappedKey);
  }
  return canonical(MESSAGE_SIGNATURE, fields);
}

/**
 * A group's name (PROTOCOL.md 7.2, 13.5): a string of 1 to 100 code points, without NUL
 * or lone surrogates. As Python's `check_group_name`.
 *
 * @param {unknown} name
 * @returns {string}
 * @throws {MalformedInput}
 */
export function checkGroupName(name) {
  if (typeof name !== "string" || name === "") {
    throw new MalformedInput("a group name is a non-empty string");
  }
  return checkText(name, { field: "name", maxChars: MAX_GROUP_NAME_CHARS });
}

/**
 * Smallest power of two >= length, at least 256 bytes: lengths leak only a bucket.
 *
 * @param {number} length
 * @returns {number}
 */
export function paddedSize(length) {
  let size = MIN_PADDED_BYTES;
  while (size < length) size *= 2;
  return size;
}

/**
 * `u32(len(payload)) ‖ payload ‖ zeros` to the bucket size (PROTOCOL.md 7.3).
 *
 * @param {Uint8Array} payload
 * @returns {Uint8Array}
 */
export function pad(payload) {
  const padded = new Uint8Array(paddedSize(4 + payload.length));
  padded.set(u32(payload.length), 0);
  padded.set(payload, 4);
  return padded;
}

/**
 * Undo {@link pad}; accepts any power-of-two size of at least 256 bytes.
 *
 * @param {Uint8Array} padded
 * @returns {Uint8Array}
 * @throws {VerificationFailed}
 */
export function unpad(padded) {
  if (padded.length < 4 || padded.length !== paddedSize(padded.length)) {
    throw new VerificationFailed();
  }
  const length = new DataView(padded.buffer, padded.byteOffset, padded.byteLength).getUint32(0);
  if (4 + length > padded.length) {
    throw new VerificationFailed();
  }
  for (let index = 4 + length; index < padded.length; index += 1) {
    if (padded[index] !== 0) throw new VerificationFailed();
  }
  return padded.slice(4, 4 + length);
}

/**
 * Payload JSON, compact UTF-8 (PROTOCOL.md 7.2). Its exact bytes do not matter (they are
 * only encrypted); what is refused matches Python's `encode_payload`: a missing or
 * non-string `type`, a bad `text`, a `file` payload whose `file` breaks a rule of 12.3,
 * a `group_info` payload whose `name` breaks the rule of 7.2 ({@link checkGroupName}),
 * NaN and Infinity, lone surrogates anywhere, cycles, values JSON has no form for, and
 * more than 64 KiB.
 *
 * @param {Payload} payload
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function encodePayload(payload) {
  if (!isPlainObject(payload) || typeof ownValue(payload, "type") !== "string") {
    throw new MalformedInput("payload needs a type");
  }
  const text = ownValue(payload, "text");
  // As in Python, `"text": null` counts as no text.
  if (text !== undefined && text !== null) {
    if (typeof text !== "string") {
      throw new MalformedInput("payload text must be a string");
    }
    checkText(text, { field: "text", maxChars: MAX_TEXT_CHARS });
  }
  if (ownValue(payload, "type") === "file") {
    parseFileDescriptor(ownValue(payload, "file"));
  }
  if (ownValue(payload, "type") === "group_info") {
    checkGroupName(ownValue(payload, "name"));
  }
  checkJsonValue(payload, []);
  const encoded = utf8Encode(JSON.stringify(payload));
  if (encoded.length > MAX_PAYLOAD_BYTES) {
    throw new MalformedInput("payload too large");
  }
  return encoded;
}

/**
 * Refuse what `JSON.stringify` would silently change (NaN → null, dropped `undefined`,
 * lone surrogates escaped) or cannot write, where Python's `json.dumps` refuses.
 *
 * @param {unknown} value
 * @param {object[]} ancestors
 */
function checkJsonValue(value, ancestors) {
  if (value === null || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new MalformedInput("payload contains a number JSON cannot represent");
    return;
  }
  if (typeof value === "string") {
    if (!isWellFormed(value)) throw new MalformedInput("payload is not valid Unicode");
    return;
  }
  if (typeof value !== "object") {
    throw new MalformedInput("payload contains a value JSON cannot represent");
  }
  if (ancestors.includes(value)) {
    throw new MalformedInput("payload contains a circular reference");
  }
  ancestors.push(value);
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) checkJsonValue(value[index], ancestors);
  } else {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      throw new MalformedInput("payload contains a value JSON cannot represent");
    }
    for (const [key, item] of Object.entries(value)) {
      if (!isWellFormed(key)) throw new MalformedInput("payload is not valid Unicode");
      checkJsonValue(item, ancestors);
    }
  }
  ancestors.pop();
}

/**
 * Decode and check a payload (PROTOCOL.md 7.2): strict UTF-8 (a byte order mark is not
 * skipped), JSON, an object whose `type` is a string and whose `text`, if present and
 * not null, is a string; if `type` is `file`, a `file` member that follows 12.3; if
 * `type` is `group_info`, a `name` that follows 7.2 ({@link checkGroupName}).
 *
 * @param {Uint8Array} data
 * @returns {Payload}
 * @throws {VerificationFailed}
 */
export function decodePayload(data) {
  let payload;
  try {
    payload = JSON.parse(utf8Decode(data));
  } catch {
    throw new VerificationFailed();
  }
  if (!isPlainObject(payload) || typeof ownValue(payload, "type") !== "string") {
    throw new VerificationFailed();
  }
  const text = ownValue(payload, "text");
  if (text !== undefined && text !== null && typeof text !== "string") {
    throw new VerificationFailed();
  }
  if (ownValue(payload, "type") === "file") {
    fileDescriptorFromPayload(payload);
  }
  if (ownValue(payload, "type") === "group_info") {
    try {
      checkGroupName(ownValue(payload, "name"));
    } catch (error) {
      if (error instanceof MalformedInput) throw new VerificationFailed();
      throw error;
    }
  }
  return payload;
}

/**
 * @param {Record<string, unknown>} object
 * @param {string} name
 * @returns {unknown}
 */
function ownValue(object, name) {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}

/**
 * @param {Map<Username, PublicIdentity> | Record<Username, PublicIdentity>} recipients
 * @returns {[Username, PublicIdentity][]}
 */
function recipientEntries(recipients) {
  return recipients instanceof Map ? [...recipients.entries()] : Object.entries(recipients);
}

/**
 * Encrypt a payload for every member of a conversation, the sender included (PROTOCOL.md 7.8).
 *
 * `messageId`, `sentAt`, `messageKey` and `iv` are injectable so that test vectors are
 * deterministic; in use they are fresh and random.
 *
 * @param {PrivateIdentity} sender
 * @param {ConversationId} conversationId
 * @param {Map<Username, PublicIdentity> | Record<Username, PublicIdentity>} recipients
 *   every member's pinned identity, the sender's own included
 * @param {Payload} payload
 * @param {{messageId?: MessageId, sentAt?: number, messageKey?: Uint8Array, iv?: Uint8Array}} [options]
 * @returns {Promise<Envelope>}
 * @throws {MalformedInput | WeakParameters} for bad arguments or a recipient key that fails 5.2
 */
export async function sealMessage(sender, conversationId, recipients, payload, options = {}) {
  const entries = recipientEntries(recipients);
  const names = entries.map(([name]) => name);
  if (!names.includes(sender.username)) {
    throw new MalformedInput("the sender must be among the recipients");
  }
  if (entries.length > MAX_MEMBERS) {
    throw new MalformedInput("too many recipients");
  }
  for (const name of names) parseNormalisedUsername(name, "recipient");
  const sentAt = options.sentAt ?? Date.now();
  if (!Number.isSafeInteger(sentAt) || sentAt < 0) {
    throw new MalformedInput("sent_at must be a non-negative integer (ms)");
  }
  const header = new Header({
    version: ENVELOPE_VERSION,
    messageId: parseMessageId(options.messageId ?? newMessageId()),
    conversationId: parseConversationId(conversationId),
    sender: sender.username,
    sentAt,
  });
  const messageKey = options.messageKey ?? globalThis.crypto.getRandomValues(new Uint8Array(AES_KEY_BYTES));
  if (messageKey.length !== AES_KEY_BYTES) {
    throw new MalformedInput("the message key must be 32 bytes");
  }
  const iv = options.iv ?? globalThis.crypto.getRandomValues(new Uint8Array(GCM_IV_BYTES));
  const ciphertext = await aesGcmEncrypt(messageKey, iv, pad(encodePayload(payload)), header.canonical());
  const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const keys = await Promise.all(
    sorted.map(async ([name, identity]) => {
      const publicKey = await loadRsaPublicKey(identity.encryptionKey);
      return new WrappedKey(name, await rsaOaepEncrypt(publicKey, messageKey, wrappedKeyLabel(header.messageId, name)));
    }),
  );
  const signature = await ed25519Sign(sender.signingPrivate, signatureInput(header, iv, ciphertext, keys));
  return new Envelope({ header, iv, ciphertext, keys, signature });
}

/**
 * PROTOCOL.md 7.9 step 3: the signature, with the sender's pinned identity. As Python's
 * `verify_signature`; the client's decisions (PROTOCOL.md 14.1) call it on its own to
 * tell a bad signature from a key change.
 *
 * @param {Envelope} envelope
 * @param {PublicIdentity | null | undefined} senderIdentity the pinned identity of
 *   `envelope.header.sender`; nothing (or another user's identity) fails the check
 * @returns {Promise<void>}
 * @throws {VerificationFailed}
 * @throws {TypeError} if `envelope` is not an {@link Envelope} (a programming error)
 */
export async function verifySignature(envelope, senderIdentity) {
  if (!(envelope instanceof Envelope)) {
    throw new TypeError("verifySignature expects an Envelope");
  }
  try {
    if (!(senderIdentity instanceof PublicIdentity) || senderIdentity.username !== envelope.header.sender) {
      throw new VerificationFailed();
    }
    const signingKey = await loadEd25519PublicKey(senderIdentity.signingKey);
    // S < L is enforced by ed25519Verify.
    await ed25519Verify(signingKey, envelope.signature, envelope.signedBytes());
  } catch {
    throw new VerificationFailed();
  }
}

/**
 * PROTOCOL.md 7.9 steps 6-8: unwrap my message key, decrypt and unpad; the payload's
 * bytes. As Python's `decrypt_padded_payload`.
 *
 * @param {Envelope} envelope
 * @param {PrivateIdentity} me
 * @returns {Promise<Uint8Array>}
 * @throws {VerificationFailed} if `me` has not exactly one wrapped key, or any step fails
 * @throws {TypeError} for arguments of the wrong type (a programming error)
 */
export async function decryptPaddedPayload(envelope, me) {
  if (!(envelope instanceof Envelope) || !(me instanceof PrivateIdentity)) {
    throw new TypeError("decryptPaddedPayload expects an Envelope and the receiver's PrivateIdentity");
  }
  const header = envelope.header;
  try {
    const mine = envelope.keys.filter((key) => key.recipient === me.username);
    if (mine.length !== 1) {
      throw new VerificationFailed();
    }
    const messageKey = await rsaOaepDecrypt(
      me.encryptionPrivate,
      mine[0].wrappedKey,
      wrappedKeyLabel(header.messageId, me.username),
    );
    if (messageKey.length !== AES_KEY_BYTES) {
      throw new VerificationFailed();
    }
    return unpad(await aesGcmDecrypt(messageKey, envelope.iv, envelope.ciphertext, header.canonical()));
  } catch {
    throw new VerificationFailed();
  }
}

/**
 * @typedef {object} OpenedMessage
 * @property {Header} header
 * @property {Payload} payload
 */

/**
 * @typedef {object} OpenContext what this client knows, never the envelope's or the server's word
 * @property {PrivateIdentity} me
 * @property {PublicIdentity | null | undefined} senderIdentity the pinned identity of
 *   `envelope.header.sender`, or nothing if there is none
 * @property {ConversationId} conversationId the conversation the envelope was delivered into
 * @property {Iterable<Username>} members that conversation's members
 * @property {{has(id: MessageId): boolean}} [seenMessageIds] message ids accepted before
 *   (PROTOCOL.md 7.9 step 5); the caller records the id after a successful open
 */

/**
 * Verify and decrypt an envelope (PROTOCOL.md 7.9 steps 2-9, in that order). Every
 * failure is the same {@link VerificationFailed}. The client's decisions (PROTOCOL.md
 * 14.1) run the same steps one by one, to say which failed; this is the all-or-nothing form.
 *
 * @param {Envelope} envelope from {@link Envelope.fromWire} (step 1)
 * @param {OpenContext} context
 * @returns {Promise<OpenedMessage>}
 * @throws {VerificationFailed}
 * @throws {TypeError} for arguments of the wrong type (a programming error)
 */
export async function openMessage(envelope, { me, senderIdentity, conversationId, members, seenMessageIds }) {
  if (!(envelope instanceof Envelope) || !(me instanceof PrivateIdentity)) {
    throw new TypeError("openMessage expects an Envelope and the receiver's PrivateIdentity");
  }
  const memberSet = new Set(members);
  const header = envelope.header;
  try {
    // 2-3. The sender's pinned key, and the signature.
    await verifySignature(envelope, senderIdentity);
    // 4. Conversation and members.
    if (header.conversationId !== conversationId) {
      throw new VerificationFailed();
    }
    const recipients = envelope.recipients;
    if (
      recipients.length !== memberSet.size ||
      !recipients.every((name) => memberSet.has(name)) ||
      !memberSet.has(header.sender)
    ) {
      throw new VerificationFailed();
    }
    // 5. Replay.
    if (seenMessageIds?.has(header.messageId)) {
      throw new VerificationFailed();
    }
    // 6-9. Unwrap, decrypt, unpad, payload.
    return { header, payload: decodePayload(await decryptPaddedPayload(envelope, me)) };
  } catch {
    throw new VerificationFailed();
  }
}
