"""The caller's own account: sessions, password change, key bundle; the key directory."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..services import accounts, lookups
from .deps import Context, CurrentUser, client_ip
from .identifiers import SessionId, Username
from .models import PasswordChangeBody, dump

router = APIRouter(prefix="/api/v1", tags=["account"])


@router.get("/account")
async def me(principal: CurrentUser) -> dict[str, Any]:
    return {
        "username": principal.username,
        "session_id": principal.session_id,
        "is_admin": principal.is_admin,
    }


@router.get("/account/key-bundle")
async def key_bundle(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await accounts.get_key_bundle(ctx, principal)


@router.post("/account/password")
async def change_password(
    body: PasswordChangeBody, request: Request, principal: CurrentUser, ctx: Context
) -> dict[str, Any]:
    # The address counts for intrusion detection: a wrong current key is a failed login.
    revoked = await accounts.change_password(ctx, principal, **dump(body), ip=client_ip(request))
    return {"revoked_sessions": revoked}


@router.get("/sessions")
async def sessions(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return {"sessions": await accounts.list_sessions(ctx, principal)}


@router.post("/sessions/revoke-others")
async def revoke_others(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return {"revoked_sessions": await accounts.revoke_other_sessions(ctx, principal)}


@router.delete("/sessions/{session_id}", status_code=204)
async def revoke_session(session_id: SessionId, principal: CurrentUser, ctx: Context) -> Response:
    await accounts.revoke_session(ctx, principal, session_id)
    return Response(status_code=204)


@router.get("/users/{username}/keys")
async def public_keys(username: Username, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    await lookups.look_up(ctx, principal, username)
    return await accounts.get_public_keys(ctx, username)
