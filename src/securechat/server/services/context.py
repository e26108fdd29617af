"""What every service needs, built once in ``create_app``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..realtime.broker import Broker
from ..settings import Settings
from ..storage.database import Database
from .passwords import AuthKeyHasher
from .tokens import TokenIssuer


@dataclass
class ServiceContext:
    settings: Settings
    database: Database
    broker: Broker
    hasher: AuthKeyHasher
    tokens: TokenIssuer
    server_secret: bytes


def now_ms() -> int:
    return int(time.time() * 1000)
