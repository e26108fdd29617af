"""Identifiers, parsed once at the edge into small validated types."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from typing import NewType

from .encoding import canonical
from .errors import MalformedInput
from .labels import DIRECT_CONVERSATION

Username = NewType("Username", str)
MessageId = NewType("MessageId", str)
ConversationId = NewType("ConversationId", str)

USERNAME_MIN = 3
USERNAME_MAX = 32
_USERNAME_RE = re.compile(r"[a-z0-9._-]{3,32}")
_MESSAGE_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_CONVERSATION_ID_RE = re.compile(r"(dm|grp)-[0-9a-f]{32}")


def check_text(value: str, *, field: str, max_chars: int) -> str:
    """Refuse NUL characters, lone surrogates and over-long text in a text field."""
    if len(value) > max_chars:
        raise MalformedInput(f"{field} is too long")
    if "\x00" in value:
        raise MalformedInput(f"{field} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedInput(f"{field} is not valid Unicode") from exc
    return value


def parse_username(value: object) -> Username:
    """NFKC-normalise and lower-case a username, then check it is 3-32 of [a-z0-9._-]."""
    if not isinstance(value, str):
        raise MalformedInput("username must be a string")
    if _USERNAME_RE.fullmatch(value):
        # Already normal: NFKC and lower-casing leave [a-z0-9._-] as it is.
        return Username(value)
    check_text(value, field="username", max_chars=256)
    normalised = unicodedata.normalize("NFKC", value).lower()
    if not _USERNAME_RE.fullmatch(normalised):
        raise MalformedInput("username must be 3-32 characters of a-z, 0-9, '.', '_' or '-'")
    return Username(normalised)


def parse_message_id(value: object) -> MessageId:
    """A message id is a lower-case random (version 4) UUID in its canonical text form."""
    if not isinstance(value, str) or not _MESSAGE_ID_RE.fullmatch(value):
        raise MalformedInput("message_id must be a lower-case UUIDv4")
    return MessageId(value)


def new_message_id() -> MessageId:
    return MessageId(str(uuid.uuid4()))


def parse_conversation_id(value: object) -> ConversationId:
    if not isinstance(value, str) or not _CONVERSATION_ID_RE.fullmatch(value):
        raise MalformedInput("conversation_id is malformed")
    return ConversationId(value)


def direct_conversation_id(first: Username, second: Username) -> ConversationId:
    """The id of the direct conversation between two users; order-independent.

    Deterministic, so both clients know it without asking the server, and a server
    cannot move a direct message into another conversation unnoticed.
    """
    low, high = sorted((first, second))
    digest = hashlib.sha256(canonical(DIRECT_CONVERSATION, [low, high])).hexdigest()
    return ConversationId("dm-" + digest[:32])


def new_group_conversation_id() -> ConversationId:
    return ConversationId("grp-" + uuid.uuid4().hex)
