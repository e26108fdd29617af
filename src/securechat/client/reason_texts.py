"""What each reason code of PROTOCOL.md 14 means, in words for people.

The codes are what programs compare; these texts are only for display.
"""

from __future__ import annotations

REASON_TEXTS: dict[str, str] = {
    "malformed": "it does not parse",
    "unsupported_version": "it is of a protocol version this client does not speak",
    "unknown_sender": "the sender's keys are unknown here",
    "bad_signature": "its signature does not verify with the sender's pinned keys",
    "key_changed": "it is signed with the sender's new keys; compare the safety number and accept the change to read it",
    "wrong_conversation": "it belongs to another conversation than the one it was delivered in",
    "unknown_group": "this device has no verified membership for its group",
    "wrong_members": "its recipients are not the conversation's members",
    "replayed": "this message id was received before: a replay",
    "not_for_me": "it was not encrypted for you",
    "undecryptable": "it does not decrypt",
    "bad_payload": "its content is invalid",
    "chain_invalid": "the group's membership chain does not verify",
    "chain_fork": "the server's group chain does not extend the one verified here",
    "invite_mismatch": "the server answered the code with another invite",
    "not_admin": "its author is not an admin of the group",
    "older_name": "a newer name is already known",
    "invite_expired": "the invite has expired",
    "own_keys_changed": "the server publishes other keys for you than yours",
    "unsigned": "it is not signed by its reader: only the server's word",
}


def explain(reason: str | None) -> str:
    """``code: words`` for a known code; an unknown one is shown as it is."""
    if reason is None:
        return "no reason given"
    text = REASON_TEXTS.get(reason)
    return f"{reason}: {text}" if text else reason
