"""Who is making a request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: int
    username: str
    session_id: str
    is_admin: bool
