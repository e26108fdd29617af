"""Identifiers as they arrive in a path, a query or a body, parsed once at the edge.

Each type here is a ``str`` annotated with its parser, so a route or a request model
declares ``session_id: SessionId`` and receives a value that parsed, in its one canonical
spelling. The parsers are the protocol's where it has one (usernames, message,
conversation and file ids), the standard library's otherwise (``uuid``, ``ipaddress``).

A value that does not parse never reaches a service or the database: it becomes a 422
``invalid_input`` whose detail names the parameter and the rule it breaks, and neither
the answer nor the log repeats the value (a NUL byte, say, which PostgreSQL refuses).
Routers pass these values on as they are; none slices or re-parses an identifier.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from typing import Annotated

from annotated_types import Ge, Le
from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

from ...protocol.errors import ProtocolError
from ...protocol.identifiers import parse_conversation_id, parse_message_id, parse_username

# The longest text each kind may have before it is parsed (a longer one is refused
# without further work). A username may arrive in a longer Unicode form that NFKC
# folds to at most 32 characters, as the protocol's parser allows.
USERNAME_MAX_INPUT = 256
UUID_TEXT = 36
CONVERSATION_ID_TEXT = 36
ADDRESS_TEXT = 64  # blocks.subject: IPv6 (at most 45) with a zone id
# Row ids and group change numbers are INTEGER columns: PostgreSQL refuses a larger
# parameter outright (a 500 if it got there), SQLite would merely find nothing.
INT32_MAX = 2**31 - 1


def _refuse(kind: str, rule: str) -> PydanticCustomError:
    # The message is fixed text: pydantic keeps the input beside it, and the error
    # handler (errors.py) renders only the location and this message.
    return PydanticCustomError(f"invalid_{kind}", rule)


def _protocol(kind: str, parse: Callable[[object], str], rule: str) -> Callable[[str], str]:
    def validate(value: str) -> str:
        try:
            return parse(value)
        except ProtocolError:
            raise _refuse(kind, rule) from None

    return validate


def parse_username_text(value: str) -> str:
    """The protocol's rule: NFKC, lower case, 3-32 of a-z, 0-9, '.', '_', '-'."""
    try:
        return parse_username(value)
    except ProtocolError as exc:
        # The protocol's messages name the rule broken (too long, NUL, characters), never the value.
        raise _refuse("username", str(exc)) from None


def parse_session_id(value: str) -> str:
    """A session id as the server issues it: a UUID in its lower-case canonical text."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise _refuse("session_id", "a session id is a UUID in lower-case canonical form") from None
    if str(parsed) != value:
        raise _refuse("session_id", "a session id is a UUID in lower-case canonical form")
    return value


def canonical_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The one spelling of an address: compressed, lower case; an IPv4-mapped IPv6
    address (how a dual-stack socket shows an IPv4 client) as the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_ip_address(value: str) -> str:
    """An IPv4 or IPv6 address (with a zone id if any) in its canonical spelling.

    Networks, ports, brackets, host names and surrounding spaces are refused, as are
    characters outside printable ASCII (``ipaddress`` would accept any in a zone id).
    """
    rule = "address must be an IPv4 or IPv6 address"
    if not value.isascii() or not value.isprintable() or " " in value:
        raise _refuse("address", rule)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        # ipaddress's own message repeats the value: not passed on.
        raise _refuse("address", rule) from None
    return canonical_address(address)


def parse_group_id(value: str) -> str:
    try:
        group_id = parse_conversation_id(value)
    except ProtocolError:
        raise _refuse("group_id", "a group id is 'grp-' and 32 lower-case hex digits") from None
    if not group_id.startswith("grp-"):
        raise _refuse("group_id", "a group id is 'grp-' and 32 lower-case hex digits")
    return group_id


Username = Annotated[
    str, StringConstraints(max_length=USERNAME_MAX_INPUT), AfterValidator(parse_username_text)
]
SessionId = Annotated[str, StringConstraints(max_length=UUID_TEXT), AfterValidator(parse_session_id)]
IpAddress = Annotated[str, StringConstraints(max_length=ADDRESS_TEXT), AfterValidator(parse_ip_address)]
ConversationId = Annotated[
    str,
    StringConstraints(max_length=CONVERSATION_ID_TEXT),
    AfterValidator(
        _protocol(
            "conversation_id",
            parse_conversation_id,
            "a conversation id is 'dm-' or 'grp-' and 32 lower-case hex digits",
        )
    ),
]
GroupId = Annotated[str, StringConstraints(max_length=CONVERSATION_ID_TEXT), AfterValidator(parse_group_id)]
MessageId = Annotated[
    str,
    StringConstraints(max_length=UUID_TEXT),
    AfterValidator(_protocol("message_id", parse_message_id, "a message id is a lower-case UUIDv4")),
]
FileId = Annotated[
    str,
    StringConstraints(max_length=UUID_TEXT),
    AfterValidator(_protocol("file_id", parse_message_id, "a file id is a lower-case UUIDv4")),
]
InviteId = Annotated[
    str,
    StringConstraints(max_length=UUID_TEXT),
    AfterValidator(_protocol("invite_id", parse_message_id, "an invite id is a lower-case UUIDv4")),
]

# A row id the server handed out (history and log pages' ``before``): 1 to INT32_MAX.
RowId = Annotated[int, Ge(1), Le(INT32_MAX)]
