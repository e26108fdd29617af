"""What a line typed at the ``securechat chat`` prompt means.

A line whose first non-blank character is ``/`` is a command and is never sent: a typo
such as ``/hepl`` must not reach the contact. ``//`` at the start sends the rest with one
slash, for a message that really starts with one.
"""

from __future__ import annotations

from dataclasses import dataclass

HELP = """commands (never sent):
  /help        this list
  /quit        leave the chat (Ctrl-D does the same)
  //text       send "/text": a message that starts with a slash"""

ALIASES = {"help": "help", "?": "help", "quit": "quit", "exit": "quit"}


@dataclass(frozen=True)
class Message:
    text: str


@dataclass(frozen=True)
class Command:
    name: str  # "help", "quit", or "unknown"
    word: str  # what was typed, for "unknown command /x"


def read_line(line: str) -> Message | Command:
    stripped = line.lstrip()
    if not stripped.startswith("/"):
        return Message(line)
    if stripped.startswith("//"):
        return Message(stripped[1:])
    word = stripped.split(maxsplit=1)[0]
    name = ALIASES.get(word[1:].lower())
    return Command(name, "") if name is not None else Command("unknown", word)
