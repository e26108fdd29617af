"""History backups under a recovery key (PROTOCOL.md 15.10.1): PUT, GET, DELETE of the
caller's latest sealed backup."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidInput
from ..services import history_backups, ratelimit
from .deps import Context, CurrentUser

router = APIRouter(prefix="/api/v1", tags=["account"])

PATH = "/api/v1/account/history-backup"
# Its body is larger than other requests' (BodySizeLimit in app.py).
PATH_PATTERN = re.compile(re.escape(PATH))


def body_limit(max_sealed_bytes: int) -> int:
    """The largest body a backup of ``max_sealed_bytes`` needs: its base64 and the rest."""
    return 4 * ((max_sealed_bytes + 2) // 3) + 1024


class BackupBody(BaseModel):
    # No str_max_length here: the service measures ``sealed`` against the setting and
    # answers 413; the body itself is bounded by BodySizeLimit.
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = Field(ge=1, lt=2**53)
    sealed: str


@router.put(
    "/account/history-backup",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BackupBody.model_json_schema()}},
        }
    },
)
async def put_backup(request: Request, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    # The body is read here, after authentication and the rate limit, not by FastAPI
    # before them: it may be tens of MiB, and an anonymous client must not make the
    # server take that in.
    await ratelimit.hit(
        ctx,
        "history_backup",
        f"user:{principal.user_id}",
        ctx.settings.history_backup_uploads_per_minute,
        who="account",
    )
    raw = await request.body()
    try:
        body = BackupBody.model_validate_json(raw)
    except ValidationError as exc:
        details = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()[:20]]
        raise InvalidInput("request body or parameters are invalid", details=details) from None
    return await history_backups.put_backup(ctx, principal, body.version, body.sealed)


@router.get("/account/history-backup")
async def get_backup(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await history_backups.get_backup(ctx, principal)


@router.delete("/account/history-backup")
async def delete_backup(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await history_backups.delete_backup(ctx, principal)
