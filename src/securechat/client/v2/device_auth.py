"""This device's credential for its per-device calls (PROTOCOL.md 15.16): the server's
nonce signed with the device's own signing key buys a short-lived credential, sent
beside the account's session token. Got when first needed, renewed before it expires
and whenever the server refuses it (another session, a new listing), transparently."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from ...protocol.encoding import b64decode, b64encode
from ...protocol.errors import MalformedInput
from ...protocol.v2.device_auth import sign_device_auth
from ..api import ApiClient
from ..errors import ApiError, ServerMisbehaved
from .device import LocalDevice

PREFIX = "/api/v1"
HEADER = "X-Device-Token"
# Renewed this long before the server would refuse it, so a call never races its expiry.
RENEW_MARGIN_S = 30
# The server's refusals that a new credential answers.
RENEWABLE = frozenset({"device_auth_required"})


class DeviceCredentials:
    """Credentials of the devices this process speaks for, one each, kept in memory."""

    def __init__(self, api: ApiClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.clock = clock
        # Finds the key of a device this process speaks for (set by its owner: the home's
        # own device); devices named by ``use`` come first.
        self.lookup: Callable[[str], tuple[str, LocalDevice] | None] = lambda _device_id: None
        self._signers: dict[str, tuple[str, LocalDevice]] = {}
        self._tokens: dict[str, tuple[str, float]] = {}

    def use(self, username: str, device: LocalDevice) -> None:
        """Speak for ``device`` of ``username`` (its key signs the challenges)."""
        self._signers[device.device_id] = (username, device)

    def forget(self, device_id: str) -> None:
        self._tokens.pop(device_id, None)

    async def _fetch(self, device_id: str) -> str:
        signer = self._signers.get(device_id) or self.lookup(device_id)
        if signer is None:
            raise ApiError(401, "device_auth_required", "this process holds no key of that device")
        username, device = signer
        asked = await self.api.request("POST", f"{PREFIX}/devices/{device_id}/challenge")
        try:
            nonce = b64decode(asked["nonce"])
            signature = sign_device_auth(device.signing_seed, username, device_id, nonce)
        except (MalformedInput, KeyError, TypeError) as exc:
            raise ServerMisbehaved("the server's device challenge is not a nonce") from exc
        body = {"nonce": asked["nonce"], "signature": b64encode(signature)}
        answer = await self.api.request("POST", f"{PREFIX}/devices/{device_id}/token", json=body)
        token, ttl = answer.get("device_token"), answer.get("expires_in")
        if not isinstance(token, str) or not isinstance(ttl, int) or isinstance(ttl, bool):
            raise ServerMisbehaved("the server's device credential is not one")
        self._tokens[device_id] = (token, self.clock() + ttl - RENEW_MARGIN_S)
        return token

    async def _token(self, device_id: str) -> str:
        held = self._tokens.get(device_id)
        if held is not None and held[1] > self.clock():
            return held[0]
        return await self._fetch(device_id)

    async def call(self, device_id: str, send: Callable[[dict[str, str]], Awaitable[Any]]) -> Any:
        """``send(headers)`` with the device's credential; once more with a new one if
        the server refuses the credential it had."""
        try:
            return await send({HEADER: await self._token(device_id)})
        except ApiError as exc:
            if exc.status != 401 or exc.code not in RENEWABLE:
                raise
            self.forget(device_id)
            return await send({HEADER: await self._fetch(device_id)})
