"""Errors the client library raises.

ClientError
├── ApiError              the server answered with an error (status, code, message)
├── NotLoggedIn           no session in the state directory
├── PasswordRejected      the password breaks the password policy
├── KeyChanged            a contact's keys differ from the pinned ones
└── ServerMisbehaved      the server handed out something a client must refuse
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    pass


class ApiError(ClientError):
    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body or {}


class NotLoggedIn(ClientError):
    pass


class PasswordRejected(ClientError):
    pass


class KeyChanged(ClientError):
    def __init__(self, username: str, pinned: dict[str, str], current: dict[str, str]) -> None:
        super().__init__(
            f"the keys of {username} changed; refusing to send until you accept the change "
            f"(securechat verify {username} --accept-change)"
        )
        self.username = username
        self.pinned = pinned
        self.current = current


class ServerMisbehaved(ClientError):
    pass


class FileCorrupt(ClientError):
    """A downloaded file failed a check (a chunk's tag, its length, the total hash)."""


class GroupUnverifiable(ClientError):
    """A group's membership chain failed verification, or the server's chain does not
    extend the one this device verified before (a rollback or a fork), or an invite
    does not check out; ``reason`` is the code of PROTOCOL.md 14."""

    def __init__(self, message: str, *, reason: str = "chain_invalid") -> None:
        super().__init__(message)
        self.reason = reason


class MembershipMismatch(ClientError):
    """The server's member list differs from the signed membership: sending is refused."""

    def __init__(self, group_id: str, extra: set[str], missing: set[str]) -> None:
        parts = []
        if extra:
            parts.append(f"the server lists {', '.join(sorted(extra))}, whom no signed change added")
        if missing:
            parts.append(f"the server leaves out {', '.join(sorted(missing))}")
        super().__init__(f"group {group_id}: {'; '.join(parts)}. Not sending.")
        self.group_id = group_id
        self.extra = extra
        self.missing = missing
