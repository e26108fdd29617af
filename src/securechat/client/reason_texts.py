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
    "device_list_invalid": "the device list is not signed by the account's pinned key",
    "device_certificate_invalid": "a device in the list is not certified by the account's key",
    "device_list_rollback": "the device list is older than the one accepted here",
    "device_not_listed": "it is from, or names, a device not in the account's accepted device list",
    "prekey_invalid": "the device's prekey is not signed by that device",
    "prekey_stale": "the device's signed prekey is more than 30 days old",
    "prekey_unknown": "it starts a session with a prekey this device no longer holds",
    "session_unknown": "this device has no session with the sending device that opens it; a new one will be started",
    "ratchet_duplicate": "its key was used before or has expired: a repeat or an old session",
    "ratchet_too_far": "it claims a jump of more than 25,000 messages",
    "ratchet_failed": "it does not decrypt with the session of the sending device; a new one will be started",
    "transition_invalid": "the contact's new identity key does not follow from the pinned one by a valid signed hand-over",
}


def explain(reason: str | None) -> str:
    """``code: words`` for a known code; an unknown one is shown as it is."""
    if reason is None:
        return "no reason given"
    text = REASON_TEXTS.get(reason)
    return f"{reason}: {text}" if text else reason
