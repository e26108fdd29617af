"""What every service needs, built once in ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import Metrics
from ..realtime.broker import Broker
from ..settings import Settings
from ..storage.chunks import ChunkStore
from ..storage.database import Database
from .clock import now_ms
from .passwords import AuthKeyHasher
from .tokens import TokenIssuer
from .writer import MessageWriter


@dataclass
class ServiceContext:
    settings: Settings
    database: Database
    broker: Broker
    hasher: AuthKeyHasher
    tokens: TokenIssuer
    server_secret: bytes
    writer: MessageWriter
    metrics: Metrics
    chunks: ChunkStore


__all__ = ["ServiceContext", "now_ms"]
