"""The admin console's rules. Administrators see metadata and ciphertext, never
plaintext (the server has none), and every action they take is written to the
append-only audit log. Files show as upload records (parties, size, times): their names,
types and keys exist only inside encrypted messages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from ...protocol import errors as protocol_errors
from ...protocol.identifiers import parse_conversation_id
from ..errors import Forbidden, InvalidInput, NotFound
from ..storage import accounts as account_store
from ..storage import admin as store
from ..storage import intrusion as intrusion_store
from ..storage import messages as message_store
from ..storage.database import Database
from . import session_events
from .accounts import username_field
from .context import ServiceContext, now_ms
from .intrusion import TOKEN_REUSE_ACTION
from .principal import Principal

PREVIEW_CHARS = 48
EXPORT_PAGE = 500


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("administrators only")


async def make_admin(database: Database, username: str, *, by: str = "securechat admin create") -> None:
    """Grant the admin role (the operator's command line, with access to the database)."""
    name = username_field(username)
    async with database.write() as conn:
        if not await store.set_user_flags(conn, name, is_admin=True):
            raise NotFound(f"no user named {name}")
        await store.audit(conn, at=now_ms(), admin=by[:32], action="grant_admin", target=name, details={})


async def _resolve(conn: Any, username: str | None, field: str) -> int | None:
    if username is None:
        return None
    found = await store.user_id(conn, username_field(username))
    if found is None:
        raise NotFound(f"no user named {username}", field=field)
    return found


def _entry(row: Any, members: dict[str, list[str]], *, full: bool) -> dict[str, Any]:
    envelope = json.loads(row["envelope"])
    ciphertext = envelope.get("ciphertext", "") if isinstance(envelope, dict) else ""
    entry: dict[str, Any] = {
        "id": row["id"],
        "protocol": 1,
        "message_id": row["message_id"],
        "conversation_id": row["conversation_id"],
        "sender": row["sender"],
        "recipients": [m for m in members.get(row["conversation_id"], []) if m != row["sender"]],
        "client_ts": row["client_ts"],
        "server_ts": row["server_ts"],
        "size": row["size"],
    }
    if full:
        entry["envelope"] = envelope
    else:
        entry["ciphertext_preview"] = ciphertext[:PREVIEW_CHARS] + (
            "…" if len(ciphertext) > PREVIEW_CHARS else ""
        )
    return entry


def _stored_object(text: str) -> dict[str, Any]:
    """A stored JSON object as it was checked when stored; ``{}`` for anything else, so
    that one odd row cannot break the log (the server checked each envelope, but a
    database can be restored or edited)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _v2_entry(row: Any, members: dict[str, list[str]], *, full: bool) -> dict[str, Any]:
    """A v2 message as the server stores it (PROTOCOL.md 15.8, without its slots): who
    sent it from which device, to which accounts and how many devices, when, how large."""
    envelope = _stored_object(row["envelope"])
    listed = envelope.get("targets")
    targets = [t for t in listed if isinstance(t, dict)] if isinstance(listed, list) else []
    names = [str(target.get("username")) for target in targets]
    entry: dict[str, Any] = {
        "id": row["id"],
        "protocol": 2,
        "message_id": row["message_id"],
        "conversation_id": row["conversation_id"],
        "sender": row["sender"],
        "sender_device": envelope.get("sender_device"),
        # A hand-over to the account's own new device names only the account (15.10.2).
        "recipients": [name for name in names if name != row["sender"]] or names,
        "devices": sum(len(t["devices"]) for t in targets if isinstance(t.get("devices"), list)),
        "client_ts": envelope.get("sent_at"),
        "server_ts": row["server_ts"],
        "size": row["size"],
        # Set once every device had it: the ciphertext is gone, the header stays.
        "body_deleted_at": row["body_deleted_at"],
    }
    stored_body = envelope.get("body")
    body = stored_body if isinstance(stored_body, str) else ""
    if full:
        entry["envelope"] = envelope
    else:
        entry["ciphertext_preview"] = body[:PREVIEW_CHARS] + ("…" if len(body) > PREVIEW_CHARS else "")
    return entry


@dataclass(frozen=True)
class _LogQuery:
    sender_id: int | None
    recipient_id: int | None
    since: int | None
    until: int | None
    conversation_id: str | None = None


class _LogFetch(Protocol):
    """A page of a log from storage: ``store.message_log`` or ``store.file_log``."""

    async def __call__(
        self,
        conn: Any,
        *,
        sender_id: int | None,
        recipient_id: int | None,
        since: int | None,
        until: int | None,
        conversation_id: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[Any]: ...


async def _log_query(
    ctx: ServiceContext,
    sender: str | None,
    recipient: str | None,
    since: int | None,
    until: int | None,
    conversation: str | None = None,
) -> _LogQuery:
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until must be after since", field="until")
    conversation_id = None
    if conversation is not None:
        try:
            conversation_id = parse_conversation_id(conversation)
        except protocol_errors.ProtocolError as exc:
            raise InvalidInput("conversation is not a conversation id", field="conversation") from exc
    async with ctx.database.read() as conn:
        return _LogQuery(
            await _resolve(conn, sender, "sender"),
            await _resolve(conn, recipient, "recipient"),
            since,
            until,
            conversation_id,
        )


class _EntryMaker(Protocol):
    def __call__(self, row: Any, members: dict[str, list[str]], *, full: bool) -> dict[str, Any]: ...


# Per protocol version: where its messages are stored and how one is shown. v1 and v2
# messages have ids of their own, so each is a log of its own (``protocol`` picks).
_MESSAGE_LOGS: dict[int, tuple[_LogFetch, _EntryMaker]] = {
    1: (store.message_log, _entry),
    2: (store.v2_message_log, _v2_entry),
}


async def _log_page(
    ctx: ServiceContext,
    query: _LogQuery,
    before_id: int | None,
    limit: int,
    fetch: _LogFetch = store.message_log,
) -> tuple[list[Any], dict[str, list[str]]]:
    """One page of a log (the message log unless told), newest first, with each
    conversation's members."""
    async with ctx.database.read() as conn:
        rows = await fetch(
            conn,
            sender_id=query.sender_id,
            recipient_id=query.recipient_id,
            since=query.since,
            until=query.until,
            conversation_id=query.conversation_id,
            before_id=before_id,
            limit=limit,
        )
        members = await message_store.get_members_for_conversations(
            conn, list({row["conversation_id"] for row in rows})
        )
    return rows, members


async def _audit(
    ctx: ServiceContext, admin: Principal, action: str, target: str, details: dict[str, Any]
) -> None:
    async with ctx.database.write() as conn:
        await store.audit(
            conn, at=now_ms(), admin=admin.username, action=action, target=target, details=details
        )


async def message_log(
    ctx: ServiceContext,
    admin: Principal,
    *,
    sender: str | None,
    recipient: str | None,
    since: int | None,
    until: int | None,
    before_id: int | None,
    limit: int,
    protocol: int = 1,
) -> dict[str, Any]:
    require_admin(admin)
    query = await _log_query(ctx, sender, recipient, since, until)
    fetch, make_entry = _MESSAGE_LOGS[protocol]
    rows, members = await _log_page(ctx, query, before_id, limit, fetch)
    # Looking is an action too: who searched whose metadata is on record.
    filters = {"sender": sender, "recipient": recipient, "since": since, "until": until}
    details = {**filters, "before": before_id, "protocol": protocol}
    await _audit(ctx, admin, "view_messages", "messages", details)
    entries = [make_entry(row, members, full=False) for row in rows]
    return {"messages": entries, "next_before": entries[-1]["id"] if len(entries) == limit else None}


def _file_entry(row: Any, members: dict[str, list[str]]) -> dict[str, Any]:
    """An upload's record: parties, size and times. The server has no name, type, key or
    contents to show (those travel encrypted in the message that shares the file)."""
    return {
        "id": row["id"],
        "file_id": row["file_id"],
        "conversation_id": row["conversation_id"],
        "sender": row["sender"],
        "recipients": [m for m in members.get(row["conversation_id"], []) if m != row["sender"]],
        "size": row["size"],
        "chunks": row["chunks"],
        "created_at": row["created_at"],
        "completed_at": row["completed_at"],
    }


async def file_log(
    ctx: ServiceContext,
    admin: Principal,
    *,
    sender: str | None,
    recipient: str | None,
    since: int | None,
    until: int | None,
    conversation: str | None = None,
    before_id: int | None,
    limit: int,
) -> dict[str, Any]:
    """Encrypted file uploads, newest first; ``sender`` is the uploader and the time
    filters apply to when the upload was created."""
    require_admin(admin)
    query = await _log_query(ctx, sender, recipient, since, until, conversation)
    rows, members = await _log_page(ctx, query, before_id, limit, store.file_log)
    filters = {"sender": sender, "recipient": recipient, "since": since, "until": until}
    await _audit(
        ctx, admin, "view_files", "files", {**filters, "conversation": conversation, "before": before_id}
    )
    entries = [_file_entry(row, members) for row in rows]
    return {"files": entries, "next_before": entries[-1]["id"] if len(entries) == limit else None}


async def export_messages(
    ctx: ServiceContext,
    admin: Principal,
    *,
    sender: str | None,
    recipient: str | None,
    since: int | None,
    until: int | None,
    protocol: int = 1,
) -> AsyncIterator[bytes]:
    """JSON Lines, one stored envelope (with its metadata) per line, newest first."""
    require_admin(admin)
    query = await _log_query(ctx, sender, recipient, since, until)
    fetch, make_entry = _MESSAGE_LOGS[protocol]
    filters = {"sender": sender, "recipient": recipient, "since": since, "until": until}
    await _audit(ctx, admin, "export_messages", "messages", {**filters, "protocol": protocol})

    async def lines() -> AsyncIterator[bytes]:
        before: int | None = None
        while True:
            rows, members = await _log_page(ctx, query, before, EXPORT_PAGE, fetch)
            for row in rows:
                yield (json.dumps(make_entry(row, members, full=True), separators=(",", ":")) + "\n").encode()
            if len(rows) < EXPORT_PAGE:
                return
            before = rows[-1]["id"]

    return lines()


async def list_users(ctx: ServiceContext, admin: Principal, *, limit: int, offset: int) -> dict[str, Any]:
    require_admin(admin)
    async with ctx.database.read() as conn:
        rows = await store.list_users(conn, now_ms(), limit, offset)
    return {
        "users": [
            dict(row) | {"disabled": bool(row["disabled"]), "is_admin": bool(row["is_admin"])} for row in rows
        ],
        # Each user's stored_bytes (files and reservations) is against this quota.
        "quota_bytes": ctx.settings.file_quota_bytes,
    }


async def set_disabled(
    ctx: ServiceContext, admin: Principal, username: str, disabled: bool
) -> dict[str, Any]:
    """Disable (and log out everywhere) or enable an account."""
    require_admin(admin)
    name = username_field(username)
    if name == admin.username and disabled:
        raise InvalidInput("administrators cannot disable themselves", field="username")
    now = now_ms()
    async with ctx.database.write() as conn:
        if not await store.set_user_flags(conn, name, disabled=disabled):
            raise NotFound(f"no user named {name}")
        revoked = 0
        user_id: int | None = None
        if disabled:
            user = await account_store.get_user_by_name(conn, name)
            assert user is not None
            user_id = user["id"]
            revoked = await account_store.revoke_sessions(conn, user["id"], now)
        await store.audit(
            conn,
            at=now,
            admin=admin.username,
            action="disable_user" if disabled else "enable_user",
            target=name,
            details={"revoked_sessions": revoked},
        )
    if user_id is not None:
        await session_events.announce_ended(ctx, user_id, "account_disabled")
    return {"username": name, "disabled": disabled, "revoked_sessions": revoked}


async def revoke_sessions(ctx: ServiceContext, admin: Principal, username: str) -> dict[str, Any]:
    require_admin(admin)
    name = username_field(username)
    now = now_ms()
    async with ctx.database.write() as conn:
        user = await account_store.get_user_by_name(conn, name)
        if user is None:
            raise NotFound(f"no user named {name}")
        revoked = await account_store.revoke_sessions(conn, user["id"], now)
        await store.audit(
            conn,
            at=now,
            admin=admin.username,
            action="revoke_sessions",
            target=name,
            details={"revoked": revoked},
        )
    await session_events.announce_ended(ctx, user["id"], "revoked")
    return {"username": name, "revoked_sessions": revoked}


async def intrusion_view(ctx: ServiceContext, admin: Principal) -> dict[str, Any]:
    require_admin(admin)
    now = now_ms()
    async with ctx.database.read() as conn:
        blocks = await intrusion_store.list_active_blocks(conn, now)
        attempts = await intrusion_store.recent_failures(conn, now - ctx.settings.ids_window_seconds * 1000)
        # Sessions ended because a spent refresh token came back (a sign of token theft),
        # from the audit log where the server records them.
        reuses = await store.audit_entries(
            conn, TOKEN_REUSE_ACTION, since=now - ctx.settings.ids_repeat_window_seconds * 1000
        )
    return {
        "blocks": [
            {"address": b["subject"], "reason": b["reason"], "since": b["created_at"], "until": b["until"]}
            for b in blocks
        ],
        "recent_attempts": [dict(a) for a in attempts],
        "token_reuse": [_token_reuse(row) for row in reuses],
    }


def _token_reuse(row: Any) -> dict[str, Any]:
    details = json.loads(row["details"])
    return {
        "at": row["at"],
        "username": row["target"],
        "session_id": details.get("session_id"),
        "ip": details.get("ip"),
    }


async def unblock(ctx: ServiceContext, admin: Principal, address: str) -> dict[str, Any]:
    require_admin(admin)
    now = now_ms()
    async with ctx.database.write() as conn:
        lifted = await intrusion_store.lift_blocks(conn, "ip", address, now)
        await store.audit(
            conn, at=now, admin=admin.username, action="unblock", target=address, details={"lifted": lifted}
        )
    return {"address": address, "lifted": lifted}


async def audit_log(
    ctx: ServiceContext, admin: Principal, *, before_id: int | None, limit: int
) -> dict[str, Any]:
    require_admin(admin)
    async with ctx.database.read() as conn:
        rows = await store.audit_log(conn, before_id, limit)
    entries = [dict(row) | {"details": json.loads(row["details"])} for row in rows]
    return {"entries": entries, "next_before": entries[-1]["id"] if len(entries) == limit else None}
