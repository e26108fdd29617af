"""Identity-key rotation (PROTOCOL.md 15.11, 15.16)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..services import identity_transitions, lookups
from .deps import Context, CurrentUser
from .identifiers import Username
from .models import Strict

router = APIRouter(prefix="/api/v1", tags=["identity"])

# A raw 32-byte key as 64 lower-case hex digits: no base64 '+' or '/' to escape in a URL.
KEY_HEX = r"^[0-9a-f]{64}$"


class TransitionBody(Strict):
    # Both are checked by the protocol layer's strict parsers (400 with a reason).
    transition: dict[str, Any]
    device_list: dict[str, Any]
    # The new account private key sealed under the password (15.11), for the account's
    # other devices and later logins; opaque here.
    account_key_seal: dict[str, Any] | None = None


@router.post("/account/identity-transition")
async def rotate_identity_key(body: TransitionBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """The caller's transition to a new identity key and its first list under that key."""
    return await identity_transitions.rotate(
        ctx, principal, body.transition, body.device_list, body.account_key_seal
    )


@router.get("/account/identity-key-seal")
async def get_account_key_seal(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """The caller's sealed account key. It is replaced only by a rotation or, with proof of
    the password, inside a password change (``POST /account/password``): never by a
    session alone, which could otherwise lock every later login out of the account key."""
    return await identity_transitions.get_account_key_seal(ctx, principal)


@router.get("/users/{username}/identity-transitions")
async def get_identity_transitions(
    username: Username,
    since_key: Annotated[str, Query(min_length=64, max_length=64, pattern=KEY_HEX)],
    principal: CurrentUser,
    ctx: Context,
) -> dict[str, Any]:
    await lookups.look_up(ctx, principal, username)
    return await identity_transitions.transitions_since(ctx, username, bytes.fromhex(since_key))
