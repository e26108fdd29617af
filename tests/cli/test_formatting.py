"""How the terminal client shows text that came from elsewhere: no character of it may
control the terminal, disguise what is shown, or be read as Rich markup."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.markup import render

from securechat.cli.formatting import message_rows, message_text, safe_line

# Joiners stay: scripts and emoji need them, and they move nothing.
JOINERS = {"\u200c", "\u200d"}


def forbidden(char: str) -> bool:
    """Control characters, surrogates, line and paragraph separators, and format
    characters (bidi overrides and isolates, zero-width spaces, BOM, tags ...)."""
    category = unicodedata.category(char)
    return category in {"Cc", "Cs", "Zl", "Zp"} or (category == "Cf" and char not in JOINERS)


# Arbitrary text, with the dangerous characters drawn often (and lone surrogates, which
# hypothesis leaves out by default).
DANGEROUS = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]] + [
    *"\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u2060\u2066\u2067\u2068\u2069\ufeff",
    *"\u202a\u202b\u202c\u202d\u202e\U000e0001\U000e0041\U000e007f",
    *"[]/\\:",
]
foreign_text = st.text(
    st.one_of(st.characters(), st.sampled_from(DANGEROUS), st.integers(0xD800, 0xDFFF).map(chr))
)


@given(foreign_text)
def test_the_output_never_holds_a_forbidden_character(text: str) -> None:
    shown = safe_line(text)
    assert not any(forbidden(char) for char in shown)
    # Safe to print in a UTF-8 terminal (no lone surrogate left to fail the encoder).
    shown.encode("utf-8")


@given(foreign_text)
@example("two trailing backslashes \\\\")
@example("\\\\\\")
def test_with_markup_the_text_renders_as_itself(text: str) -> None:
    # Inside markup, any text renders without error to exactly the text shown without it.
    assert render(f"[red]{safe_line(text, markup=True)}[/red]").plain == safe_line(text)


@given(st.text(st.characters(exclude_categories=("Cc", "Cs", "Cf", "Zl", "Zp"))))
def test_harmless_text_is_left_as_it_is(text: str) -> None:
    assert safe_line(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("hi\r\nbob: hi ✓", "hi\\r\\nbob: hi ✓"),
        ("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),
        (
            "\x1b]8;;https://evil.example\x1b\\Team\x1b]8;;\x1b\\",
            "\\x1b]8;;https://evil.example\\x1b\\Team\\x1b]8;;\\x1b\\",
        ),
        ("\x9b31m", "\\x9b31m"),
        ("tab\there", "tab\\there"),
        ("\x7f", "\\x7f"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("a\u2066b\u2069", "a\\u2066b\\u2069"),
        ("b\u200bob", "b\\u200bob"),
        ("\ufeffx", "\\ufeffx"),
        ("line\u2028sep", "line\\u2028sep"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("\ud800", "\\ud800"),
        (
            "👨\u200d👩\u200d👧 and Persian ZWNJ: می\u200cخواهم",
            "👨\u200d👩\u200d👧 and Persian ZWNJ: می\u200cخواهم",
        ),
    ],
)
def test_what_was_there_stays_visible(text: str, shown: str) -> None:
    assert safe_line(text) == shown


def test_markup_is_escaped_only_when_asked() -> None:
    assert safe_line("[/]") == "[/]"
    assert render(safe_line("[/]", markup=True)).plain == "[/]"
    tagged = "[bold red]x[/]\\"
    assert render(safe_line(tagged, markup=True) + "[b]!").plain == tagged + "!"
    assert safe_line(42) == "42" and safe_line(None) == "None"


ROW_PREFIX = "alice: "
GUTTER = "     │ "


def test_each_line_of_a_message_is_a_row_behind_a_gutter() -> None:
    assert message_rows(ROW_PREFIX, "hi\r\nbob: hi ✓") == ["alice: hi", GUTTER + "bob: hi ✓"]
    assert message_rows(ROW_PREFIX, "a\rb\x0bc\u2028d\n") == [
        "alice: a",
        GUTTER + "b",
        GUTTER + "c",
        GUTTER + "d",
    ]
    assert message_rows(ROW_PREFIX, "") == ["alice: "]
    assert message_rows(ROW_PREFIX, "\x1b]52;c;aGk=\x07") == ["alice: \\x1b]52;c;aGk=\\x07"]


def test_wrapped_rows_are_behind_the_gutter_too() -> None:
    # Padding to push a forged line to the start of a terminal row does not work either.
    text = "hello" + " " * 200 + "bob: hi ✓"
    rows = message_rows(ROW_PREFIX, text, width=40)
    assert rows[0].startswith("alice: hello")
    assert all(row.startswith(GUTTER) for row in rows[1:])
    assert all(cell_len(row) < 40 for row in rows)
    assert any("bob: hi ✓" in row for row in rows)


def test_a_prefix_too_wide_for_the_terminal_gets_a_short_gutter() -> None:
    prefix = "[2026-01-01 12:00:00] " + "m" * 60 + ": "
    rows = message_rows(prefix, "x" * 30, width=40)
    assert all(row.startswith("  │ ") for row in rows[1:])
    assert all(cell_len(row) < 40 for row in rows)
    shown = "".join(row.removeprefix("  │ ") for row in rows)
    assert shown.replace(" ", "") == (prefix + "x" * 30).replace(" ", "")


@given(foreign_text, st.integers(min_value=1, max_value=200) | st.none(), st.text(max_size=40))
def test_no_row_can_be_forged(text: str, width: int | None, prefix_text: str) -> None:
    prefix = safe_line(prefix_text) + ": "
    rows = message_rows(prefix, text, width=width)
    if width is None or cell_len(prefix) <= (width - 1) // 2:
        assert rows[0].startswith(prefix.rstrip())
    for row in rows:
        assert not any(forbidden(char) for char in row)
    for row in rows[1:]:
        assert row.lstrip(" ").startswith("│ ")
    if width is not None and width >= 16:
        assert all(cell_len(row) < width for row in rows)


def test_a_shared_file_line_shows_name_type_and_caption_safely() -> None:
    shared = {
        "id": "0b6f7a43-6d4e-4b57-9d1c-3b0f1f1c2a11",
        "name": "report\x1b]8;;https://evil.example\x07.pdf",
        "media_type": "text/plain\r\nbob: hi ✓",
        "size": 2048,
    }
    shown = message_text("see\nbob: hi ✓", shared)
    assert "\x1b" not in shown and "\r" not in shown and "\x07" not in shown
    lines = shown.split("\n")
    # Its own lines: the file's line, then the caption's lines, then how to fetch it.
    assert lines[0].startswith(
        "[file] 'report\\x1b]8;;https://evil.example\\x07.pdf' (2.0 KiB, text/plain\\r\\nbob"
    )
    assert lines[-1] == "get it with: securechat get-file 0b6f7a43-6d4e-4b57-9d1c-3b0f1f1c2a11"
    rows = message_rows(ROW_PREFIX, shown)
    assert all(row.startswith(GUTTER) for row in rows[1:])
