"""``securechat chat USER``: a prompt at the bottom, messages printed above it live."""

from __future__ import annotations

import asyncio
import contextlib

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout

from ..client.errors import ClientError, KeyChanged
from ..client.messenger import InboxItem, Messenger
from ..client.realtime import InboxSocket, run_inbox
from ..protocol.identifiers import parse_username
from .formatting import message_text


async def run_chat(client: Messenger, peer: str) -> None:
    peer_name = parse_username(peer)
    stop = asyncio.Event()
    sockets: list[InboxSocket] = []

    async def on_item(item: InboxItem) -> None:
        if item.kind == "receipt":
            if item.recipient == peer_name:
                print(f"  ✓✓ delivered to {item.recipient}")
            return
        if item.sender == client.username and item.verified:
            return
        if item.verified and item.peer == peer_name:
            print(f"{item.sender}: {message_text(item.text, item.file)}")
        elif not item.verified:
            print(f"⚠ unverifiable message from {item.sender}: {item.reason}")
        else:
            print(f"(new message from {item.sender}; run `securechat chat {item.sender}`)")

    async def on_state(state: str) -> None:
        print(f"-- {state}")

    for row in client.stored_messages(peer_name)[-20:]:
        text = (
            message_text(row["text"], row["file"]) if row["verified"] else f"⚠ unverifiable: {row['reason']}"
        )
        print(f"{row['sender']}: {text}")
    receiver = asyncio.create_task(run_inbox(client, on_item, on_state=on_state, stop=stop, sockets=sockets))
    session: PromptSession[str] = PromptSession()
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
                    envelope = await client.seal_text(peer_name, line)
                    if sockets:
                        result = await sockets[0].send_envelope(envelope.to_wire())
                    else:
                        await client.ensure_token()
                        result = await client.api.send(envelope.to_wire())
                    client.record_sent(envelope, line, result)
                except KeyChanged as exc:
                    print(f"⚠ {exc}")
                except ClientError as exc:
                    print(f"error: {exc}")
    finally:
        stop.set()
        for socket in sockets:
            await socket.close()
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver
