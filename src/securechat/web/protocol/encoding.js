/**
 * Strict base64, fixed-width integers and the canonical byte strings that get signed,
 * authenticated or hashed (PROTOCOL.md 2), mirroring `securechat/protocol/encoding.py`.
 *
 * Canonical bytes: a context label followed by fields, each written as a 4-byte
 * big-endian length and then its bytes. The label is always first, so bytes made for
 * one purpose never verify for another, and the version is inside the label.
 *
 * @module
 */

import { MalformedInput } from "./errors.js";

const MAX_FIELD = 0xffffffff;
const TWO_POW_64 = 1n << 64n;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// Whole groups of four, then optionally one group with one or two "=": the shape rules
// of PROTOCOL.md 2.4 (items 1 and 2). Canonical trailing bits are checked separately.
const BASE64_SHAPE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** @type {Int8Array} */
const DECODE_TABLE = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let index = 0; index < ALPHABET.length; index += 1) {
    table[ALPHABET.charCodeAt(index)] = index;
  }
  return table;
})();

const utf8Encoder = new TextEncoder();
// fatal: invalid sequences throw instead of becoming U+FFFD; ignoreBOM: a byte order
// mark is kept as U+FEFF (and then fails a JSON parse) instead of being skipped.
const strictUtf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Standard base64 with padding and no line breaks (PROTOCOL.md 2.4).
 *
 * @param {Uint8Array} data
 * @returns {string}
 */
export function b64encode(data) {
  const bytes = asBytes(data);
  let text = "";
  let index = 0;
  for (; index + 3 <= bytes.length; index += 3) {
    const group = (bytes[index] << 16) | (bytes[index + 1] << 8) | bytes[index + 2];
    text +=
      ALPHABET[(group >>> 18) & 63] + ALPHABET[(group >>> 12) & 63] + ALPHABET[(group >>> 6) & 63] + ALPHABET[group & 63];
  }
  const rest = bytes.length - index;
  if (rest === 1) {
    const group = bytes[index] << 16;
    text += ALPHABET[(group >>> 18) & 63] + ALPHABET[(group >>> 12) & 63] + "==";
  } else if (rest === 2) {
    const group = (bytes[index] << 16) | (bytes[index + 1] << 8);
    text += ALPHABET[(group >>> 18) & 63] + ALPHABET[(group >>> 12) & 63] + ALPHABET[(group >>> 6) & 63] + "=";
  }
  return text;
}

/**
 * Decode standard padded base64 strictly (PROTOCOL.md 2.4).
 *
 * `atob` is lenient (whitespace, missing padding, non-zero trailing bits), so this does
 * not use it. Rejects characters outside the alphabet, missing or extra padding,
 * whitespace and non-canonical encodings, so one value has one spelling.
 *
 * @param {unknown} text
 * @param {{maxBytes?: number}} [options] the largest decoded size allowed
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function b64decode(text, { maxBytes } = {}) {
  if (typeof text !== "string") {
    throw new MalformedInput("base64 value must be a string");
  }
  if (maxBytes !== undefined && text.length > 4 * Math.floor((maxBytes + 2) / 3)) {
    throw new MalformedInput("base64 value too long");
  }
  if (text.length % 4 !== 0) {
    throw new MalformedInput("base64 length must be a multiple of 4");
  }
  if (!BASE64_SHAPE.test(text)) {
    throw new MalformedInput("invalid base64");
  }
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let written = 0;
  for (let index = 0; index < text.length; index += 4) {
    const a = DECODE_TABLE[text.charCodeAt(index)];
    const b = DECODE_TABLE[text.charCodeAt(index + 1)];
    const c = text[index + 2] === "=" ? 0 : DECODE_TABLE[text.charCodeAt(index + 2)];
    const d = text[index + 3] === "=" ? 0 : DECODE_TABLE[text.charCodeAt(index + 3)];
    const group = (a << 18) | (b << 12) | (c << 6) | d;
    out[written++] = (group >>> 16) & 0xff;
    if (written < out.length) out[written++] = (group >>> 8) & 0xff;
    if (written < out.length) out[written++] = group & 0xff;
    if (index + 4 === text.length) {
      // Canonical form: the bits of the last data character that carry no data are zero
      // (equivalently, re-encoding gives back the same text).
      if ((padding === 2 && (b & 0x0f) !== 0) || (padding === 1 && (c & 0x03) !== 0)) {
        throw new MalformedInput("non-canonical base64");
      }
    }
  }
  // The length check above works in whole 4-character groups, so it lets through up to
  // two bytes more than maxBytes; this makes the limit exact.
  if (maxBytes !== undefined && out.length > maxBytes) {
    throw new MalformedInput("base64 value too long");
  }
  return out;
}

/**
 * An unsigned integer as 8 big-endian bytes.
 *
 * @param {number | bigint} value an integer, 0 <= value < 2^64 (use a BigInt above 2^53)
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function u64(value) {
  let big;
  if (typeof value === "bigint") {
    big = value;
  } else if (typeof value === "number" && Number.isInteger(value)) {
    big = BigInt(value);
  } else {
    throw new MalformedInput("integer expected");
  }
  if (big < 0n || big >= TWO_POW_64) {
    throw new MalformedInput("integer out of range");
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, big);
  return out;
}

/**
 * An unsigned integer as 4 big-endian bytes.
 *
 * @param {number} value 0 <= value < 2^32
 * @returns {Uint8Array}
 */
export function u32(value) {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FIELD) {
    throw new MalformedInput("integer out of range");
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/**
 * True if `text` has no lone surrogate, i.e. is valid Unicode that UTF-8 can encode.
 *
 * @param {string} text
 * @returns {boolean}
 */
export function isWellFormed(text) {
  const native = /** @type {{isWellFormed?: () => boolean}} */ (/** @type {unknown} */ (text)).isWellFormed;
  return typeof native === "function" ? native.call(text) : !LONE_SURROGATE.test(text);
}

/**
 * UTF-8 encode a string, refusing lone surrogates (which `TextEncoder` would silently
 * replace with U+FFFD, giving bytes the Python code would never produce).
 *
 * @param {string} text
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function utf8Encode(text) {
  if (typeof text !== "string") {
    throw new TypeError("utf8Encode expects a string");
  }
  if (!isWellFormed(text)) {
    throw new MalformedInput("string is not valid Unicode");
  }
  return utf8Encoder.encode(text);
}

/**
 * Decode strict UTF-8: invalid sequences throw, and a byte order mark is kept.
 *
 * @param {Uint8Array} data
 * @returns {string}
 * @throws {TypeError} on invalid UTF-8 (callers translate it)
 */
export function utf8Decode(data) {
  return strictUtf8Decoder.decode(data);
}

/**
 * Length-prefixed concatenation of a context label and fields (PROTOCOL.md 2.2).
 *
 * Strings are UTF-8 encoded as they are (no normalisation); every field, the label
 * included, is preceded by its length as a u32.
 *
 * @param {string} label
 * @param {Iterable<Uint8Array | string>} fields
 * @returns {Uint8Array<ArrayBuffer>}
 * @throws {MalformedInput}
 */
export function canonical(label, fields) {
  /** @type {Uint8Array[]} */
  const parts = [];
  let total = 0;
  for (const item of [label, ...fields]) {
    const data = typeof item === "string" ? utf8Encode(item) : asBytes(item);
    if (data.length > MAX_FIELD) {
      throw new MalformedInput("field too long");
    }
    parts.push(data);
    total += 4 + data.length;
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const data of parts) {
    view.setUint32(offset, data.length);
    out.set(data, offset + 4);
    offset += 4 + data.length;
  }
  return out;
}

/**
 * Parse bytes made by {@link canonical}, checking the label; return the other fields.
 *
 * @param {Uint8Array} data
 * @param {string} label
 * @returns {Uint8Array[]}
 * @throws {MalformedInput}
 */
export function splitCanonical(data, label) {
  const bytes = asBytes(data);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  /** @type {Uint8Array[]} */
  const fields = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) {
      throw new MalformedInput("truncated length prefix");
    }
    const length = view.getUint32(offset);
    offset += 4;
    if (offset + length > bytes.length) {
      throw new MalformedInput("truncated field");
    }
    fields.push(bytes.slice(offset, offset + length));
    offset += length;
  }
  if (fields.length === 0 || !bytesEqual(fields[0], utf8Encode(label))) {
    throw new MalformedInput("unexpected context label");
  }
  return fields.slice(1);
}

/**
 * @param {...Uint8Array} chunks
 * @returns {Uint8Array}
 */
export function concatBytes(...chunks) {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Byte-wise equality. Not constant-time: use it on public values only.
 *
 * @param {Uint8Array} first
 * @param {Uint8Array} second
 * @returns {boolean}
 */
export function bytesEqual(first, second) {
  if (first.length !== second.length) return false;
  for (let index = 0; index < first.length; index += 1) {
    if (first[index] !== second[index]) return false;
  }
  return true;
}

/**
 * Lower-case hex, two digits per byte.
 *
 * @param {Uint8Array} data
 * @returns {string}
 */
export function toHex(data) {
  let text = "";
  for (const byte of asBytes(data)) text += byte.toString(16).padStart(2, "0");
  return text;
}

/**
 * Parse hex (either case, even length).
 *
 * @param {string} text
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function fromHex(text) {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new MalformedInput("invalid hex");
  }
  const out = new Uint8Array(text.length / 2);
  for (let index = 0; index < out.length; index += 1) {
    out[index] = Number.parseInt(text.slice(2 * index, 2 * index + 2), 16);
  }
  return out;
}

/**
 * Accept a Uint8Array (or an ArrayBuffer from Web Crypto) as bytes.
 *
 * @param {Uint8Array | ArrayBuffer} data
 * @returns {Uint8Array}
 */
export function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError("bytes expected (Uint8Array)");
}

/**
 * A JSON object: not null, not an array (Python's `isinstance(value, dict)` for parsed JSON).
 *
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
export function isPlainObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * True if the object's own keys are exactly `expected` (in any order).
 *
 * @param {Record<string, unknown>} value
 * @param {readonly string[]} expected
 * @returns {boolean}
 */
export function hasExactKeys(value, expected) {
  const keys = Object.keys(value);
  return keys.length === expected.length && expected.every((key) => Object.hasOwn(value, key));
}
