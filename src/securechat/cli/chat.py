"""``securechat chat USER|GROUP``: a prompt at the bottom, messages printed above it live,
with typing indicators and read receipts (each can be turned off, see the README), and a
line for every new login to the account."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections.abc import Coroutine
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.patch_stdout import patch_stdout

from ..client.errors import ClientError, KeyChanged
from ..client.messenger import InboxItem, Messenger
from ..client.realtime import InboxSocket, run_inbox
from ..client.reason_texts import explain
from ..protocol.identifiers import direct_conversation_id, parse_username
from .formatting import login_notice, message_rows, message_text
from .main import when

TYPING_EVERY_S = 3.0
TYPING_SHOWN_EVERY_S = 5.0


def show(line: str, text: str = "") -> None:
    """Print ``line`` (escaped, on one row) and the lines of ``text`` behind a gutter,
    wrapped here at the terminal's width: see ``message_rows``. Every line the chat
    prints holds someone else's words (names, texts, reasons, the server's errors)."""
    width = shutil.get_terminal_size().columns if sys.__stdout__ and sys.__stdout__.isatty() else None
    for row in message_rows(line, text, width=width):
        print(row)


def show_login(item: InboxItem) -> None:
    show(login_notice(item.session_id, item.text, when(item.sent_at)))


async def run_chat(client: Messenger, target: str, fetched: list[InboxItem] | None = None) -> None:
    """Chat with ``target``; ``fetched``: the items read just before (logins among them
    are shown)."""
    group_id = client.group_target(target)
    if group_id is not None:
        conversation_id = group_id
        record = client.groups.record(group_id) or {}
        show(f"-- group {record.get('name') or group_id}")
    else:
        conversation_id = direct_conversation_id(client.username, parse_username(target))
        if client.groups.named(target):
            show(f"-- chat with the user {target}; the group named {target!r} is written '#{target}'")
    stop = asyncio.Event()
    sockets: list[InboxSocket] = []
    background: set[asyncio.Task[None]] = set()
    last_typing_sent = 0.0
    typing_shown: dict[str, float] = {}

    def later(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        background.add(task)
        task.add_done_callback(background.discard)

    async def read_quietly(message_id: str) -> None:
        with contextlib.suppress(ClientError):
            await client.mark_read(conversation_id, [message_id])

    async def on_item(item: InboxItem) -> None:
        me = client.username
        if item.kind == "session":
            show_login(item)
            return
        if item.kind == "typing":
            now = time.monotonic()
            if (
                item.conversation_id == conversation_id
                and now - typing_shown.get(item.sender or "", 0) > TYPING_SHOWN_EVERY_S
            ):
                typing_shown[item.sender or ""] = now
                show(f"  … {item.sender} is typing")
            return
        if item.kind == "receipt":
            if item.recipient != me and item.status in ("delivered", "read"):
                show(f"  ✓✓ {item.status} {'to' if item.status == 'delivered' else 'by'} {item.recipient}")
            return
        if item.kind == "group":
            if item.conversation_id == conversation_id:
                show(
                    f"-- {item.sender} {item.text}"
                    if item.verified
                    else f"⚠ group change not accepted: {explain(item.reason)}"
                )
            return
        if item.sender == me and item.verified:
            return
        if item.verified and item.conversation_id == conversation_id:
            show(f"{item.sender}: ", message_text(item.text, item.file))
            typing_shown.pop(item.sender or "", None)
            if item.message_id:
                later(read_quietly(item.message_id))
        elif not item.verified:
            show(f"⚠ unverifiable message from {item.sender}: {explain(item.reason)}")
        else:
            show(f"(new message from {item.sender} elsewhere; run `securechat chat {item.peer}`)")

    async def on_state(state: str) -> None:
        show(f"-- {state}")

    def on_text_changed(_buffer: Buffer) -> None:
        nonlocal last_typing_sent
        now = time.monotonic()
        if client.typing_indicators and sockets and now - last_typing_sent > TYPING_EVERY_S:
            last_typing_sent = now
            later(sockets[0].typing(conversation_id))

    peer_key = group_id if group_id is not None else parse_username(target)
    for row in client.stored_messages(peer_key)[-20:]:
        if row["verified"]:
            show(f"{row['sender']}: ", message_text(row["text"], row["file"]))
        else:
            show(f"{row['sender']}: ⚠ unverifiable: {explain(row['reason'])}")
    for item in fetched or []:
        if item.kind == "session":
            show_login(item)
    receiver = asyncio.create_task(run_inbox(client, on_item, on_state=on_state, stop=stop, sockets=sockets))
    session: PromptSession[str] = PromptSession()
    session.default_buffer.on_text_changed += on_text_changed
    try:
        with patch_stdout():
            while True:
                try:
                    line = await session.prompt_async(f"{client.username}> ")
                except (EOFError, KeyboardInterrupt):
                    break
                if not line.strip():
                    continue
                try:
                    if group_id is not None:
                        envelope = await client.groups.seal(group_id, {"type": "text", "text": line})
                    else:
                        envelope = await client.seal_text(target, line)
                    if sockets:
                        result = await sockets[0].send_envelope(envelope.to_wire())
                    else:
                        result = await client.post_envelope(envelope)
                    client.record_sent(envelope, line, result)
                except KeyChanged as exc:
                    show(f"⚠ {exc}")
                except ClientError as exc:
                    show(f"error: {exc}")
    finally:
        stop.set()
        for socket in sockets:
            await socket.close()
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver
