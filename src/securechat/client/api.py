"""HTTP transport: one method per endpoint, errors translated into ApiError.

The httpx transport is injectable, so tests can run the client against the ASGI app
in process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .errors import ApiError, ServerMisbehaved


class ApiClient:
    def __init__(
        self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0
    ):
        self.base_url = base_url.rstrip("/")
        self.access_token: str | None = None
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={"user-agent": "securechat-cli"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path: str, *, params: Any = None) -> AsyncIterator[httpx.Response]:
        """A response read as it arrives (a long export); the caller checks its status."""
        if self.access_token is None:
            raise ApiError(401, "unauthorized", "not logged in")
        headers = {"authorization": f"Bearer {self.access_token}"}
        try:
            async with self._http.stream(method, path, params=params, headers=headers) as response:
                yield response
        except httpx.HTTPError as exc:
            raise ApiError(0, "network_error", f"cannot reach the server at {self.base_url}: {exc}") from exc

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        content: bytes | None = None,
        raw: bool = False,
        auth: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send a request; the JSON answer, or the body's bytes with ``raw``. ``headers``
        go with it (a device credential beside the session's token)."""
        headers = dict(headers or {})
        if content is not None:
            headers["content-type"] = "application/octet-stream"
        if auth:
            if self.access_token is None:
                raise ApiError(401, "unauthorized", "not logged in")
            headers["authorization"] = f"Bearer {self.access_token}"
        try:
            response = await self._http.request(
                method, path, json=json, params=params, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ApiError(0, "network_error", f"cannot reach the server at {self.base_url}: {exc}") from exc
        if response.status_code == 204:
            return None
        if raw and response.is_success:
            return response.content
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerMisbehaved(f"the server answered {response.status_code} without JSON") from exc
        if response.is_error:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise ApiError(
                response.status_code, str(error.get("code", "error")), str(error.get("message", "")), error
            )
        return body

    # Authentication
    async def prelogin(self, username: str) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/auth/prelogin", json={"username": username}, auth=False)  # type: ignore[no-any-return]

    async def register(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/auth/register", json=body, auth=False)  # type: ignore[no-any-return]

    async def login(self, username: str, auth_key: str) -> dict[str, Any]:
        body = {"username": username, "auth_key": auth_key}
        return await self.request("POST", "/api/v1/auth/login", json=body, auth=False)  # type: ignore[no-any-return]

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        body = {"refresh_token": refresh_token}
        return await self.request("POST", "/api/v1/auth/refresh", json=body, auth=False)  # type: ignore[no-any-return]

    async def logout(self) -> None:
        await self.request("POST", "/api/v1/auth/logout")

    # Account
    async def key_bundle(self) -> dict[str, Any]:
        return await self.request("GET", "/api/v1/account/key-bundle")  # type: ignore[no-any-return]

    async def change_password(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/account/password", json=body)  # type: ignore[no-any-return]

    async def usage(self) -> dict[str, int]:
        """Stored file bytes against the quota: ``{stored_bytes, quota_bytes, files, pending_uploads}``."""
        answer = await self.request("GET", "/api/v1/account/usage")
        fields = ("stored_bytes", "quota_bytes", "files", "pending_uploads")
        values = [answer.get(name) if isinstance(answer, dict) else None for name in fields]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise ServerMisbehaved("the server's usage answer is not a set of counts")
        return dict(zip(fields, values, strict=True))  # type: ignore[arg-type]

    async def sessions(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/api/v1/sessions"))["sessions"]  # type: ignore[no-any-return]

    async def revoke_session(self, session_id: str) -> None:
        await self.request("DELETE", f"/api/v1/sessions/{session_id}")

    async def revoke_other_sessions(self) -> int:
        return int((await self.request("POST", "/api/v1/sessions/revoke-others"))["revoked_sessions"])

    async def public_keys(self, username: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/v1/users/{username}/keys")  # type: ignore[no-any-return]

    # Messages
    async def send(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/messages", json={"envelope": envelope})  # type: ignore[no-any-return]

    async def inbox(self, since: int, limit: int = 200) -> dict[str, Any]:
        return await self.request("GET", "/api/v1/inbox", params={"since": since, "limit": limit})  # type: ignore[no-any-return]

    async def ack(self, seq: int, *, signed_receipts: bool = False) -> None:
        body: dict[str, Any] = {"seq": seq}
        if signed_receipts:
            body["signed_receipts"] = True
        await self.request("POST", "/api/v1/inbox/ack", json=body)

    async def post_receipt(self, receipt: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/receipts", json={"receipt": receipt})  # type: ignore[no-any-return]

    async def conversations(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/api/v1/conversations"))["conversations"]  # type: ignore[no-any-return]

    async def history(
        self, conversation_id: str, before: int | None = None, limit: int = 50
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        return await self.request("GET", f"/api/v1/conversations/{conversation_id}/messages", params=params)  # type: ignore[no-any-return]

    # Groups
    async def create_group(self, change: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/groups", json={"change": change})  # type: ignore[no-any-return]

    async def group_changes(self, group_id: str) -> list[dict[str, Any]]:
        return (await self.request("GET", f"/api/v1/groups/{group_id}/changes"))["changes"]  # type: ignore[no-any-return]

    async def group_change(self, group_id: str, change: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/groups/{group_id}/changes", json={"change": change})  # type: ignore[no-any-return]

    async def create_invite(self, group_id: str, invite: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/groups/{group_id}/invites", json={"invite": invite})  # type: ignore[no-any-return]

    async def get_invite(self, code: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/v1/invites/{code}")  # type: ignore[no-any-return]

    # Files
    async def open_direct(self, peer: str) -> dict[str, Any]:
        return await self.request("POST", "/api/v1/conversations/direct", json={"peer": peer})  # type: ignore[no-any-return]

    async def create_upload(self, file_id: str, conversation_id: str, size: int) -> dict[str, Any]:
        body = {"file_id": file_id, "conversation_id": conversation_id, "size": size}
        return await self.request("POST", "/api/v1/files", json=body)  # type: ignore[no-any-return]

    async def put_chunk(self, file_id: str, index: int, data: bytes) -> None:
        await self.request("PUT", f"/api/v1/files/{file_id}/chunks/{index}", content=data)

    async def complete_upload(self, file_id: str) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/files/{file_id}/complete")  # type: ignore[no-any-return]

    async def file_info(self, file_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/v1/files/{file_id}")  # type: ignore[no-any-return]

    async def get_chunk(self, file_id: str, index: int) -> bytes:
        return await self.request("GET", f"/api/v1/files/{file_id}/chunks/{index}", raw=True)  # type: ignore[no-any-return]

    def origin(self) -> str:
        """The server's web origin, which the WebSocket handshake must present."""
        return self.base_url.rstrip("/")

    def websocket_url(self) -> str:
        if self.base_url.startswith("https://"):
            return "wss://" + self.base_url[len("https://") :] + "/api/v1/ws"
        return "ws://" + self.base_url.removeprefix("http://") + "/api/v1/ws"
