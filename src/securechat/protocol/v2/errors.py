"""Refusals of protocol v2 with the reason codes of PROTOCOL.md 15.14.

    ProtocolError (protocol.errors)
    ├── MalformedInput, UnsupportedVersion   as in v1: input that does not parse
    └── Refusal                              a v2 check failed; ``reason`` says which decision

A refusal's reason is for the client core and its user (which decision refused the
input), never for the sender: ``ratchet_failed`` stays as opaque as v1's
``VerificationFailed`` about which cryptographic check failed.
"""

from __future__ import annotations

from typing import Literal, get_args

from ..errors import ProtocolError

V2Reason = Literal[
    "device_list_invalid",
    "device_certificate_invalid",
    "device_list_rollback",
    "device_not_listed",
    "prekey_invalid",
    "prekey_stale",
    "prekey_unknown",
    "session_unknown",
    "ratchet_duplicate",
    "ratchet_too_far",
    "ratchet_failed",
]

V2_REASONS: tuple[V2Reason, ...] = get_args(V2Reason)


class Refusal(ProtocolError):
    """A v2 check refused its input; ``reason`` is one of :data:`V2_REASONS`."""

    def __init__(self, reason: V2Reason) -> None:
        super().__init__(reason)
        self.reason: V2Reason = reason
