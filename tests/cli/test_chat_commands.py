"""What a line typed in `securechat chat` means: a message, or a command (never sent)."""

from __future__ import annotations

import pytest

from securechat.cli.chat_commands import Command, Message, read_line


@pytest.mark.parametrize(
    ("line", "meaning"),
    [
        ("hello", Message("hello")),
        ("  spaced  ", Message("  spaced  ")),
        ("a /slash inside", Message("a /slash inside")),
        ("//shrug", Message("/shrug")),
        ("/help", Command("help", "")),
        ("/HELP", Command("help", "")),
        ("/quit", Command("quit", "")),
        ("/exit", Command("quit", "")),
        ("  /help", Command("help", "")),
        ("/nonsense with words", Command("unknown", "/nonsense")),
        ("/", Command("unknown", "/")),
    ],
)
def test_a_typed_line_is_a_message_or_a_command(line: str, meaning: object) -> None:
    assert read_line(line) == meaning
