"""Request dependencies: the service context and the authenticated principal."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from ..errors import Unauthorized
from ..services.accounts import authenticate
from ..services.context import ServiceContext
from ..services.principal import Principal
from .identifiers import canonical_address


def get_context(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.context
    return context


Context = Annotated[ServiceContext, Depends(get_context)]


async def get_principal(request: Request, ctx: Context) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    return await authenticate(ctx, token.strip())


CurrentUser = Annotated[Principal, Depends(get_principal)]


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:200]


def client_ip(connection: HTTPConnection) -> str:
    """The socket's address; uvicorn substitutes a trusted proxy's X-Forwarded-For
    (SECURECHAT_FORWARDED_ALLOW_IPS), so a client cannot choose its own address.

    In its canonical spelling (api/identifiers.py), the one blocks are stored under and
    an administrator lifts them by; "unknown" if there is none or it is not an address.
    """
    host = connection.client.host if connection.client else ""
    try:
        return canonical_address(ipaddress.ip_address(host))
    except ValueError:
        return "unknown"
