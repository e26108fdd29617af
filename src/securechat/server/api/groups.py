"""Groups: the signed membership chain and invites (PROTOCOL.md 13.6)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..services import groups, lookups
from .deps import Context, CurrentUser
from .identifiers import INT32_MAX, GroupId, InviteId
from .models import GroupChangeBody, InviteBody

router = APIRouter(prefix="/api/v1", tags=["groups"])


@router.post("/groups", status_code=201)
async def create_group(body: GroupChangeBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    async with lookups.naming_users(ctx, principal, body.change):
        return await groups.create_group(ctx, principal, body.change)


@router.get("/groups/{group_id}/changes")
async def list_changes(
    group_id: GroupId,
    principal: CurrentUser,
    ctx: Context,
    after: Annotated[int, Query(ge=-1, le=INT32_MAX)] = -1,
) -> dict[str, Any]:
    return await groups.list_changes(ctx, principal, group_id, after)


@router.post("/groups/{group_id}/changes", status_code=201)
async def add_change(
    group_id: GroupId, body: GroupChangeBody, principal: CurrentUser, ctx: Context
) -> dict[str, Any]:
    async with lookups.naming_users(ctx, principal, body.change):
        return await groups.add_change(ctx, principal, group_id, body.change)


@router.post("/groups/{group_id}/invites", status_code=201)
async def create_invite(
    group_id: GroupId, body: InviteBody, principal: CurrentUser, ctx: Context
) -> dict[str, Any]:
    return await groups.create_invite(ctx, principal, group_id, body.invite)


@router.get("/invites/{invite_id}")
async def get_invite(invite_id: InviteId, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await groups.get_invite(ctx, principal, invite_id)
