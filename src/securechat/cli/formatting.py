"""How the terminal client writes sizes, shared files, and text that came from elsewhere.

Everything it prints that it did not make itself (message texts, captions, file names and
types, group names, usernames, and anything the server says) goes through ``safe_line``
first: such text must never move the cursor, start a line of its own, set the clipboard
(OSC 52), make a hyperlink (OSC 8), reorder what is shown (bidi controls), hide in
invisible characters, or be read as Rich markup.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.text import Text

# Zero-width joiners stay: Persian and Indic text and emoji sequences need them, and
# they neither move the cursor nor reorder or hide text.
_KEPT_FORMAT_CHARACTERS = frozenset("\u200c\u200d")


def _is_unsafe(char: str) -> bool:
    category = unicodedata.category(char)
    # Cc: C0 controls (newline, carriage return, tab, ESC ...), DEL and C1 controls.
    # Cs: lone surrogates, which a UTF-8 terminal cannot even be sent.
    # Zl, Zp: U+2028 and U+2029, line and paragraph separators.
    # Cf: bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and
    # marks, zero-width spaces, the BOM, soft hyphens, tag characters and the like.
    return category in {"Cc", "Cs", "Zl", "Zp"} or (category == "Cf" and char not in _KEPT_FORMAT_CHARACTERS)


_SHORT_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _visible_escape(code: int) -> str:
    if code in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[code]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


class _Escapes(dict[int, str]):
    """A ``str.translate`` table filled in as characters are met: a character's escape if
    it is unsafe, else the character itself."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        self[code] = _visible_escape(code) if _is_unsafe(char) else char
        return self[code]


_ESCAPES = _Escapes()


def safe_line(value: object, *, markup: bool = False) -> str:
    """Foreign text made safe for one terminal line.

    Control characters (C0, DEL, C1), line separators, lone surrogates, and format
    characters that can disguise text (bidi overrides and isolates, zero-width spaces,
    the BOM ...) are replaced by a visible escape such as ``\\x1b`` or ``\\u202e``, so the
    reader sees that something was there. With ``markup``, the result is also escaped for
    Rich markup: use it where the text goes into a markup string or a table cell.
    """
    text = str(value)
    shown = text if text.isascii() and text.isprintable() else text.translate(_ESCAPES)
    return _markup_escape(shown) if markup else shown


def _markup_escape(shown: str) -> str:
    """Rich's ``escape``, and every trailing backslash doubled: markup that follows (a
    closing tag) would otherwise take them as escapes (Rich doubles only a single one)."""
    core = shown.rstrip("\\")
    return escape(core) + "\\" * (2 * (len(shown) - len(core)))


_MEASURE = Console(file=io.StringIO(), width=80, color_system=None)


def message_rows(prefix: str, text: str, *, width: int | None = None) -> list[str]:
    """A message as terminal rows: ``prefix`` (who sent it, ours) then its text.

    Each line of the text becomes a row of its own, and every row after the first starts
    behind a gutter (``│``). Escaping the newlines instead would keep the sender
    unforgeable too, but multi-line messages would be hard to read; and a one-line text
    can still be padded so that the terminal's own wrapping starts a row with whatever
    the sender likes. So with ``width`` (the terminal's), rows are wrapped here, behind
    the same gutter: nothing the sender writes can begin a row at the left edge, where
    only the client's own prefixes are.
    """
    prefix = safe_line(prefix)
    lines = [safe_line(line) for line in text.splitlines()] or [""]
    indent = cell_len(prefix)
    if width is None or indent <= (width - 1) // 2:
        gutter = " " * (indent - 2) + "│ " if indent >= 2 else "│ "
    else:
        gutter = "  │ "  # a sender's name too long to align under in a narrow terminal
    rows = [prefix + lines[0], *lines[1:]]
    if width is not None:
        # One cell to spare: the last column makes some terminals wrap early.
        room = max(width - 1 - cell_len(gutter), 8)
        rows = [
            wrapped.plain
            for row in rows
            for wrapped in (Text(row).wrap(_MEASURE, room, overflow="fold") or [Text("")])
        ]
    return [rows[0], *(gutter + row for row in rows[1:])]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def message_text(text: str | None, shared: dict[str, Any] | None) -> str:
    """A message's text, or a shared file's line (with the command that fetches it).

    The file's name and type are the sender's, made safe for their one line here; the
    caption may have lines of its own (``message_rows`` shows each behind the gutter).
    """
    if not shared:
        return text or ""
    caption = f" — {text}" if text else ""
    name = safe_line(repr(shared["name"]))
    return (
        f"[file] {name} ({human_size(shared['size'])}, {safe_line(shared['media_type'])}){caption}"
        f"\nget it with: securechat get-file {safe_line(shared['id'])}"
    )


def login_notice(session_id: str | None, user_agent: str | None, at: str) -> str:
    """A new login to the account (PROTOCOL.md 9.2) as one line. The client's description is
    whatever that client sent as its User-Agent, the session id and time are the server's
    word: all made safe for the line."""
    client = safe_line(user_agent) if user_agent else "an unknown client"
    session = safe_line((session_id or "?")[:8])
    return (
        f"-- new login to your account at {at}: {client} (session {session}). Not you? Run securechat passwd."
    )
