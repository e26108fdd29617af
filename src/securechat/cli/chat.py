"""``securechat chat USER|GROUP``: a prompt at the bottom, messages printed above it live,
with typing indicators and read receipts (each can be turned off, see the README), and a
line for every new login to the account.

The chat outlives its connection: it reconnects on its own (client/realtime.py) and
resumes after the last message shown, and a line typed while the server cannot be
reached waits and is sealed and sent, once, when the connection is back."""

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

from ..client.errors import ApiError, ClientError, KeyChanged
from ..client.messenger import InboxItem, Messenger
from ..client.realtime import ConnectionLost, LiveInbox
from ..client.reason_texts import explain
from ..protocol.envelope import Envelope
from ..protocol.identifiers import direct_conversation_id, parse_username
from .chat_commands import HELP, Command, read_line
from .formatting import login_notice, message_rows, message_text
from .main import when

TYPING_EVERY_S = 3.0
TYPING_SHOWN_EVERY_S = 5.0
# On Ctrl-D, how long lines still waiting for the connection may take to go.
DRAIN_ON_EXIT_S = 10.0


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
    outbox: asyncio.Queue[str] = asyncio.Queue()
    unsent: list[str] = []  # typed, not yet sent or given up
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
        if item.kind == "notice":
            # v2: a contact's devices changed, or a session was repaired (the client's words).
            show(f"-- {item.text}")
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

    live = LiveInbox(client, on_item, on_state=on_state)

    async def typing() -> None:
        await live.typing(conversation_id)

    def on_text_changed(_buffer: Buffer) -> None:
        nonlocal last_typing_sent
        now = time.monotonic()
        if client.typing_indicators and live.connected and now - last_typing_sent > TYPING_EVERY_S:
            last_typing_sent = now
            later(typing())

    async def seal(line: str) -> Envelope | None:
        """Seal once connected (sealing checks the keys with the server); None if the
        line cannot go (a key change, a refusal), which has been shown."""
        while True:
            await live.wait_connected()
            try:
                if group_id is not None:
                    return await client.groups.seal(group_id, {"type": "text", "text": line})
                return await client.seal_text(target, line)
            except KeyChanged as exc:
                show(f"⚠ {exc}")
                return None
            except ApiError as exc:
                if exc.status != 0 and exc.status < 500:
                    show(f"error: {exc}")
                    return None
                # The server went away meanwhile: wait for the socket to notice and return.
                await asyncio.sleep(0.25)
            except ClientError as exc:
                show(f"error: {exc}")
                return None

    async def uses_v2() -> bool | None:
        """Whether the line goes in v2 (15.12), asked again until a server answers; None
        if it cannot go (shown)."""
        while True:
            try:
                return await client.v2.uses_v2(target)
            except ApiError as exc:
                if exc.status not in (0, 502, 503, 504):
                    show(f"error: {exc}")
                    return None
                await live.wait_connected()
                await asyncio.sleep(0.25)
            except ClientError as exc:
                # A list refused by the core, a server answer that makes no sense: said.
                show(f"error: {exc}")
                return None

    async def send(line: str) -> None:
        v2 = group_id is None and await uses_v2()
        if v2 is None:
            return
        if v2:
            # Protocol v2 (15.12: both accounts have device lists): over HTTP, per device.
            try:
                result = await client.send_text(target, line)
            except ClientError as exc:
                show(f"error: {exc}")
                return
            for notice in result.get("notices", []):
                show(f"-- {notice['text']}")
            return
        envelope = await seal(line)
        if envelope is None:
            return
        while True:
            try:
                # Across reconnects the same envelope (same message id) goes again: the
                # server stores it once.
                result = await live.send_envelope(envelope.to_wire())
            except ConnectionLost:
                show("-- still trying to send…")
                continue
            except ClientError as exc:
                show(f"error: {exc}")
                return
            client.record_sent(envelope, line, result)
            return

    async def sender() -> None:
        """Send typed lines one after the other, in the order they were typed."""
        while True:
            line = await outbox.get()
            try:
                await send(line)
            except Exception as exc:  # one line's failure must not end the sending task
                show(f"error: {exc}")
            finally:
                unsent.remove(line)
                outbox.task_done()

    peer_key = group_id if group_id is not None else parse_username(target)
    for row in client.stored_messages(peer_key)[-20:]:
        if row["verified"]:
            show(f"{row['sender']}: ", message_text(row["text"], row["file"]))
        else:
            show(f"{row['sender']}: ⚠ unverifiable: {explain(row['reason'])}")
    for item in fetched or []:
        if item.kind == "session":
            show_login(item)
    receiver = asyncio.create_task(live.run(stop))
    sending = asyncio.create_task(sender())
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
                typed = read_line(line)
                if isinstance(typed, Command):
                    if typed.name == "quit":
                        break
                    show(
                        HELP if typed.name == "help" else f"-- unknown command {typed.word}; /help lists them"
                    )
                    continue
                line = typed.text
                if receiver.done():
                    # The session has ended (shown above): nothing will reconnect.
                    show("-- not sent: the session has ended; log in again")
                    continue
                if not live.connected:
                    show("-- not connected: this goes when the connection is back")
                unsent.append(line)
                outbox.put_nowait(line)
            if unsent and not receiver.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(outbox.join(), DRAIN_ON_EXIT_S)
                if unsent:
                    show(f"-- {len(unsent)} line(s) not sent: the server could not be reached")
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        # Stopping closes the socket after the server confirmed the last acknowledgement.
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(receiver, 10)
