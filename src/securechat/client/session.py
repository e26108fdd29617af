"""This device's account: registration, login, the session's tokens, the password, and
the private keys unsealed in memory (never written to disk)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..protocol import errors as protocol_errors
from ..protocol.encoding import b64encode
from ..protocol.identifiers import Username, parse_username
from ..protocol.kdf import KdfParams, derive_keys
from ..protocol.keys import PrivateIdentity, PublicIdentity, open_key_bundle, seal_key_bundle
from .api import ApiClient
from .core import decide_own_keys
from .errors import ApiError, NotLoggedIn, ServerMisbehaved
from .passwords import check_password
from .receiving import SESSION_NOTICES_AFTER
from .state import StateStore

# The account key sealed under a new password, from (old wrap key, new wrap key) (15.11).
Reseal = Callable[[bytes, bytes], Awaitable[dict[str, object] | None]]

# Refresh the access token this long before it expires.
_REFRESH_MARGIN_S = 60


def identity_dict(identity: PublicIdentity) -> dict[str, str]:
    wire = identity.to_wire()
    return {k: wire[k] for k in ("signing_key", "encryption_key", "encryption_key_signature")}


class Session:
    """The account this home belongs to, its tokens, and its unlocked keys."""

    def __init__(self, state: StateStore, api: ApiClient) -> None:
        self.state = state
        self.api = api
        self.identity: PrivateIdentity | None = None
        # The password's wrap key while unlocked (memory only): it opens the sealed v2
        # account key after a rotation (PROTOCOL.md 15.11), as it opens the key bundle.
        self.wrap_key: bytes | None = None
        # The wrap key of the password just replaced (memory only), so that a rotated
        # account key sealed under it can be sealed again under the new one.
        self._token_lock = asyncio.Lock()

    @property
    def username(self) -> Username:
        name = self.state.get("username")
        if name is None:
            raise NotLoggedIn("not logged in: run `securechat login USER` first")
        return Username(name)

    def me(self) -> PrivateIdentity:
        if self.identity is None:
            raise NotLoggedIn("keys are locked: this command needs your password")
        return self.identity

    async def register(self, username: str, password: str) -> None:
        name = parse_username(username)
        self._check_home_is_for(name)
        check_password(password, name)
        params = KdfParams.generate()
        derived = await asyncio.to_thread(derive_keys, password, params)
        identity = await asyncio.to_thread(PrivateIdentity.generate, name)
        body = {
            "username": name,
            "auth_key": b64encode(derived.auth_key),
            "kdf": params.to_wire(),
            "public_keys": identity_dict(identity.public),
            "key_bundle": seal_key_bundle(identity, derived.wrap_key),
        }
        answer = await self.api.register(body)
        with self.state.transaction():
            self._save_session(name, answer)
            self.state.put("last_seq", "0")
            self.state.pin_contact(name, identity_dict(identity.public))
        self.identity, self.wrap_key = identity, derived.wrap_key

    async def login(self, username: str, password: str) -> None:
        """Start a new session and unlock the keys."""
        name = parse_username(username)
        self._check_home_is_for(name)
        params = KdfParams.from_wire((await self.api.prelogin(name)).get("kdf"))
        derived = await asyncio.to_thread(derive_keys, password, params)
        answer = await self.api.login(name, b64encode(derived.auth_key))
        identity = self._open_bundle(answer["key_bundle"], derived.wrap_key, name)
        with self.state.transaction():
            self._check_home_is_for(name)
            self._save_session(name, answer)
            if self.state.get_contact(name) is None:
                self.state.pin_contact(name, identity_dict(identity.public))
        # New-login notices up to the inbox's head now (this session's own among them) are
        # from before this session: not news on this device. Asked after the largest
        # position, the inbox answers with its head only.
        head = (await self.api.inbox(2**62, 1))["head"]
        self.state.put(SESSION_NOTICES_AFTER, str(int(head)))
        self.identity, self.wrap_key = identity, derived.wrap_key
        await self._check_own_keys()

    def _check_home_is_for(self, name: Username) -> None:
        """One home, one account: another account's history and pins must not mix in."""
        if self.state.get("username") not in (None, name):
            raise NotLoggedIn("this SECURECHAT_HOME belongs to another user; use another directory")

    async def unlock(self, password: str) -> None:
        """Unlock the keys within the existing session (no new session is made)."""
        name = self.username
        await self.ensure_token()
        bundle = await self.api.key_bundle()
        params = KdfParams.from_wire(bundle["kdf"])
        derived = await asyncio.to_thread(derive_keys, password, params)
        self.identity = self._open_bundle(bundle["key_bundle"], derived.wrap_key, name)
        self.wrap_key = derived.wrap_key
        await self._check_own_keys()

    def _open_bundle(self, bundle: Any, wrap_key: bytes, name: Username) -> PrivateIdentity:
        try:
            return open_key_bundle(bundle, wrap_key, name)
        except protocol_errors.VerificationFailed as exc:
            raise ServerMisbehaved("the key bundle does not open with this password") from exc

    async def _check_own_keys(self) -> None:
        """The directory must publish exactly our keys; anything else is substitution (14.6)."""
        me = self.me()
        published = await self.api.public_keys(me.username)
        try:
            identity = PublicIdentity.from_wire(me.username, published)
        except protocol_errors.ProtocolError as exc:
            raise ServerMisbehaved("the server publishes keys for you that are not yours") from exc
        if decide_own_keys(me, identity) is not None:
            raise ServerMisbehaved("the server publishes keys for you that are not yours")

    def _save_session(self, name: str, answer: dict[str, Any]) -> None:
        self.state.put("server", self.api.base_url)
        self.state.put("username", name)
        self.state.put("session_id", answer["session_id"])
        self._save_tokens(answer)

    def _save_tokens(self, answer: dict[str, Any]) -> None:
        self.state.put("refresh_token", answer["refresh_token"])
        self.state.put("access_token", answer["access_token"])
        self.state.put("access_expires", str(int(time.time()) + int(answer["expires_in"])))
        self.api.access_token = answer["access_token"]

    async def ensure_token(self) -> None:
        """Use the cached access token, or rotate the refresh token.

        Rotation holds a lock file, so two commands on one home never both spend the
        same refresh token (which the server would treat as theft and revoke).
        """
        async with self._token_lock:
            with self.state.file_lock():
                refresh_token = self.state.get("refresh_token")
                if refresh_token is None:
                    raise NotLoggedIn("not logged in: run `securechat login USER` first")
                expires = int(self.state.get("access_expires") or 0)
                if expires - _REFRESH_MARGIN_S > time.time():
                    self.api.access_token = self.state.get("access_token")
                    return
                try:
                    answer = await self._rotate(refresh_token)
                except ApiError as exc:
                    if exc.status == 401:
                        self.state.clear_session()
                        raise NotLoggedIn("the session has ended: log in again") from exc
                    raise
                self._save_tokens(answer)

    async def _rotate(self, refresh_token: str) -> dict[str, Any]:
        """Spend the refresh token; once more at once if the answer was lost on the way.

        The server may have rotated the token before the connection broke. Within its
        short grace it answers the same token with the same new pair, so asking again
        at once recovers the session; asking later would look like theft and end it.
        """
        try:
            return await self.api.refresh(refresh_token)
        except ApiError as exc:
            if exc.status != 0:
                raise
        return await self.api.refresh(refresh_token)

    async def logout(self) -> None:
        await self.ensure_token()
        try:
            await self.api.logout()
        finally:
            with self.state.transaction():
                self.state.clear_session()
            self.identity = self.wrap_key = None

    async def change_password(self, current: str, new: str, reseal: Reseal | None = None) -> int:
        """``reseal(old_wrap_key, new_wrap_key)`` gives the account key's seal under the new
        password (15.11; None: the account never rotated), sent in the same request."""
        name = self.username
        check_password(new, name)
        await self.ensure_token()
        bundle = await self.api.key_bundle()
        old_params = KdfParams.from_wire(bundle["kdf"])
        old = await asyncio.to_thread(derive_keys, current, old_params)
        identity = self._open_bundle(bundle["key_bundle"], old.wrap_key, name)
        params = KdfParams.generate()
        new_keys = await asyncio.to_thread(derive_keys, new, params)
        body: dict[str, Any] = {
            "current_auth_key": b64encode(old.auth_key),
            "new_auth_key": b64encode(new_keys.auth_key),
            "kdf": params.to_wire(),
            "key_bundle": seal_key_bundle(identity, new_keys.wrap_key),
        }
        # Obtained before anything changes: a device that cannot seal the account key
        # leaves the password as it was (the server also refuses a change without it).
        seal = None if reseal is None else await reseal(old.wrap_key, new_keys.wrap_key)
        if seal is not None:
            body["account_key_seal"] = seal
        answer = await self.api.change_password(body)
        self.identity, self.wrap_key = identity, new_keys.wrap_key
        return int(answer["revoked_sessions"])

    async def sessions(self) -> list[dict[str, Any]]:
        await self.ensure_token()
        return await self.api.sessions()

    async def revoke_session(self, session_id: str) -> None:
        await self.ensure_token()
        await self.api.revoke_session(session_id)

    async def revoke_other_sessions(self) -> int:
        await self.ensure_token()
        return await self.api.revoke_other_sessions()
