"""``create_app(settings)``: the one place the server is wired together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from .. import __version__
from ..protocol.files import FILE_CHUNK_BYTES
from ..protocol.primitives import GCM_TAG_BYTES
from .api import (
    account,
    admin,
    auth,
    device_auth,
    device_inbox,
    devices,
    files,
    groups,
    history_backup,
    identity_transitions,
    messages,
    websocket,
)
from .errors import Forbidden, install_error_handlers
from .headers import SecurityHeaders
from .limits import BodySizeLimit
from .metrics import Metrics, RequestMetrics, metrics_allowed
from .realtime.broker import Broker, InProcessBroker
from .realtime.shared_slots import SharedCounts
from .realtime.slots import ConnectionSlots
from .services.context import ServiceContext
from .services.passwords import AuthKeyHasher
from .services.pruning import Pruner
from .services.tokens import TokenIssuer
from .services.writer import MessageWriter, inbox_heads, message_source
from .settings import Settings
from .storage.chunks import ChunkStore, DatabaseChunkStore, DirectoryChunkStore
from .storage.database import Database
from .storage.migrate import migrate
from .web_client import install_web_client

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The database holds ciphertext, metadata and password hashes: owner only.
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = settings.load_server_secret()
        database = Database(settings.sqlalchemy_url())
        await migrate(database)
        broker = await make_broker(settings, database, metrics)
        writer = MessageWriter(database, broker, metrics)
        writer.start()
        shared_counts = shared_socket_counts(settings)
        app.state.slots = ConnectionSlots(
            settings.ws_max_connections, settings.ws_max_per_user, settings.ws_max_per_address, shared_counts
        )
        app.state.context = ServiceContext(
            settings=settings,
            database=database,
            broker=broker,
            hasher=AuthKeyHasher(
                time_cost=settings.argon2_time_cost,
                memory_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
                concurrency=settings.password_hash_concurrency,
                login_reserve=settings.password_hash_login_reserve,
                queue=settings.password_hash_queue,
                wait_seconds=settings.password_hash_wait_seconds,
            ),
            tokens=TokenIssuer(secret, settings.access_token_ttl_seconds),
            server_secret=secret,
            writer=writer,
            metrics=metrics,
            chunks=chunk_store(settings, database),
        )
        # Expired rate-limit and intrusion records, deleted on a schedule (every instance).
        pruner = Pruner(database, settings)
        pruner.start()
        try:
            yield
        finally:
            await pruner.stop()
            await writer.stop()
            await broker.close()
            if shared_counts is not None:
                await shared_counts.close()
            await database.dispose()

    app = FastAPI(title="SecureChat", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        exceptions=[
            (files.CHUNK_PATH, FILE_CHUNK_BYTES + GCM_TAG_BYTES),
            (history_backup.PATH_PATTERN, history_backup.body_limit(settings.history_backup_max_bytes)),
        ],
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics, metrics=metrics)
    for module in (
        auth,
        account,
        messages,
        files,
        groups,
        devices,
        device_auth,
        device_inbox,
        history_backup,
        identity_transitions,
        websocket,
        admin,
    ):
        app.include_router(module.router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Ready when the database answers; a load balancer sends traffic only then.

        The broker's health is reported but does not make an instance unready: without
        Redis an instance still stores, acknowledges and delivers (its sockets re-read
        their inboxes), and every instance would turn unready at once."""
        broker = app.state.context.broker.status()
        try:
            async with app.state.context.database.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure means not ready; the reason goes to the log
            logger.exception("readiness check failed")
            return JSONResponse({"status": "unavailable", "broker": broker}, status_code=503)
        return JSONResponse({"status": "ready", "broker": broker})

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        """Prometheus metrics: for loopback scrapers, or anyone with the metrics token."""
        if not metrics_allowed(request, settings):
            raise Forbidden("metrics are not available to this client")
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    install_web_client(app)

    return app


def chunk_store(settings: Settings, database: Database) -> ChunkStore:
    kind = settings.file_store
    if kind == "auto":
        kind = "directory" if database.is_sqlite else "database"
    if kind == "directory":
        return DirectoryChunkStore(settings.data_dir / "files")
    return DatabaseChunkStore(database)


def shared_socket_counts(settings: Settings) -> SharedCounts | None:
    """With Redis (several instances), the WebSocket caps per account and per address
    are counted across the deployment."""
    if not settings.redis_url:
        return None
    counts = SharedCounts(settings.redis_url, f"{settings.redis_channel}:sockets:")
    counts.start()
    return counts


async def make_broker(settings: Settings, database: Database, metrics: Metrics) -> Broker:
    """In process for one instance; through Redis when several share a database."""
    if settings.redis_url:
        from .realtime.redis_broker import RedisBroker

        redis_broker = RedisBroker(
            settings.redis_url,
            settings.redis_channel,
            messages=message_source(database),
            heads=inbox_heads(database),
            queue_max=settings.redis_publish_queue_max,
            metrics=metrics,
        )
        await redis_broker.start()
        return redis_broker
    return InProcessBroker()
