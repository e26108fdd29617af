"""Receipts are idempotent and limited (issue 12, item 4), against real server processes.

Every path that can put a receipt into a sender's inbox (signed receipts over HTTP and the
WebSocket, and the transitional unsigned ones: acknowledgements without
``signed_receipts``, the ``read`` frame and ``POST /conversations/{id}/read``) gives each
sender at most one entry per reader, message and kind, however often it is called and
whichever instance it reaches; and every path that a client calls to send receipts counts
against one per-account limit (``RECEIPTS_PER_MINUTE``, 429 ``rate_limited``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Origin

from securechat.client.messenger import Messenger
from securechat.protocol.identifiers import direct_conversation_id
from securechat.protocol.receipts import make_receipt

from ..conftest import LiveServer, postgres_instances, start_server
from .conftest import PASSWORDS, MakeClient

CONCURRENCY = 20


async def bounded(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the calls at once, at most CONCURRENCY in flight (one address's fair share)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


async def post(client: Messenger, path: str, body: dict[str, Any], url: str | None = None) -> httpx.Response:
    await client.ensure_token()
    async with httpx.AsyncClient(base_url=url or client.api.base_url, timeout=60) as http:
        return await http.post(
            path, json=body, headers={"authorization": f"Bearer {client.api.access_token}"}
        )


def receipt_entries(entries: list[dict[str, Any]]) -> list[tuple[str, bool, tuple[str, ...]]]:
    """(status, signed, message ids) of each receipt entry of an inbox, in order."""
    return [
        (entry["status"], "receipt" in entry, tuple(entry["message_ids"]))
        for entry in entries
        if entry["type"] == "receipt"
    ]


async def inbox(client: Messenger, url: str | None = None) -> list[dict[str, Any]]:
    await client.ensure_token()
    async with httpx.AsyncClient(base_url=url or client.api.base_url, timeout=60) as http:
        answer = await http.get(
            "/api/v1/inbox",
            params={"since": 0, "limit": 500},
            headers={"authorization": f"Bearer {client.api.access_token}"},
        )
    answer.raise_for_status()
    return list(answer.json()["entries"])


class RawSocket:
    """A bare inbox WebSocket: frames as the caller writes them, errors collected."""

    def __init__(self, client: Messenger, url: str | None = None) -> None:
        self.client = client
        self.url = url or client.api.base_url
        self.errors: list[dict[str, Any]] = []

    async def __aenter__(self) -> RawSocket:
        await self.client.ensure_token()
        self.socket = await websockets.connect(
            "ws://" + self.url.removeprefix("http://") + "/api/v1/ws", origin=Origin(self.url)
        )
        await self.socket.send(
            json.dumps({"type": "auth", "token": self.client.api.access_token, "since": 10**9})
        )
        ready = json.loads(await self.socket.recv())
        assert ready["type"] == "ready", ready
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.socket.close()

    async def send_all(self, frames: list[dict[str, Any]]) -> None:
        """Send the frames, then a ping; every refusal comes before the pong."""
        for frame in frames:
            await self.socket.send(json.dumps(frame))
        await self.socket.send(json.dumps({"type": "ping", "ref": "done"}))
        async with asyncio.timeout(60):
            async for text in self.socket:
                frame = json.loads(text)
                if frame["type"] == "pong":
                    return
                if frame["type"] == "error":
                    self.errors.append(frame)


def other_signature(receipt: dict[str, Any]) -> dict[str, Any]:
    """The same receipt with another 64-byte signature (the server does not verify it)."""
    return {**receipt, "signature": base64.b64encode(os.urandom(64)).decode()}


async def test_300_read_receipts_for_one_message_make_one_entry(
    live_server: LiveServer, make_client: MakeClient
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    sent = (await alice.send_text("bob", "read me once"))["message_id"]
    conversation = direct_conversation_id(alice.username, bob.username)
    assert bob.identity is not None
    read = make_receipt(bob.identity, conversation, "read", [sent]).to_wire()

    # 300 calls, the same receipt and re-signed ones alike, many at once.
    answers = await bounded(
        [
            lambda i=i: post(  # type: ignore[misc]
                bob, "/api/v1/receipts", {"receipt": read if i % 2 else other_signature(read)}
            )
            for i in range(300)
        ]
    )
    assert {answer.status_code for answer in answers} == {200}
    assert receipt_entries(await inbox(alice)) == [("read", True, (sent,))]
    # Only the first call relayed anything; every later one changed nothing.
    assert sorted(answer.json()["relayed"] for answer in answers) == [0] * 299 + [1]

    # The WebSocket frame is the same path: nothing new either.
    async with RawSocket(bob) as socket:
        await socket.send_all([{"type": "receipt", "receipt": other_signature(read)} for _ in range(100)])
    assert socket.errors == []
    assert receipt_entries(await inbox(alice)) == [("read", True, (sent,))]

    # "delivered" is another kind: one entry for it (even after "read"), and only one.
    delivered = make_receipt(bob.identity, conversation, "delivered", [sent]).to_wire()
    for _ in range(3):
        answer = await post(bob, "/api/v1/receipts", {"receipt": other_signature(delivered)})
        assert answer.status_code == 200
    assert receipt_entries(await inbox(alice)) == [("read", True, (sent,)), ("delivered", True, (sent,))]

    # A receipt naming that message and a new one goes out once more, for the new one.
    second = (await alice.send_text("bob", "and this one"))["message_id"]
    both = make_receipt(bob.identity, conversation, "read", [sent, second]).to_wire()
    for _ in range(3):
        await post(bob, "/api/v1/receipts", {"receipt": both})
    assert receipt_entries(await inbox(alice))[2:] == [("read", True, (second,))]


async def test_the_transitional_unsigned_paths_are_idempotent_too(
    live_server: LiveServer, make_client: MakeClient
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    sent = (await alice.send_text("bob", "unsigned paths"))["message_id"]
    conversation = direct_conversation_id(alice.username, bob.username)

    answers = await bounded(
        [
            lambda: post(bob, f"/api/v1/conversations/{conversation}/read", {"message_ids": [sent]})
            for _ in range(300)
        ]
    )
    assert {answer.status_code for answer in answers} == {200}
    assert receipt_entries(await inbox(alice)) == [("read", False, (sent,))]

    async with RawSocket(bob) as socket:
        await socket.send_all(
            [{"type": "read", "conversation_id": conversation, "message_ids": [sent]} for _ in range(300)]
        )
        assert socket.errors == []
        # Acknowledgements that ask for the server's receipts: one "delivered", once.
        bob_head = len(await inbox(bob))
        await socket.send_all([{"type": "ack", "seq": bob_head, "confirm": True} for _ in range(50)])
    for _ in range(20):
        answer = await post(bob, "/api/v1/inbox/ack", {"seq": bob_head})
        assert answer.status_code == 200
    assert receipt_entries(await inbox(alice)) == [("read", False, (sent,)), ("delivered", False, (sent,))]

    # A signed receipt after the server's claim is news for a client that verifies: once.
    assert bob.identity is not None
    read = make_receipt(bob.identity, conversation, "read", [sent]).to_wire()
    for _ in range(5):
        await post(bob, "/api/v1/receipts", {"receipt": read})
    # And the server's claim after a signed receipt adds nothing.
    await post(bob, f"/api/v1/conversations/{conversation}/read", {"message_ids": [sent]})
    assert receipt_entries(await inbox(alice)) == [
        ("read", False, (sent,)),
        ("delivered", False, (sent,)),
        ("read", True, (sent,)),
    ]


@pytest.fixture
async def limited_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    server = start_server(
        tmp_path / "limited-data", tmp_path / "limited.log", extra_env={"SECURECHAT_RECEIPTS_PER_MINUTE": "6"}
    )
    yield server
    server.stop()


async def test_receipts_are_limited_per_account_on_every_path(
    limited_server: LiveServer, tmp_path: Path
) -> None:
    alice = Messenger(tmp_path / "alice", limited_server.url)
    bob = Messenger(tmp_path / "bob", limited_server.url)
    mallory = Messenger(tmp_path / "mallory", limited_server.url)
    try:
        await alice.register("alice", PASSWORDS["alice"])
        await bob.register("bob", PASSWORDS["bob"])
        await mallory.register("mallory", PASSWORDS["mallory"])
        conversation = direct_conversation_id(alice.username, bob.username)
        ids = [(await alice.send_text("bob", f"message {i}"))["message_id"] for i in range(8)]
        assert bob.identity is not None
        receipts = [make_receipt(bob.identity, conversation, "read", [m]).to_wire() for m in ids]

        # Six receipt calls a minute, whatever the path: two signed over HTTP, two unsigned
        # over HTTP, one signed and one unsigned frame.
        for receipt in receipts[:2]:
            assert (await post(bob, "/api/v1/receipts", {"receipt": receipt})).status_code == 200
        for message_id in ids[2:4]:
            answer = await post(
                bob, f"/api/v1/conversations/{conversation}/read", {"message_ids": [message_id]}
            )
            assert answer.status_code == 200
        async with RawSocket(bob) as socket:
            await socket.send_all(
                [
                    {"type": "receipt", "receipt": receipts[4]},
                    {"type": "read", "conversation_id": conversation, "message_ids": [ids[5]]},
                ]
            )
            assert socket.errors == []
            # The seventh and eighth, over the socket: refused with the stable code.
            await socket.send_all(
                [
                    {"type": "receipt", "ref": "r7", "receipt": receipts[6]},
                    {"type": "read", "ref": "r8", "conversation_id": conversation, "message_ids": [ids[7]]},
                ]
            )
        assert [(e["ref"], e["code"]) for e in socket.errors] == [
            ("r7", "rate_limited"),
            ("r8", "rate_limited"),
        ]
        assert all(e["retry_after_ms"] > 0 for e in socket.errors)
        for path, body in (
            ("/api/v1/receipts", {"receipt": receipts[6]}),
            (f"/api/v1/conversations/{conversation}/read", {"message_ids": [ids[7]]}),
        ):
            refused = await post(bob, path, body)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "rate_limited"
            assert int(refused.headers["retry-after"]) >= 1
        assert len(receipt_entries(await inbox(alice))) == 6

        # The limit is bob's own: another account is not held back by it.
        await mallory.send_text("alice", "hi")
        assert (await post(mallory, "/api/v1/receipts", {"receipt": receipts[0]})).status_code == 403
    finally:
        for client in (alice, bob, mallory):
            await client.close()


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    async with postgres_instances(tmp_path, "securechat_receipts") as instances:
        yield instances


async def test_one_receipt_per_reader_message_and_kind_across_two_instances(
    two_instances: tuple[LiveServer, LiveServer], tmp_path: Path
) -> None:
    first, second = two_instances
    alice = Messenger(tmp_path / "alice", first.url)
    bob = Messenger(tmp_path / "bob", second.url)
    try:
        await alice.register("alice", PASSWORDS["alice"])
        await bob.register("bob", PASSWORDS["bob"])
        sent = (await alice.send_text("bob", "through two doors"))["message_id"]
        conversation = direct_conversation_id(alice.username, bob.username)
        assert bob.identity is not None
        read = make_receipt(bob.identity, conversation, "read", [sent]).to_wire()
        bob_head = len(await inbox(bob))

        calls: list[Callable[[], Awaitable[Any]]] = []
        for i in range(240):
            url = (first, second)[i % 2].url
            body: dict[str, Any]
            if i % 3 == 0:
                path, body = "/api/v1/receipts", {"receipt": other_signature(read)}
            elif i % 3 == 1:
                path, body = f"/api/v1/conversations/{conversation}/read", {"message_ids": [sent]}
            else:
                path, body = "/api/v1/inbox/ack", {"seq": bob_head}
            calls.append(lambda path=path, body=body, url=url: post(bob, path, body, url))  # type: ignore[misc]
        answers = await bounded(calls)
        assert {answer.status_code for answer in answers} == {200}

        entries = receipt_entries(await inbox(alice))
        # Each kind once, in whatever order the instances committed them.
        assert sorted(entries) == [
            ("delivered", False, (sent,)),
            ("read", False, (sent,)),
            ("read", True, (sent,)),
        ] or sorted(entries) == [("delivered", False, (sent,)), ("read", True, (sent,))]
        for server in (first, second):
            assert "Traceback" not in server.log()
    finally:
        await alice.close()
        await bob.close()
