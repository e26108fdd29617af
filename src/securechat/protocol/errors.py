"""Errors raised by the protocol layer.

    ProtocolError
    ├── MalformedInput        bytes or fields that do not parse (strict base64, bad ids, sizes)
    ├── UnsupportedVersion    a version other than the one this code speaks
    ├── WeakParameters        KDF or key parameters below the protocol's floor
    └── VerificationFailed    any cryptographic check failed (deliberately opaque)

`VerificationFailed` never says which check failed: a signature, an AEAD tag, an OAEP
unwrap and a header mismatch all look the same to a caller, and so to an attacker.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error the protocol layer raises."""


class MalformedInput(ProtocolError):
    """Input does not follow the wire format."""


class UnsupportedVersion(ProtocolError):
    """A version this implementation does not speak; never downgraded."""


class WeakParameters(ProtocolError):
    """Parameters below the protocol's minimum (iterations, key size, exponent)."""


class VerificationFailed(ProtocolError):
    """A signature, MAC, AEAD tag, key unwrap or binding check failed."""

    def __init__(self, message: str = "verification failed") -> None:
        super().__init__(message)
