"""The stable reason codes of PROTOCOL.md 14: what tests and vectors compare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Reason = Literal[
    "malformed",
    "unsupported_version",
    "unknown_sender",
    "bad_signature",
    "key_changed",
    "wrong_conversation",
    "unknown_group",
    "wrong_members",
    "replayed",
    "not_for_me",
    "undecryptable",
    "bad_payload",
    "chain_invalid",
    "chain_fork",
    "invite_mismatch",
    "not_admin",
    "older_name",
    "invite_expired",
    "own_keys_changed",
    "unsigned",
    # Version 2 (PROTOCOL.md 15.14): device lists and the receive decision of 15.8.
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
    # Identity-key rotation (PROTOCOL.md 15.11).
    "transition_invalid",
]

REASONS: tuple[Reason, ...] = get_args(Reason)


@dataclass(frozen=True)
class Refused:
    """A refusal: shown, never dropped, never as valid (PROTOCOL.md invariant of 7.9)."""

    reason: Reason
    # What the refused input claimed, where it parsed far enough to say (a message's
    # Claim); for display as "claimed", never as established.
    claim: object | None = None
    outcome: Literal["refused"] = "refused"

    def to_wire(self) -> dict[str, str]:
        """The refusal as the vectors write it: the outcome and the reason code."""
        return {"outcome": self.outcome, "reason": self.reason}
