"""Two Python clients speak protocol v2 in a direct conversation against a real server
process (PROTOCOL.md 15): device lists, prekeys, sessions set up from claimed bundles,
messages both ways, the migration rule (15.12) and the local state it keeps."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from securechat.client.errors import ApiError
from securechat.client.realtime import InboxSocket

from .conftest import MakeClient, next_item


def texts(items: list, kind: str = "message") -> list[str | None]:  # type: ignore[type-arg]
    return [item.text for item in items if item.kind == kind and item.verified]


def v1_entries(home: Path) -> int:
    """Messages this home stored from the v1 inbox (they carry the account inbox's seq)."""
    with sqlite3.connect(home / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM messages WHERE seq IS NOT NULL").fetchone()[0])


async def test_two_clients_exchange_v2_messages_both_ways(make_client: MakeClient, tmp_path: Path) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    assert await alice.v2.uses_v2("bob") and await bob.v2.uses_v2("alice")

    await alice.send_text("bob", "hello bob, first over v2")
    items = await bob.sync_inbox()
    assert texts(items) == ["hello bob, first over v2"]
    (item,) = [i for i in items if i.kind == "message"]
    assert item.sender == "alice" and item.peer == "alice" and item.verified

    await bob.send_text("alice", "hi alice")
    await alice.send_text("bob", "second")
    assert texts(await alice.sync_inbox()) == ["hi alice"]
    assert texts(await bob.sync_inbox()) == ["second"]
    # Nothing went through v1's inbox.
    assert v1_entries(tmp_path / "home-alice") == 0 and v1_entries(tmp_path / "home-bob") == 0
    stored = [(r["sender"], r["text"], r["verified"]) for r in bob.stored_messages("alice")]
    assert stored == [
        ("alice", "hello bob, first over v2", 1),
        ("bob", "hi alice", 1),
        ("alice", "second", 1),
    ]


async def test_a_conversation_stays_v1_until_both_have_a_device_list(make_client: MakeClient) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    assert not await alice.v2.uses_v2("bob")
    await alice.send_text("bob", "over v1")
    assert texts(await bob.sync_inbox()) == ["over v1"]
    await bob.enable_v2()
    assert await alice.v2.uses_v2("bob")
    await alice.send_text("bob", "over v2")
    assert texts(await bob.sync_inbox()) == ["over v2"]
    # v1 history stays readable beside the v2 messages.
    assert [r["text"] for r in bob.stored_messages("alice")] == ["over v1", "over v2"]


async def test_sending_while_reading_keeps_every_message_readable(make_client: MakeClient) -> None:
    """A chat sends while its socket reads: neither may write over the other's step."""
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "start")
    await bob.sync_inbox()
    await bob.send_text("alice", "started")
    await alice.sync_inbox()
    got_bob: list[str | None] = []
    got_alice: list[str | None] = []
    for round_ in range(4):
        await asyncio.gather(alice.send_text("bob", f"a{round_}"), alice.send_text("bob", f"b{round_}"))
        results = await asyncio.gather(
            bob.sync_inbox(), bob.send_text("alice", f"r{round_}"), alice.sync_inbox(), bob.sync_inbox()
        )
        got_bob += texts(results[0]) + texts(results[3])
        got_alice += texts(results[2])
    got_alice += texts(await alice.sync_inbox())
    got_bob += texts(await bob.sync_inbox())
    assert sorted(got_bob) == sorted(f"{p}{n}" for n in range(4) for p in "ab")
    assert sorted(got_alice) == [f"r{n}" for n in range(4)]
    stored = bob.stored_messages("alice")
    assert all(row["verified"] for row in stored)


async def test_a_socket_reads_the_v2_inbox_on_connect_and_on_each_notice(make_client: MakeClient) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "while bob was offline")
    socket = InboxSocket(bob)
    await socket.connect()
    try:
        first = await next_item(socket, "message")
        assert (first.text, first.verified) == ("while bob was offline", True)
        await alice.send_text("bob", "while bob is online")
        second = await next_item(socket, "message")
        assert (second.text, second.verified) == ("while bob is online", True)
    finally:
        await socket.close()


async def test_a_lost_answer_never_makes_the_next_message_reuse_a_key(make_client: MakeClient) -> None:
    """The server stores a message but its answer is lost: the next message must be
    sealed at a new ratchet position (a reused message key would reuse a GCM nonce)."""
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "one")
    real_send = alice.v2.api.send

    async def stored_then_lost(envelope: dict[str, object]) -> dict[str, Any]:
        await real_send(envelope)
        raise ApiError(0, "network_error", "the answer was lost")

    alice.v2.api.send = stored_then_lost  # type: ignore[method-assign]
    with pytest.raises(ApiError):  # lost every time it is tried
        await alice.send_text("bob", "two (answer lost)")
    alice.v2.api.send = real_send  # type: ignore[method-assign]
    await alice.send_text("bob", "three")
    items = await bob.sync_inbox()
    assert [(i.text, i.verified, i.reason) for i in items if i.kind == "message"] == [
        ("one", True, None),
        ("two (answer lost)", True, None),
        ("three", True, None),
    ]


async def test_a_send_whose_answer_is_lost_once_goes_again_and_is_stored_once(
    make_client: MakeClient,
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    real_send = alice.v2.api.send
    lost: list[str] = []

    async def lost_once(envelope: dict[str, object]) -> dict[str, Any]:
        answer = await real_send(envelope)
        if not lost:
            lost.append(str(envelope["message_id"]))
            raise ApiError(0, "network_error", "the answer was lost")
        return answer

    alice.v2.api.send = lost_once  # type: ignore[method-assign]
    result = await alice.send_text("bob", "sent twice, stored once")
    assert lost == [result["message_id"]]
    assert [r["text"] for r in alice.stored_messages("bob")] == ["sent twice, stored once"]
    items = await bob.sync_inbox()
    assert [(i.text, i.verified) for i in items if i.kind == "message"] == [("sent twice, stored once", True)]
