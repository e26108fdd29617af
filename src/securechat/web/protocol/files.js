/**
 * Encrypted files (PROTOCOL.md 12), mirroring `securechat/protocol/files.py`.
 *
 * A file is encrypted on the sender with a fresh AES-256-GCM key in chunks of exactly
 * `FILE_CHUNK_BYTES` plaintext bytes (the last one shorter, possibly empty). Each
 * chunk's nonce and associated data name the file, the chunk's index and whether it is
 * the last chunk, so a chunk cannot be reordered, dropped, moved to another file or the
 * file cut short without a failed tag. The key, name, media type, size and SHA-256 of
 * the plaintext travel inside a signed, encrypted message payload of type `file`.
 *
 * Encryption and decryption work one chunk at a time so neither side ever holds more
 * than a chunk. Unlike the Python code, {@link FileEncryptor} and {@link FileDecryptor}
 * do not hash: Web Crypto has no incremental SHA-256, so the caller hashes the whole
 * plaintext and hands the digest to {@link FileEncryptor#descriptor} and
 * {@link FileDecryptor#finish}, which compares it with the descriptor's.
 *
 * Keys are raw bytes (`Uint8Array`), as everywhere in these modules (see primitives.js).
 *
 * @module
 */

import {
  asBytes,
  b64decode,
  b64encode,
  bytesEqual,
  canonical,
  concatBytes,
  fromHex,
  isPlainObject,
  toHex,
  u32,
  u64,
} from "./encoding.js";
import { MalformedInput, VerificationFailed } from "./errors.js";
import { checkText, newMessageId, parseMessageId } from "./identifiers.js";
import { FILE_CHUNK } from "./labels.js";
import { AES_KEY_BYTES, GCM_TAG_BYTES, aesGcmDecrypt, aesGcmEncrypt } from "./primitives.js";

/** @import { MessageId } from "./identifiers.js" */

export const FILE_CHUNK_BYTES = 1024 * 1024;
/** The protocol's bound (`size < 2^53`); servers set a much lower limit. */
export const MAX_FILE_BYTES = Number.MAX_SAFE_INTEGER;
export const MAX_FILE_NAME_CHARS = 255;
export const MAX_MEDIA_TYPE_CHARS = 255;
export const DEFAULT_MEDIA_TYPE = "application/octet-stream";
export const SHA256_BYTES = 32;
/** Inline previews only for raster formats a browser decodes without running code (12.5). */
export const PREVIEWABLE_MEDIA_TYPES = Object.freeze(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Number of chunks for a file of `size` bytes; an empty file is one empty chunk (12.1).
 *
 * @param {unknown} size an integer, 0 <= size < 2^53
 * @returns {number}
 * @throws {MalformedInput}
 */
export function chunkCount(size) {
  // Number.isSafeInteger: not a boolean, not 1.5, not 2^53 (JSON.parse cannot tell 1
  // from 1.0; PROTOCOL.md Appendix A.4).
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new MalformedInput("file size out of range");
  }
  // size / 2^20 is exact in floating point for every size below 2^53.
  return Math.max(1, Math.ceil(size / FILE_CHUNK_BYTES));
}

/**
 * Plaintext bytes in chunk `index` of a file of `size` bytes.
 *
 * @param {number} size
 * @param {number} index 0 <= index < chunkCount(size)
 * @returns {number}
 * @throws {MalformedInput}
 */
export function chunkPlaintextSize(size, index) {
  const count = chunkCount(size);
  if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new MalformedInput("chunk index out of range");
  }
  if (index < count - 1) {
    return FILE_CHUNK_BYTES;
  }
  return size - (count - 1) * FILE_CHUNK_BYTES;
}

/**
 * Bytes of chunk `index` as stored and transferred: its plaintext size plus the tag.
 *
 * @param {number} size
 * @param {number} index
 * @returns {number}
 * @throws {MalformedInput}
 */
export function chunkCiphertextSize(size, index) {
  return chunkPlaintextSize(size, index) + GCM_TAG_BYTES;
}

/**
 * `u64(index) ‖ u32(last)`: unique per chunk under a key used for one file only (12.2).
 *
 * @param {number | bigint} index 0 <= index < 2^64 (a BigInt above 2^53)
 * @param {boolean} last
 * @returns {Uint8Array} 12 bytes
 * @throws {MalformedInput}
 */
export function chunkNonce(index, last) {
  return concatBytes(u64(chunkIndex(index)), u32(lastFlag(last)));
}

/**
 * `canonical(FILE_CHUNK, file_id, u64(index), u64(last))`: the chunk's AES-GCM AAD (12.2).
 *
 * @param {MessageId} fileId
 * @param {number | bigint} index
 * @param {boolean} last
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function chunkAad(fileId, index, last) {
  return canonical(FILE_CHUNK, [fileId, u64(chunkIndex(index)), u64(lastFlag(last))]);
}

/**
 * Encrypt one chunk; returns ciphertext ‖ tag.
 *
 * @param {Uint8Array} key the file key, 32 bytes
 * @param {MessageId} fileId
 * @param {number | bigint} index
 * @param {boolean} last
 * @param {Uint8Array} plaintext
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 * @throws {MalformedInput} for a key that is not 32 bytes (a caller's mistake)
 */
export async function encryptChunk(key, fileId, index, last, plaintext) {
  const keyBytes = asBytes(key);
  // Stricter than Python, which would take a 16- or 24-byte key: file keys are 32 bytes.
  if (keyBytes.length !== AES_KEY_BYTES) {
    throw new MalformedInput("the file key must be 32 bytes");
  }
  return aesGcmEncrypt(keyBytes, chunkNonce(index, last), asBytes(plaintext), chunkAad(fileId, index, last));
}

/**
 * Decrypt one chunk. A chunk from another file, position or length, a chunk that was
 * last but is not now (or the other way round), an altered chunk and a key that is not
 * 32 bytes all fail alike.
 *
 * @param {Uint8Array} key the file key, 32 bytes
 * @param {MessageId} fileId
 * @param {number | bigint} index
 * @param {boolean} last
 * @param {Uint8Array} ciphertext ciphertext ‖ tag
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 * @throws {VerificationFailed}
 * @throws {MalformedInput} for an index that is not an integer below 2^64 (a caller's mistake)
 */
export async function decryptChunk(key, fileId, index, last, ciphertext) {
  const keyBytes = asBytes(key);
  const nonce = chunkNonce(index, last);
  const aad = chunkAad(fileId, index, last);
  if (keyBytes.length !== AES_KEY_BYTES) {
    throw new VerificationFailed();
  }
  return aesGcmDecrypt(keyBytes, nonce, asBytes(ciphertext), aad);
}

/**
 * What a `file` message payload says about the file (PROTOCOL.md 12.3); the key is the
 * secret. Made by {@link parseFileDescriptor} or {@link FileEncryptor#descriptor}.
 */
export class FileDescriptor {
  /**
   * @param {{fileId: MessageId, key: Uint8Array, name: string, mediaType: string, size: number, sha256: Uint8Array}} fields
   *   key: 32 bytes; sha256: the 32-byte SHA-256 of the whole plaintext
   */
  constructor({ fileId, key, name, mediaType, size, sha256 }) {
    /** @readonly */
    this.fileId = fileId;
    /** @readonly */
    this.key = key;
    /** @readonly */
    this.name = name;
    /** @readonly */
    this.mediaType = mediaType;
    /** @readonly */
    this.size = size;
    /** @readonly */
    this.sha256 = sha256;
    Object.freeze(this);
  }

  /** @returns {number} */
  get chunks() {
    return chunkCount(this.size);
  }
}

/**
 * @typedef {object} FileDescriptorWire the `file` member of a `file` payload
 * @property {string} id
 * @property {string} key base64, 32 bytes
 * @property {string} name
 * @property {string} media_type
 * @property {number} size
 * @property {string} sha256 64 lower-case hex digits
 */

/**
 * The payload of a message that shares a file (PROTOCOL.md 12.3): `type`, `file` and,
 * if `caption` is a non-empty string, `text`. `encodePayload` (envelope.js) checks it.
 *
 * @param {FileDescriptor} descriptor
 * @param {string | null} [caption]
 * @returns {{type: "file", file: FileDescriptorWire, text?: string}}
 */
export function fileDescriptorToPayload(descriptor, caption) {
  /** @type {{type: "file", file: FileDescriptorWire, text?: string}} */
  const payload = {
    type: "file",
    file: {
      id: descriptor.fileId,
      key: b64encode(descriptor.key),
      name: descriptor.name,
      media_type: descriptor.mediaType,
      size: descriptor.size,
      sha256: toHex(descriptor.sha256),
    },
  };
  // As in Python (`if caption:`), an empty caption is no caption.
  if (caption) {
    payload.text = caption;
  }
  return payload;
}

/**
 * Parse the `file` member of a payload by the rules of PROTOCOL.md 12.3. Other members
 * are ignored. A sender refuses such a descriptor (this error); a receiver uses
 * {@link fileDescriptorFromPayload}, which turns it into a failed check.
 *
 * @param {unknown} data
 * @returns {FileDescriptor}
 * @throws {MalformedInput}
 */
export function parseFileDescriptor(data) {
  if (!isPlainObject(data)) {
    throw new MalformedInput("file must be an object");
  }
  const fileId = parseMessageId(ownValue(data, "id"));
  const key = b64decode(stringMember(data, "key"), { maxBytes: AES_KEY_BYTES });
  if (key.length !== AES_KEY_BYTES) {
    throw new MalformedInput("file key must be 32 bytes");
  }
  const name = checkFileName(stringMember(data, "name"));
  const mediaType = checkText(stringMember(data, "media_type"), {
    field: "media_type",
    maxChars: MAX_MEDIA_TYPE_CHARS,
  });
  const size = ownValue(data, "size");
  chunkCount(size);
  const digest = stringMember(data, "sha256");
  if (!SHA256_HEX.test(digest)) {
    throw new MalformedInput("sha256 must be 64 lower-case hex digits");
  }
  // -0 is a valid JSON integer; store it as 0, as Python reads it.
  return new FileDescriptor({
    fileId,
    key,
    name,
    mediaType,
    size: /** @type {number} */ (size) + 0,
    sha256: fromHex(digest),
  });
}

/**
 * The descriptor of a received `file` payload; any fault is a failed check (PROTOCOL.md
 * 7.9 step 9), as in Python's `FileDescriptor.from_payload`.
 *
 * @param {unknown} payload the whole payload object
 * @returns {FileDescriptor}
 * @throws {VerificationFailed}
 */
export function fileDescriptorFromPayload(payload) {
  if (!isPlainObject(payload)) {
    throw new VerificationFailed();
  }
  try {
    return parseFileDescriptor(ownValue(payload, "file"));
  } catch (error) {
    if (error instanceof MalformedInput) throw new VerificationFailed();
    throw error;
  }
}

/**
 * A file name: 1 to 255 code points, no NUL, valid Unicode. Display text, never a path.
 *
 * @param {string} name
 * @returns {string}
 * @throws {MalformedInput}
 */
export function checkFileName(name) {
  if (typeof name !== "string") {
    throw new MalformedInput("name must be a string");
  }
  checkText(name, { field: "name", maxChars: MAX_FILE_NAME_CHARS });
  if (name === "") {
    throw new MalformedInput("name must not be empty");
  }
  return name;
}

/** Encrypt a file of known size chunk by chunk (PROTOCOL.md 12.2, 12.5). */
export class FileEncryptor {
  /** Index of the next chunk to encrypt. */
  #next = 0;
  /** Chunks whose encryption has finished. */
  #done = 0;

  /**
   * @param {number} size the file's size in bytes
   * @param {{fileId?: MessageId, key?: Uint8Array}} [options] injectable for test
   *   vectors; in use both are fresh and random
   * @throws {MalformedInput} for a size out of range, a bad file id or a key that is not 32 bytes
   */
  constructor(size, { fileId, key } = {}) {
    /** @readonly */
    this.chunks = chunkCount(size);
    /** @readonly */
    this.size = size;
    /** @readonly */
    this.fileId = fileId === undefined ? newMessageId() : parseMessageId(fileId);
    const keyBytes =
      key === undefined ? globalThis.crypto.getRandomValues(new Uint8Array(AES_KEY_BYTES)) : asBytes(key).slice();
    if (keyBytes.length !== AES_KEY_BYTES) {
      throw new MalformedInput("the file key must be 32 bytes");
    }
    /** @readonly */
    this.key = keyBytes;
    Object.freeze(this);
  }

  /** @returns {number} the index the next {@link FileEncryptor#encrypt} call encrypts */
  get nextIndex() {
    return this.#next;
  }

  /**
   * Encrypt the next chunk, which must have exactly its expected length. Indexes are
   * taken in call order, so calls may overlap.
   *
   * @param {Uint8Array} plaintext
   * @returns {Promise<Uint8Array<ArrayBuffer>>} the chunk ciphertext to upload
   * @throws {MalformedInput} for a chunk of the wrong length or one chunk too many
   */
  async encrypt(plaintext) {
    const index = this.#next;
    if (index >= this.chunks) {
      throw new MalformedInput("every chunk has been encrypted");
    }
    if (asBytes(plaintext).length !== chunkPlaintextSize(this.size, index)) {
      throw new MalformedInput("chunk length does not match the declared size");
    }
    this.#next += 1;
    const ciphertext = await encryptChunk(this.key, this.fileId, index, index === this.chunks - 1, plaintext);
    this.#done += 1;
    return ciphertext;
  }

  /**
   * The payload's description, once every chunk has been encrypted.
   *
   * @param {string} name
   * @param {string | undefined} mediaType `undefined` for {@link DEFAULT_MEDIA_TYPE}
   * @param {Uint8Array} sha256 the SHA-256 of the whole plaintext, which the caller
   *   computes (Web Crypto cannot hash incrementally); it is not checked here, but every
   *   receiver checks it
   * @returns {FileDescriptor}
   * @throws {MalformedInput}
   */
  descriptor(name, mediaType, sha256) {
    if (this.#done !== this.chunks) {
      throw new MalformedInput("not every chunk has been encrypted");
    }
    const media = mediaType === undefined ? DEFAULT_MEDIA_TYPE : mediaType;
    if (typeof media !== "string") {
      throw new MalformedInput("media_type must be a string");
    }
    checkText(media, { field: "media_type", maxChars: MAX_MEDIA_TYPE_CHARS });
    const digest = asBytes(sha256);
    if (digest.length !== SHA256_BYTES) {
      throw new MalformedInput("sha256 must be 32 bytes");
    }
    return new FileDescriptor({
      fileId: this.fileId,
      key: this.key,
      name: checkFileName(name),
      mediaType: media,
      size: this.size,
      sha256: digest.slice(),
    });
  }
}

/**
 * Decrypt a file's chunks in order (PROTOCOL.md 12.5); {@link FileDecryptor#finish}
 * checks that all of them were read and that the plaintext's hash matches.
 */
export class FileDecryptor {
  /** Chunks decrypted so far: the index of the next one. */
  #next = 0;
  /** The previous decrypt call, settled: calls run one after the other. */
  #queue = Promise.resolve();

  /**
   * @param {FileDescriptor} descriptor from {@link fileDescriptorFromPayload}
   * @throws {MalformedInput} for a descriptor whose size is out of range
   */
  constructor(descriptor) {
    if (!(descriptor instanceof FileDescriptor)) {
      throw new TypeError("FileDecryptor expects a FileDescriptor");
    }
    /** @readonly */
    this.descriptor = descriptor;
    /**
     * The chunk count, from the payload's size (never the server's word).
     *
     * @readonly
     */
    this.chunks = chunkCount(descriptor.size);
    Object.freeze(this);
  }

  /** @returns {number} the index of the chunk the next {@link FileDecryptor#decrypt} expects */
  get nextIndex() {
    return this.#next;
  }

  /**
   * Decrypt the next chunk. Its length must be exactly the expected one; the index and
   * the last flag come from the position and the descriptor's size. A failed chunk is
   * not counted (the same position may be tried again, as in Python). Overlapping calls
   * run in call order.
   *
   * @param {Uint8Array} ciphertext the chunk as downloaded
   * @returns {Promise<Uint8Array<ArrayBuffer>>} its plaintext
   * @throws {VerificationFailed}
   */
  decrypt(ciphertext) {
    const result = this.#queue.then(() => this.#decryptNext(ciphertext));
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /**
   * @param {Uint8Array} ciphertext
   * @returns {Promise<Uint8Array<ArrayBuffer>>}
   */
  async #decryptNext(ciphertext) {
    const { fileId, key, size } = this.descriptor;
    const index = this.#next;
    if (index >= this.chunks || asBytes(ciphertext).length !== chunkCiphertextSize(size, index)) {
      throw new VerificationFailed();
    }
    const plaintext = await decryptChunk(key, fileId, index, index === this.chunks - 1, ciphertext);
    this.#next += 1;
    return plaintext;
  }

  /**
   * Throw unless every chunk was decrypted and `sha256` equals the descriptor's. Call it
   * once every {@link FileDecryptor#decrypt} has settled.
   *
   * @param {Uint8Array} sha256 the SHA-256 of the whole plaintext, which the caller computes
   * @throws {VerificationFailed}
   */
  finish(sha256) {
    if (this.#next !== this.chunks || !bytesEqual(asBytes(sha256), this.descriptor.sha256)) {
      throw new VerificationFailed();
    }
  }
}

/**
 * @param {number | bigint} index
 * @returns {number | bigint}
 */
function chunkIndex(index) {
  if (typeof index !== "bigint" && !Number.isSafeInteger(index)) {
    throw new MalformedInput("chunk index must be an integer (a BigInt above 2^53)");
  }
  return index;
}

/**
 * @param {boolean} last
 * @returns {number} 1 or 0
 */
function lastFlag(last) {
  if (typeof last !== "boolean") {
    throw new TypeError("last must be a boolean");
  }
  return last ? 1 : 0;
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
 * @param {Record<string, unknown>} data
 * @param {string} name
 * @returns {string}
 */
function stringMember(data, name) {
  const value = ownValue(data, name);
  if (typeof value !== "string") {
    throw new MalformedInput(`${name} must be a string`);
  }
  return value;
}
