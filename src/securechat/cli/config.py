"""Client settings from the environment: ``SECURECHAT_SERVER`` and ``SECURECHAT_HOME``."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SECURECHAT_", extra="ignore")

    server: str | None = None
    home: Path = Path.home() / ".securechat"
    # Read receipts tell a sender you have seen their message; false turns them off.
    read_receipts: bool = True
    # Typing indicators tell the others in a chat that you are typing; false turns them off.
    typing_indicators: bool = True
