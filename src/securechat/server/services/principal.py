"""Who is making a request."""

from __future__ import annotations

from dataclasses import dataclass

from ...protocol.identifiers import Username


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: int
    username: Username
    session_id: str
    is_admin: bool
