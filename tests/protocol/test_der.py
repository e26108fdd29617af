"""The exact key encodings of PROTOCOL.md 5.1, decided by the protocol and not by a library."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from securechat.protocol.der import (
    ED25519_PKCS8_PREFIX,
    ED25519_SPKI_PREFIX,
    SMALL_ORDER_ENCODINGS,
    check_rsa_pkcs8,
    encode_element,
)
from securechat.protocol.errors import MalformedInput
from securechat.protocol.primitives import (
    load_ed25519_private_key,
    load_ed25519_public_key,
    load_rsa_private_key,
    pkcs8,
    spki,
)

# Reference arithmetic on edwards25519 (RFC 8032 5.1), only to prove the list of
# small-order encodings right; the product never does point arithmetic itself.
P = 2**255 - 19
D = (-121665 * pow(121666, -1, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int]


def recover_x(y: int, sign: int) -> int | None:
    """The x of a point with this y and sign bit, or None if there is none (RFC 8032 5.1.3)."""
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return P - x if (x & 1) != sign else x


def add(a: Point, b: Point) -> Point:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return (
        (x1 * y2 + x2 * y1) * pow(1 + t, -1, P) % P,
        (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P,
    )


def times_eight(point: Point) -> Point:
    for _ in range(3):
        point = add(point, point)
    return point


def decode_lenient(encoding: bytes) -> Point | None:
    """Decode as a lenient verifier would: y taken mod p (non-canonical y accepted)."""
    value = int.from_bytes(encoding, "little")
    sign, y = value >> 255, (value & ((1 << 255) - 1)) % P
    x = recover_x(y, sign)
    if x is None and sign and recover_x(y, 0) == 0:
        x = 0  # "negative zero": some decoders accept it
    return None if x is None else (x, y)


def test_the_small_order_list_is_exactly_the_eight_torsion_points() -> None:
    identity = (0, 1)
    points: set[Point] = set()
    for encoding in SMALL_ORDER_ENCODINGS:
        for sign in (0, 0x80):
            point = decode_lenient(encoding[:31] + bytes([encoding[31] | sign]))
            if point is not None:
                assert times_eight(point) == identity, encoding.hex()
                points.add(point)
    assert len(points) == 8
    # Every canonical y below p whose point has order dividing 8 is in the list.
    for point in points:
        assert point[1].to_bytes(32, "little") in SMALL_ORDER_ENCODINGS


@pytest.mark.parametrize("encoding", sorted(SMALL_ORDER_ENCODINGS), ids=lambda e: e.hex()[:8])
@pytest.mark.parametrize("sign", [0, 0x80])
def test_a_public_key_of_small_order_is_refused(encoding: bytes, sign: int) -> None:
    point = encoding[:31] + bytes([encoding[31] | sign])
    with pytest.raises(MalformedInput, match="small order"):
        load_ed25519_public_key(ED25519_SPKI_PREFIX + point)


def test_an_ordinary_public_key_is_accepted() -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    assert load_ed25519_public_key(spki(key)).public_bytes_raw() == key.public_bytes_raw()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_rsa_private_key_form_round_trips(rsa_key: rsa.RSAPrivateKey) -> None:
    der = pkcs8(rsa_key)
    numbers = rsa_key.private_numbers()
    assert check_rsa_pkcs8(der) == [
        numbers.public_numbers.n,
        numbers.public_numbers.e,
        numbers.d,
        numbers.p,
        numbers.q,
        numbers.dmp1,
        numbers.dmq1,
        numbers.iqmp,
    ]
    assert pkcs8(load_rsa_private_key(der)) == der


def rsa_variants(der: bytes) -> dict[str, bytes]:
    body = der[4:]
    assert body.startswith(bytes.fromhex("020100300d06092a864886f70d0101010500"))
    return {
        "pkcs1": b"",  # filled below
        "attributes": encode_element(0x30, body + bytes.fromhex("a000")),
        "no-null-parameters": encode_element(
            0x30, bytes.fromhex("020100300b06092a864886f70d010101") + body[18:]
        ),
        "pss": encode_element(0x30, bytes.fromhex("020100300b06092a864886f70d01010a") + body[18:]),
        "version-1": encode_element(0x30, bytes.fromhex("020101") + body[3:]),
        "trailing-byte": der + b"\x00",
        "long-form-length": b"\x30\x84\x00\x00" + der[2:],
        "truncated": der[:-1],
    }


def test_other_rsa_private_key_forms_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    variants = rsa_variants(pkcs8(rsa_key))
    variants["pkcs1"] = rsa_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    for name, der in variants.items():
        with pytest.raises(MalformedInput):
            load_rsa_private_key(der)
        # pyca itself reads some of these: the refusal is the protocol's, not the library's.
        if name in {"pkcs1", "no-null-parameters"}:
            serialization.load_der_private_key(der, password=None)


def test_an_inconsistent_rsa_private_key_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    numbers = rsa_key.private_numbers()
    broken = rsa.RSAPrivateNumbers(
        numbers.p, numbers.q, numbers.d + 2, numbers.dmp1, numbers.dmq1, numbers.iqmp, numbers.public_numbers
    ).private_key(unsafe_skip_rsa_key_validation=True)
    with pytest.raises(MalformedInput):
        load_rsa_private_key(pkcs8(broken))


def test_the_ed25519_private_key_form() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    der = pkcs8(key)
    assert der[:16] == ED25519_PKCS8_PREFIX and len(der) == 48
    assert load_ed25519_private_key(der).private_bytes_raw() == key.private_bytes_raw()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes_raw()
    v2 = encode_element(
        0x30,
        bytes.fromhex("020101300506032b6570")
        + encode_element(0x04, encode_element(0x04, seed))
        + encode_element(0x81, b"\x00" + public),
    )
    for refused in (v2, seed, der + b"\x00", der[:-1], encode_element(0x30, der[2:] + bytes.fromhex("a000"))):
        with pytest.raises(MalformedInput):
            load_ed25519_private_key(refused)
