/**
 * Small strict readers for v2 wire objects and canonical fields (PROTOCOL.md 2.4, 2.5,
 * 15.15), mirroring `securechat/protocol/v2/wire.py`.
 *
 * `JSON.parse` cannot tell `1` from `1.0` (Appendix A item 4), so an integer is any
 * safe integer; every integer of v2 is below 2^53.
 *
 * @module
 */

import { b64decode, isPlainObject } from "../encoding.js";
import { MalformedInput, UnsupportedVersion } from "./errors.js";

/** Exclusive upper bound of every integer v2 carries in JSON (PROTOCOL.md 15.15). */
export const MAX_SAFE_INTEGER = 2 ** 53;

/**
 * An object whose member set is `required` plus any of `optional`.
 *
 * @param {unknown} data
 * @param {readonly string[]} required
 * @param {readonly string[]} [optional]
 * @returns {Record<string, unknown>}
 * @throws {MalformedInput}
 */
export function members(data, required, optional = []) {
  if (!isPlainObject(data)) {
    throw new MalformedInput("expected an object");
  }
  const keys = Object.keys(data);
  const allowed = new Set([...required, ...optional]);
  if (!required.every((key) => Object.hasOwn(data, key)) || !keys.every((key) => allowed.has(key))) {
    throw new MalformedInput("unexpected member set");
  }
  return data;
}

/**
 * An integer with `minimum <= value < below` (and below 2^53 in any case).
 *
 * @param {unknown} value
 * @param {{below?: number, minimum?: number}} [limits]
 * @returns {number}
 * @throws {MalformedInput}
 */
export function integer(value, { below = MAX_SAFE_INTEGER, minimum = 0 } = {}) {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < minimum || value >= below) {
    throw new MalformedInput("integer out of range");
  }
  // -0 parses as an integer; it is the value 0, as in Python.
  return value === 0 ? 0 : value;
}

/**
 * Strict base64 of exactly `size` decoded bytes.
 *
 * @param {unknown} value
 * @param {number} size
 * @returns {Uint8Array}
 * @throws {MalformedInput}
 */
export function exactBytes(value, size) {
  if (typeof value !== "string") {
    throw new MalformedInput("expected a base64 string");
  }
  const raw = b64decode(value, { maxBytes: size });
  if (raw.length !== size) {
    throw new MalformedInput("wrong length");
  }
  return raw;
}

/**
 * `v` must be the integer 2: another integer is `unsupported_version`, anything else
 * `malformed`.
 *
 * @param {unknown} value
 * @throws {MalformedInput | UnsupportedVersion}
 */
export function versionTwo(value) {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new MalformedInput("v must be an integer");
  }
  if (value !== 2) {
    throw new UnsupportedVersion("only version 2");
  }
}

/**
 * A `u64` field of a canonical encoding (a serialised state or setup) as a Number.
 *
 * Python reads any u64 here; a value of 2^53 or more cannot be a Number without losing
 * bits, and no state this protocol makes holds one (counters stay below 2^32, times
 * below 2^53), so it is refused as `malformed` rather than rounded (PROTOCOL.md 15.15).
 *
 * @param {Uint8Array} raw
 * @returns {number}
 * @throws {MalformedInput}
 */
export function readU64(raw) {
  if (raw.length !== 8) {
    throw new MalformedInput("a u64 field is 8 bytes");
  }
  const value = new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getBigUint64(0);
  if (value >= BigInt(MAX_SAFE_INTEGER)) {
    throw new MalformedInput("a u64 field above 2^53");
  }
  return Number(value);
}
