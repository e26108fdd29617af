/**
 * History backups under a recovery key (PROTOCOL.md 15.10, backup), mirroring
 * `securechat/protocol/v2/backup.py`: the recovery key's 64-character form (Crockford
 * base32 of the key and an 8-byte checksum), the per-account, per-version backup key, and
 * sealing and opening the padded archive with AES-256-GCM. Pure: the IV is an argument.
 *
 * @module
 */

import { canonical, concatBytes, u64, utf8Decode, utf8Encode } from "../encoding.js";
import { ProtocolError, VerificationFailed } from "../errors.js";
import { aesGcmDecrypt, aesGcmEncrypt, hkdfSha256, sha256 } from "../primitives.js";
import { HISTORY_BACKUP } from "./labels.js";

export const RECOVERY_KEY_BYTES = 32;
export const RECOVERY_CHECKSUM_BYTES = 8;
export const RECOVERY_KEY_CHARACTERS = 64;
export const BACKUP_IV_BYTES = 12;
const TAG_BYTES = 16;
export const MIN_PADDED_BYTES = 4096;
export const MAX_SEALED_BACKUP_BYTES = 256 * 1024 * 1024;
export const ARCHIVE_FORMAT = "securechat/v2/history-archive";
export const RECOVERY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** @type {Map<string, number>} */
const DECODE = new Map([...RECOVERY_ALPHABET].map((char, index) => [char, index]));
// The usual misreadings of Crockford's alphabet.
DECODE.set("O", 0);
DECODE.set("I", 1);
DECODE.set("L", 1);

/**
 * @typedef {"recovery_key_malformed" | "recovery_key_checksum" | "backup_failed"
 *   | "backup_malformed" | "backup_rollback" | "backup_too_large"} BackupReason
 */

export class BackupRefused extends ProtocolError {
  /** @param {BackupReason} reason */
  constructor(reason) {
    super(reason);
    /** @type {BackupReason} */
    this.reason = reason;
  }
}

/**
 * @param {Uint8Array} key
 * @returns {Promise<Uint8Array>}
 */
async function checksum(key) {
  const digest = await sha256(canonical(HISTORY_BACKUP, ["recovery-key-checksum", key]));
  return digest.slice(0, RECOVERY_CHECKSUM_BYTES);
}

/**
 * The 64-character form shown once to the user, in 16 groups of 4.
 *
 * @param {Uint8Array} key 32 bytes
 * @returns {Promise<string>}
 */
export async function formatRecoveryKey(key) {
  if (key.length !== RECOVERY_KEY_BYTES) {
    throw new BackupRefused("recovery_key_malformed");
  }
  let number = 0n;
  for (const byte of concatBytes(key, await checksum(key))) {
    number = (number << 8n) | BigInt(byte);
  }
  let text = "";
  for (let i = RECOVERY_KEY_CHARACTERS - 1; i >= 0; i -= 1) {
    text += RECOVERY_ALPHABET[Number((number >> BigInt(5 * i)) & 31n)];
  }
  return text.match(/.{4}/g)?.join(" ") ?? text;
}

/**
 * The key from what the user typed (spaces and hyphens ignored, any case).
 *
 * @param {string} text
 * @returns {Promise<Uint8Array>}
 * @throws {BackupRefused} `recovery_key_malformed`, or `recovery_key_checksum` for a typo
 */
export async function parseRecoveryKey(text) {
  const compact = text.replace(/[\s-]/g, "").toUpperCase();
  if (compact.length !== RECOVERY_KEY_CHARACTERS) {
    throw new BackupRefused("recovery_key_malformed");
  }
  let number = 0n;
  for (const char of compact) {
    const value = DECODE.get(char);
    if (value === undefined) {
      throw new BackupRefused("recovery_key_malformed");
    }
    number = (number << 5n) | BigInt(value);
  }
  const raw = new Uint8Array(RECOVERY_KEY_BYTES + RECOVERY_CHECKSUM_BYTES);
  for (let i = raw.length - 1; i >= 0; i -= 1) {
    raw[i] = Number(number & 255n);
    number >>= 8n;
  }
  const key = raw.slice(0, RECOVERY_KEY_BYTES);
  const expected = await checksum(key);
  if (expected.some((byte, i) => byte !== raw[RECOVERY_KEY_BYTES + i])) {
    throw new BackupRefused("recovery_key_checksum");
  }
  return key;
}

/**
 * @param {string} username
 * @param {number} version
 * @returns {Uint8Array}
 */
export function backupAad(username, version) {
  return canonical(HISTORY_BACKUP, [username, u64(version)]);
}

/**
 * @param {Uint8Array} recoveryKey
 * @param {string} username
 * @param {number} version
 * @returns {Promise<Uint8Array>}
 */
export async function backupKey(recoveryKey, username, version) {
  if (recoveryKey.length !== RECOVERY_KEY_BYTES) {
    throw new BackupRefused("recovery_key_malformed");
  }
  return hkdfSha256(recoveryKey, { salt: new Uint8Array(32), info: backupAad(username, version), length: 32 });
}

/**
 * @typedef {{message_id: string, conversation_id: string, sender: string, peer: string,
 *   sent_at: number, server_ts: number, text: string}} BackupMessage
 * @typedef {{username: string, version: number, created_at: number,
 *   messages: BackupMessage[]}} Archive
 */

/**
 * Padmé, never below MIN_PADDED_BYTES (PROTOCOL.md 15.10).
 *
 * @param {number} length
 * @returns {number}
 */
export function paddedLength(length) {
  const n = Math.max(length, MIN_PADDED_BYTES);
  // Bit lengths from the binary form: exact, where Math.log2 could round.
  const exponent = n.toString(2).length - 1;
  const bits = exponent.toString(2).length;
  const mask = 2 ** (exponent - bits);
  return Math.ceil(n / mask) * mask;
}

/**
 * `u64(len(json)) ‖ json ‖ zeros`, the JSON's keys in the order of 15.10.
 *
 * @param {Archive} archive
 * @returns {Uint8Array}
 */
export function encodeArchive(archive) {
  const json = {
    format: ARCHIVE_FORMAT,
    username: archive.username,
    version: archive.version,
    created_at: archive.created_at,
    messages: archive.messages.map((m) => ({
      message_id: m.message_id,
      conversation_id: m.conversation_id,
      sender: m.sender,
      peer: m.peer,
      sent_at: m.sent_at,
      server_ts: m.server_ts,
      text: m.text,
    })),
  };
  const data = utf8Encode(JSON.stringify(json));
  const out = new Uint8Array(paddedLength(8 + data.length));
  out.set(u64(data.length), 0);
  out.set(data, 8);
  return out;
}

/**
 * @param {Uint8Array} recoveryKey
 * @param {Archive} archive
 * @param {Uint8Array} iv 12 fresh random bytes
 * @returns {Promise<Uint8Array>} iv ‖ ciphertext ‖ tag
 */
export async function sealBackup(recoveryKey, archive, iv) {
  if (iv.length !== BACKUP_IV_BYTES) {
    throw new BackupRefused("backup_malformed");
  }
  const plaintext = encodeArchive(archive);
  if (plaintext.length + BACKUP_IV_BYTES + TAG_BYTES > MAX_SEALED_BACKUP_BYTES) {
    throw new BackupRefused("backup_too_large");
  }
  const key = await backupKey(recoveryKey, archive.username, archive.version);
  const sealed = await aesGcmEncrypt(key, iv, plaintext, backupAad(archive.username, archive.version));
  return concatBytes(iv, sealed);
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function string(value) {
  if (typeof value !== "string") {
    throw new BackupRefused("backup_malformed");
  }
  return value;
}

/**
 * @param {unknown} value
 * @returns {number}
 */
function integer(value) {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new BackupRefused("backup_malformed");
  }
  return value;
}

/**
 * @param {unknown} value
 * @param {string[]} keys
 * @returns {Record<string, unknown>}
 */
function exactObject(value, keys) {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BackupRefused("backup_malformed");
  }
  const record = /** @type {Record<string, unknown>} */ (value);
  const present = Object.keys(record).sort();
  if (present.length !== keys.length || [...keys].sort().some((key, i) => key !== present[i])) {
    throw new BackupRefused("backup_malformed");
  }
  return record;
}

const MESSAGE_KEYS = ["message_id", "conversation_id", "sender", "peer", "sent_at", "server_ts", "text"];

/**
 * Open `username`'s backup `version`; refused below `highestSeen` (a rollback), if it
 * does not open under this key, account and version, or if what opens is not that
 * account's archive of that version. A wrong key never yields an archive.
 *
 * @param {Uint8Array} recoveryKey
 * @param {string} username
 * @param {number} version
 * @param {Uint8Array} sealed
 * @param {{highestSeen?: number}} [options]
 * @returns {Promise<Archive>}
 */
export async function openBackup(recoveryKey, username, version, sealed, { highestSeen = 0 } = {}) {
  if (version < highestSeen) {
    throw new BackupRefused("backup_rollback");
  }
  if (sealed.length > MAX_SEALED_BACKUP_BYTES) {
    throw new BackupRefused("backup_too_large");
  }
  if (sealed.length < BACKUP_IV_BYTES + TAG_BYTES) {
    throw new BackupRefused("backup_failed");
  }
  const key = await backupKey(recoveryKey, username, version);
  /** @type {Uint8Array} */
  let plaintext;
  try {
    plaintext = await aesGcmDecrypt(
      key,
      sealed.slice(0, BACKUP_IV_BYTES),
      sealed.slice(BACKUP_IV_BYTES),
      backupAad(username, version),
    );
  } catch (error) {
    if (error instanceof VerificationFailed) {
      throw new BackupRefused("backup_failed");
    }
    throw error;
  }
  return decodeArchive(plaintext, username, version);
}

/**
 * The archive in a padded plaintext, which must be `username`'s of `version`; else
 * `backup_malformed` (also read by a history hand-over, PROTOCOL.md 15.10.2).
 *
 * @param {Uint8Array} plaintext
 * @param {string} username
 * @param {number} version
 * @returns {Archive}
 */
export function decodeArchive(plaintext, username, version) {
  if (plaintext.length < 8) {
    throw new BackupRefused("backup_malformed");
  }
  const length = new DataView(plaintext.buffer, plaintext.byteOffset, 8).getBigUint64(0);
  if (length > BigInt(plaintext.length - 8) || plaintext.slice(8 + Number(length)).some((b) => b !== 0)) {
    throw new BackupRefused("backup_malformed");
  }
  /** @type {unknown} */
  let parsed;
  try {
    parsed = JSON.parse(utf8Decode(plaintext.slice(8, 8 + Number(length))));
  } catch {
    throw new BackupRefused("backup_malformed");
  }
  const doc = exactObject(parsed, ["format", "username", "version", "created_at", "messages"]);
  if (doc.format !== ARCHIVE_FORMAT || doc.username !== username || integer(doc.version) !== version) {
    throw new BackupRefused("backup_malformed");
  }
  if (!Array.isArray(doc.messages)) {
    throw new BackupRefused("backup_malformed");
  }
  const messages = doc.messages.map((item) => {
    const m = exactObject(item, MESSAGE_KEYS);
    return {
      message_id: string(m.message_id),
      conversation_id: string(m.conversation_id),
      sender: string(m.sender),
      peer: string(m.peer),
      sent_at: integer(m.sent_at),
      server_ts: integer(m.server_ts),
      text: string(m.text),
    };
  });
  return { username, version, created_at: integer(doc.created_at), messages };
}
