"""Password-based key derivation: parameter checks and the derived keys.

Each real derivation runs 600,000 PBKDF2 iterations (about 0.3 s), so the module
derives a handful of keys once, in a module-scoped fixture, and the tests share them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pytest

from securechat.protocol.encoding import b64encode
from securechat.protocol.errors import MalformedInput, WeakParameters
from securechat.protocol.kdf import (
    DEFAULT_ITERATIONS,
    KDF_ALGORITHM,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    SALT_BYTES,
    DerivedKeys,
    KdfParams,
    derive_keys,
    normalise_password,
)

SALT = bytes(range(16))
OTHER_SALT = bytes(range(16, 32))
PASSWORD = "correct horse battery staple"


def wire(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {"algorithm": KDF_ALGORITHM, "iterations": 600_000, "salt": b64encode(SALT)}
    data.update(overrides)
    return data


# --- parameters -------------------------------------------------------------------


def test_protocol_floor_and_ceiling() -> None:
    assert (MIN_ITERATIONS, DEFAULT_ITERATIONS, MAX_ITERATIONS, SALT_BYTES) == (
        600_000,
        600_000,
        10_000_000,
        16,
    )


def test_from_wire_round_trip() -> None:
    params = KdfParams.from_wire(wire())
    assert params == KdfParams(salt=SALT, iterations=600_000)
    assert params.to_wire() == wire()
    assert KdfParams.from_wire(params.to_wire()) == params


@pytest.mark.parametrize("iterations", [MIN_ITERATIONS, 1_000_000, MAX_ITERATIONS])
def test_from_wire_accepts_iterations_within_bounds(iterations: int) -> None:
    assert KdfParams.from_wire(wire(iterations=iterations)).iterations == iterations


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"iterations": 599_999}, id="iterations-below-floor"),
        pytest.param({"iterations": 1}, id="iterations-1"),
        pytest.param({"iterations": 0}, id="iterations-0"),
        pytest.param({"iterations": -600_000}, id="iterations-negative"),
        pytest.param({"iterations": MAX_ITERATIONS + 1}, id="iterations-above-ceiling"),
        pytest.param({"iterations": 2**63}, id="iterations-huge"),
        pytest.param({"salt": b64encode(bytes(15))}, id="salt-15-bytes"),
        pytest.param({"salt": b64encode(bytes(17))}, id="salt-17-bytes"),
        pytest.param({"salt": ""}, id="salt-empty"),
        pytest.param({"salt": b64encode(bytes(64))}, id="salt-64-bytes"),
        pytest.param({"algorithm": "pbkdf2-sha1"}, id="algorithm-sha1"),
        pytest.param({"algorithm": "argon2id"}, id="algorithm-other"),
        pytest.param({"algorithm": "PBKDF2-SHA256"}, id="algorithm-case"),
    ],
)
def test_from_wire_refuses_weak_or_unsupported_parameters(overrides: dict[str, object]) -> None:
    """Well-formed values below the protocol's floor (a hostile server) are WeakParameters."""
    with pytest.raises(WeakParameters):
        KdfParams.from_wire(wire(**overrides))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(wire(iterations=True), id="iterations-bool"),
        pytest.param(wire(iterations=600_000.0), id="iterations-float"),
        pytest.param(wire(iterations="600000"), id="iterations-string"),
        pytest.param(wire(iterations=None), id="iterations-null"),
        pytest.param(wire(salt=list(SALT)), id="salt-not-a-string"),
        pytest.param(wire(salt="AAECAwQFBgcICQoLDA0ODw"), id="salt-unpadded"),
        pytest.param(wire(salt="AAECAwQFBgcICQoLDA0ODx=="), id="salt-non-canonical"),
        pytest.param(wire(salt=b64encode(bytes(65))), id="salt-too-long-to-parse"),
        pytest.param(wire(algorithm=None), id="algorithm-null"),
        pytest.param(wire(algorithm=1), id="algorithm-int"),
        pytest.param({"iterations": 600_000, "salt": b64encode(SALT)}, id="algorithm-missing"),
        pytest.param([KDF_ALGORITHM, 600_000, b64encode(SALT)], id="not-an-object"),
        pytest.param(None, id="null"),
    ],
)
def test_from_wire_refuses_malformed_parameters(data: object) -> None:
    """Values of the wrong type or encoding are MalformedInput, never coerced."""
    with pytest.raises(MalformedInput):
        KdfParams.from_wire(data)


def test_generate_makes_fresh_16_byte_salts() -> None:
    first, second = KdfParams.generate(), KdfParams.generate()
    assert len(first.salt) == SALT_BYTES
    assert first.salt != second.salt
    assert first.iterations == DEFAULT_ITERATIONS
    assert first.algorithm == KDF_ALGORITHM


def test_generate_refuses_weak_iterations() -> None:
    with pytest.raises(WeakParameters):
        KdfParams.generate(iterations=100_000)


def test_derive_keys_checks_parameters_before_any_work() -> None:
    # Built directly, bypassing from_wire: derive_keys must still refuse them (and
    # fast: a 1-iteration PBKDF2 would otherwise just run).
    with pytest.raises(WeakParameters):
        derive_keys(PASSWORD, KdfParams(salt=SALT, iterations=1))


# --- passwords --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("hunter2", b"hunter2"),
        ("ｐａｓｓ", b"pass"),
        ("cafe\u0301", "café".encode()),
        ("caf\u00e9", "café".encode()),
        ("Ⅻ", b"XII"),
    ],
)
def test_normalise_password_is_nfkc_utf8(password: str, expected: bytes) -> None:
    assert normalise_password(password) == expected


def test_normalise_password_refuses_lone_surrogates() -> None:
    with pytest.raises(MalformedInput):
        normalise_password("pass\ud800word")


# --- derived keys -----------------------------------------------------------------


@dataclass(frozen=True)
class Derivations:
    first: DerivedKeys
    again: DerivedKeys
    decomposed: DerivedKeys
    other_salt: DerivedKeys
    other_password: DerivedKeys


@pytest.fixture(scope="module")
def derivations() -> Derivations:
    params = KdfParams(salt=SALT, iterations=600_000)
    return Derivations(
        first=derive_keys("caf\u00e9 " + PASSWORD, params),
        again=derive_keys("caf\u00e9 " + PASSWORD, params),
        decomposed=derive_keys("cafe\u0301 " + PASSWORD, params),
        other_salt=derive_keys("caf\u00e9 " + PASSWORD, KdfParams(salt=OTHER_SALT, iterations=600_000)),
        other_password=derive_keys("cafe " + PASSWORD, params),
    )


def test_auth_and_wrap_keys_are_distinct_32_byte_keys(derivations: Derivations) -> None:
    keys = derivations.first
    assert len(keys.auth_key) == len(keys.wrap_key) == 32
    assert keys.auth_key != keys.wrap_key


def test_derivation_is_deterministic(derivations: Derivations) -> None:
    assert derivations.again == derivations.first


def test_nfkc_equivalent_passwords_derive_the_same_keys(derivations: Derivations) -> None:
    assert derivations.decomposed == derivations.first


@pytest.mark.parametrize("variant", ["other_salt", "other_password"])
def test_different_inputs_give_unrelated_keys(derivations: Derivations, variant: str) -> None:
    keys: DerivedKeys = getattr(derivations, variant)
    produced = {keys.auth_key, keys.wrap_key, derivations.first.auth_key, derivations.first.wrap_key}
    assert len(produced) == 4


def test_derivation_matches_an_independent_implementation(derivations: Derivations) -> None:
    """PBKDF2 from hashlib, then RFC 5869 HKDF written out (empty salt, one block)."""
    master = hashlib.pbkdf2_hmac("sha256", "café correct horse battery staple".encode(), SALT, 600_000, 32)
    prk = hmac.new(bytes(32), master, hashlib.sha256).digest()

    def expand(info: bytes) -> bytes:
        return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()

    assert derivations.first.auth_key == expand(b"securechat/v1/auth-key")
    assert derivations.first.wrap_key == expand(b"securechat/v1/wrap-key")
