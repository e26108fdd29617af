"""Access tokens (short-lived JWT, HS256) and opaque refresh tokens (stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import jwt

from ...protocol.primitives import hkdf_sha256

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    username: str
    session_id: str


class InvalidToken(Exception):
    pass


class TokenIssuer:
    def __init__(self, server_secret: bytes, access_ttl_seconds: int) -> None:
        self._key = hkdf_sha256(server_secret, salt=b"", info=b"securechat/jwt-signing-key", length=32)
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


def new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
