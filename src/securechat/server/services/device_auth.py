"""Device credentials (PROTOCOL.md 15.16): a device proves, with its own signing key,
that it is the device whose inbox it reads.

An account's session token says who the account is, not which device is asking: any
session of the account (a browser of a device revoked since, a stolen token) could
otherwise read and acknowledge every device's inbox. So the per-device calls also need
a device credential: a short-lived JWT, bound to the account, the session that got it,
the device and the moment the device was listed, issued for a signature over a
single-use server nonce. Every call checks, besides the credential, that the device is
in the account's current list, in the transaction that serves it: a revoked device is
refused at once, whatever credential it holds.

A JWT and not a stored token: the per-call check reads the device row anyway (that is
what makes revocation immediate), so a stored token would only add a write per
issuance and a read per call; session revocation ends it through the account token
that must come with it.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.ext.asyncio import AsyncConnection

from ...protocol.encoding import b64decode, b64encode
from ...protocol.errors import MalformedInput, VerificationFailed
from ...protocol.v2.device_auth import NONCE_BYTES, verify_device_auth
from ..errors import DeviceAuthFailed, DeviceAuthRequired, DeviceNotListed, InvalidInput
from ..storage import device_auth as store
from . import ratelimit
from .context import ServiceContext, now_ms
from .principal import Principal
from .tokens import InvalidToken

CHALLENGE_ACTION = "device_challenge"
CHALLENGE_TTL_MS = 60_000
# Challenges a device may have outstanding per session; a new one past this replaces the
# oldest of that session's.
MAX_PENDING_CHALLENGES = 8


def _nonce_hash(nonce: bytes) -> bytes:
    return hashlib.sha256(nonce).digest()


async def challenge(ctx: ServiceContext, principal: Principal, device_id: str) -> dict[str, object]:
    """A fresh nonce for the device to sign, good once within a minute, for this session."""
    # Counted per session, not per account: a stolen session token spending the budget,
    # or crowding out open challenges (below), must not keep the account's real devices
    # from their credentials. Nothing caps an account's sessions, so this does not bound
    # the account's rows: each session keeps at most MAX_PENDING_CHALLENGES per device
    # for a minute, an account's expired ones go when it next asks, and the scheduled
    # pruner (services/pruning.py) removes expired ones and those of ended sessions.
    await ratelimit.hit(
        ctx,
        CHALLENGE_ACTION,
        f"session:{principal.session_id}",
        ctx.settings.device_challenges_per_minute,
        who="session",
    )
    nonce = secrets.token_bytes(NONCE_BYTES)
    now = now_ms()
    expires_at = now + CHALLENGE_TTL_MS
    async with ctx.database.write() as conn:
        if await store.get_listed_device(conn, principal.user_id, device_id) is None:
            raise DeviceNotListed("this device is not in the account's current device list")
        await store.add_challenge(
            conn,
            _nonce_hash(nonce),
            principal.user_id,
            device_id,
            principal.session_id,
            expires_at,
            now,
            MAX_PENDING_CHALLENGES,
        )
    return {"device_id": device_id, "nonce": b64encode(nonce), "expires_at": expires_at}


def _decode(value: str, size: int, what: str) -> bytes:
    try:
        decoded = b64decode(value, max_bytes=size)
    except MalformedInput as exc:
        raise InvalidInput(f"{what} is not base64 of {size} bytes") from exc
    if len(decoded) != size:
        raise InvalidInput(f"{what} is not base64 of {size} bytes")
    return decoded


async def issue(
    ctx: ServiceContext, principal: Principal, device_id: str, nonce_b64: str, signature_b64: str
) -> dict[str, object]:
    """A device credential for a signed challenge. The challenge is spent by this call
    whatever its outcome, so a nonce can be tried once."""
    nonce = _decode(nonce_b64, NONCE_BYTES, "nonce")
    signature = _decode(signature_b64, 64, "signature")
    now = now_ms()
    async with ctx.database.write() as conn:
        taken = await store.take_challenge(conn, _nonce_hash(nonce))
    if (
        taken is None
        or int(taken["user_id"]) != principal.user_id
        or taken["device_id"] != device_id
        or taken["session_id"] != principal.session_id
        or int(taken["expires_at"]) <= now
    ):
        raise DeviceAuthFailed(
            "no such challenge for this device and session (unknown, expired or answered)",
            reason="challenge_invalid",
        )
    async with ctx.database.read() as conn:
        device = await store.get_listed_device(conn, principal.user_id, device_id)
    if device is None:
        raise DeviceNotListed("this device is not in the account's current device list")
    try:
        verify_device_auth(bytes(device["signing_key"]), signature, principal.username, device_id, nonce)
    except (VerificationFailed, MalformedInput) as exc:
        raise DeviceAuthFailed(
            "the signature does not verify with the device's signing key", reason="bad_signature"
        ) from exc
    async with ctx.database.write() as conn:
        # Which device this session is, for the sessions view (15.16): a hint only, a
        # client offers to revoke only devices of the account's signed list.
        await store.set_session_device(conn, principal.user_id, principal.session_id, device_id)
    ttl = ctx.settings.device_token_ttl_seconds
    token = ctx.tokens.issue_device(
        user_id=principal.user_id,
        session_id=principal.session_id,
        device_id=device_id,
        device_added_at=int(device["added_at"]),
        now_s=now // 1000,
        ttl_seconds=ttl,
    )
    return {"device_id": device_id, "device_token": token, "expires_in": ttl}


async def require(
    ctx: ServiceContext, conn: AsyncConnection, principal: Principal, device_id: str, token: str | None
) -> None:
    """Refuse the call unless ``token`` is a credential of this device for this session
    and the device is in the account's current list now (read in ``conn``, the
    transaction that serves the call)."""
    if not token:
        raise DeviceAuthRequired("this call needs the device's credential (POST /devices/{id}/token)")
    try:
        claims = ctx.tokens.verify_device(token)
    except InvalidToken as exc:
        raise DeviceAuthRequired("invalid or expired device credential") from exc
    if (claims.user_id, claims.session_id, claims.device_id) != (
        principal.user_id,
        principal.session_id,
        device_id,
    ):
        raise DeviceAuthRequired("the device credential is for another device or session")
    device = await store.get_listed_device(conn, principal.user_id, device_id)
    if device is None:
        raise DeviceNotListed("this device is not in the account's current device list")
    if int(device["added_at"]) != claims.device_added_at:
        # Issued before the device was revoked and listed again: it proves nothing now.
        raise DeviceAuthRequired("the device credential predates the device's listing")
