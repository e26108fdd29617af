"""Client state directory rules that need no server."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from securechat.client.errors import NotLoggedIn, PasswordRejected
from securechat.client.messenger import Messenger
from securechat.client.passwords import check_password

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there; these checks come first


async def test_a_home_belongs_to_one_account(tmp_path: Path) -> None:
    async with Messenger(tmp_path / "home", UNREACHABLE) as client:
        client.state.put("username", "bob")
        with pytest.raises(NotLoggedIn, match="belongs to another user"):
            await client.register("carol", "a perfectly fine passphrase")
        with pytest.raises(NotLoggedIn, match="belongs to another user"):
            await client.login("carol", "a perfectly fine passphrase")


async def test_state_files_are_private(tmp_path: Path) -> None:
    async with Messenger(tmp_path / "home", UNREACHABLE) as client:
        client.state.put("username", "bob")
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home" / "state.db").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 10"),
        ("qwertyuiop", "most common"),
        ("1234567890", "most common"),
        ("my-name-is-alice!", "username"),
        ("aaaaaaaaaaaa", "repetitive"),
    ],
)
def test_password_policy_refuses_weak_passwords(password: str, reason: str) -> None:
    with pytest.raises(PasswordRejected, match=reason):
        check_password(password, "alice")


def test_password_policy_accepts_a_long_uncommon_passphrase() -> None:
    check_password("correct horse battery staple", "alice")


def test_the_terminal_and_the_browser_state_the_same_password_rules() -> None:
    import re
    from pathlib import Path

    from securechat.client.passwords import PASSWORD_RULES

    js = (Path(__file__).resolve().parents[2] / "src/securechat/web/app/password-policy.js").read_text()
    (stated,) = re.findall(r'export const PASSWORD_RULES = "([^"]+)";', js)
    assert stated == PASSWORD_RULES
    assert "username" in PASSWORD_RULES and "10" in PASSWORD_RULES
