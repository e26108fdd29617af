"""The CLI's one way into the server's own code: run the server under uvicorn, or
act on its database as the operator (``securechat admin create``). Every other command
talks to a server through the client library, so only this module imports
``securechat.server`` (tests/test_architecture.py checks it), and the CLI imports it
lazily, when one of these commands runs."""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
from pathlib import Path
from typing import Any

import uvicorn

from ..server.app import create_app
from ..server.connections import ConnectionGuard, guarded_protocols, raise_open_file_limit
from ..server.errors import SecureChatError
from ..server.logs import configure_logging
from ..server.services.admin import make_admin
from ..server.settings import Settings
from ..server.storage.database import Database
from ..server.storage.migrate import migrate

# Allocations between two collections of the youngest generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000

# Frames are bounded by the envelope limit plus the frame's own fields.
WS_MAX_FRAME_BYTES = 1024 * 1024 + 4096


def run_server(
    *,
    host: str | None = None,
    port: int | None = None,
    data_dir: Path | None = None,
    database_url: str | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    overrides = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "data_dir": data_dir,
            "database_url": database_url,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(as_json=settings.log_json)
    # Each connection holds a file descriptor: a soft limit of 1,024, common for services,
    # let 1,100 idle connections lock everyone else out.
    open_files = raise_open_file_limit()
    # With a certificate the server speaks HTTPS/WSS itself: the refresh cookie is Secure
    # and HSTS is sent (both follow the request's scheme). The guarded protocol runs the
    # handshake, after counting the connection, so uvicorn gets no certificate (its
    # start-up line then says http://; the line below says what is served).
    tls = tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
    http_protocol, ws_protocol = guarded_protocols(ConnectionGuard.from_settings(settings, open_files), tls)
    if tls is not None:
        logging.getLogger(__name__).info("serving HTTPS and WSS with the certificate %s", tls_cert)
    app = create_app(settings)
    # Everything made so far (modules, the app, its routes and schemas) lives as long as
    # the process: keep it out of the cyclic collector's full passes. And collect the
    # young generation less often: each message makes and drops many small containers.
    # In bench_delivery.py's steady phase, perf found 4.7% of the server's samples in
    # the collector with Python's defaults, 3.9% with the heap frozen, 0.6% with the
    # heap frozen and this threshold.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        # uvicorn's httptools and websockets-sansio protocols, with the connection caps
        # and the request head and body timeouts (server/connections.py).
        http=http_protocol,
        ws=ws_protocol,
        ws_max_size=WS_MAX_FRAME_BYTES,
        ws_ping_interval=settings.ws_heartbeat_seconds,
        ws_ping_timeout=settings.ws_heartbeat_seconds,
        # Envelopes are base64 ciphertext: deflate saves little and costs CPU per frame.
        ws_per_message_deflate=False,
        # Uvicorn's access log prints query strings; ours carry no secrets, but ids only is the rule.
        access_log=False,
        log_level="info",
        log_config=None,
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The server's TLS settings: Python's defaults for a server (TLS 1.2 or later, strong
    ciphers), HTTP/1.1 by ALPN."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


class GrantRefused(Exception):
    """The server's rules refused ``grant_admin`` (no such user, a malformed name)."""


def grant_admin(username: str, *, data_dir: Path | None = None, database_url: str | None = None) -> None:
    """Make a registered user an administrator, on the server's database (migrated first).

    Raises ``GrantRefused`` with the server's message when its rules refuse.
    """
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)

    async def grant() -> None:
        database = Database(settings.sqlalchemy_url())
        try:
            await migrate(database)
            await make_admin(database, username)
        finally:
            await database.dispose()

    try:
        asyncio.run(grant())
    except SecureChatError as exc:
        raise GrantRefused(exc.message) from exc


def _operator_settings(data_dir: Path | None, database_url: str | None) -> Settings:
    """The server's settings (its environment, as ``serve`` reads it), with the
    command's options on top."""
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    return Settings(**overrides)


class BackupFailed(Exception):
    """A backup or restore that cannot go ahead (the message says why)."""


def take_backup(
    destination: Path,
    *,
    data_dir: Path | None = None,
    database_url: str | None = None,
    run_pg_dump: bool = True,
) -> dict[str, Any]:
    """``securechat admin backup``: see server/storage/backup.py. Raises BackupFailed."""
    from ..server.storage.backup import BackupError, backup, report_dict

    try:
        report = backup(_operator_settings(data_dir, database_url), destination, run_pg_dump=run_pg_dump)
    except BackupError as exc:
        raise BackupFailed(str(exc)) from exc
    return report_dict(report)


def restore_backup(
    source: Path,
    *,
    data_dir: Path | None = None,
    database_url: str | None = None,
    run_pg_restore: bool = True,
) -> dict[str, Any]:
    """``securechat admin restore``: see server/storage/backup.py. Raises BackupFailed."""
    from ..server.storage.backup import BackupError, report_dict, restore

    try:
        report = restore(source, _operator_settings(data_dir, database_url), run_pg_restore=run_pg_restore)
    except BackupError as exc:
        raise BackupFailed(str(exc)) from exc
    return report_dict(report)
