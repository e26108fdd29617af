"""Registration, pre-login, login, token refresh and logout."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ...protocol.identifiers import parse_username
from ..services import accounts
from .deps import Context, CurrentUser, user_agent
from .models import LoginBody, RefreshBody, RegisterBody, UsernameBody, dump

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/register", status_code=201)
async def register(body: RegisterBody, request: Request, ctx: Context) -> dict[str, Any]:
    data = dump(body)
    tokens = await accounts.register(ctx, **data, user_agent=user_agent(request))
    # The stored name (NFKC, lower case), not the caller's spelling: str.lower() alone
    # would answer "ａlice" for an account stored as "alice". It parsed in register().
    return {"username": parse_username(body.username), **tokens.to_wire()}


@router.post("/prelogin")
async def prelogin(body: UsernameBody, ctx: Context) -> dict[str, Any]:
    return await accounts.prelogin(ctx, body.username)


@router.post("/login")
async def login(body: LoginBody, request: Request, ctx: Context) -> dict[str, Any]:
    return await accounts.login(
        ctx, username=body.username, auth_key=body.auth_key, user_agent=user_agent(request)
    )


@router.post("/refresh")
async def refresh(body: RefreshBody, ctx: Context) -> dict[str, Any]:
    return (await accounts.refresh(ctx, body.refresh_token)).to_wire()


@router.post("/logout", status_code=204)
async def logout(principal: CurrentUser, ctx: Context) -> Response:
    await accounts.logout(ctx, principal)
    return Response(status_code=204)
