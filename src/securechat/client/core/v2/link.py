"""The decisions of linking a device (PROTOCOL.md 15.10.2), pure.

``choose_link_target`` (on the old device): which listed device a typed link code names,
so that history goes to no device but the one whose code the user read off its screen.
``accept_history_link`` (on the new device): whether an accepted 15.8 message of type
``history_link`` is a hand-over meant for this device from a device of its own account;
anything else is refused with a reason and nothing is imported.
``check_archive_rows`` (on the new device, after the download): whether every row of
the archive is a direct message of this account, with a 3.2 id, in the conversation
of this account and the row's peer, from one of the two, with a well-formed text no
longer than a message carries; one row that is not refuses the whole archive, so a
hand-over cannot plant "verified" messages anywhere. ``row_fits`` is that check for one
row (the old device leaves out rows that fail it; a restored backup, ``core.v2.backup``,
skips them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ....protocol import errors as protocol_errors
from ....protocol.files import FileDescriptor
from ....protocol.identifiers import Username, direct_conversation_id
from ....protocol.v2.backup import BackupMessage
from ....protocol.v2.devices import Device
from ....protocol.v2.link import MAX_LINK_ARCHIVE_BYTES, LinkRefused, link_value, parse_link_code

PAYLOAD_TYPE = "history_link"
# 3.1 and 3.2, already normal: a row's peer and id are compared as they are, never normalised.
_USERNAME = re.compile(r"[a-z0-9._-]{3,32}")
_MESSAGE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# A row's text in UTF-8 bytes at most: what a 15.8 body (131 072 bytes before its tag)
# can carry, and more than a v1 payload (64 KiB); no text a client accepted is longer.
MAX_ROW_TEXT_BYTES = 131_072

LinkReason = Literal[
    "link_code_malformed",  # not 24 characters of the alphabet
    "link_code_checksum",  # a typo
    "link_device_unknown",  # no device of the accepted list has this code
    "link_self",  # the code is this device's own
    "link_foreign",  # not from this account, or not in its conversation with itself
    "link_not_for_me",  # addressed to other devices too, or to another device
    "link_unexpected",  # this device is not waiting for a hand-over (it showed no code lately)
    "link_malformed",  # the payload is not a hand-over
    "link_too_large",
    "link_archive_corrupt",  # the download fails its size, tags or SHA-256
    "link_archive_malformed",  # it opened, but is not this account's hand-over archive, or a row is not its own
]


@dataclass(frozen=True)
class LinkTarget:
    device: Device
    outcome: Literal["target"] = "target"


@dataclass(frozen=True)
class LinkAccepted:
    """A hand-over to download: the archive file's descriptor (12.3)."""

    archive: FileDescriptor
    sender_device: str
    outcome: Literal["accepted"] = "accepted"


@dataclass(frozen=True)
class LinkRefusal:
    reason: LinkReason
    outcome: Literal["refused"] = "refused"


def choose_link_target(
    typed: str, username: str, devices: Sequence[Device], this_device_id: str
) -> LinkTarget | LinkRefusal:
    """The device of the account's accepted list (``devices``) whose link code is
    ``typed``: refused if the code does not parse, names no listed device, or is this one's."""
    try:
        value = parse_link_code(typed)
    except LinkRefused as exc:
        return LinkRefusal(
            "link_code_checksum" if exc.reason == "link_code_checksum" else "link_code_malformed"
        )
    match = next((device for device in devices if link_value(username, device) == value), None)
    if match is None:
        return LinkRefusal("link_device_unknown")
    if match.device_id == this_device_id:
        return LinkRefusal("link_self")
    return LinkTarget(match)


def accept_history_link(
    *,
    username: str,
    device_id: str,
    sender: str,
    sender_device: str,
    conversation_id: str,
    target_devices: Sequence[tuple[str, str]],
    payload: Mapping[str, Any],
    expected_until: int | None,
    now: int,
) -> LinkAccepted | LinkRefusal:
    """15.10.2's accepting steps, for a ``history_link`` payload of a message that 15.8
    has accepted (so its sender device is listed and its signature and session hold):
    ``target_devices`` are the envelope's (username, device id) pairs; ``expected_until``
    when the wait this device's shown link code opened ends (None: it showed none)."""
    if sender != username or conversation_id != direct_conversation_id(
        Username(username), Username(username)
    ):
        return LinkRefusal("link_foreign")
    if list(target_devices) != [(username, device_id)] or payload.get("device_id") != device_id:
        return LinkRefusal("link_not_for_me")
    # Only while the user is linking this device: another listed device of the account
    # (one certified by someone who has the password) cannot push history to it unasked.
    if expected_until is None or now > expected_until:
        return LinkRefusal("link_unexpected")
    if set(payload) != {"type", "device_id", "archive"} or payload.get("type") != PAYLOAD_TYPE:
        return LinkRefusal("link_malformed")
    try:
        archive = FileDescriptor.from_payload({"file": payload["archive"]})
    except protocol_errors.ProtocolError:
        return LinkRefusal("link_malformed")
    if archive.size > MAX_LINK_ARCHIVE_BYTES:
        return LinkRefusal("link_too_large")
    return LinkAccepted(archive, sender_device)


def _text_fits(text: str) -> bool:
    try:
        return len(text.encode("utf-8")) <= MAX_ROW_TEXT_BYTES
    except UnicodeEncodeError:  # a lone surrogate, which JSON's escapes can carry
        return False


def row_fits(username: str, message: BackupMessage) -> bool:
    """A row this account may hold as verified (15.10.2): a 3.2 message id, a peer that
    is a normal username, the direct conversation of this account and that peer (3.3),
    a sender that is one of the two, and a well-formed text no longer than a message
    can carry."""
    return (
        _MESSAGE_ID.fullmatch(message.message_id) is not None
        and _USERNAME.fullmatch(message.peer) is not None
        and message.conversation_id == direct_conversation_id(Username(username), Username(message.peer))
        and message.sender in (username, message.peer)
        and _text_fits(message.text)
    )


def check_archive_rows(username: str, messages: Sequence[BackupMessage]) -> LinkRefusal | None:
    """None if every row fits; else the whole archive is refused (nothing imported)."""
    if all(row_fits(username, message) for message in messages):
        return None
    return LinkRefusal("link_archive_malformed")
