"""The browser's refresh token: an HttpOnly, SameSite=Strict cookie scoped to the auth
routes, so page scripts (and so any injected script) never see it.

A client asks for it by sending ``X-SecureChat-Refresh: cookie`` with register, login
and refresh; the answer then carries the token only in ``Set-Cookie``. Requiring the
header on a cookie refresh also means a cross-site form cannot trigger one (a custom
header needs a CORS preflight, which this server never grants).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

COOKIE_NAME = "securechat_refresh"
COOKIE_PATH = "/api/v1/auth"
TRANSPORT_HEADER = "x-securechat-refresh"


def wants_cookie(request: Request) -> bool:
    return request.headers.get(TRANSPORT_HEADER, "").strip().lower() == "cookie"


def cookie_token(request: Request) -> str | None:
    if not wants_cookie(request):
        return None
    return request.cookies.get(COOKIE_NAME) or None


def deliver(request: Request, response: Response, tokens: dict[str, Any], max_age: int) -> dict[str, Any]:
    """Move the refresh token into a cookie when the client asked for that."""
    if not wants_cookie(request):
        return tokens
    response.set_cookie(
        COOKIE_NAME,
        tokens["refresh_token"],
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return {**{k: v for k, v in tokens.items() if k != "refresh_token"}, "refresh_transport": "cookie"}


def clear(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE_NAME, path=COOKIE_PATH, secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
