"""The exact key encodings the protocol accepts (PROTOCOL.md 5.1), checked before a library sees them.

Cryptography libraries differ in what they tolerate, and a new release can start
accepting a form an older one refused (OpenSSL-backed pyca reads PKCS#1 and PKCS#8 v2
keys; Web Crypto reads PKCS#8 v1 only). So the protocol fixes one byte form per key
type, both implementations check it here, and only bytes that pass are handed on:

- Ed25519 public key: the 44-byte SPKI ``302a300506032b6570032100`` ‖ 32 bytes, whose
  point is not of small order;
- Ed25519 private key: the 48-byte PKCS#8 ``302e020100300506032b657004220420`` ‖ seed;
- RSA public key: a DER SubjectPublicKeyInfo, ``rsaEncryption`` with NULL parameters,
  minimal lengths and integers, nothing after it;
- RSA private key: PKCS#8 version 0, ``rsaEncryption`` with NULL parameters, holding a
  two-prime ``RSAPrivateKey`` (version 0 and eight integers), no attributes, no public key,
  every length and integer minimal, nothing after it.

The reader follows X.690 DER and mirrors ``web/protocol/der.js`` rule for rule, so both
refuse the same inputs with the same error kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MalformedInput

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_SEQUENCE = 0x30

# 1.2.840.113549.1.1.1 and 1.2.840.113549.1.1.10
RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")
RSA_PSS_OID = bytes.fromhex("2a864886f70d01010a")
NULL_ELEMENT = bytes.fromhex("0500")

ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
ED25519_KEY_BYTES = 32

# Every encoding of a point of small order (the eight-point torsion subgroup), with the
# sign bit cleared: 0 and p (order 4), 1 and p + 1 (the identity), p - 1 (order 2) and
# the two y-coordinates of order 8. A key equal to one of these, with either sign bit,
# verifies signatures that anyone can make (libsodium refuses the same list).
SMALL_ORDER_ENCODINGS = frozenset(
    bytes.fromhex(text)
    for text in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


@dataclass(frozen=True)
class Element:
    tag: int
    start: int  # offset of the content
    end: int  # offset just past the content


@dataclass(frozen=True)
class RsaSpki:
    """A parsed RSA SubjectPublicKeyInfo, judged in the order of PROTOCOL.md 5.2."""

    modulus: int
    exponent: int
    is_rsa: bool  # rsaEncryption with NULL (or absent) parameters, or RSASSA-PSS
    canonical_der: bytes  # the same key as canonical SPKI DER


def read_element(der: bytes, offset: int, limit: int) -> Element:
    """Read one element that must lie within [offset, limit)."""
    if offset + 2 > limit:
        raise MalformedInput("truncated DER")
    tag = der[offset]
    if tag & 0x1F == 0x1F:
        raise MalformedInput("unsupported DER tag")
    first = der[offset + 1]
    if first < 0x80:
        length = first
        start = offset + 2
    else:
        count = first & 0x7F
        # 0x80 is BER's indefinite length; more than 4 length bytes is far beyond any key.
        if count == 0 or count > 4:
            raise MalformedInput("invalid DER length")
        if offset + 2 + count > limit:
            raise MalformedInput("truncated DER")
        if der[offset + 2] == 0:
            raise MalformedInput("non-minimal DER length")
        length = int.from_bytes(der[offset + 2 : offset + 2 + count], "big")
        if length < 0x80:
            raise MalformedInput("non-minimal DER length")
        start = offset + 2 + count
    end = start + length
    if end > limit:
        raise MalformedInput("truncated DER")
    return Element(tag, start, end)


def expect(der: bytes, offset: int, limit: int, tag: int) -> Element:
    element = read_element(der, offset, limit)
    if element.tag != tag:
        raise MalformedInput("unexpected DER element")
    return element


def unsigned_integer(der: bytes, element: Element) -> int:
    """A non-negative INTEGER in minimal form."""
    content = der[element.start : element.end]
    if not content:
        raise MalformedInput("empty DER INTEGER")
    if len(content) > 1 and content[0] == 0x00 and content[1] < 0x80:
        raise MalformedInput("non-minimal DER INTEGER")
    if len(content) > 1 and content[0] == 0xFF and content[1] >= 0x80:
        raise MalformedInput("non-minimal DER INTEGER")
    if content[0] >= 0x80:
        raise MalformedInput("negative DER INTEGER")
    return int.from_bytes(content, "big")


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_element(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def encode_unsigned_integer(value: int) -> bytes:
    # One more byte than the magnitude needs whenever its top bit is set.
    return encode_element(TAG_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encode_rsa_spki(modulus: int, exponent: int) -> bytes:
    """The canonical SPKI DER of an RSA public key: rsaEncryption with NULL parameters."""
    algorithm = encode_element(TAG_SEQUENCE, encode_element(TAG_OID, RSA_ENCRYPTION_OID) + NULL_ELEMENT)
    public_key = encode_element(
        TAG_SEQUENCE, encode_unsigned_integer(modulus) + encode_unsigned_integer(exponent)
    )
    return encode_element(TAG_SEQUENCE, algorithm + encode_element(TAG_BIT_STRING, b"\x00" + public_key))


def parse_rsa_spki(der: bytes) -> RsaSpki:
    """Parse a DER SubjectPublicKeyInfo holding an RSA key, with nothing after it.

    Raises MalformedInput when the bytes are not a SubjectPublicKeyInfo; a well-formed SPKI
    of another algorithm comes back with ``is_rsa`` false (the caller refuses it), so the
    order of the checks in PROTOCOL.md 5.2 is kept.
    """
    spki = expect(der, 0, len(der), TAG_SEQUENCE)
    if spki.end != len(der):
        raise MalformedInput("data after the SubjectPublicKeyInfo")
    algorithm = expect(der, spki.start, spki.end, TAG_SEQUENCE)
    oid = expect(der, algorithm.start, algorithm.end, TAG_OID)
    if oid.end == oid.start:
        raise MalformedInput("empty OID")
    oid_bytes = der[oid.start : oid.end]
    is_pss = oid_bytes == RSA_PSS_OID
    is_rsa = oid_bytes == RSA_ENCRYPTION_OID or is_pss
    if oid.end < algorithm.end:
        parameters = read_element(der, oid.end, algorithm.end)
        if parameters.end != algorithm.end:
            raise MalformedInput("data after the algorithm parameters")
        # rsaEncryption takes NULL parameters (or, leniently, none), RSASSA-PSS none or a
        # SEQUENCE; anything else is not an RSA key the protocol knows.
        if is_pss:
            expected = parameters.tag == TAG_SEQUENCE
        else:
            expected = parameters.tag == TAG_NULL and parameters.end == parameters.start
        if not expected:
            is_rsa = False
    # An RSASSA-PSS key is still an RSA key, so its size and exponent are judged first;
    # its encoding is never the canonical one, so it is refused anyway.
    bit_string = expect(der, algorithm.end, spki.end, TAG_BIT_STRING)
    if bit_string.end != spki.end:
        raise MalformedInput("data after the public key")
    if bit_string.end == bit_string.start:
        raise MalformedInput("empty BIT STRING")
    unused_bits = der[bit_string.start]
    if unused_bits > 7 or (unused_bits != 0 and bit_string.end == bit_string.start + 1):
        raise MalformedInput("invalid BIT STRING")
    if unused_bits != 0 and der[bit_string.end - 1] & ((1 << unused_bits) - 1):
        raise MalformedInput("invalid BIT STRING padding")
    if not is_rsa:
        return RsaSpki(0, 0, False, b"")
    rsa_key = expect(der, bit_string.start + 1, bit_string.end, TAG_SEQUENCE)
    if rsa_key.end != bit_string.end:
        raise MalformedInput("data after the RSA public key")
    modulus_element = expect(der, rsa_key.start, rsa_key.end, TAG_INTEGER)
    exponent_element = expect(der, modulus_element.end, rsa_key.end, TAG_INTEGER)
    if exponent_element.end != rsa_key.end:
        raise MalformedInput("data after the RSA exponent")
    modulus = unsigned_integer(der, modulus_element)
    exponent = unsigned_integer(der, exponent_element)
    return RsaSpki(modulus, exponent, True, encode_rsa_spki(modulus, exponent))


def check_rsa_pkcs8(der: bytes) -> list[int]:
    """Check the one accepted form of an RSA private key; return its eight numbers.

    PKCS#8 version 0 with ``rsaEncryption`` and NULL parameters, and inside it an
    ``RSAPrivateKey`` of version 0 (two primes): n, e, d, p, q, d mod (p-1), d mod (q-1),
    q^-1 mod p. Attributes, a public key, other algorithms and PKCS#1 alone are refused.
    Whether the numbers form a consistent key is the caller's check.
    """
    outer = expect(der, 0, len(der), TAG_SEQUENCE)
    if outer.end != len(der):
        raise MalformedInput("data after the private key")
    version = expect(der, outer.start, outer.end, TAG_INTEGER)
    if unsigned_integer(der, version) != 0:
        raise MalformedInput("PKCS#8 version must be 0")
    algorithm = expect(der, version.end, outer.end, TAG_SEQUENCE)
    if der[algorithm.start : algorithm.end] != encode_element(TAG_OID, RSA_ENCRYPTION_OID) + NULL_ELEMENT:
        raise MalformedInput("not an rsaEncryption key with NULL parameters")
    octets = expect(der, algorithm.end, outer.end, TAG_OCTET_STRING)
    if octets.end != outer.end:
        raise MalformedInput("data after the private key octets")
    inner = expect(der, octets.start, octets.end, TAG_SEQUENCE)
    if inner.end != octets.end:
        raise MalformedInput("data after the RSAPrivateKey")
    offset = inner.start
    integers: list[int] = []
    for _ in range(9):
        element = expect(der, offset, inner.end, TAG_INTEGER)
        integers.append(unsigned_integer(der, element))
        offset = element.end
    if offset != inner.end:
        raise MalformedInput("multi-prime or extended RSAPrivateKey")
    if integers[0] != 0:
        raise MalformedInput("RSAPrivateKey version must be 0")
    return integers[1:]


def check_ed25519_pkcs8(der: bytes) -> bytes:
    """Check the one accepted form of an Ed25519 private key; return the 32-byte seed."""
    if len(der) != len(ED25519_PKCS8_PREFIX) + ED25519_KEY_BYTES or not der.startswith(ED25519_PKCS8_PREFIX):
        raise MalformedInput("an Ed25519 private key must be the 48-byte PKCS#8 form")
    return der[len(ED25519_PKCS8_PREFIX) :]


def check_ed25519_spki(der: bytes) -> bytes:
    """Check the one accepted form of an Ed25519 public key; return the 32-byte point.

    A point of small order is refused as malformed: with it pinned, signatures that
    anyone can compute would verify as the user's.
    """
    if len(der) != len(ED25519_SPKI_PREFIX) + ED25519_KEY_BYTES or not der.startswith(ED25519_SPKI_PREFIX):
        raise MalformedInput("an Ed25519 public key must be the 44-byte SPKI form")
    point = der[len(ED25519_SPKI_PREFIX) :]
    if point[:31] + bytes([point[31] & 0x7F]) in SMALL_ORDER_ENCODINGS:
        raise MalformedInput("an Ed25519 public key of small order")
    return point
