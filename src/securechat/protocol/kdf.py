"""Password-based key derivation: PBKDF2-HMAC-SHA256, then HKDF-SHA256.

The master key never leaves the client. The auth key is sent to the server (which
stores only argon2id of it); the wrap key seals the private-key bundle.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass

from .encoding import b64decode, b64encode
from .errors import MalformedInput, WeakParameters
from .labels import AUTH_KEY_INFO, WRAP_KEY_INFO
from .primitives import hkdf_sha256, pbkdf2_sha256

KDF_ALGORITHM = "pbkdf2-sha256"
MIN_ITERATIONS = 600_000
DEFAULT_ITERATIONS = 600_000
# A ceiling, so a hostile server cannot make a client spin for hours.
MAX_ITERATIONS = 10_000_000
SALT_BYTES = 16
KEY_BYTES = 32


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    iterations: int
    algorithm: str = KDF_ALGORITHM

    @classmethod
    def generate(cls, iterations: int = DEFAULT_ITERATIONS) -> KdfParams:
        return cls(salt=os.urandom(SALT_BYTES), iterations=iterations).checked()

    @classmethod
    def from_wire(cls, data: object) -> KdfParams:
        """Parse and check parameters as a server hands them out."""
        if not isinstance(data, dict):
            raise MalformedInput("kdf must be an object")
        algorithm = data.get("algorithm")
        iterations = data.get("iterations")
        salt = data.get("salt")
        if not isinstance(iterations, int) or isinstance(iterations, bool):
            raise MalformedInput("kdf.iterations must be an integer")
        if not isinstance(algorithm, str) or not isinstance(salt, str):
            raise MalformedInput("kdf.algorithm and kdf.salt must be strings")
        return cls(salt=b64decode(salt, max_bytes=64), iterations=iterations, algorithm=algorithm).checked()

    def checked(self) -> KdfParams:
        """Refuse anything below the protocol's floor (a server may be hostile)."""
        if self.algorithm != KDF_ALGORITHM:
            raise WeakParameters("unsupported KDF algorithm")
        if self.iterations < MIN_ITERATIONS:
            raise WeakParameters(f"PBKDF2 iterations below {MIN_ITERATIONS}")
        if self.iterations > MAX_ITERATIONS:
            raise WeakParameters("PBKDF2 iterations above the protocol's ceiling")
        if len(self.salt) != SALT_BYTES:
            raise WeakParameters("KDF salt must be 16 bytes")
        return self

    def to_wire(self) -> dict[str, object]:
        return {"algorithm": self.algorithm, "iterations": self.iterations, "salt": b64encode(self.salt)}


@dataclass(frozen=True)
class DerivedKeys:
    auth_key: bytes
    wrap_key: bytes


def normalise_password(password: str) -> bytes:
    """Passwords are NFKC-normalised and UTF-8 encoded before PBKDF2."""
    try:
        return unicodedata.normalize("NFKC", password).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedInput("password is not valid Unicode") from exc


def derive_keys(password: str, params: KdfParams) -> DerivedKeys:
    params.checked()
    master = pbkdf2_sha256(normalise_password(password), params.salt, params.iterations, KEY_BYTES)
    return DerivedKeys(
        auth_key=hkdf_sha256(master, salt=b"", info=AUTH_KEY_INFO.encode(), length=KEY_BYTES),
        wrap_key=hkdf_sha256(master, salt=b"", info=WRAP_KEY_INFO.encode(), length=KEY_BYTES),
    )
