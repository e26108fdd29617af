"""Intrusion detection for logins: sliding-window counters per address and per account,
blocks that grow for repeat offenders, all in the database (they survive restarts and
hold across instances).

A login first reserves an attempt (``begin_login``), in one write transaction that
checks the counters and records the attempt as *pending*; only then is the password
checked. Parallel attempts therefore count before any of them finishes, so fifty at
once get at most ``ids_ip_failures`` password checks. A success removes its attempt; a
failure keeps it, and the failure that reaches the threshold blocks the address.

Per account, an attacker spread over many addresses is slowed without locking the owner
out: once an account has ``ids_account_failures`` failures in the window, addresses that
have already tried it are refused (429), while an address with no failures for it may
still log in.

A password change checks the current password through the same attempts, so a wrong
current key is a failed login for the address and the account. An attempt whose check
never ran (the server was too busy to hash) is withdrawn, not counted.

Refresh-token reuse (a spent token presented after the grace: a sign that a token was
stolen) ends the session in ``accounts.refresh``; ``record_token_reuse`` logs it and
writes it to the append-only audit log as done by ``(server)``, where the audit and
intrusion views show it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import AccessBlocked, RateLimited
from ..storage import admin as audit_store
from ..storage import intrusion as store
from .context import ServiceContext, now_ms

logger = logging.getLogger(__name__)

BLOCK_MESSAGE = "access blocked due to suspicious activity"
# Who the audit log names for what the server itself recorded: not a valid username.
SERVER_ACTOR = "(server)"
TOKEN_REUSE_ACTION = "refresh_token_reuse"  # noqa: S105 - an audit action, not a secret


@dataclass(frozen=True)
class Attempt:
    id: int
    ip: str
    username: str


def _retry_after(until_ms: int, now: int) -> dict[str, str]:
    return {"Retry-After": str(max(1, -(-(until_ms - now) // 1000)))}


def _blocked(until_ms: int, now: int) -> AccessBlocked:
    return AccessBlocked(BLOCK_MESSAGE, headers=_retry_after(until_ms, now), retry_after_ms=until_ms - now)


async def check_address(ctx: ServiceContext, ip: str) -> None:
    """Refuse a blocked address (pre-login and registration check this too)."""
    now = now_ms()
    async with ctx.database.read() as conn:
        block = await store.active_block(conn, "ip", ip, now)
    if block is not None:
        raise _blocked(int(block["until"]), now)


async def begin_login(ctx: ServiceContext, ip: str, username: str) -> Attempt:
    settings = ctx.settings
    now = now_ms()
    window_start = now - settings.ids_window_seconds * 1000
    # A blocked address is refused after a read alone: a storm from it then takes no
    # place in the queue for the database's writes, where logins wait too.
    async with ctx.database.read() as conn:
        block = await store.active_block(conn, "ip", ip, now)
    if block is not None:
        ctx.metrics.logins.labels("blocked").inc()
        raise _blocked(int(block["until"]), now)
    async with ctx.database.write() as conn:
        await store.lock_subjects(conn, f"ip:{ip}", f"account:{username}")
        block = await store.active_block(conn, "ip", ip, now)
        if block is not None:
            ctx.metrics.logins.labels("blocked").inc()
            raise _blocked(int(block["until"]), now)
        # Failures that already earned a block do not count again once it expires.
        since = max(window_start, await store.last_block_at(conn, "ip", ip) + 1)
        if await store.count_ip_attempts(conn, ip, since) >= settings.ids_ip_failures:
            until = await _block_address(ctx, conn, ip, now)
            ctx.metrics.logins.labels("blocked").inc()
            raise _blocked(until, now)
        account_failures = await store.count_account_failures(conn, username, window_start)
        if (
            account_failures >= settings.ids_account_failures
            and await store.count_pair_attempts(conn, ip, username, window_start) > 0
        ):
            logger.warning("login throttled for an account under attack from %s", ip)
            ctx.metrics.logins.labels("throttled").inc()
            raise RateLimited(
                "too many failed logins for this account; try again later",
                headers={"Retry-After": str(settings.ids_window_seconds)},
            )
        attempt_id = await store.add_attempt(conn, ip=ip, username=username, at=now)
    return Attempt(attempt_id, ip, username)


async def login_failed(ctx: ServiceContext, attempt: Attempt) -> None:
    settings = ctx.settings
    now = now_ms()
    async with ctx.database.write() as conn:
        await store.lock_subjects(conn, f"ip:{attempt.ip}")
        await store.mark_attempt_failed(conn, attempt.id)
        window_start = now - settings.ids_window_seconds * 1000
        since = max(window_start, await store.last_block_at(conn, "ip", attempt.ip) + 1)
        reached = await store.count_ip_attempts(conn, attempt.ip, since) >= settings.ids_ip_failures
        if reached and await store.active_block(conn, "ip", attempt.ip, now) is None:
            await _block_address(ctx, conn, attempt.ip, now)


async def login_succeeded(ctx: ServiceContext, attempt: Attempt) -> None:
    async with ctx.database.write() as conn:
        await store.remove_attempt(conn, attempt.id)


async def login_abandoned(ctx: ServiceContext, attempt: Attempt) -> None:
    """The password was never checked (no hashing capacity): the attempt does not count."""
    async with ctx.database.write() as conn:
        await store.remove_attempt(conn, attempt.id)


async def record_token_reuse(
    conn: AsyncConnection, *, username: str, session_id: str, ip: str, rotated_at: int | None, now: int
) -> None:
    """Log and audit a refresh-token reuse that revoked a session: ids only, no token."""
    logger.warning(
        "refresh token reuse: session %s of %s revoked (spent token presented from %s)",
        session_id,
        username,
        ip,
    )
    await audit_store.audit(
        conn,
        at=now,
        admin=SERVER_ACTOR,
        action=TOKEN_REUSE_ACTION,
        target=username,
        details={"session_id": session_id, "ip": ip, "rotated_at": rotated_at},
    )


async def _block_address(ctx: ServiceContext, conn: AsyncConnection, ip: str, now: int) -> int:
    settings = ctx.settings
    strikes = await store.count_blocks_since(conn, "ip", ip, now - settings.ids_repeat_window_seconds * 1000)
    seconds = min(settings.ids_block_seconds << min(strikes, 20), settings.ids_max_block_seconds)
    until = now + seconds * 1000
    await store.add_block(conn, scope="ip", subject=ip, reason="failed_logins", created_at=now, until=until)
    ctx.metrics.blocks.inc()
    logger.warning("blocked %s for %d s after repeated failed logins (strike %d)", ip, seconds, strikes + 1)
    return until


async def unblock_address(ctx: ServiceContext, ip: str) -> int:
    async with ctx.database.write() as conn:
        lifted: int = await store.lift_blocks(conn, "ip", ip, now_ms())
    return lifted
