"""Admin console routes: every one requires the admin role (403 otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ..services import admin
from .deps import Context, CurrentUser
from .identifiers import ConversationId, IpAddress, RowId, Username
from .models import Strict

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

UsernameFilter = Annotated[Username | None, Query()]
Millis = Annotated[int | None, Query(ge=0, le=2**62)]
# Which protocol's messages (v1 and v2 are stored apart, each with its own ids).
ProtocolVersion = Annotated[int, Query(ge=1, le=2)]


class UnblockBody(Strict):
    address: IpAddress


@dataclass
class LogFilters:
    """The filters the message log, the file log and the export share (query parameters)."""

    sender: UsernameFilter = None
    recipient: UsernameFilter = None
    since: Millis = None
    until: Millis = None

    def as_kwargs(self) -> dict[str, Any]:
        return {"sender": self.sender, "recipient": self.recipient, "since": self.since, "until": self.until}


@dataclass
class LogPage:
    before: Annotated[RowId | None, Query()] = None
    limit: Annotated[int, Query(ge=1, le=200)] = 50


Filters = Annotated[LogFilters, Depends()]
Page = Annotated[LogPage, Depends()]


@router.get("/messages")
async def message_log(
    principal: CurrentUser, ctx: Context, filters: Filters, page: Page, protocol: ProtocolVersion = 1
) -> dict[str, Any]:
    return await admin.message_log(
        ctx, principal, **filters.as_kwargs(), before_id=page.before, limit=page.limit, protocol=protocol
    )


@router.get("/files")
async def file_log(
    principal: CurrentUser,
    ctx: Context,
    filters: Filters,
    page: Page,
    conversation: Annotated[ConversationId | None, Query()] = None,
) -> dict[str, Any]:
    """Encrypted file uploads: uploader (sender), recipients, size, times. Never a name."""
    return await admin.file_log(
        ctx,
        principal,
        **filters.as_kwargs(),
        conversation=conversation,
        before_id=page.before,
        limit=page.limit,
    )


# Declared as what it is (NDJSON, one encrypted message per line), not FastAPI's default JSON.
@router.get(
    "/messages/export",
    response_class=StreamingResponse,
    responses={200: {"description": "The message log as NDJSON", "content": {"application/x-ndjson": {}}}},
)
async def export_messages(
    principal: CurrentUser, ctx: Context, filters: Filters, protocol: ProtocolVersion = 1
) -> StreamingResponse:
    lines = await admin.export_messages(ctx, principal, **filters.as_kwargs(), protocol=protocol)
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="securechat-messages.jsonl"'},
    )


@router.get("/users")
async def users(
    principal: CurrentUser,
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    return await admin.list_users(ctx, principal, limit=limit, offset=offset)


@router.post("/users/{username}/disable")
async def disable_user(username: Username, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await admin.set_disabled(ctx, principal, username, True)


@router.post("/users/{username}/enable")
async def enable_user(username: Username, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await admin.set_disabled(ctx, principal, username, False)


@router.post("/users/{username}/revoke-sessions")
async def revoke_sessions(username: Username, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await admin.revoke_sessions(ctx, principal, username)


@router.get("/intrusion")
async def intrusion(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await admin.intrusion_view(ctx, principal)


@router.post("/intrusion/unblock")
async def unblock(body: UnblockBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await admin.unblock(ctx, principal, body.address)


@router.get("/audit")
async def audit(
    principal: CurrentUser,
    ctx: Context,
    before: Annotated[RowId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return await admin.audit_log(ctx, principal, before_id=before, limit=limit)
