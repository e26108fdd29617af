"""Accounts: registration, pre-login, login, refresh, sessions, password change, keys."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from ...protocol import errors as protocol_errors
from ...protocol.encoding import b64decode, b64encode, canonical
from ...protocol.identifiers import Username, parse_username
from ...protocol.kdf import KEY_BYTES, KdfParams
from ...protocol.keys import (
    KEY_BUNDLE_VERSION,
    MAX_BUNDLE_BYTES,
    PublicIdentity,
    fingerprint,
)
from ...protocol.labels import PRELOGIN_FAKE_SALT
from ...protocol.primitives import GCM_IV_BYTES, hmac_sha256
from ..errors import (
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    RateLimited,
    ServerBusy,
    Unauthorized,
    UsernameTaken,
    WeakParameters,
)
from ..storage import accounts as store
from . import identity_transitions, intrusion, ratelimit, session_events
from .context import ServiceContext, now_ms
from .passwords import LOGIN, OTHER
from .principal import Principal
from .tokens import InvalidToken, new_refresh_token, refresh_token_hash


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "session_id": self.session_id,
        }


def username_field(value: str) -> Username:
    try:
        return parse_username(value)
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput(str(exc), field="username") from exc


def _auth_key(value: str) -> bytes:
    try:
        key = b64decode(value, max_bytes=KEY_BYTES)
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput("auth_key must be strict base64", field="auth_key") from exc
    if len(key) != KEY_BYTES:
        raise InvalidInput("auth_key must be 32 bytes", field="auth_key")
    return key


def _kdf(value: dict[str, Any]) -> KdfParams:
    try:
        return KdfParams.from_wire(value)
    except protocol_errors.WeakParameters as exc:
        raise WeakParameters(str(exc), field="kdf") from exc
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput(str(exc), field="kdf") from exc


def _key_bundle(value: dict[str, Any]) -> str:
    """Check the bundle's shape only (it is opaque); return its stored JSON text."""
    if set(value) != {"v", "iv", "ciphertext"} or value.get("v") != KEY_BUNDLE_VERSION:
        raise InvalidInput("key_bundle must be {v: 1, iv, ciphertext}", field="key_bundle")
    try:
        iv = b64decode(value["iv"], max_bytes=GCM_IV_BYTES)
        b64decode(value["ciphertext"], max_bytes=MAX_BUNDLE_BYTES)
    except (protocol_errors.ProtocolError, TypeError) as exc:
        raise InvalidInput("key_bundle fields must be strict base64", field="key_bundle") from exc
    if len(iv) != GCM_IV_BYTES:
        raise InvalidInput("key_bundle.iv must be 12 bytes", field="key_bundle")
    return json.dumps({"v": KEY_BUNDLE_VERSION, "iv": value["iv"], "ciphertext": value["ciphertext"]})


def _identity(username: Username, value: dict[str, Any]) -> PublicIdentity:
    try:
        return PublicIdentity.from_wire(username, value).verified()
    except protocol_errors.WeakParameters as exc:
        raise WeakParameters(str(exc), field="public_keys") from exc
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput(
            "public_keys are malformed or not bound to the username", field="public_keys"
        ) from exc


def _session_expiry(ctx: ServiceContext, created_at: int, now: int) -> int:
    """Idle expiry from ``now``, never past the session's maximum age from its login."""
    settings = ctx.settings
    return min(
        now + settings.refresh_token_ttl_seconds * 1000, created_at + settings.session_max_age_seconds * 1000
    )


async def _start_session(
    ctx: ServiceContext, conn: Any, user_id: int, username: str, user_agent: str
) -> TokenPair:
    now = now_ms()
    session_id = str(uuid.uuid4())
    await store.add_session(
        conn,
        id=session_id,
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        expires_at=_session_expiry(ctx, now, now),
        user_agent=user_agent[:200],
    )
    refresh_token = new_refresh_token()
    await store.add_refresh_token(conn, refresh_token_hash(refresh_token), session_id, now)
    return _token_pair(ctx, user_id, username, session_id, refresh_token, issued_at=now, now=now)


def _token_pair(
    ctx: ServiceContext,
    user_id: int,
    username: str,
    session_id: str,
    refresh_token: str,
    *,
    issued_at: int,
    now: int,
) -> TokenPair:
    """The pair issued at ``issued_at``: the same access token whenever it is rebuilt."""
    issued_s = issued_at // 1000
    access_token = ctx.tokens.issue_access(
        user_id=user_id, username=username, session_id=session_id, now_s=issued_s
    )
    expires_in = max(1, ctx.tokens.access_ttl_seconds - max(0, now // 1000 - issued_s))
    return TokenPair(access_token, refresh_token, expires_in, session_id)


async def register(
    ctx: ServiceContext,
    *,
    username: str,
    auth_key: str,
    kdf: dict[str, Any],
    public_keys: dict[str, Any],
    key_bundle: dict[str, Any],
    user_agent: str = "",
) -> TokenPair:
    name = username_field(username)
    key = _auth_key(auth_key)
    params = _kdf(kdf)
    identity = _identity(name, public_keys)
    bundle_text = _key_bundle(key_bundle)
    auth_hash = await ctx.hasher.hash(key, kind=OTHER)
    now = now_ms()
    async with ctx.database.write() as conn:
        try:
            user_id = await store.add_user(
                conn,
                username=name,
                created_at=now,
                auth_hash=auth_hash,
                kdf_salt=params.salt,
                kdf_iterations=params.iterations,
                signing_key=identity.signing_key,
                encryption_key=identity.encryption_key,
                encryption_key_signature=identity.encryption_key_signature,
                key_bundle=bundle_text,
                keys_updated_at=now,
            )
        except store.DuplicateUsername as exc:
            raise UsernameTaken("that username is taken", field="username") from exc
        return await _start_session(ctx, conn, user_id, name, user_agent)


def fake_kdf_params(ctx: ServiceContext, username: Username) -> KdfParams:
    """A stable salt for a user that does not exist, so pre-login reveals nothing."""
    salt = hmac_sha256(ctx.server_secret, canonical(PRELOGIN_FAKE_SALT, [username]))[:16]
    return KdfParams(salt=salt, iterations=ctx.settings.default_kdf_iterations)


async def prelogin(ctx: ServiceContext, username: str) -> dict[str, Any]:
    name = username_field(username)
    async with ctx.database.read() as conn:
        user = await store.get_user_by_name(conn, name)
    if user is None:
        return {"kdf": fake_kdf_params(ctx, name).to_wire()}
    return {"kdf": KdfParams(salt=user["kdf_salt"], iterations=user["kdf_iterations"]).to_wire()}


async def login(
    ctx: ServiceContext, *, username: str, auth_key: str, user_agent: str = "", ip: str = "unknown"
) -> dict[str, Any]:
    name = username_field(username)
    key = _auth_key(auth_key)
    # Counted before the (costly) password check, so a storm of attempts is refused cheaply;
    # with no hashing capacity left, refused before even that.
    ctx.hasher.check_capacity(LOGIN)
    attempt = await intrusion.begin_login(ctx, ip, name)
    async with ctx.database.read() as conn:
        user = await store.get_user_by_name(conn, name)
    try:
        ok = await ctx.hasher.verify(user["auth_hash"] if user else None, key)
    except ServerBusy:
        await intrusion.login_abandoned(ctx, attempt)
        raise
    if not ok or user is None:
        await intrusion.login_failed(ctx, attempt)
        ctx.metrics.logins.labels("failure").inc()
        raise InvalidCredentials("wrong username or password")
    await intrusion.login_succeeded(ctx, attempt)
    ctx.metrics.logins.labels("success").inc()
    if user["disabled"]:
        raise Forbidden("this account is disabled", reason="account_disabled")
    async with ctx.database.write() as conn:
        tokens = await _start_session(ctx, conn, user["id"], user["username"], user_agent)
        # The new session can unseal the keys: the account's other sessions are told.
        notice = await session_events.add_login_notice(
            conn, user_id=user["id"], session_id=tokens.session_id, user_agent=user_agent, now=now_ms()
        )
    await ctx.broker.publish([notice])
    return {
        **tokens.to_wire(),
        "username": user["username"],
        "key_bundle": json.loads(user["key_bundle"]),
        "kdf": KdfParams(salt=user["kdf_salt"], iterations=user["kdf_iterations"]).to_wire(),
    }


async def refresh(ctx: ServiceContext, refresh_token: str, *, ip: str = "unknown") -> TokenPair:
    """Rotate a refresh token, in one transaction: spend it and store its successor.

    For ``refresh_reuse_grace_seconds`` after a rotation, the token just spent gets the
    same new pair again while that pair's refresh token is unspent (two tabs refreshing
    at once, an answer lost on the way); the successor is recomputed, never stored in
    clear (services/tokens.py). Any other use of a spent token revokes its whole session,
    which is logged and audited. A session stops refreshing ``session_max_age_seconds``
    after its login.
    """
    token_hash = refresh_token_hash(refresh_token)
    now = now_ms()
    async with ctx.database.write() as conn:
        row = await store.get_refresh_token(conn, token_hash)
        if row is None:
            raise Unauthorized("invalid refresh token")
        owner = await store.get_session(conn, row["session_id"])
        if owner is None:
            raise Unauthorized("invalid refresh token")
        session = await store.get_active_session(conn, owner["id"], now)
        if session is not None and session["disabled"]:
            session = None
        max_age_ms = ctx.settings.session_max_age_seconds * 1000
        if session is not None and now >= session["created_at"] + max_age_ms:
            raise Unauthorized("the session reached its maximum age; log in again", reason="session_expired")
        if row["used_at"] is None and await store.mark_refresh_token_used(conn, token_hash, now):
            if session is None:
                # Rolled back: a dead session's token stays as it was.
                raise Unauthorized("session expired or revoked")
            successor = ctx.tokens.successor_refresh_token(session["id"], token_hash, now)
            await store.add_refresh_token(conn, refresh_token_hash(successor), session["id"], now)
            await store.touch_session(
                conn, session["id"], now, _session_expiry(ctx, session["created_at"], now)
            )
            return _token_pair(
                ctx, session["user_id"], session["username"], session["id"], successor, issued_at=now, now=now
            )
        # Spent before, or just now by a concurrent request: read the rotation as committed.
        spent = await store.get_refresh_token(conn, token_hash)
        rotated_at = int(spent["used_at"]) if spent is not None and spent["used_at"] is not None else None
        if session is not None and rotated_at is not None:
            again = await _within_grace(ctx, conn, session, token_hash, rotated_at, now)
            if again is not None:
                return again
        revoked = await store.revoke_sessions(conn, owner["user_id"], now, only=owner["id"])
        if revoked:
            user = await store.get_user_by_id(conn, owner["user_id"])
            await intrusion.record_token_reuse(
                conn,
                username=user["username"] if user is not None else str(owner["user_id"]),
                session_id=owner["id"],
                ip=ip,
                rotated_at=rotated_at,
                now=now,
            )
    # Committed above: the revocation must stick even though this request fails.
    if revoked:
        await session_events.announce_ended(ctx, owner["user_id"], "token_reuse", only=owner["id"])
    raise Unauthorized("refresh token was already used; the session is revoked", reason="token_reuse")


async def _within_grace(
    ctx: ServiceContext, conn: Any, session: Any, spent_hash: bytes, rotated_at: int, now: int
) -> TokenPair | None:
    """The pair the rotation at ``rotated_at`` gave, if that was within the grace and the
    pair's refresh token is still unspent (a token two rotations behind gets nothing)."""
    if now - rotated_at > ctx.settings.refresh_reuse_grace_seconds * 1000:
        return None
    successor = ctx.tokens.successor_refresh_token(session["id"], spent_hash, rotated_at)
    current = await store.get_refresh_token(conn, refresh_token_hash(successor))
    if current is None or current["used_at"] is not None or current["session_id"] != session["id"]:
        return None
    return _token_pair(
        ctx, session["user_id"], session["username"], session["id"], successor, issued_at=rotated_at, now=now
    )


async def authenticate(ctx: ServiceContext, access_token: str) -> Principal:
    try:
        claims = ctx.tokens.verify_access(access_token)
    except InvalidToken as exc:
        raise Unauthorized("invalid or expired access token") from exc
    async with ctx.database.read() as conn:
        session = await store.get_active_session(conn, claims.session_id, now_ms())
    if session is None or session["user_id"] != claims.user_id or session["disabled"]:
        raise Unauthorized("session expired or revoked")
    return Principal(claims.user_id, session["username"], claims.session_id, bool(session["is_admin"]))


async def session_is_active(ctx: ServiceContext, principal: Principal) -> bool:
    """Whether the caller's session still stands (not revoked, expired or disabled)."""
    async with ctx.database.read() as conn:
        session = await store.get_active_session(conn, principal.session_id, now_ms())
    return session is not None and not session["disabled"]


async def logout(ctx: ServiceContext, principal: Principal) -> None:
    async with ctx.database.write() as conn:
        await store.revoke_sessions(conn, principal.user_id, now_ms(), only=principal.session_id)
    await session_events.announce_ended(ctx, principal.user_id, "logout", only=principal.session_id)


async def list_sessions(ctx: ServiceContext, principal: Principal) -> list[dict[str, Any]]:
    async with ctx.database.read() as conn:
        rows = await store.get_sessions_for_user(conn, principal.user_id, now_ms())
    return [
        {
            "id": row["id"],
            "created_at": row["created_at"],
            "last_seen_at": row["last_seen_at"],
            "user_agent": row["user_agent"],
            "current": row["id"] == principal.session_id,
            # The device that last proved itself in it (15.16), null if none: a hint.
            "device_id": row["device_id"],
        }
        for row in rows
    ]


async def revoke_session(ctx: ServiceContext, principal: Principal, session_id: str) -> None:
    async with ctx.database.write() as conn:
        if not await store.revoke_sessions(conn, principal.user_id, now_ms(), only=session_id):
            raise NotFound("no such session")
    await session_events.announce_ended(ctx, principal.user_id, "revoked", only=session_id)


async def revoke_other_sessions(ctx: ServiceContext, principal: Principal) -> int:
    async with ctx.database.write() as conn:
        revoked = await store.revoke_sessions(conn, principal.user_id, now_ms(), keep=principal.session_id)
    await session_events.announce_ended(ctx, principal.user_id, "revoked", keep=principal.session_id)
    return revoked


async def change_password(
    ctx: ServiceContext,
    principal: Principal,
    *,
    current_auth_key: str,
    new_auth_key: str,
    kdf: dict[str, Any],
    key_bundle: dict[str, Any],
    account_key_seal: dict[str, Any] | None = None,
    ip: str = "unknown",
) -> int:
    """Replace the auth key and re-sealed bundle, and the account key's seal if the account
    rotated (15.11: in the same transaction, so password and seal never part); revoke
    every other session."""
    current = _auth_key(current_auth_key)
    new_key = _auth_key(new_auth_key)
    params = _kdf(kdf)
    bundle_text = _key_bundle(key_bundle)
    if account_key_seal is not None:
        identity_transitions.check_seal_form(account_key_seal)
    # Refusals come cheapest first: the account's budget (a read), hashing capacity
    # (memory), then the intrusion detection, which checks the current password as a
    # login is checked: a wrong one is a failed login for the address and the account.
    budget = ("password", f"user:{principal.user_id}", ctx.settings.password_changes_per_minute)
    await ratelimit.check(ctx, *budget, who="account")
    ctx.hasher.check_capacity(OTHER)
    attempt = await intrusion.begin_login(ctx, ip, principal.username)
    try:
        await ratelimit.hit(ctx, *budget, who="account")
    except RateLimited:
        await intrusion.login_abandoned(ctx, attempt)
        raise
    async with ctx.database.read() as conn:
        user = await store.get_user_by_id(conn, principal.user_id)
    try:
        # Hashed as "other" work: a storm of changes cannot take the logins' share.
        ok = await ctx.hasher.verify(user["auth_hash"] if user else None, current, kind=OTHER)
        new_hash = await ctx.hasher.hash(new_key, kind=OTHER) if ok else ""
    except ServerBusy:
        await intrusion.login_abandoned(ctx, attempt)
        raise
    if not ok:
        await intrusion.login_failed(ctx, attempt)
        raise InvalidCredentials("current password is wrong")
    await intrusion.login_succeeded(ctx, attempt)
    now = now_ms()
    async with ctx.database.write() as conn:
        # First (it takes the device list's row lock, as a rotation does, before any other).
        await identity_transitions.reseal_in(conn, principal.user_id, account_key_seal, now)
        await store.update_user(
            conn,
            principal.user_id,
            auth_hash=new_hash,
            kdf_salt=params.salt,
            kdf_iterations=params.iterations,
            key_bundle=bundle_text,
        )
        revoked = await store.revoke_sessions(conn, principal.user_id, now, keep=principal.session_id)
    await session_events.announce_ended(ctx, principal.user_id, "password_changed", keep=principal.session_id)
    return revoked


async def get_key_bundle(ctx: ServiceContext, principal: Principal) -> dict[str, Any]:
    async with ctx.database.read() as conn:
        user = await store.get_user_by_id(conn, principal.user_id)
    if user is None:
        raise NotFound("no such user")
    return {
        "key_bundle": json.loads(user["key_bundle"]),
        "kdf": KdfParams(salt=user["kdf_salt"], iterations=user["kdf_iterations"]).to_wire(),
    }


async def get_public_keys(ctx: ServiceContext, username: str) -> dict[str, Any]:
    name = username_field(username)
    async with ctx.database.read() as conn:
        user = await store.get_user_by_name(conn, name)
    if user is None:
        raise NotFound("no such user")
    return {
        "username": user["username"],
        "signing_key": b64encode(user["signing_key"]),
        "encryption_key": b64encode(user["encryption_key"]),
        "encryption_key_signature": b64encode(user["encryption_key_signature"]),
        "fingerprints": {
            "signing_key": fingerprint(user["signing_key"]),
            "encryption_key": fingerprint(user["encryption_key"]),
        },
        "updated_at": user["keys_updated_at"],
    }
