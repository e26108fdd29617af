"""Identities, the sealed private-key bundle, fingerprints and safety numbers."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from securechat.protocol.encoding import b64decode, b64encode, canonical
from securechat.protocol.errors import MalformedInput, UnsupportedVersion, VerificationFailed, WeakParameters
from securechat.protocol.identifiers import Username
from securechat.protocol.keys import (
    KEY_BUNDLE_VERSION,
    PrivateIdentity,
    PublicIdentity,
    encryption_key_binding,
    fingerprint,
    format_safety_number,
    key_bundle_aad,
    open_key_bundle,
    safety_number,
    seal_key_bundle,
)
from securechat.protocol.labels import KEY_BUNDLE_PLAINTEXT
from securechat.protocol.primitives import (
    RSA_ALLOWED_BITS,
    aes_gcm_encrypt,
    load_rsa_public_key,
    pkcs8,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
    spki,
)

WRAP_KEY = bytes(range(32))
OTHER_WRAP_KEY = bytes(range(1, 33))
IV = bytes(range(12))


def identity_with_rsa_key(name: str, encryption_private: rsa.RSAPrivateKey) -> PrivateIdentity:
    """An identity whose binding signature is valid, whatever the RSA key's parameters."""
    return PrivateIdentity.from_private_keys(
        Username(name), ed25519.Ed25519PrivateKey.generate(), encryption_private
    )


# --- public identities ------------------------------------------------------------


def test_generated_identity_verifies(alice: PrivateIdentity) -> None:
    assert alice.public.verified() is alice.public
    assert alice.public.username == alice.username == "alice"
    assert load_rsa_public_key(alice.public.encryption_key).key_size == 2048


def test_public_identity_wire_round_trip(alice: PrivateIdentity) -> None:
    wire = alice.public.to_wire()
    assert set(wire) == {"username", "signing_key", "encryption_key", "encryption_key_signature"}
    assert PublicIdentity.from_wire(alice.username, wire) == alice.public


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("signing_key", None, id="signing-key-missing"),
        pytest.param("encryption_key", 12, id="encryption-key-not-a-string"),
        pytest.param("encryption_key_signature", "not base64!", id="signature-bad-base64"),
        pytest.param("encryption_key_signature", b64encode(bytes(65)), id="signature-too-long"),
        pytest.param("encryption_key", b64encode(bytes(1025)), id="encryption-key-too-long"),
    ],
)
def test_public_identity_from_wire_rejects_malformed_fields(
    alice: PrivateIdentity, field: str, value: object
) -> None:
    wire: dict[str, object] = dict(alice.public.to_wire())
    wire[field] = value
    with pytest.raises(MalformedInput):
        PublicIdentity.from_wire(alice.username, wire)


def test_rsa_key_policy_constants() -> None:
    assert RSA_ALLOWED_BITS == (2048, 3072, 4096)


def test_verified_rejects_rsa_exponent_3() -> None:
    weak = identity_with_rsa_key("alice", rsa.generate_private_key(public_exponent=3, key_size=2048))
    with pytest.raises(WeakParameters, match="exponent"):
        weak.public.verified()


def test_verified_rejects_rsa_1024() -> None:
    weak = identity_with_rsa_key("alice", rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(WeakParameters, match="size"):
        weak.public.verified()


def test_verified_rejects_a_swapped_encryption_key(alice: PrivateIdentity, mallory: PrivateIdentity) -> None:
    """A server substituting its own RSA key under alice's signing key is caught."""
    swapped = replace(alice.public, encryption_key=mallory.public.encryption_key)
    with pytest.raises(VerificationFailed):
        swapped.verified()


def test_verified_rejects_keys_bound_to_another_username(alice: PrivateIdentity) -> None:
    with pytest.raises(VerificationFailed):
        replace(alice.public, username=Username("bob")).verified()


def test_verified_rejects_a_signature_from_another_signing_key(
    alice: PrivateIdentity, mallory: PrivateIdentity
) -> None:
    with pytest.raises(VerificationFailed):
        replace(alice.public, signing_key=mallory.public.signing_key).verified()


def test_verified_rejects_a_truncated_binding_signature(alice: PrivateIdentity) -> None:
    truncated = replace(alice.public, encryption_key_signature=alice.public.encryption_key_signature[:63])
    with pytest.raises(VerificationFailed):
        truncated.verified()


def _rsa_spki_without_null_parameters(key: rsa.RSAPublicKey) -> bytes:
    """BER-ish SPKI that omits the NULL parameters: parseable, but not canonical DER."""
    der = spki(key)
    algorithm = bytes.fromhex("300b06092a864886f70d010101")
    body = algorithm + der[4 + 15 :]
    return b"\x30\x82" + len(body).to_bytes(2, "big") + body


@pytest.mark.parametrize(
    ("field", "make_value"),
    [
        pytest.param("signing_key", lambda alice: b"\x30\x00", id="signing-key-garbage"),
        pytest.param("signing_key", lambda alice: b"", id="signing-key-empty"),
        pytest.param("signing_key", lambda alice: alice.public.encryption_key, id="signing-key-is-rsa"),
        pytest.param("encryption_key", lambda alice: alice.public.encryption_key[:-1], id="rsa-truncated"),
        pytest.param(
            "encryption_key", lambda alice: alice.public.encryption_key + b"\x00", id="rsa-trailing"
        ),
        pytest.param("encryption_key", lambda alice: alice.public.signing_key, id="rsa-is-ed25519"),
        pytest.param(
            "encryption_key",
            lambda alice: alice.encryption_private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.PKCS1
            ),
            id="rsa-pkcs1-not-spki",
        ),
        pytest.param(
            "encryption_key",
            lambda alice: _rsa_spki_without_null_parameters(alice.encryption_private.public_key()),
            id="rsa-non-canonical-der",
        ),
    ],
)
def test_verified_rejects_malformed_der(alice: PrivateIdentity, field: str, make_value: object) -> None:
    broken = replace(alice.public, **{field: make_value(alice)})  # type: ignore[operator]
    with pytest.raises(MalformedInput):
        broken.verified()


def test_encryption_key_binding_is_labelled_and_length_prefixed(alice: PrivateIdentity) -> None:
    assert encryption_key_binding("alice", alice.public.encryption_key) == canonical(
        "securechat/v1/encryption-key", ["alice", alice.public.encryption_key]
    )


# --- the sealed key bundle -------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(alice: PrivateIdentity) -> dict[str, object]:
    return seal_key_bundle(alice, WRAP_KEY)


def test_key_bundle_round_trip(alice: PrivateIdentity, bundle: dict[str, object]) -> None:
    opened = open_key_bundle(bundle, WRAP_KEY, alice.username)
    # Ed25519 signing is deterministic, so the rebuilt public identity is identical.
    assert opened.public == alice.public
    assert pkcs8(opened.encryption_private) == pkcs8(alice.encryption_private)
    assert pkcs8(opened.signing_private) == pkcs8(alice.signing_private)
    wrapped = rsa_oaep_encrypt(alice.encryption_private.public_key(), b"message key", b"label")
    assert rsa_oaep_decrypt(opened.encryption_private, wrapped, b"label") == b"message key"


def test_key_bundle_wire_shape(bundle: dict[str, object]) -> None:
    assert set(bundle) == {"v", "iv", "ciphertext"}
    assert bundle["v"] == KEY_BUNDLE_VERSION == 1
    assert len(b64decode(bundle["iv"])) == 12  # type: ignore[arg-type]


def test_key_bundle_uses_a_fresh_iv_unless_one_is_injected(alice: PrivateIdentity) -> None:
    assert seal_key_bundle(alice, WRAP_KEY)["iv"] != seal_key_bundle(alice, WRAP_KEY)["iv"]
    assert seal_key_bundle(alice, WRAP_KEY, iv=IV) == seal_key_bundle(alice, WRAP_KEY, iv=IV)


def test_key_bundle_wrong_wrap_key(alice: PrivateIdentity, bundle: dict[str, object]) -> None:
    with pytest.raises(VerificationFailed):
        open_key_bundle(bundle, OTHER_WRAP_KEY, alice.username)


def test_key_bundle_is_bound_to_its_username(bob: PrivateIdentity, bundle: dict[str, object]) -> None:
    """A server handing alice's bundle to a login as bob is caught by the AAD."""
    with pytest.raises(VerificationFailed):
        open_key_bundle(bundle, WRAP_KEY, bob.username)


def test_key_bundle_aad_binds_username_and_version() -> None:
    assert key_bundle_aad("alice") == canonical("securechat/v1/key-bundle", ["alice", "1"])
    assert key_bundle_aad("alice", 2) != key_bundle_aad("alice")
    assert key_bundle_aad("bob") != key_bundle_aad("alice")


@pytest.mark.parametrize("version", [2, 0, 255])
def test_key_bundle_unsupported_version(
    alice: PrivateIdentity, bundle: dict[str, object], version: int
) -> None:
    with pytest.raises(UnsupportedVersion):
        open_key_bundle({**bundle, "v": version}, WRAP_KEY, alice.username)


@pytest.mark.parametrize("version", ["1", None, True, 1.0])
def test_key_bundle_version_must_be_an_integer(
    alice: PrivateIdentity, bundle: dict[str, object], version: object
) -> None:
    """``true`` and ``1.0`` are not the integer 1 (PROTOCOL.md 2.5), whatever Python's == says."""
    with pytest.raises(MalformedInput):
        open_key_bundle({**bundle, "v": version}, WRAP_KEY, alice.username)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"iv", "ciphertext"}, id="missing-v"),
        pytest.param({"v", "ciphertext"}, id="missing-iv"),
        pytest.param({"v", "iv", "ciphertext", "extra"}, id="extra-field"),
    ],
)
def test_key_bundle_fields_are_exact(
    alice: PrivateIdentity, bundle: dict[str, object], fields: set[str]
) -> None:
    changed = {name: bundle.get(name, 1) for name in fields}
    with pytest.raises(MalformedInput):
        open_key_bundle(changed, WRAP_KEY, alice.username)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"iv": None}, id="iv-missing"),
        pytest.param({"ciphertext": 5}, id="ciphertext-not-a-string"),
        pytest.param({"iv": "AAAA AAAA"}, id="iv-bad-base64"),
        pytest.param({"iv": b64encode(bytes(13))}, id="iv-too-long"),
        pytest.param({"ciphertext": "AA"}, id="ciphertext-unpadded"),
        pytest.param({"ciphertext": b64encode(bytes(8193))}, id="ciphertext-too-long"),
    ],
)
def test_key_bundle_malformed_fields(
    alice: PrivateIdentity, bundle: dict[str, object], change: dict[str, object]
) -> None:
    with pytest.raises(MalformedInput):
        open_key_bundle({**bundle, **change}, WRAP_KEY, alice.username)


@pytest.mark.parametrize("bundle_value", [None, [], "bundle"])
def test_key_bundle_must_be_an_object(alice: PrivateIdentity, bundle_value: object) -> None:
    with pytest.raises(MalformedInput):
        open_key_bundle(bundle_value, WRAP_KEY, alice.username)


def _flip_first_bit(text: str) -> str:
    data = bytearray(b64decode(text))
    data[0] ^= 1
    return b64encode(bytes(data))


@pytest.mark.parametrize("field", ["iv", "ciphertext"])
def test_key_bundle_tampering(alice: PrivateIdentity, bundle: dict[str, object], field: str) -> None:
    tampered = {**bundle, field: _flip_first_bit(bundle[field])}  # type: ignore[arg-type]
    with pytest.raises(VerificationFailed):
        open_key_bundle(tampered, WRAP_KEY, alice.username)


def test_key_bundle_short_iv_is_a_verification_failure(
    alice: PrivateIdentity, bundle: dict[str, object]
) -> None:
    with pytest.raises(VerificationFailed):
        open_key_bundle({**bundle, "iv": b64encode(bytes(8))}, WRAP_KEY, alice.username)


def _sealed(username: str, plaintext: bytes) -> dict[str, object]:
    """A bundle that authenticates correctly but holds ``plaintext``."""
    ciphertext = aes_gcm_encrypt(WRAP_KEY, IV, plaintext, key_bundle_aad(username))
    return {"v": 1, "iv": b64encode(IV), "ciphertext": b64encode(ciphertext)}


@pytest.mark.parametrize(
    "make_plaintext",
    [
        pytest.param(lambda alice: b"not canonical bytes", id="garbage"),
        pytest.param(lambda alice: canonical("securechat/v1/other", [b"a", b"b"]), id="wrong-label"),
        pytest.param(lambda alice: canonical(KEY_BUNDLE_PLAINTEXT, [b"a", b"b"]), id="not-der"),
        pytest.param(
            lambda alice: canonical(KEY_BUNDLE_PLAINTEXT, [pkcs8(alice.encryption_private)]), id="one-key"
        ),
        pytest.param(
            lambda alice: canonical(
                KEY_BUNDLE_PLAINTEXT, [pkcs8(alice.signing_private), pkcs8(alice.encryption_private)]
            ),
            id="keys-in-wrong-order",
        ),
    ],
)
def test_key_bundle_with_bad_contents(alice: PrivateIdentity, make_plaintext: object) -> None:
    """Even authenticated contents that do not hold the two keys fail opaquely."""
    bundle = _sealed("alice", make_plaintext(alice))  # type: ignore[operator]
    with pytest.raises(VerificationFailed):
        open_key_bundle(bundle, WRAP_KEY, alice.username)


def test_key_bundle_contents_built_by_hand_open(alice: PrivateIdentity) -> None:
    """The control for the test above: the same construction with the right contents opens."""
    plaintext = canonical(
        KEY_BUNDLE_PLAINTEXT, [pkcs8(alice.encryption_private), pkcs8(alice.signing_private)]
    )
    assert open_key_bundle(_sealed("alice", plaintext), WRAP_KEY, alice.username).public == alice.public


# --- fingerprints and safety numbers ------------------------------------------------


def test_fingerprint_format(alice: PrivateIdentity) -> None:
    printed = fingerprint(alice.public.signing_key)
    assert re.fullmatch(r"([0-9A-F]{4} ){15}[0-9A-F]{4}", printed)
    assert printed.replace(" ", "") == hashlib.sha256(alice.public.signing_key).hexdigest().upper()
    assert fingerprint(alice.public.encryption_key) != printed


def test_safety_number_is_60_digits_and_order_independent(
    alice: PrivateIdentity, bob: PrivateIdentity
) -> None:
    number = safety_number(alice.public, bob.public)
    assert re.fullmatch(r"[0-9]{60}", number)
    assert safety_number(bob.public, alice.public) == number
    assert number[:30] <= number[30:]


def test_formatted_safety_number(alice: PrivateIdentity, bob: PrivateIdentity) -> None:
    number = safety_number(alice.public, bob.public)
    formatted = format_safety_number(number)
    assert re.fullmatch(r"([0-9]{5} ){11}[0-9]{5}", formatted)
    assert formatted.replace(" ", "") == number


@pytest.mark.parametrize(
    ("person", "field"),
    [
        ("alice", "signing_key"),
        ("alice", "encryption_key"),
        ("bob", "signing_key"),
        ("bob", "encryption_key"),
        ("alice", "username"),
    ],
)
def test_safety_number_changes_when_any_key_changes(
    alice: PrivateIdentity, bob: PrivateIdentity, mallory: PrivateIdentity, person: str, field: str
) -> None:
    identities = {"alice": alice.public, "bob": bob.public}
    before = safety_number(identities["alice"], identities["bob"])
    identities[person] = replace(identities[person], **{field: getattr(mallory.public, field)})
    assert safety_number(identities["alice"], identities["bob"]) != before


def test_public_key_with_an_unknown_algorithm_is_malformed(alice: PrivateIdentity) -> None:
    from securechat.protocol.primitives import load_ed25519_public_key, load_rsa_public_key

    raw = alice.public.signing_key[-32:]
    unknown_oid = bytes.fromhex("302a300506032a0304032100") + raw
    with pytest.raises(MalformedInput):
        load_ed25519_public_key(unknown_oid)
    with pytest.raises(MalformedInput):
        load_rsa_public_key(unknown_oid)


def test_ed25519_key_in_a_second_encoding_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from securechat.protocol.primitives import load_ed25519_public_key, spki

    while True:
        key = ed25519.Ed25519PrivateKey.generate().public_key()
        canonical_form = spki(key)
        if canonical_form[-1] & 1 == 0:  # a BIT STRING may only claim an unused bit that is 0
            break
    assert load_ed25519_public_key(canonical_form) is not None
    second_form = canonical_form[:11] + b"\x01" + canonical_form[12:]
    with pytest.raises(MalformedInput):
        load_ed25519_public_key(second_form)
