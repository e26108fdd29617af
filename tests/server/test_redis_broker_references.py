"""What an instance does with a reference read off Redis (issue 13, item 5): it renders a
message only from the database entry the reference names, and only if that entry holds
the message announced; otherwise the recipients' sockets re-read their inboxes."""

from __future__ import annotations

import json
from collections.abc import Callable

from securechat.server.realtime.broker import InboxEvent
from securechat.server.realtime.redis_broker import RedisBroker
from securechat.server.services.writer import data_frame, message_frame


class Entries:
    def __init__(self) -> None:
        self.rows = {(5, 40): ("m-real", '{"c":"sealed"}')}
        self.reads: list[tuple[int, int, str]] = []

    async def load(self, user_id: int, seq: int, message_id: str) -> Callable[[int], str] | None:
        self.reads.append((user_id, seq, message_id))
        found = self.rows.get((user_id, seq))
        if found is None or found[0] != message_id:
            return None
        mid, envelope = found
        return lambda s: message_frame(s, mid, "dm-x", "alice", 1, envelope)


def payload(**parts: object) -> bytes:
    return json.dumps({"v": 2, "from": "another-instance", **parts}).encode()


async def test_a_reference_is_rendered_from_the_entry_it_names_once_for_all_local_recipients() -> None:
    entries = Entries()
    broker = RedisBroker("redis://127.0.0.1:1/0", "securechat-test:refs", messages=entries.load)
    try:
        async with broker.subscribe(5) as five, broker.subscribe(6) as six:
            # Recipient 7 has no socket here: it costs nothing.
            await broker._deliver(payload(m=[["m-real", 1.0, [5, 40, 6, 12, 7, 3]]]))
            assert entries.reads == [(5, 40, "m-real")]
            got_five, got_six = five.get_nowait(), six.get_nowait()
            assert got_five is not None and got_six is not None
            assert (json.loads(got_five.frame)["seq"], json.loads(got_six.frame)["seq"]) == (40, 12)
            assert json.loads(got_six.frame)["envelope"] == {"c": "sealed"}
            # A reference naming an entry that holds another message renders nothing:
            # the sockets re-read their inboxes instead.
            await broker._deliver(payload(m=[["m-forged", 1.0, [5, 40, 6, 13]]]))
            assert five.get_nowait() is None and six.get_nowait() is None
            # Large data entries come as references too; small ones inline.
            await broker._deliver(
                payload(d=[[5, 41, None, 1.0], [6, 14, '{"type":"receipt","seq":14}', 1.0]])
            )
            assert five.get_nowait() is None
            assert six.get_nowait().frame == '{"type":"receipt","seq":14}'  # type: ignore[union-attr]
            # An instance's own payloads are not delivered twice.
            await broker._deliver(
                json.dumps({"v": 2, "from": broker._instance, "d": [[6, 15, "{}", 1.0]]}).encode()
            )
            assert six.empty()
    finally:
        await broker.close()


async def test_events_from_an_instance_of_the_earlier_version_still_arrive() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0", "securechat-test:legacy")
    try:
        async with broker.subscribe(9) as nine:
            legacy = {"from": "old", "events": [[9, 3, '{"type":"message","seq":3}', "m-old", 1.0, False]]}
            await broker._deliver(json.dumps(legacy).encode())
            event = nine.get_nowait()
            assert event is not None and (event.seq, event.message_id) == (3, "m-old")
    finally:
        await broker.close()


async def test_while_redis_is_unhealthy_only_sockets_behind_their_inbox_head_re_read_it() -> None:
    heads = {1: 5, 2: 3}
    queries: list[list[int]] = []

    async def inbox_heads(user_ids: list[int]) -> dict[int, int]:
        queries.append(sorted(user_ids))
        return {uid: heads[uid] for uid in user_ids if uid in heads}

    broker = RedisBroker("redis://127.0.0.1:1/0", "securechat-test:heads", heads=inbox_heads)
    try:
        async with broker.subscribe(1) as one, broker.subscribe(2) as two, broker.subscribe(3) as three:
            # User 1 was handed position 5 live; 2 and 3 were handed nothing yet.
            await broker.publish([InboxEvent(1, 5, '{"type":"receipt","seq":5}')])
            assert one.get_nowait() is not None
            await broker._check_heads()
            # One query for all; 2 is behind its head; 3 has an empty inbox but its
            # position is unknown, so it looks once too.
            assert queries == [[1, 2, 3]]
            assert one.empty() and two.get_nowait() is None and three.get_nowait() is None
            # Nothing new: nobody re-reads. A new entry for 1 (lost on the way): 1 re-reads.
            await broker._check_heads()
            assert one.empty() and two.empty() and three.empty()
            heads[1] = 6
            await broker._check_heads()
            assert one.get_nowait() is None and two.empty() and three.empty()
    finally:
        await broker.close()


async def test_one_data_entry_for_many_members_crosses_once() -> None:
    """A group change announced to 256 members: its data crosses Redis once, and each
    member's frame is rebuilt with that member's own seq."""
    data = '{"group_id":"grp-x","change":{"action":"remove","members":["mallory"],"sig":"' + "s" * 300 + '"}}'
    events = [
        InboxEvent(uid, 1000 + uid, data_frame("group", 1000 + uid, data), committed_at=1.0)
        for uid in range(1, 257)
    ]
    sender = RedisBroker("redis://127.0.0.1:1/0", "securechat-test:shared")
    receiver = RedisBroker("redis://127.0.0.1:1/0", "securechat-test:shared")
    try:
        await sender.publish(events)
        wire = sender._payload(list(sender._pending), resync=False)
        assert wire.count("mallory") == 1
        assert len(wire) < 3 * 1024, len(wire)
        async with receiver.subscribe(7) as seven, receiver.subscribe(200) as two_hundred:
            await receiver._deliver(wire.encode())
            for uid, queue in ((7, seven), (200, two_hundred)):
                event = queue.get_nowait()
                assert event is not None
                assert (event.seq, event.frame) == (1000 + uid, data_frame("group", 1000 + uid, data))
            # Other members have no socket on this instance: nothing else was queued.
            assert seven.empty() and two_hundred.empty()
    finally:
        await sender.close()
        await receiver.close()
