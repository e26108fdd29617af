"""What the account's sessions hear about each other: a new login, and sessions that ended.

A new login can unseal the account's keys, so the owner's other sessions must learn of it:
it becomes an entry of kind ``session_started`` in the account's inbox (PROTOCOL.md 9.2),
written in the login's own transaction. Being an inbox entry, it reaches every open socket
of the account on every instance through the broker, and a device that was offline reads
it on its next connection, like any entry. It carries the new session's id, its start time
and the client's description (the User-Agent the sessions list already shows): nothing
secret, and nothing a client may trust beyond "the server says so".

Ended sessions (logout, revocation, a password change, a disabled account, a refresh token
used twice) are announced through the broker only, after their commit: the connections of
those sessions close at once, on every instance. The periodic session check of each
connection (``ws_session_check_seconds``) remains the backstop for an event that is lost.
"""

from __future__ import annotations

import json

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ..realtime.broker import InboxEvent, SessionsEnded
from ..storage import batch as batch_store
from .context import ServiceContext
from .writer import data_entry

SESSION_STARTED = "session_started"


async def add_login_notice(
    conn: AsyncConnection, *, user_id: int, session_id: str, user_agent: str, now: int
) -> InboxEvent:
    """In the caller's (login) transaction: the inbox entry announcing the new session.
    Publish the returned event after the commit."""
    return await conn.run_sync(_add_login_notice, user_id, session_id, user_agent, now)


def _add_login_notice(
    conn: Connection, user_id: int, session_id: str, user_agent: str, now: int
) -> InboxEvent:
    seq = batch_store.allocate_inbox_seqs(conn, {user_id: 1})[user_id]
    data = json.dumps(
        {"session_id": session_id, "at": now, "user_agent": user_agent[:200]}, separators=(",", ":")
    )
    row, event = data_entry(user_id, seq, SESSION_STARTED, data, now)
    batch_store.add_inbox_entries(conn, [row])
    return event


async def announce_ended(
    ctx: ServiceContext, user_id: int, reason: str, *, only: str | None = None, keep: str | None = None
) -> None:
    """After the commit that ended them: close the sockets of the user's sessions that
    ended (``only`` that one, else all but ``keep``) on every instance."""
    ended = SessionsEnded(reason, only=only, keep=keep)
    await ctx.broker.publish([InboxEvent(user_id, 0, "", ephemeral=True, ended=ended)])
