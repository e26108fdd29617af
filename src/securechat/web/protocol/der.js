/**
 * Just enough strict DER to check an RSA SubjectPublicKeyInfo (PROTOCOL.md 5.2) and an
 * RSA PKCS#8 private key (5.1) before Web Crypto sees them, and to re-encode a public key
 * canonically. Mirrors `protocol/der.py` rule for rule.
 *
 * Web Crypto imports RSA keys of any size and exponent, and tolerates some encodings
 * the protocol refuses, so the refusal rules are applied to the parsed DER here. The
 * reader follows X.690 DER: definite, minimal lengths; minimal, non-negative INTEGERs;
 * nothing after an element where nothing may follow.
 *
 * @module
 */

import { bytesEqual, concatBytes } from "./encoding.js";
import { MalformedInput } from "./errors.js";

const TAG_INTEGER = 0x02;
const TAG_BIT_STRING = 0x03;
const TAG_OCTET_STRING = 0x04;
const TAG_NULL = 0x05;
const TAG_OID = 0x06;
const TAG_SEQUENCE = 0x30;
/** 1.2.840.113549.1.1.1, rsaEncryption */
const RSA_ENCRYPTION_OID = Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01);
/** 1.2.840.113549.1.1.10, id-RSASSA-PSS */
const RSA_PSS_OID = Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a);
const NULL_ELEMENT = Uint8Array.of(TAG_NULL, 0x00);

/**
 * @typedef {object} RsaSpki
 * @property {Uint8Array} modulus big-endian, without leading zero bytes
 * @property {Uint8Array} exponent big-endian, without leading zero bytes
 * @property {number} modulusBits the bit length of the modulus
 * @property {boolean} isRsa the algorithm is rsaEncryption (with NULL or absent parameters)
 * @property {Uint8Array} canonicalDer the same key as canonical SPKI DER
 */

/**
 * @typedef {object} Element
 * @property {number} tag
 * @property {number} start offset of the content
 * @property {number} end offset just past the content
 */

/**
 * Read one element that must lie within [offset, limit).
 *
 * @param {Uint8Array} der
 * @param {number} offset
 * @param {number} limit
 * @returns {Element}
 */
function readElement(der, offset, limit) {
  if (offset + 2 > limit) throw new MalformedInput("truncated DER");
  const tag = der[offset];
  if ((tag & 0x1f) === 0x1f) throw new MalformedInput("unsupported DER tag");
  const first = der[offset + 1];
  let length;
  let start;
  if (first < 0x80) {
    length = first;
    start = offset + 2;
  } else {
    const count = first & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 length bytes is far beyond any key.
    if (count === 0 || count > 4) throw new MalformedInput("invalid DER length");
    if (offset + 2 + count > limit) throw new MalformedInput("truncated DER");
    if (der[offset + 2] === 0) throw new MalformedInput("non-minimal DER length");
    length = 0;
    for (let index = 0; index < count; index += 1) length = length * 256 + der[offset + 2 + index];
    if (length < 0x80) throw new MalformedInput("non-minimal DER length");
    start = offset + 2 + count;
  }
  const end = start + length;
  if (end > limit) throw new MalformedInput("truncated DER");
  return { tag, start, end };
}

/**
 * @param {Uint8Array} der
 * @param {number} offset
 * @param {number} limit
 * @param {number} tag
 * @returns {Element}
 */
function expect(der, offset, limit, tag) {
  const element = readElement(der, offset, limit);
  if (element.tag !== tag) throw new MalformedInput("unexpected DER element");
  return element;
}

/**
 * A non-negative INTEGER in minimal form; returns its magnitude without leading zeros.
 *
 * @param {Uint8Array} der
 * @param {Element} element
 * @returns {Uint8Array}
 */
function unsignedInteger(der, element) {
  const content = der.subarray(element.start, element.end);
  if (content.length === 0) throw new MalformedInput("empty DER INTEGER");
  if (content.length > 1 && content[0] === 0x00 && content[1] < 0x80) {
    throw new MalformedInput("non-minimal DER INTEGER");
  }
  if (content.length > 1 && content[0] === 0xff && content[1] >= 0x80) {
    throw new MalformedInput("non-minimal DER INTEGER");
  }
  if (content[0] >= 0x80) throw new MalformedInput("negative DER INTEGER");
  let skip = 0;
  while (skip < content.length && content[skip] === 0) skip += 1;
  return content.slice(skip);
}

/**
 * @param {Uint8Array} magnitude big-endian without leading zeros
 * @returns {number}
 */
function bitLength(magnitude) {
  if (magnitude.length === 0) return 0;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]));
}

/**
 * @param {number} length
 * @returns {Uint8Array}
 */
function encodeLength(length) {
  if (length < 0x80) return Uint8Array.of(length);
  /** @type {number[]} */
  const bytes = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/**
 * @param {number} tag
 * @param {Uint8Array} content
 * @returns {Uint8Array}
 */
function encodeElement(tag, content) {
  return concatBytes(Uint8Array.of(tag), encodeLength(content.length), content);
}

/**
 * @param {Uint8Array} magnitude big-endian without leading zeros
 * @returns {Uint8Array}
 */
function encodeUnsignedInteger(magnitude) {
  if (magnitude.length === 0) return encodeElement(TAG_INTEGER, Uint8Array.of(0));
  const content = magnitude[0] >= 0x80 ? concatBytes(Uint8Array.of(0), magnitude) : magnitude;
  return encodeElement(TAG_INTEGER, content);
}

/**
 * The canonical SPKI DER of an RSA public key: rsaEncryption with NULL parameters.
 *
 * @param {Uint8Array} modulus
 * @param {Uint8Array} exponent
 * @returns {Uint8Array}
 */
export function encodeRsaSpki(modulus, exponent) {
  const algorithm = encodeElement(TAG_SEQUENCE, concatBytes(encodeElement(TAG_OID, RSA_ENCRYPTION_OID), NULL_ELEMENT));
  const publicKey = encodeElement(
    TAG_SEQUENCE,
    concatBytes(encodeUnsignedInteger(modulus), encodeUnsignedInteger(exponent)),
  );
  return encodeElement(TAG_SEQUENCE, concatBytes(algorithm, encodeElement(TAG_BIT_STRING, concatBytes(Uint8Array.of(0), publicKey))));
}

/**
 * Parse a DER SubjectPublicKeyInfo holding an RSA key, with nothing after it.
 *
 * Throws MalformedInput when the bytes are not a SubjectPublicKeyInfo; a well-formed SPKI
 * of another algorithm is returned with `isRsa` false (the caller refuses it), so that
 * the order of the checks in PROTOCOL.md 5.2 is kept.
 *
 * @param {Uint8Array} der
 * @returns {RsaSpki}
 * @throws {MalformedInput}
 */
export function parseRsaSpki(der) {
  const spki = expect(der, 0, der.length, TAG_SEQUENCE);
  if (spki.end !== der.length) throw new MalformedInput("data after the SubjectPublicKeyInfo");
  const algorithm = expect(der, spki.start, spki.end, TAG_SEQUENCE);
  const oid = expect(der, algorithm.start, algorithm.end, TAG_OID);
  if (oid.end === oid.start) throw new MalformedInput("empty OID");
  const oidBytes = der.subarray(oid.start, oid.end);
  const isPss = bytesEqual(oidBytes, RSA_PSS_OID);
  let isRsa = bytesEqual(oidBytes, RSA_ENCRYPTION_OID) || isPss;
  if (oid.end < algorithm.end) {
    const parameters = readElement(der, oid.end, algorithm.end);
    if (parameters.end !== algorithm.end) throw new MalformedInput("data after the algorithm parameters");
    // rsaEncryption takes NULL parameters (or, leniently, none), RSASSA-PSS none or a
    // SEQUENCE; anything else is not an RSA key the protocol knows.
    const expected = isPss ? parameters.tag === TAG_SEQUENCE : parameters.tag === TAG_NULL && parameters.end === parameters.start;
    if (!expected) isRsa = false;
  }
  // An RSASSA-PSS key is still an RSA key (pyca reads it as one), so its size and exponent
  // are judged first; its encoding is never the canonical one, so it is refused anyway.
  const bitString = expect(der, algorithm.end, spki.end, TAG_BIT_STRING);
  if (bitString.end !== spki.end) throw new MalformedInput("data after the public key");
  if (bitString.end === bitString.start) throw new MalformedInput("empty BIT STRING");
  const unusedBits = der[bitString.start];
  if (unusedBits > 7 || (unusedBits !== 0 && bitString.end === bitString.start + 1)) {
    throw new MalformedInput("invalid BIT STRING");
  }
  if (unusedBits !== 0 && (der[bitString.end - 1] & ((1 << unusedBits) - 1)) !== 0) {
    throw new MalformedInput("invalid BIT STRING padding");
  }
  if (!isRsa) {
    return { modulus: new Uint8Array(0), exponent: new Uint8Array(0), modulusBits: 0, isRsa, canonicalDer: new Uint8Array(0) };
  }
  const keyStart = bitString.start + 1;
  const rsaKey = expect(der, keyStart, bitString.end, TAG_SEQUENCE);
  if (rsaKey.end !== bitString.end) throw new MalformedInput("data after the RSA public key");
  const modulusElement = expect(der, rsaKey.start, rsaKey.end, TAG_INTEGER);
  const exponentElement = expect(der, modulusElement.end, rsaKey.end, TAG_INTEGER);
  if (exponentElement.end !== rsaKey.end) throw new MalformedInput("data after the RSA exponent");
  const modulus = unsignedInteger(der, modulusElement);
  const exponent = unsignedInteger(der, exponentElement);
  return { modulus, exponent, modulusBits: bitLength(modulus), isRsa, canonicalDer: encodeRsaSpki(modulus, exponent) };
}

/**
 * Check the one accepted form of an RSA private key (PROTOCOL.md 5.1): PKCS#8 version 0,
 * `rsaEncryption` with NULL parameters, holding a two-prime RSAPrivateKey of version 0
 * (nine minimal INTEGERs), with no attributes, no public key and nothing after it.
 * Web Crypto (OpenSSL, BoringSSL, NSS) and pyca each tolerate other forms; the protocol
 * does not. Whether the numbers form a consistent key is checked by the caller.
 *
 * @param {Uint8Array} der
 * @throws {MalformedInput}
 */
export function checkRsaPkcs8(der) {
  const outer = expect(der, 0, der.length, TAG_SEQUENCE);
  if (outer.end !== der.length) throw new MalformedInput("data after the private key");
  const version = expect(der, outer.start, outer.end, TAG_INTEGER);
  if (unsignedInteger(der, version).length !== 0) throw new MalformedInput("PKCS#8 version must be 0");
  const algorithm = expect(der, version.end, outer.end, TAG_SEQUENCE);
  const expectedAlgorithm = concatBytes(encodeElement(TAG_OID, RSA_ENCRYPTION_OID), NULL_ELEMENT);
  if (!bytesEqual(der.subarray(algorithm.start, algorithm.end), expectedAlgorithm)) {
    throw new MalformedInput("not an rsaEncryption key with NULL parameters");
  }
  const octets = expect(der, algorithm.end, outer.end, TAG_OCTET_STRING);
  if (octets.end !== outer.end) throw new MalformedInput("data after the private key octets");
  const inner = expect(der, octets.start, octets.end, TAG_SEQUENCE);
  if (inner.end !== octets.end) throw new MalformedInput("data after the RSAPrivateKey");
  let offset = inner.start;
  /** @type {Uint8Array[]} */
  const integers = [];
  for (let index = 0; index < 9; index += 1) {
    const element = expect(der, offset, inner.end, TAG_INTEGER);
    integers.push(unsignedInteger(der, element));
    offset = element.end;
  }
  if (offset !== inner.end) throw new MalformedInput("multi-prime or extended RSAPrivateKey");
  if (integers[0].length !== 0) throw new MalformedInput("RSAPrivateKey version must be 0");
}
