"""Text from other people reaches the terminal inert: a message cannot write a line that
looks like someone else's, write the clipboard (OSC 52) or make a hyperlink (OSC 8), and
a group's name cannot break `securechat group list` with Rich markup."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import pexpect

from .conftest import PASSWORDS, MakeClient
from .test_terminal_chat import expect, spawn_chat
from .test_two_clients import run_cli

FORGED = "hi\r\nbob: hi ✓"
CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07copied"
HYPERLINK_NAME = "\x1b]8;;https://evil.example\x1b\\Team\x1b]8;;\x1b\\"
# CSI as one C1 character, then a right-to-left override: JSON escapes neither by itself.
C1_AND_BIDI = "\x9b2J\u202eevil"
# A line of its own that begins like a message from bob, in `inbox` or in `chat`.
FORGED_LINE = re.compile(r"^(\[[^\]\n]*\] )?bob:", re.MULTILINE)


async def test_inbox_and_group_list_print_hostile_text_inert(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice, mallory = await make_client("alice"), await make_client("mallory")
    await mallory.send_text("alice", FORGED)
    await mallory.send_text("alice", CLIPBOARD)
    await mallory.send_text("alice", C1_AND_BIDI)
    hostile_file = tmp_path / "report\x1b[8m.txt"
    hostile_file.write_text("contents")
    await mallory.send_file("alice", hostile_file, caption="see\r\nbob: sure ✓")
    await mallory.groups.create(HYPERLINK_NAME, ["alice"])
    await mallory.groups.create("[/]", ["alice"])

    inbox = run_cli(alice.home, live_server.url, "inbox", password=PASSWORDS["alice"])
    assert inbox.returncode == 0, inbox.stderr
    assert not FORGED_LINE.search(inbox.stdout), inbox.stdout
    assert "\x1b" not in inbox.stdout + inbox.stderr
    assert "mallory: \\x1b]52;c;ZXZpbA==\\x07copied" in inbox.stdout
    assert "'report\\x1b[8m.txt'" in inbox.stdout
    assert "mallory: \\x9b2J\\u202eevil" in inbox.stdout
    # The lines after a message's first are behind a gutter.
    assert re.search(r"mallory: hi\n +│ bob: hi ✓", inbox.stdout), inbox.stdout

    # The JSON lines are ASCII: no character of them reaches the terminal as itself.
    as_json = run_cli(alice.home, live_server.url, "inbox", "--json", password=PASSWORDS["alice"])
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stdout.isascii()
    texts = [json.loads(line)["text"] for line in as_json.stdout.splitlines()]
    assert FORGED in texts and CLIPBOARD in texts and C1_AND_BIDI in texts

    listed = run_cli(alice.home, live_server.url, "group", "list", password=PASSWORDS["alice"])
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout + listed.stderr
    assert "[/]" in listed.stdout and "\\x1b]8;;https://evil" in listed.stdout


async def test_chat_prints_hostile_text_and_group_names_inert(live_server, make_client: MakeClient) -> None:  # type: ignore[no-untyped-def]
    alice, mallory = await make_client("alice"), await make_client("mallory")
    group_id = await mallory.groups.create(HYPERLINK_NAME, ["alice"])
    await mallory.send_text(group_id, FORGED)  # history: shown before the prompt opens

    child = spawn_chat(alice, live_server.url, group_id)
    shown = io.StringIO()
    child.logfile_read = shown
    try:
        await expect(child, "Password:")
        child.sendline(PASSWORDS["alice"])
        await expect(child, "-- connected")
        history = shown.getvalue()
        # The terminal gets escape sequences from prompt_toolkit (the prompt, the cursor),
        # but none is an OSC (ESC ]), and nothing of the messages or the name is one.
        assert "\x1b]" not in history
        assert "-- group \\x1b]8;;https://evil.example\\x1b\\Team" in history
        # 'bob: hi' sits behind the gutter of mallory's message, never on a row of its own.
        assert history.count("bob: hi ✓") == history.count("│ bob: hi ✓") == 1

        # Live, while the prompt is open.
        await mallory.send_text(group_id, CLIPBOARD)
        await expect(child, re.escape("mallory: \\x1b]52;c;ZXZpbA==\\x07copied"))
        assert "\x1b]" not in shown.getvalue()
        child.sendeof()
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
