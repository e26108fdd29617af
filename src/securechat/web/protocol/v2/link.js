/**
 * Linking a device: its link code and the hand-over archive (PROTOCOL.md 15.10.2),
 * mirroring `securechat/protocol/v2/link.py`. The code is 104 bits of SHA-256 over the
 * account and the device's id, signing and DH keys, with a 16-bit checksum, shown as 24
 * Crockford base32 characters in 6 groups of 4. The archive is 15.10.1's with version 0.
 *
 * @module
 */

import { canonical, concatBytes } from "../encoding.js";
import { ProtocolError } from "../errors.js";
import { sha256 } from "../primitives.js";
import { BackupRefused, RECOVERY_ALPHABET, decodeArchive, encodeArchive } from "./backup.js";
import { HISTORY_LINK } from "./labels.js";

export const LINK_VALUE_BYTES = 13;
const CHECK_BYTES = 2;
export const LINK_CODE_CHARACTERS = 24;
export const LINK_ARCHIVE_VERSION = 0;
export const MAX_LINK_ARCHIVE_BYTES = 256 * 1024 * 1024;

/** @type {Map<string, number>} */
const DECODE = new Map([...RECOVERY_ALPHABET].map((char, index) => [char, index]));
DECODE.set("O", 0);
DECODE.set("I", 1);
DECODE.set("L", 1);

/** @typedef {"link_code_malformed" | "link_code_checksum" | "link_archive_malformed"} LinkCodeReason */

export class LinkRefused extends ProtocolError {
  /** @param {LinkCodeReason} reason */
  constructor(reason) {
    super(reason);
    /** @type {LinkCodeReason} */
    this.reason = reason;
  }
}

/**
 * @typedef {object} LinkableDevice
 * @property {string} deviceId
 * @property {Uint8Array} signingKey
 * @property {Uint8Array} dhKey
 */

/**
 * The 13 bytes a device's code stands for.
 *
 * @param {string} username
 * @param {LinkableDevice} device
 * @returns {Promise<Uint8Array>}
 */
export async function linkValue(username, device) {
  const data = canonical(HISTORY_LINK, ["link-code", username, device.deviceId, device.signingKey, device.dhKey]);
  return (await sha256(data)).slice(0, LINK_VALUE_BYTES);
}

/**
 * @param {Uint8Array} value
 * @returns {Promise<Uint8Array>}
 */
async function check(value) {
  return (await sha256(canonical(HISTORY_LINK, ["link-code-checksum", value]))).slice(0, CHECK_BYTES);
}

/**
 * The 24 characters shown, in 6 groups of 4 joined by hyphens.
 *
 * @param {Uint8Array} value 13 bytes
 * @returns {Promise<string>}
 */
export async function formatLinkCode(value) {
  if (value.length !== LINK_VALUE_BYTES) {
    throw new LinkRefused("link_code_malformed");
  }
  let number = 0n;
  for (const byte of concatBytes(value, await check(value))) {
    number = (number << 8n) | BigInt(byte);
  }
  let text = "";
  for (let i = LINK_CODE_CHARACTERS - 1; i >= 0; i -= 1) {
    text += RECOVERY_ALPHABET[Number((number >> BigInt(5 * i)) & 31n)];
  }
  return text.match(/.{4}/g)?.join("-") ?? text;
}

/**
 * @param {string} username
 * @param {LinkableDevice} device
 * @returns {Promise<string>}
 */
export async function linkCode(username, device) {
  return formatLinkCode(await linkValue(username, device));
}

/**
 * The 13-byte value from what the user typed (spaces and hyphens ignored, any case).
 *
 * @param {string} text
 * @returns {Promise<Uint8Array>}
 * @throws {LinkRefused} `link_code_malformed`, or `link_code_checksum` for a typo
 */
export async function parseLinkCode(text) {
  const compact = text.replace(/[\s-]/g, "").toUpperCase();
  if (compact.length !== LINK_CODE_CHARACTERS) {
    throw new LinkRefused("link_code_malformed");
  }
  let number = 0n;
  for (const char of compact) {
    const value = DECODE.get(char);
    if (value === undefined) {
      throw new LinkRefused("link_code_malformed");
    }
    number = (number << 5n) | BigInt(value);
  }
  const raw = new Uint8Array(LINK_VALUE_BYTES + CHECK_BYTES);
  for (let i = raw.length - 1; i >= 0; i -= 1) {
    raw[i] = Number(number & 255n);
    number >>= 8n;
  }
  const value = raw.slice(0, LINK_VALUE_BYTES);
  const expected = await check(value);
  if (expected.some((byte, i) => byte !== raw[LINK_VALUE_BYTES + i])) {
    throw new LinkRefused("link_code_checksum");
  }
  return value;
}

/**
 * The padded archive (15.10.1) that is encrypted as a file; its version must be 0.
 *
 * @param {import("./backup.js").Archive} archive
 * @returns {Uint8Array}
 */
export function encodeLinkArchive(archive) {
  if (archive.version !== LINK_ARCHIVE_VERSION) {
    throw new LinkRefused("link_archive_malformed");
  }
  return encodeArchive(archive);
}

/**
 * The archive in a downloaded, checked file: `username`'s, version 0.
 *
 * @param {Uint8Array} plaintext
 * @param {string} username
 * @returns {import("./backup.js").Archive}
 * @throws {LinkRefused} `link_archive_malformed`
 */
export function openLinkArchive(plaintext, username) {
  try {
    return decodeArchive(plaintext, username, LINK_ARCHIVE_VERSION);
  } catch (error) {
    if (error instanceof BackupRefused) {
      throw new LinkRefused("link_archive_malformed");
    }
    throw error;
  }
}
