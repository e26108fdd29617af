"""What the terminal client prints from data it did not make: inbox rows, errors (which
carry server messages and names), and the admin tables (the server's data)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from securechat.cli import admin, main
from securechat.cli.entry import app
from securechat.cli.main import item_rows, run
from securechat.client.errors import ApiError

OSC_52 = "\x1b]52;c;ZXZpbA==\x07"
HYPERLINK = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"
FORGED = "\r\n[2026-01-01 12:00:00] bob: hi  ✓"
CONTROLS = ("\x1b", "\x07", "\r", "\x9b", "\x9d", "\u202e")
FORGED_ROW = re.compile(r"^\[[^\]]*\] bob:", re.MULTILINE)


def inert(output: str) -> None:
    """No control character, and no line that starts like a message from bob."""
    assert not [c for c in CONTROLS if c in output]
    assert not FORGED_ROW.search(output)


def test_an_unverifiable_message_cannot_forge_its_sender_or_reason() -> None:
    # For an unverifiable message the sender is only the server's word.
    record = {
        "sender": f"mallory{FORGED}",
        "verified": False,
        "reason": f"bad signature{OSC_52}",
        "sent_at": 1767225600000,
    }
    rows = item_rows(record)
    assert len(rows) == 1
    inert("\n".join(rows))
    assert "mallory\\r\\n[2026-01-01 12:00:00] bob: hi" in rows[0]


def test_a_verified_message_keeps_its_lines_behind_the_gutter() -> None:
    record = {"sender": "alice", "verified": True, "text": f"hello{FORGED}\n{HYPERLINK}", "sent_at": 0}
    rows = item_rows(record)
    assert rows[0] == "[-] alice: hello"
    assert [row.split("│ ", 1)[1] for row in rows[1:]] == [
        "[2026-01-01 12:00:00] bob: hi  ✓",
        "\\x1b]8;;https://evil.example\\x1b\\click\\x1b]8;;\\x1b\\  ✓",
    ]
    inert("\n".join(rows))


def test_errors_from_the_server_are_printed_inert(capsys: pytest.CaptureFixture[str]) -> None:
    @run
    async def refused() -> None:
        raise ApiError(400, "malformed", f"no user [/] named {OSC_52}{FORGED}")

    with pytest.raises(typer.Exit):
        refused()
    err = capsys.readouterr().err
    inert(err)
    assert "no user [/] named \\x1b]52" in err


SERVER_ANSWERS: dict[str, Any] = {
    "/users": {
        "users": [
            {
                "username": f"[/]{OSC_52}",
                "created_at": 0,
                "sessions": 1,
                "is_admin": False,
                "disabled": False,
                "stored_bytes": f"[/]{OSC_52}",
            }
        ],
        "quota_bytes": HYPERLINK,
    },
    "/messages": {
        "messages": [
            {
                "server_ts": 0,
                "sender": HYPERLINK,
                "recipients": [f"bob{FORGED}"],
                "size": "[bold]",
                "ciphertext_preview": OSC_52,
            }
        ]
    },
    "/files": {
        "files": [
            {
                "created_at": 0,
                "sender": "[/]",
                "recipients": [OSC_52],
                "size": 1,
                "completed_at": None,
                "file_id": HYPERLINK,
            }
        ]
    },
    "/audit": {"entries": [{"at": 0, "admin": "[/]", "action": OSC_52, "target": FORGED}]},
    "/intrusion": {
        "blocks": [{"address": HYPERLINK, "reason": "[/]", "since": 0, "until": 0}],
        "recent_attempts": [],
    },
    "/users/x/disable": {"username": f"[/]{OSC_52}", "revoked_sessions": FORGED},
    "/users/x/enable": {"username": f"[/]{OSC_52}"},
    "/intrusion/unblock": {"address": HYPERLINK, "lifted": "[/]"},
}


@pytest.mark.parametrize(
    "command",
    [
        ["users"],
        ["messages"],
        ["files"],
        ["audit"],
        ["blocks"],
        ["disable", "x"],
        ["enable", "x"],
        ["unblock", "10.0.0.1"],
    ],
)
def test_admin_output_of_hostile_server_data_is_inert(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    async def answer(method: str, path: str, password_stdin: bool, **kwargs: Any) -> Any:
        return SERVER_ANSWERS[path]

    monkeypatch.setattr(admin, "_admin_request", answer)
    result = CliRunner().invoke(app, ["admin", *command])
    assert result.exit_code == 0, result.output
    inert(result.output)


def test_emoji_codes_in_foreign_text_are_printed_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    # Rich would turn ':warning:' into a picture: text from elsewhere shows as it was sent.
    @run
    async def refused() -> None:
        raise ApiError(400, "malformed", ":warning: :white_check_mark: [bold]bob[/bold]")

    with pytest.raises(typer.Exit):
        refused()
    assert ":warning: :white_check_mark: [bold]bob[/bold]" in capsys.readouterr().err


class HostileSessions:
    """A client whose server lists sessions with hostile ids and user agents."""

    def __init__(self) -> None:
        self.session = self

    async def __aenter__(self) -> HostileSessions:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def ensure_token(self) -> None:
        return None

    async def sessions(self) -> list[dict[str, Any]]:
        return [
            {"id": "[/]", "created_at": 0, "last_seen_at": 0, "user_agent": OSC_52 + FORGED, "current": True},
            {"id": HYPERLINK, "created_at": 0, "last_seen_at": 0, "user_agent": "[bold]x", "current": False},
        ]


def test_sessions_print_the_servers_ids_and_user_agents_inert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "messenger", HostileSessions)
    result = CliRunner().invoke(app, ["sessions"])
    assert result.exit_code == 0, result.output
    inert(result.output)
    assert "[/]" in result.output and "[bold]x" in result.output


@pytest.mark.parametrize("value", ["yesterday", 1.5, True, 10**30, -(10**30), [1], {"ms": 1}])
def test_a_time_that_is_not_a_time_is_shown_as_unknown(value: object) -> None:
    assert main.when(value) == "?"


def test_times_are_shown_in_local_time() -> None:
    assert main.when(None) == "-"
    assert main.when(1_767_225_600_000).startswith(("2026-01-01", "2025-12-31"))
