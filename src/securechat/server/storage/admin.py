"""Queries for the admin console: the message log (metadata and ciphertext), the file
log (upload metadata), users, and the audit log."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Table, and_, exists, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import admin_audit, conversation_members, files, messages, sessions, users, v2_messages


def _log_filter(
    log: Table,
    sender_column: str,
    time_column: str,
    *,
    sender_id: int | None,
    recipient_id: int | None,
    since: int | None,
    until: int | None,
    conversation_id: str | None = None,
) -> Any:
    """The log filters, for any table with a sender, a conversation and a time: the
    message log (sender_id, server_ts) and the file log (uploader_id, created_at). A
    recipient is a member of the row's conversation other than its sender."""
    sender = log.c[sender_column]
    conditions = []
    if sender_id is not None:
        conditions.append(sender == sender_id)
    if recipient_id is not None:
        member = conversation_members.alias("recipient_member")
        conditions.append(sender != recipient_id)
        conditions.append(
            exists().where(
                member.c.conversation_id == log.c.conversation_id, member.c.user_id == recipient_id
            )
        )
    if conversation_id is not None:
        conditions.append(log.c.conversation_id == conversation_id)
    if since is not None:
        conditions.append(log.c[time_column] >= since)
    if until is not None:
        conditions.append(log.c[time_column] < until)
    return and_(True, *conditions)


async def _log_page(
    conn: AsyncConnection,
    log: Table,
    sender_column: str,
    columns: list[Any],
    condition: Any,
    before_id: int | None,
    limit: int,
) -> list[RowMapping]:
    """Newest first (by id): ``columns`` of the log's rows, with the sender's name."""
    if before_id is not None:
        condition = and_(condition, log.c.id < before_id)
    result = await conn.execute(
        select(*columns, users.c.username.label("sender"))
        .join(users, users.c.id == log.c[sender_column])
        .where(condition)
        .order_by(log.c.id.desc())
        .limit(limit)
    )
    return list(result.mappings())


async def message_log(
    conn: AsyncConnection,
    *,
    sender_id: int | None,
    recipient_id: int | None,
    since: int | None,
    until: int | None,
    conversation_id: str | None = None,
    before_id: int | None,
    limit: int,
) -> list[RowMapping]:
    """Newest first: message rows with the sender's name (and the envelope text)."""
    condition = _log_filter(
        messages,
        "sender_id",
        "server_ts",
        sender_id=sender_id,
        recipient_id=recipient_id,
        since=since,
        until=until,
        conversation_id=conversation_id,
    )
    columns = [
        messages.c.id,
        messages.c.message_id,
        messages.c.conversation_id,
        messages.c.client_ts,
        messages.c.server_ts,
        messages.c.size,
        messages.c.envelope,
    ]
    return await _log_page(conn, messages, "sender_id", columns, condition, before_id, limit)


async def v2_message_log(
    conn: AsyncConnection,
    *,
    sender_id: int | None,
    recipient_id: int | None,
    since: int | None,
    until: int | None,
    conversation_id: str | None = None,
    before_id: int | None,
    limit: int,
) -> list[RowMapping]:
    """Newest first: v2 messages (PROTOCOL.md 15.8) as stored, the envelope without its
    per-device slots, with the sender's name; the same filters as the v1 log."""
    condition = _log_filter(
        v2_messages,
        "sender_id",
        "server_ts",
        sender_id=sender_id,
        recipient_id=recipient_id,
        since=since,
        until=until,
        conversation_id=conversation_id,
    )
    columns = [
        v2_messages.c.id,
        v2_messages.c.message_id,
        v2_messages.c.conversation_id,
        v2_messages.c.server_ts,
        v2_messages.c.envelope,
        v2_messages.c.size,
        v2_messages.c.body_deleted_at,
    ]
    return await _log_page(conn, v2_messages, "sender_id", columns, condition, before_id, limit)


async def file_log(
    conn: AsyncConnection,
    *,
    sender_id: int | None,
    recipient_id: int | None,
    since: int | None,
    until: int | None,
    conversation_id: str | None,
    before_id: int | None,
    limit: int,
) -> list[RowMapping]:
    """Newest first: upload records with the uploader's name as ``sender``. The server
    holds no name, type or key of a file, so there is none to select."""
    condition = _log_filter(
        files,
        "uploader_id",
        "created_at",
        sender_id=sender_id,
        recipient_id=recipient_id,
        since=since,
        until=until,
        conversation_id=conversation_id,
    )
    columns = [
        files.c.id,
        files.c.file_id,
        files.c.conversation_id,
        files.c.size,
        files.c.chunks,
        files.c.created_at,
        files.c.completed_at,
    ]
    return await _log_page(conn, files, "uploader_id", columns, condition, before_id, limit)


async def user_id(conn: AsyncConnection, username: str) -> int | None:
    result = await conn.execute(select(users.c.id).where(users.c.username == username))
    found = result.scalar_one_or_none()
    return int(found) if found is not None else None


async def list_users(conn: AsyncConnection, now: int, limit: int, offset: int) -> list[RowMapping]:
    active = (
        select(func.count())
        .where(sessions.c.user_id == users.c.id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)
        .scalar_subquery()
    )
    result = await conn.execute(
        select(
            users.c.username,
            users.c.created_at,
            users.c.disabled,
            users.c.is_admin,
            active.label("sessions"),
            users.c.stored_bytes,
        )
        .order_by(users.c.username)
        .limit(limit)
        .offset(offset)
    )
    return list(result.mappings())


async def set_user_flags(conn: AsyncConnection, username: str, **values: bool) -> bool:
    result = await conn.execute(update(users).where(users.c.username == username).values(**values))
    return bool(result.rowcount)


async def audit(
    conn: AsyncConnection, *, at: int, admin: str, action: str, target: str, details: dict[str, Any]
) -> None:
    await conn.execute(
        insert(admin_audit).values(
            at=at,
            admin=admin,
            action=action,
            target=target[:128],
            details=json.dumps(details, sort_keys=True),
        )
    )


async def audit_entries(
    conn: AsyncConnection, action: str, *, since: int, limit: int = 200
) -> list[RowMapping]:
    """Newest first: the audit log's entries of one action since ``since``."""
    result = await conn.execute(
        select(admin_audit)
        .where(admin_audit.c.action == action, admin_audit.c.at >= since)
        .order_by(admin_audit.c.id.desc())
        .limit(limit)
    )
    return list(result.mappings())


async def audit_log(conn: AsyncConnection, before_id: int | None, limit: int) -> list[RowMapping]:
    query = select(admin_audit).order_by(admin_audit.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(admin_audit.c.id < before_id)
    return list((await conn.execute(query)).mappings())
