"""Access tokens (short-lived JWT, HS256) and opaque refresh tokens (stored hashed).

A session's first refresh token is random. Each later one is derived from the token it
replaces: HMAC-SHA256, under a key derived from the server secret, of the session id,
the spent token's hash and the moment of the rotation. Those three are stored, so the
server can hand out the same successor again during the short reuse grace (two tabs
refreshing at once, an answer lost on the way) without keeping any usable token: the
database holds only SHA-256 hashes, and without the server secret no successor can be
computed from it. Whoever holds the server secret can already sign access tokens, so
the derivation adds nothing to what that secret gives.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

import jwt

from ...protocol.encoding import canonical
from ...protocol.primitives import hkdf_sha256, hmac_sha256

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
DEVICE_TOKEN_TYPE = "device"  # noqa: S105 - a claim value, not a secret
REFRESH_TOKEN_PREFIX = "rt_"  # noqa: S105 - a format marker, not a secret
_ALGORITHM = "HS256"
_SUCCESSOR_LABEL = "securechat/refresh-successor/v1"


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    username: str
    session_id: str


@dataclass(frozen=True)
class DeviceClaims:
    """A device credential (PROTOCOL.md 15.16): which device of which account, for which
    session, and when the device was added to the list (a credential from before a
    revocation dies with it, even if the device is listed again)."""

    user_id: int
    session_id: str
    device_id: str
    device_added_at: int


class InvalidToken(Exception):
    pass


class TokenIssuer:
    def __init__(self, server_secret: bytes, access_ttl_seconds: int) -> None:
        self._key = hkdf_sha256(server_secret, salt=b"", info=b"securechat/jwt-signing-key", length=32)
        self._refresh_key = hkdf_sha256(
            server_secret, salt=b"", info=b"securechat/refresh-successor-key", length=32
        )
        # A key of its own: an access token can never pass for a device credential, nor
        # the other way round, whatever their claims say.
        self._device_key = hkdf_sha256(
            server_secret, salt=b"", info=b"securechat/device-token-key", length=32
        )
        self.access_ttl_seconds = access_ttl_seconds

    def issue_access(self, *, user_id: int, username: str, session_id: str, now_s: int) -> str:
        claims = {
            "sub": str(user_id),
            "usr": username,
            "sid": session_id,
            "typ": ACCESS_TOKEN_TYPE,
            "iat": now_s,
            "exp": now_s + self.access_ttl_seconds,
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify_access(self, token: str) -> AccessClaims:
        """Only HS256 with our key; expiry required. Any failure is one InvalidToken."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "iat", "sub", "sid", "typ"]},
            )
            if claims["typ"] != ACCESS_TOKEN_TYPE:
                raise InvalidToken()
            return AccessClaims(
                user_id=int(claims["sub"]), username=str(claims["usr"]), session_id=str(claims["sid"])
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken() from exc

    def issue_device(
        self,
        *,
        user_id: int,
        session_id: str,
        device_id: str,
        device_added_at: int,
        now_s: int,
        ttl_seconds: int,
    ) -> str:
        claims = {
            "sub": str(user_id),
            "sid": session_id,
            "dev": device_id,
            "dat": device_added_at,
            "typ": DEVICE_TOKEN_TYPE,
            "iat": now_s,
            "exp": now_s + ttl_seconds,
        }
        return jwt.encode(claims, self._device_key, algorithm=_ALGORITHM)

    def verify_device(self, token: str) -> DeviceClaims:
        """Only HS256 with the device key; expiry required. Any failure is one InvalidToken."""
        try:
            claims = jwt.decode(
                token,
                self._device_key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "iat", "sub", "sid", "dev", "dat", "typ"]},
            )
            if claims["typ"] != DEVICE_TOKEN_TYPE or not isinstance(claims["dat"], int):
                raise InvalidToken()
            return DeviceClaims(
                user_id=int(claims["sub"]),
                session_id=str(claims["sid"]),
                device_id=str(claims["dev"]),
                device_added_at=claims["dat"],
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken() from exc

    def successor_refresh_token(self, session_id: str, spent_hash: bytes, rotated_at_ms: int) -> str:
        """The refresh token that replaced the one hashing to ``spent_hash`` in the
        rotation at ``rotated_at_ms``: the same every time it is asked for."""
        mac = hmac_sha256(
            self._refresh_key, canonical(_SUCCESSOR_LABEL, [session_id, spent_hash, str(rotated_at_ms)])
        )
        return REFRESH_TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
