"""Client settings from the environment: ``SECURECHAT_SERVER`` and ``SECURECHAT_HOME``."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SECURECHAT_", extra="ignore")

    server: str | None = None
    home: Path = Path.home() / ".securechat"
