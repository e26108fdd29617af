"""Run the server under uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from ..server.app import create_app
from ..server.logs import configure_logging
from ..server.settings import Settings

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
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=WS_MAX_FRAME_BYTES,
        ws_ping_interval=settings.ws_heartbeat_seconds,
        ws_ping_timeout=settings.ws_heartbeat_seconds,
        # Envelopes are base64 ciphertext: deflate saves little and costs CPU per frame.
        ws_per_message_deflate=False,
        # Uvicorn's access log prints query strings; ours carry no secrets, but ids only is the rule.
        access_log=False,
        log_level="info",
        log_config=None,
        # With a certificate the server speaks HTTPS/WSS itself: the refresh cookie is
        # Secure and HSTS is sent (both follow the request's scheme).
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
