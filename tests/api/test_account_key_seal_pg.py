"""The password change's re-seal racing a rotation, on PostgreSQL (two transactions
really run at once there; SQLite's writers take turns)."""

from __future__ import annotations

import httpx
import pytest

from securechat.server.settings import Settings

from .conftest import RegisterUser
from .test_account_key_seal import reseal_racing_rotation


@pytest.fixture
def settings(postgres_settings: Settings) -> Settings:
    return postgres_settings


async def test_a_reseal_racing_a_rotation_leaves_the_current_key_sealed_pg(
    http: httpx.AsyncClient, register_user: RegisterUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await reseal_racing_rotation(http, register_user, monkeypatch)
