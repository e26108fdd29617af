/**
 * The fan-out envelope of a direct message (PROTOCOL.md 15.8), mirroring
 * `securechat/protocol/v2/envelope.py`.
 *
 * The body is encrypted once under a fresh content key. Each target device (the peer's
 * devices and the sender's other devices) gets, in its own ratchet message, the content
 * key and a hash binding the body to the header; the sender device signs the header,
 * which names every target device and the device-list version it came from.
 *
 * Opening is split so that the caller can keep its ratchet state until everything has
 * passed: verify the signature ({@link verifyEnvelope}), decrypt the slot with the session
 * (`ratchetDecrypt` or `acceptSession` with `extraAd = await envelope.binding()`), then
 * {@link openKeySlot} and {@link openBody}. Only then does the caller store the new state.
 *
 * @module
 */

import { b64decode, b64encode, bytesEqual, canonical, splitCanonical, u64 } from "../encoding.js";
import { MAX_CIPHERTEXT_BYTES, pad, unpad } from "../envelope.js";
import { parseConversationId, parseMessageId, parseNormalisedUsername } from "../identifiers.js";
import { GCM_IV_BYTES, aesGcmDecrypt, aesGcmEncrypt, ed25519Verify, sha256 } from "../primitives.js";
import { MAX_DEVICES, parseDeviceId } from "./devices.js";
import { MalformedInput, Refusal, VerificationFailed } from "./errors.js";
import { BODY_BINDING, KEY_SLOT, MESSAGE_HEADER_V2, MESSAGE_SIGNATURE_V2 } from "./labels.js";
import { KEY_BYTES, SIGNATURE_BYTES, ed25519SignRaw, ed25519VerifyKey } from "./primitives.js";
import { RatchetMessage, ratchetEncrypt } from "./ratchet.js";
import { exactBytes, integer, members, versionTwo } from "./wire.js";

/** @typedef {[username: string, deviceId: string]} TargetDevice */

export const MAX_TARGET_ACCOUNTS = 256;
const ENVELOPE_FIELDS = Object.freeze([
  "v",
  "message_id",
  "conversation_id",
  "sender",
  "sender_device",
  "sent_at",
  "targets",
  "iv",
  "body",
  "slots",
  "signature",
]);
const TARGET_FIELDS = Object.freeze(["username", "device_list_version", "devices"]);
const SLOT_FIELDS = Object.freeze(["username", "device_id", "message"]);

/**
 * Order of (username, device id) pairs as Python orders tuples of str: by code point,
 * which for these ASCII identifiers is the default string comparison.
 *
 * @param {TargetDevice} first
 * @param {TargetDevice} second
 * @returns {number}
 */
export function compareTargetDevices(first, second) {
  for (const index of [0, 1]) {
    if (first[index] < second[index]) return -1;
    if (first[index] > second[index]) return 1;
  }
  return 0;
}

/**
 * The key of a target device in the `sessions` map given to {@link sealEnvelope}
 * (usernames and device ids never contain "/").
 *
 * @param {string} username
 * @param {string} deviceId
 * @returns {string}
 */
export function targetKey(username, deviceId) {
  return `${username}/${deviceId}`;
}

/** One account of the conversation and the devices of its list that get the key. */
export class Target {
  /**
   * @param {string} username
   * @param {number} deviceListVersion
   * @param {readonly string[]} devices
   */
  constructor(username, deviceListVersion, devices) {
    this.username = username;
    this.deviceListVersion = deviceListVersion;
    /** @type {readonly string[]} */
    this.devices = Object.freeze([...devices]);
    Object.freeze(this);
  }
}

export class HeaderV2 {
  /**
   * @param {{messageId: string, conversationId: string, sender: string, senderDevice: string, sentAt: number, targets: readonly Target[]}} fields
   */
  constructor({ messageId, conversationId, sender, senderDevice, sentAt, targets }) {
    this.messageId = messageId;
    this.conversationId = conversationId;
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.sentAt = sentAt;
    /** @type {readonly Target[]} */
    this.targets = Object.freeze([...targets]);
    Object.freeze(this);
  }

  /** @returns {Uint8Array} */
  toBytes() {
    /** @type {(Uint8Array | string)[]} */
    const fields = [
      u64(2),
      this.messageId,
      this.conversationId,
      this.sender,
      this.senderDevice,
      u64(this.sentAt),
      u64(this.targets.length),
    ];
    for (const target of this.targets) {
      fields.push(target.username, u64(target.deviceListVersion), u64(target.devices.length), ...target.devices);
    }
    return canonical(MESSAGE_HEADER_V2, fields);
  }

  /** @returns {TargetDevice[]} */
  targetDevices() {
    return this.targets.flatMap((target) => target.devices.map((device) => /** @type {TargetDevice} */ ([target.username, device])));
  }
}

export class Slot {
  /**
   * @param {string} username
   * @param {string} deviceId
   * @param {RatchetMessage} message
   */
  constructor(username, deviceId, message) {
    this.username = username;
    this.deviceId = deviceId;
    this.message = message;
    Object.freeze(this);
  }
}

export class EnvelopeV2 {
  /**
   * @param {{header: HeaderV2, iv: Uint8Array, body: Uint8Array, slots: readonly Slot[], signature: Uint8Array}} fields
   */
  constructor({ header, iv, body, slots, signature }) {
    this.header = header;
    this.iv = iv;
    this.body = body;
    /** @type {readonly Slot[]} */
    this.slots = Object.freeze([...slots]);
    this.signature = signature;
    Object.freeze(this);
  }

  /** @returns {Promise<Uint8Array>} the hash binding body and header (a fresh copy) */
  async binding() {
    let binding = bindings.get(this);
    if (binding === undefined) {
      // Hashed once per envelope (whose arrays, like a state's, are never written to):
      // the signature, the ratchet's extra AD and the key slot all use it.
      binding = bodyBinding(headerBytes(this.header), this.iv, this.body);
      bindings.set(this, binding);
    }
    return (await binding).slice();
  }

  /**
   * @param {string} username
   * @param {string} deviceId
   * @returns {Slot | null}
   */
  slotFor(username, deviceId) {
    return this.slots.find((slot) => slot.username === username && slot.deviceId === deviceId) ?? null;
  }

  /** @returns {Record<string, unknown>} */
  toWire() {
    const h = this.header;
    return {
      v: 2,
      message_id: h.messageId,
      conversation_id: h.conversationId,
      sender: h.sender,
      sender_device: h.senderDevice,
      sent_at: h.sentAt,
      targets: h.targets.map((t) => ({ username: t.username, device_list_version: t.deviceListVersion, devices: [...t.devices] })),
      iv: b64encode(this.iv),
      body: b64encode(this.body),
      slots: this.slots.map((s) => ({ username: s.username, device_id: s.deviceId, message: s.message.toWire() })),
      signature: b64encode(this.signature),
    };
  }

  /**
   * Parse (15.8): the exact member set, sizes, orders, and slots only for targets.
   *
   * @param {unknown} data
   * @returns {EnvelopeV2}
   * @throws {MalformedInput | import("./errors.js").UnsupportedVersion}
   */
  static fromWire(data) {
    const obj = members(data, ENVELOPE_FIELDS);
    versionTwo(obj.v);
    const sentAt = integer(obj.sent_at);
    const messageId = parseMessageId(obj.message_id);
    const conversationId = parseConversationId(obj.conversation_id);
    const sender = parseNormalisedUsername(obj.sender, "sender");
    const senderDevice = parseDeviceId(obj.sender_device);
    const rawTargets = obj.targets;
    if (!Array.isArray(rawTargets) || rawTargets.length < 1 || rawTargets.length > MAX_TARGET_ACCOUNTS) {
      throw new MalformedInput("targets");
    }
    /** @type {Target[]} */
    const targets = [];
    for (const raw of rawTargets) {
      const entry = members(raw, TARGET_FIELDS);
      const devices = entry.devices;
      if (!Array.isArray(devices) || devices.length > MAX_DEVICES) {
        throw new MalformedInput("target devices");
      }
      const ids = devices.map(parseDeviceId);
      for (let index = 1; index < ids.length; index += 1) {
        if (ids[index - 1] >= ids[index]) throw new MalformedInput("target devices must be strictly ascending");
      }
      targets.push(new Target(parseNormalisedUsername(entry.username), integer(entry.device_list_version, { minimum: 1 }), ids));
    }
    for (let index = 1; index < targets.length; index += 1) {
      if (targets[index - 1].username >= targets[index].username) throw new MalformedInput("targets must be strictly ascending");
    }
    const header = new HeaderV2({ messageId, conversationId, sender, senderDevice, sentAt, targets });
    const targetDevices = header.targetDevices();
    const targetKeys = new Set(targetDevices.map(([username, device]) => targetKey(username, device)));
    if (targetKeys.has(targetKey(sender, senderDevice))) {
      throw new MalformedInput("the sender's own device is not a target");
    }
    const iv = exactBytes(obj.iv, GCM_IV_BYTES);
    if (typeof obj.body !== "string") {
      throw new MalformedInput("body");
    }
    const body = b64decode(obj.body, { maxBytes: MAX_CIPHERTEXT_BYTES });
    const rawSlots = obj.slots;
    if (!Array.isArray(rawSlots) || rawSlots.length < 1 || rawSlots.length > targetDevices.length) {
      throw new MalformedInput("slots");
    }
    /** @type {Slot[]} */
    const slots = [];
    for (const raw of rawSlots) {
      const entry = members(raw, SLOT_FIELDS);
      slots.push(new Slot(parseNormalisedUsername(entry.username), parseDeviceId(entry.device_id), RatchetMessage.fromWire(entry.message)));
    }
    for (let index = 0; index < slots.length; index += 1) {
      const slot = slots[index];
      const ascending =
        index === 0 ||
        compareTargetDevices([slots[index - 1].username, slots[index - 1].deviceId], [slot.username, slot.deviceId]) < 0;
      if (!ascending || !targetKeys.has(targetKey(slot.username, slot.deviceId))) {
        throw new MalformedInput("slots must be strictly ascending and for target devices");
      }
    }
    const signature = exactBytes(obj.signature, SIGNATURE_BYTES);
    return new EnvelopeV2({ header, iv, body, slots, signature });
  }
}

/**
 * The bindings of envelopes (frozen, so kept beside them) and the bytes of headers, each
 * computed once; the arrays kept here are never handed out to be written to.
 *
 * @type {WeakMap<EnvelopeV2, Promise<Uint8Array>>}
 */
const bindings = new WeakMap();
/** @type {WeakMap<HeaderV2, Uint8Array>} */
const headerBytesCache = new WeakMap();

/**
 * `header.toBytes()`, kept for the header (only read: AAD and canonical input).
 *
 * @param {HeaderV2} header
 * @returns {Uint8Array}
 */
function headerBytes(header) {
  let bytes = headerBytesCache.get(header);
  if (bytes === undefined) {
    bytes = header.toBytes();
    headerBytesCache.set(header, bytes);
  }
  return bytes;
}

/**
 * @param {Uint8Array} headerBytes
 * @param {Uint8Array} iv
 * @param {Uint8Array} body
 * @returns {Promise<Uint8Array>}
 */
export function bodyBinding(headerBytes, iv, body) {
  return sha256(canonical(BODY_BINDING, [headerBytes, iv, body]));
}

/**
 * @param {Uint8Array} contentKey
 * @param {Uint8Array} binding
 * @returns {Uint8Array}
 */
export function keySlotPlaintext(contentKey, binding) {
  return canonical(KEY_SLOT, [contentKey, binding]);
}

/**
 * @param {Uint8Array} headerBytes
 * @param {Uint8Array} binding
 * @returns {Uint8Array}
 */
export function envelopeSignatureInput(headerBytes, binding) {
  return canonical(MESSAGE_SIGNATURE_V2, [headerBytes, binding]);
}

/**
 * Seal `payload` (encoded payload bytes, 7.2) once and give every target device its slot
 * through its session; returns the envelope and the sessions' new states (keyed by
 * {@link targetKey}). A target device without a session is `session_unknown`: the caller
 * sets one up first.
 *
 * @param {HeaderV2} header
 * @param {Uint8Array} payload
 * @param {Uint8Array} contentKey 32 random bytes
 * @param {Uint8Array} iv 12 random bytes
 * @param {ReadonlyMap<string, import("./ratchet.js").SessionState>} sessions by {@link targetKey}
 * @param {Uint8Array} senderSigningSeed
 * @param {import("./primitives.js").RandomSource} random
 * @returns {Promise<{envelope: EnvelopeV2, states: Map<string, import("./ratchet.js").SessionState>}>}
 */
export async function sealEnvelope(header, payload, contentKey, iv, sessions, senderSigningSeed, random) {
  if (contentKey.length !== KEY_BYTES) {
    throw new MalformedInput("a content key is 32 bytes");
  }
  const headerBytes = header.toBytes();
  const body = await aesGcmEncrypt(contentKey, iv, pad(payload), headerBytes);
  const binding = await bodyBinding(headerBytes, iv, body);
  /** @type {Map<string, import("./ratchet.js").SessionState>} */
  const states = new Map();
  /** @type {Slot[]} */
  const slots = [];
  for (const [username, deviceId] of header.targetDevices().sort(compareTargetDevices)) {
    const key = targetKey(username, deviceId);
    const state = sessions.get(key);
    if (state === undefined) {
      throw new Refusal("session_unknown");
    }
    const sealed = await ratchetEncrypt(state, keySlotPlaintext(contentKey, binding), binding, random);
    states.set(key, sealed.state);
    slots.push(new Slot(username, deviceId, sealed.message));
  }
  const signature = await ed25519SignRaw(senderSigningSeed, envelopeSignatureInput(headerBytes, binding));
  return { envelope: new EnvelopeV2({ header, iv, body, slots, signature }), states };
}

/**
 * The sender device's signature (`VerificationFailed`: `bad_signature` in the core).
 * `senderDevice` comes from the sender's accepted device list (`device_not_listed`
 * when it is not there is the caller's check).
 *
 * @param {EnvelopeV2} envelope
 * @param {import("./devices.js").Device} senderDevice
 * @returns {Promise<void>}
 * @throws {VerificationFailed | MalformedInput}
 */
export async function verifyEnvelope(envelope, senderDevice) {
  if (envelope.header.senderDevice !== senderDevice.deviceId) {
    throw new VerificationFailed();
  }
  // The key import and the binding's hash run together; a key the platform refuses
  // fails here as it did in ed25519VerifyRaw.
  const [binding, key] = await Promise.all([envelope.binding(), ed25519VerifyKey(senderDevice.signingKey)]);
  await ed25519Verify(key, envelope.signature, envelopeSignatureInput(headerBytes(envelope.header), binding));
}

/**
 * The content key from a decrypted slot, whose binding must be this envelope's.
 *
 * @param {EnvelopeV2} envelope
 * @param {Uint8Array} slotPlaintext
 * @returns {Promise<Uint8Array>}
 * @throws {VerificationFailed}
 */
export async function openKeySlot(envelope, slotPlaintext) {
  let fields;
  try {
    fields = splitCanonical(slotPlaintext, KEY_SLOT);
  } catch (error) {
    if (error instanceof MalformedInput) throw new VerificationFailed();
    throw error;
  }
  if (fields.length !== 2 || fields[0].length !== KEY_BYTES || !bytesEqual(fields[1], await envelope.binding())) {
    throw new VerificationFailed();
  }
  return fields[0];
}

/**
 * The payload bytes: AES-256-GCM with the header as AAD, then unpadding (7.3).
 *
 * @param {EnvelopeV2} envelope
 * @param {Uint8Array} contentKey
 * @returns {Promise<Uint8Array>}
 * @throws {VerificationFailed}
 */
export async function openBody(envelope, contentKey) {
  return unpad(await aesGcmDecrypt(contentKey, envelope.iv, envelope.body, headerBytes(envelope.header)));
}
