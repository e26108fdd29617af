/**
 * Device certificates and the signed device list (PROTOCOL.md 15.3), mirroring
 * `securechat/protocol/v2/devices.py`.
 *
 * @module
 */

import { b64encode, bytesEqual, canonical, u64 } from "../encoding.js";
import { parseNormalisedUsername } from "../identifiers.js";
import { ed25519Sign, sha256 } from "../primitives.js";
import { MalformedInput, Refusal, VerificationFailed } from "./errors.js";
import { DEVICE_CERTIFICATE, DEVICE_LIST } from "./labels.js";
import {
  KEY_BYTES,
  SIGNATURE_BYTES,
  checkEd25519Raw,
  checkX25519Raw,
  deviceId,
  ed25519RawPublic,
  ed25519SignRaw,
  ed25519VerifyRaw,
} from "./primitives.js";
import { exactBytes, integer, members, versionTwo } from "./wire.js";

export const MAX_DEVICES = 32;
const DEVICE_ID_RE = /^[0-9a-f]{32}$/;
const LIST_FIELDS = Object.freeze(["v", "username", "account_key", "version", "issued_at", "devices", "signature"]);
const DEVICE_FIELDS = Object.freeze(["device_id", "signing_key", "dh_key", "created_at"]);

/**
 * A device id: 32 lower-case hex digits (as text on the wire and in signed bytes).
 *
 * @param {unknown} value
 * @returns {string}
 * @throws {MalformedInput}
 */
export function parseDeviceId(value) {
  if (typeof value !== "string" || !DEVICE_ID_RE.test(value)) {
    throw new MalformedInput("device id");
  }
  return value;
}

/** One listed device: its keys and the account's certificate (empty when missing). */
export class Device {
  /**
   * @param {{deviceId: string, signingKey: Uint8Array, dhKey: Uint8Array, createdAt: number, certificate: Uint8Array}} fields
   *   signingKey: Ed25519, raw 32 bytes; dhKey: X25519, raw 32 bytes
   */
  constructor({ deviceId, signingKey, dhKey, createdAt, certificate }) {
    this.deviceId = deviceId;
    this.signingKey = signingKey;
    this.dhKey = dhKey;
    this.createdAt = createdAt;
    this.certificate = certificate;
    Object.freeze(this);
  }

  /** @returns {Record<string, unknown>} */
  toWire() {
    /** @type {Record<string, unknown>} */
    const wire = {
      device_id: this.deviceId,
      signing_key: b64encode(this.signingKey),
      dh_key: b64encode(this.dhKey),
      created_at: this.createdAt,
    };
    if (this.certificate.length > 0) {
      wire.certificate = b64encode(this.certificate);
    }
    return wire;
  }
}

/** An account's signed list of its devices. */
export class DeviceList {
  /**
   * @param {{username: string, accountKey: Uint8Array, version: number, issuedAt: number, devices: readonly Device[], signature: Uint8Array}} fields
   */
  constructor({ username, accountKey, version, issuedAt, devices, signature }) {
    this.username = username;
    this.accountKey = accountKey;
    this.version = version;
    this.issuedAt = issuedAt;
    /** @type {readonly Device[]} */
    this.devices = Object.freeze([...devices]);
    this.signature = signature;
    Object.freeze(this);
  }

  /** The bytes the account key signs. */
  get signedBytes() {
    return deviceListBytes(this.username, this.accountKey, this.version, this.issuedAt, this.devices);
  }

  /** @returns {Promise<Uint8Array>} SHA-256 of the signed bytes */
  async listHash() {
    return sha256(this.signedBytes);
  }

  /**
   * The listed device with this id; `device_not_listed` otherwise.
   *
   * @param {string} id
   * @returns {Device}
   * @throws {Refusal}
   */
  device(id) {
    const found = this.devices.find((entry) => entry.deviceId === id);
    if (found === undefined) throw new Refusal("device_not_listed");
    return found;
  }

  /** @returns {Record<string, unknown>} */
  toWire() {
    return {
      v: 2,
      username: this.username,
      account_key: b64encode(this.accountKey),
      version: this.version,
      issued_at: this.issuedAt,
      devices: this.devices.map((entry) => entry.toWire()),
      signature: b64encode(this.signature),
    };
  }
}

/** What a client keeps of the list it accepted last: enough to refuse a rollback. */
export class KnownList {
  /**
   * @param {number} version
   * @param {Uint8Array} listHash
   */
  constructor(version, listHash) {
    this.version = version;
    this.listHash = listHash;
    Object.freeze(this);
  }
}

/**
 * @param {string} username
 * @param {Uint8Array} accountKey
 * @param {string} id
 * @param {Uint8Array} signingKey
 * @param {Uint8Array} dhKey
 * @param {number} createdAt
 * @returns {Uint8Array}
 */
export function certificateBytes(username, accountKey, id, signingKey, dhKey, createdAt) {
  return canonical(DEVICE_CERTIFICATE, [username, accountKey, id, signingKey, dhKey, u64(createdAt)]);
}

/**
 * @param {string} username
 * @param {Uint8Array} accountKey
 * @param {number} version
 * @param {number} issuedAt
 * @param {readonly Device[]} devices
 * @returns {Uint8Array}
 */
export function deviceListBytes(username, accountKey, version, issuedAt, devices) {
  /** @type {(Uint8Array | string)[]} */
  const fields = [username, accountKey, u64(version), u64(issuedAt), u64(devices.length)];
  for (const entry of devices) {
    fields.push(entry.deviceId, entry.signingKey, entry.dhKey, u64(entry.createdAt), entry.certificate);
  }
  return canonical(DEVICE_LIST, fields);
}

/**
 * What signs for an account (the owning side): its raw Ed25519 public key and a function
 * that signs bytes with its private key. A client holding the raw seed uses
 * {@link seedSigner}; one whose key is a non-extractable Web Crypto key (the browser)
 * uses {@link cryptoKeySigner}, so the signed bytes are assembled here either way.
 *
 * @typedef {object} Signer
 * @property {Uint8Array} accountKey raw 32 bytes
 * @property {(message: Uint8Array) => Promise<Uint8Array>} sign
 */

/**
 * @param {Uint8Array} accountSeed
 * @returns {Promise<Signer>}
 */
export async function seedSigner(accountSeed) {
  return { accountKey: await ed25519RawPublic(accountSeed), sign: (message) => ed25519SignRaw(accountSeed, message) };
}

/**
 * @param {Uint8Array} accountKey the raw public key of `privateKey`
 * @param {CryptoKey} privateKey an Ed25519 private key (may be non-extractable)
 * @returns {Signer}
 */
export function cryptoKeySigner(accountKey, privateKey) {
  checkEd25519Raw(accountKey);
  return { accountKey, sign: (message) => ed25519Sign(privateKey, message) };
}

/**
 * The account key certifies a device's signing and DH keys (the owning side).
 *
 * @param {Uint8Array} accountSeed
 * @param {string} username
 * @param {Uint8Array} signingKey
 * @param {Uint8Array} dhKey
 * @param {number} createdAt
 * @returns {Promise<Device>}
 */
export async function certifyDevice(accountSeed, username, signingKey, dhKey, createdAt) {
  return certifyDeviceWith(await seedSigner(accountSeed), username, signingKey, dhKey, createdAt);
}

/**
 * {@link certifyDevice} with a {@link Signer}.
 *
 * @param {Signer} signer
 * @param {string} username
 * @param {Uint8Array} signingKey
 * @param {Uint8Array} dhKey
 * @param {number} createdAt
 * @returns {Promise<Device>}
 */
export async function certifyDeviceWith(signer, username, signingKey, dhKey, createdAt) {
  const id = await deviceId(signingKey);
  const signed = certificateBytes(username, signer.accountKey, id, signingKey, dhKey, createdAt);
  return new Device({ deviceId: id, signingKey, dhKey, createdAt, certificate: await signer.sign(signed) });
}

/**
 * Sign a list of devices (sorted here by id) as version `version` (the owning side).
 *
 * @param {Uint8Array} accountSeed
 * @param {string} username
 * @param {number} version
 * @param {number} issuedAt
 * @param {readonly Device[]} devices
 * @returns {Promise<DeviceList>}
 */
export async function signDeviceList(accountSeed, username, version, issuedAt, devices) {
  return signDeviceListWith(await seedSigner(accountSeed), username, version, issuedAt, devices);
}

/**
 * {@link signDeviceList} with a {@link Signer}.
 *
 * @param {Signer} signer
 * @param {string} username
 * @param {number} version
 * @param {number} issuedAt
 * @param {readonly Device[]} devices
 * @returns {Promise<DeviceList>}
 */
export async function signDeviceListWith(signer, username, version, issuedAt, devices) {
  // Default string order: code units, which is byte order for hex ids (as Python's sort).
  const ordered = [...devices].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  const accountKey = signer.accountKey;
  const signed = deviceListBytes(username, accountKey, version, issuedAt, ordered);
  return new DeviceList({
    username,
    accountKey,
    version,
    issuedAt,
    devices: ordered,
    signature: await signer.sign(signed),
  });
}

/**
 * Parse a device list's wire form (15.3 step 1); checks no signature.
 *
 * @param {unknown} data
 * @returns {DeviceList}
 * @throws {MalformedInput | import("./errors.js").UnsupportedVersion}
 */
export function parseDeviceList(data) {
  const obj = members(data, LIST_FIELDS);
  versionTwo(obj.v);
  const username = parseNormalisedUsername(obj.username);
  const accountKey = checkEd25519Raw(exactBytes(obj.account_key, KEY_BYTES));
  const version = integer(obj.version, { minimum: 1 });
  const issuedAt = integer(obj.issued_at);
  const rawDevices = obj.devices;
  if (!Array.isArray(rawDevices) || rawDevices.length < 1 || rawDevices.length > MAX_DEVICES) {
    throw new MalformedInput("1 to 32 devices");
  }
  /** @type {Device[]} */
  const devices = [];
  for (const raw of rawDevices) {
    const entry = members(raw, DEVICE_FIELDS, ["certificate"]);
    const id = parseDeviceId(entry.device_id);
    const signingKey = checkEd25519Raw(exactBytes(entry.signing_key, KEY_BYTES));
    const dhKey = checkX25519Raw(exactBytes(entry.dh_key, KEY_BYTES));
    const createdAt = integer(entry.created_at);
    const certificate = Object.hasOwn(entry, "certificate")
      ? exactBytes(entry.certificate, SIGNATURE_BYTES)
      : new Uint8Array(0);
    devices.push(new Device({ deviceId: id, signingKey, dhKey, createdAt, certificate }));
  }
  for (let index = 1; index < devices.length; index += 1) {
    if (devices[index - 1].deviceId >= devices[index].deviceId) {
      throw new MalformedInput("devices must be in strictly ascending id order");
    }
  }
  const signature = exactBytes(obj.signature, SIGNATURE_BYTES);
  return new DeviceList({ username, accountKey, version, issuedAt, devices, signature });
}

/**
 * PROTOCOL.md 15.3: parse, check the account's signature, every certificate, and that
 * the list does not roll back the one accepted before. Returns the list.
 *
 * @param {unknown} data
 * @param {string} username the (normalised) account the list was fetched for
 * @param {Uint8Array} accountKey the account key pinned for it
 * @param {KnownList | null} known the list accepted before, if any
 * @returns {Promise<DeviceList>}
 * @throws {MalformedInput | import("./errors.js").UnsupportedVersion | Refusal}
 */
export async function checkDeviceList(data, username, accountKey, known) {
  const deviceList = parseDeviceList(data);
  if (deviceList.username !== username || !bytesEqual(deviceList.accountKey, accountKey)) {
    throw new Refusal("device_list_invalid");
  }
  await refuseUnverified(
    () => ed25519VerifyRaw(accountKey, deviceList.signature, deviceList.signedBytes),
    "device_list_invalid",
  );
  for (const entry of deviceList.devices) {
    if (entry.certificate.length === 0 || entry.deviceId !== (await deviceId(entry.signingKey))) {
      throw new Refusal("device_certificate_invalid");
    }
    const signed = certificateBytes(username, accountKey, entry.deviceId, entry.signingKey, entry.dhKey, entry.createdAt);
    await refuseUnverified(() => ed25519VerifyRaw(accountKey, entry.certificate, signed), "device_certificate_invalid");
  }
  if (known !== null) {
    const rolledBack =
      deviceList.version < known.version ||
      (deviceList.version === known.version && !bytesEqual(await deviceList.listHash(), known.listHash));
    if (rolledBack) throw new Refusal("device_list_rollback");
  }
  return deviceList;
}

/**
 * Run a signature check, turning its `VerificationFailed` into a refusal with `reason`
 * (a `MalformedInput` for a bad key passes through, as in Python).
 *
 * @param {() => Promise<void>} check
 * @param {import("./errors.js").V2Reason} reason
 * @returns {Promise<void>}
 */
export async function refuseUnverified(check, reason) {
  try {
    await check();
  } catch (error) {
    if (error instanceof VerificationFailed) throw new Refusal(reason);
    throw error;
  }
}
