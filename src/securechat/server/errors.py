"""The server's error tree and its one JSON handler.

    SecureChatError (code, status)
    ├── BadRequest            400 bad_request
    │   ├── InvalidEnvelope   400 invalid_envelope
    │   ├── InvalidGroupChange 400 invalid_group_change
    │   ├── InvalidReceipt    400 invalid_receipt
    │   ├── InvalidDeviceList 400 invalid_device_list (with reason)
    │   ├── InvalidPrekey     400 invalid_prekey (with reason)
    │   ├── InvalidTransition 400 invalid_transition (with reason)
    │   └── WeakParameters    400 weak_parameters
    ├── InvalidInput          422 invalid_input
    ├── Unauthorized          401 unauthorized
    ├── InvalidCredentials    401 invalid_credentials
    ├── Forbidden             403 forbidden
    │   └── AccessBlocked     403 access_blocked (with Retry-After)
    ├── NotFound              404 not_found
    │   ├── NoDevices         404 no_devices
    │   ├── DeviceNotListed   404 device_not_listed
    │   ├── UnknownKey        404 unknown_key
    │   └── NoHistoryBackup   404 no_history_backup
    ├── Conflict              409 conflict
    │   ├── UsernameTaken     409 username_taken
    │   ├── MessageIdReused   409 message_id_reused
    │   ├── FileIdReused      409 file_id_reused
    │   ├── ChunkConflict     409 chunk_conflict
    │   ├── UploadIncomplete  409 upload_incomplete
    │   ├── TooManyUploads    409 too_many_uploads
    │   ├── GroupConflict     409 group_conflict
    │   ├── DeviceListStale   409 device_list_stale
    │   ├── IdentityKeyStale  409 identity_key_stale (with current_key)
    │   ├── PrekeyIdReused    409 prekey_id_reused
    │   ├── TooManyPrekeys    409 too_many_prekeys
    │   └── BackupVersionStale 409 backup_version_stale (with version)
    ├── Gone                  410 gone
    │   └── V1Retired         410 v1_retired (with sends_until)
    ├── TooLarge              413 too_large
    │   └── QuotaExceeded     413 quota_exceeded
    ├── UnsupportedMediaType  415 unsupported_media_type
    ├── RateLimited           429 rate_limited (with Retry-After)
    └── ServerBusy            503 server_busy (with Retry-After)

Anything else raised in a request becomes a logged 500 ``internal_error`` with no detail.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class SecureChatError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.fields}}


class BadRequest(SecureChatError):
    code, status = "bad_request", 400


class InvalidEnvelope(BadRequest):
    code = "invalid_envelope"


class InvalidGroupChange(BadRequest):
    code = "invalid_group_change"


class InvalidReceipt(BadRequest):
    code = "invalid_receipt"


class WeakParameters(BadRequest):
    code = "weak_parameters"


class InvalidDeviceList(BadRequest):
    """A v2 device list the server refuses (PROTOCOL.md 15.16); ``reason`` is 15.14's."""

    code = "invalid_device_list"


class InvalidPrekey(BadRequest):
    code = "invalid_prekey"


class InvalidTransition(BadRequest):
    """An identity transition the server refuses (PROTOCOL.md 15.16); ``reason`` as 15.11's."""

    code = "invalid_transition"


class InvalidInput(SecureChatError):
    code, status = "invalid_input", 422


class Unauthorized(SecureChatError):
    code, status = "unauthorized", 401


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class DeviceAuthRequired(Unauthorized):
    """A per-device call without a valid credential of that device (15.16)."""

    code = "device_auth_required"


class DeviceAuthFailed(Unauthorized):
    """A device's answer to a challenge did not prove it (15.16); ``reason`` says why."""

    code = "device_auth_failed"


class Forbidden(SecureChatError):
    code, status = "forbidden", 403


class AccessBlocked(Forbidden):
    code = "access_blocked"


class NotFound(SecureChatError):
    code, status = "not_found", 404


class NoDevices(NotFound):
    code = "no_devices"


class UnknownKey(NotFound):
    """``since_key`` was never the account's identity key: there is no chain from it."""

    code = "unknown_key"


class NoAccountKeySeal(NotFound):
    """The account never rotated its identity key: its account key is its v1 signing key."""

    code = "no_account_key_seal"


class DeviceNotListed(NotFound):
    code = "device_not_listed"


class NoHistoryBackup(NotFound):
    code = "no_history_backup"


class Conflict(SecureChatError):
    code, status = "conflict", 409


class UsernameTaken(Conflict):
    code = "username_taken"


class MessageIdReused(Conflict):
    code = "message_id_reused"


class FileIdReused(Conflict):
    code = "file_id_reused"


class TooManyUploads(Conflict):
    code = "too_many_uploads"


class GroupConflict(Conflict):
    code = "group_conflict"


class DeviceListStale(Conflict):
    code = "device_list_stale"


class IdentityKeyStale(Conflict):
    """A transition whose old key is not the account's identity key (any more)."""

    code = "identity_key_stale"


class PrekeyIdReused(Conflict):
    code = "prekey_id_reused"


class TooManyPrekeys(Conflict):
    code = "too_many_prekeys"


class BackupVersionStale(Conflict):
    """A history backup whose version is not the stored one plus one (1 when none is
    stored; PROTOCOL.md 15.10.1): an older or equal version, or one that jumps ahead. The
    error's ``version`` is the stored one (0 if none)."""

    code = "backup_version_stale"


class Gone(SecureChatError):
    code, status = "gone", 410


class V1Retired(Gone):
    """A v1 send after the server's cut-off (PROTOCOL.md 15.12); nothing was stored."""

    code = "v1_retired"


class ChunkConflict(Conflict):
    code = "chunk_conflict"


class UploadIncomplete(Conflict):
    code = "upload_incomplete"


class TooLarge(SecureChatError):
    code, status = "too_large", 413


class QuotaExceeded(TooLarge):
    code = "quota_exceeded"


class UnsupportedMediaType(SecureChatError):
    code, status = "unsupported_media_type", 415


class RateLimited(SecureChatError):
    code, status = "rate_limited", 429


class ServerBusy(SecureChatError):
    """This instance has no capacity for the request now (e.g. password hashing is
    saturated); nothing was done, and the same request may be sent again later."""

    code, status = "server_busy", 503


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "server_busy",
}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only locations and messages: never echo the offending input back.
    return [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in exc.errors()[:20]
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SecureChatError)
    async def _securechat_error(request: Request, exc: SecureChatError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = InvalidInput("request body or parameters are invalid", details=_validation_details(exc))
        return JSONResponse(body.body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The path as a repr: a client's bytes (a NUL, a line break) never reach the log raw.
        logger.error("unhandled error on %s %r", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"error": {"code": "internal_error", "message": "internal error"}}, status_code=500
        )
