/**
 * Encrypted file transfer in the browser (PROTOCOL.md 12.5). No DOM.
 *
 * Uploads read the file one chunk at a time (`File.slice`), encrypt and send it; the
 * server never holds more than a chunk per request. Downloads decrypt chunk by chunk
 * into a Blob, which the browser may keep on disk. Web Crypto has no incremental
 * SHA-256, so the whole-file hash is taken over the file (upload) or the decrypted Blob
 * (download) in one call: for that moment the file is in memory once.
 *
 * @module
 */

import {
  DEFAULT_MEDIA_TYPE,
  FileDecryptor,
  FileEncryptor,
  MAX_FILE_NAME_CHARS,
  PREVIEWABLE_MEDIA_TYPES,
  chunkPlaintextSize,
} from "../protocol/index.js";

/** A file failed a check: a chunk's tag or length, a missing chunk, or the total hash. */
export class FileCorrupt extends Error {
  /** @param {string} detail which check failed, in words */
  constructor(detail) {
    super(`This file is corrupt or incomplete (${detail}). It was not saved.`);
    this.code = "file_corrupt";
  }
}

/**
 * @param {Blob} blob
 * @returns {Promise<Uint8Array>}
 */
async function sha256(blob) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
}

/**
 * Encrypt and upload a file for a conversation.
 *
 * @param {import("./api.js").Api} api
 * @param {string} conversationId
 * @param {File} file
 * @param {(done: number, total: number) => void} onProgress
 * @returns {Promise<import("../protocol/files.js").FileDescriptor>} for the message payload
 */
export async function uploadFile(api, conversationId, file, onProgress) {
  const encryptor = new FileEncryptor(file.size);
  await api.createUpload(encryptor.fileId, conversationId, file.size);
  const digest = await sha256(file);
  let offset = 0;
  for (let index = 0; index < encryptor.chunks; index += 1) {
    const length = chunkPlaintextSize(file.size, index);
    const plaintext = new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
    await api.putChunk(encryptor.fileId, index, await encryptor.encrypt(plaintext));
    offset += length;
    onProgress(offset, file.size);
  }
  await api.completeUpload(encryptor.fileId);
  return encryptor.descriptor(shortName(file.name), file.type || DEFAULT_MEDIA_TYPE, digest);
}

/**
 * A name the protocol accepts: 1 to 255 code points, the extension kept (PROTOCOL.md 12.3).
 *
 * @param {string} name
 * @returns {string}
 */
export function shortName(name) {
  const points = [...(name || "file").toWellFormed().replaceAll("\0", "_")];
  if (points.length <= MAX_FILE_NAME_CHARS) return points.join("");
  const dot = points.lastIndexOf(".");
  const extension = dot > 0 && points.length - dot <= 16 ? points.slice(dot) : [];
  return [...points.slice(0, MAX_FILE_NAME_CHARS - extension.length - 1), "…", ...extension].join("");
}

/**
 * Download, decrypt and check a file. The Blob is typed with the sender's media type
 * only for raster images (for a preview); everything else is an opaque download.
 *
 * @param {import("./api.js").Api} api
 * @param {import("../protocol/files.js").FileDescriptor} descriptor
 * @param {(done: number, total: number) => void} onProgress
 * @returns {Promise<Blob>}
 */
export async function downloadFile(api, descriptor, onProgress) {
  const decryptor = new FileDecryptor(descriptor);
  const parts = [];
  let done = 0;
  for (let index = 0; index < decryptor.chunks; index += 1) {
    let chunk;
    try {
      chunk = await api.getChunk(descriptor.fileId, index);
    } catch (error) {
      if (/** @type {any} */ (error)?.status === 404) throw new FileCorrupt(`part ${index + 1} is missing`);
      throw error;
    }
    try {
      parts.push(await decryptor.decrypt(chunk));
    } catch {
      throw new FileCorrupt(`part ${index + 1} of ${decryptor.chunks} failed its check`);
    }
    done += /** @type {Uint8Array} */ (parts.at(-1)).length;
    onProgress(done, descriptor.size);
  }
  const blob = new Blob(parts, { type: previewable(descriptor) ? descriptor.mediaType : DEFAULT_MEDIA_TYPE });
  try {
    decryptor.finish(await sha256(blob));
  } catch {
    throw new FileCorrupt("its SHA-256 does not match");
  }
  return blob;
}

/**
 * Raster images only: a browser decodes them without running code.
 *
 * @param {import("../protocol/files.js").FileDescriptor} descriptor
 * @returns {boolean}
 */
export function previewable(descriptor) {
  return PREVIEWABLE_MEDIA_TYPES.includes(descriptor.mediaType);
}
