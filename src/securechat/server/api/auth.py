"""Registration, pre-login, login, token refresh and logout."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..errors import Unauthorized
from ..services import accounts, intrusion, ratelimit
from . import refresh_cookie
from .deps import Context, CurrentUser, client_ip, user_agent
from .models import LoginBody, RefreshBody, RegisterBody, UsernameBody, dump

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/register", status_code=201)
async def register(body: RegisterBody, request: Request, response: Response, ctx: Context) -> dict[str, Any]:
    ip = client_ip(request)
    await intrusion.check_address(ctx, ip)
    await ratelimit.hit(ctx, "register", ip, ctx.settings.register_per_minute)
    data = dump(body)
    tokens = await accounts.register(ctx, **data, user_agent=user_agent(request))
    # The stored name (NFKC, lower case), not the caller's spelling: the body's username
    # was parsed into it at the edge (api/identifiers.py).
    wire = refresh_cookie.deliver(request, response, tokens.to_wire(), ctx.settings.refresh_token_ttl_seconds)
    return {"username": body.username, **wire}


@router.post("/prelogin")
async def prelogin(body: UsernameBody, request: Request, ctx: Context) -> dict[str, Any]:
    ip = client_ip(request)
    await intrusion.check_address(ctx, ip)
    await ratelimit.hit(ctx, "prelogin", ip, ctx.settings.prelogin_per_minute)
    return await accounts.prelogin(ctx, body.username)


@router.post("/login")
async def login(body: LoginBody, request: Request, response: Response, ctx: Context) -> dict[str, Any]:
    answer = await accounts.login(
        ctx,
        username=body.username,
        auth_key=body.auth_key,
        user_agent=user_agent(request),
        ip=client_ip(request),
    )
    return refresh_cookie.deliver(request, response, answer, ctx.settings.refresh_token_ttl_seconds)


@router.post("/refresh")
async def refresh(body: RefreshBody, request: Request, response: Response, ctx: Context) -> dict[str, Any]:
    token = body.refresh_token or refresh_cookie.cookie_token(request)
    if token is None:
        raise Unauthorized("missing refresh token")
    tokens = (await accounts.refresh(ctx, token, ip=client_ip(request))).to_wire()
    return refresh_cookie.deliver(request, response, tokens, ctx.settings.refresh_token_ttl_seconds)


@router.post("/logout", status_code=204)
async def logout(principal: CurrentUser, request: Request, ctx: Context) -> Response:
    await accounts.logout(ctx, principal)
    response = Response(status_code=204)
    refresh_cookie.clear(request, response)
    return response
