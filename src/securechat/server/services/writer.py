"""Group commit for the hot write path: sends and acknowledgements.

Requests queue here; one writer task per process takes everything queued and applies
it in a single transaction with a constant number of statements, then resolves each
request and publishes events. Under load, batches grow by themselves while the
previous commit runs; when idle, a request is written at once (no added delay).

Each request is checked on its own: one that breaks a rule gets its own error and
writes nothing, and the others in the batch commit. If the batch transaction itself
fails (a unique-key race with another instance), every request is retried alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from ...protocol.envelope import Envelope
from ...protocol.identifiers import direct_conversation_id
from ..errors import Forbidden, InvalidEnvelope, MessageIdReused, NotFound, SecureChatError
from ..metrics import Metrics
from ..realtime.broker import Broker, InboxEvent
from ..storage import batch as batch_store
from ..storage import messages as messages_store
from ..storage.database import Database, DriverConnection
from ..storage.tables import inbox_entries
from .clock import now_ms
from .principal import Principal

logger = logging.getLogger(__name__)

MAX_BATCH = 256


@dataclass(frozen=True)
class SendResult:
    message_id: str
    conversation_id: str
    seq: int
    server_ts: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "server_ts": self.server_ts,
        }


@dataclass
class SendRequest:
    principal: Principal
    envelope: Envelope
    text: str
    digest: bytes
    future: asyncio.Future[SendResult] = field(repr=False)


@dataclass
class AckRequest:
    principal: Principal
    up_to_seq: int
    future: asyncio.Future[int] = field(repr=False)
    # Make unsigned "delivered" receipts, the server's claim, for what this ack covers
    # (transitional, PROTOCOL.md 9.3): False for clients that sign their own.
    server_receipts: bool = True


Request = SendRequest | AckRequest


def message_frame(
    seq: int, message_id: str, conversation_id: str, sender: str, server_ts: int, envelope: str
) -> str:
    """The WebSocket frame for an inbox message; the stored envelope text is embedded as is
    (every other field is a validated identifier, so no escaping is needed)."""
    return (
        f'{{"type":"message","seq":{seq},"message_id":"{message_id}","conversation_id":"{conversation_id}",'
        f'"sender":"{sender}","server_ts":{server_ts},"envelope":{envelope}}}'
    )


def data_frame(kind: str, seq: int, data: str) -> str:
    """The frame of an entry that carries small JSON (a receipt, a group change): the
    entry's kind and seq, then the members of ``data``."""
    return f'{{"type":"{kind}","seq":{seq},{data[1:]}'


def data_entry(user_id: int, seq: int, kind: str, data: str, now: int) -> tuple[dict[str, Any], InboxEvent]:
    """An inbox row of that kind, and the event that announces it."""
    row = {
        "user_id": user_id,
        "seq": seq,
        "kind": kind,
        "message_pk": None,
        "data": data,
        "created_at": now,
        "delivered_at": None,
    }
    return row, InboxEvent(user_id, seq, data_frame(kind, seq, data))


class MessageWriter:
    def __init__(self, database: Database, broker: Broker, metrics: Metrics | None = None) -> None:
        self.database = database
        self.broker = broker
        self.metrics = metrics
        self._queue: asyncio.Queue[Request] = asyncio.Queue()
        self._direct_members = DirectMembersCache()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="message-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def submit_send(
        self, principal: Principal, envelope: Envelope, text: str, digest: bytes
    ) -> asyncio.Future[SendResult]:
        """Queue a send now (so requests keep their order); the future resolves after commit."""
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(SendRequest(principal, envelope, text, digest, future))
        return future

    def submit_ack(
        self, principal: Principal, up_to_seq: int, *, server_receipts: bool = True
    ) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(AckRequest(principal, up_to_seq, future, server_receipts))
        return future

    async def send(self, principal: Principal, envelope: Envelope, text: str, digest: bytes) -> SendResult:
        return await self.submit_send(principal, envelope, text, digest)

    async def acknowledge(self, principal: Principal, up_to_seq: int, *, server_receipts: bool = True) -> int:
        return await self.submit_ack(principal, up_to_seq, server_receipts=server_receipts)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception:
                logger.warning("batch of %d writes failed; retrying one by one", len(batch), exc_info=True)
                for request in batch:
                    if request.future.done():
                        continue
                    try:
                        await self._write([request])
                    except Exception as exc:
                        logger.exception("write failed")
                        if not request.future.done():
                            request.future.set_exception(exc)

    async def _write(self, batch: list[Request]) -> None:
        sends = [r for r in batch if isinstance(r, SendRequest) and not r.future.done()]
        acks = [r for r in batch if isinstance(r, AckRequest) and not r.future.done()]
        # The whole batch runs as one synchronous transaction (off the event loop on SQLite).
        outcome: _Outcome = await self.database.run_write_batch(_apply, sends, acks, self._direct_members)
        # Only now, after the commit, do clients hear of it.
        for request, result in outcome.results:
            if not request.future.done():
                request.future.set_result(result)
        for request, error in outcome.errors:
            if not request.future.done():
                request.future.set_exception(error)
        if self.metrics is not None:
            self.metrics.messages.inc(
                sum(1 for request, _ in outcome.results if isinstance(request, SendRequest))
            )
        if outcome.events:
            committed_at = time.time()
            for event in outcome.events:
                event.committed_at = committed_at
            await self.broker.publish(outcome.events)


DIRECT_PREFIX = "dm-"


class DirectMembersCache:
    """Members of direct conversations, which never change (their id is derived from the
    two usernames), so caching them in process is safe with any number of instances.
    Group membership changes and is always read from the database."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._members: dict[str, dict[str, int]] = {}

    def __contains__(self, conversation_id: object) -> bool:
        return conversation_id in self._members

    def __getitem__(self, conversation_id: str) -> dict[str, int]:
        return self._members[conversation_id]

    def put(self, conversation_id: str, members: dict[str, int]) -> None:
        if len(self._members) >= self.LIMIT:
            self._members.clear()
        self._members[conversation_id] = dict(members)


@dataclass
class _Outcome:
    results: list[tuple[Request, Any]] = field(default_factory=list)
    errors: list[tuple[Request, SecureChatError]] = field(default_factory=list)
    events: list[InboxEvent] = field(default_factory=list)


def _apply(
    conn: DriverConnection,
    sends: list[SendRequest],
    acks: list[AckRequest],
    direct_members: DirectMembersCache,
) -> _Outcome:
    """Apply a batch inside the caller's transaction. Runs on the writer's thread: it
    touches no future and no event loop, it only returns what happened."""
    outcome = _Outcome()
    now = now_ms()
    existing = batch_store.get_messages_by_message_ids(conn, [r.envelope.header.message_id for r in sends])
    conversation_ids = sorted({r.envelope.header.conversation_id for r in sends})
    members: dict[str, dict[str, int]] = {
        cid: direct_members[cid] for cid in conversation_ids if cid in direct_members
    }
    uncached = [cid for cid in conversation_ids if cid not in members]
    known = set(members) | batch_store.get_conversation_ids(conn, uncached)
    for request in sends:
        cid = request.envelope.header.conversation_id
        if cid not in known:
            try:
                _create_direct_conversation(conn, request, now)
                known.add(cid)
            except SecureChatError as exc:
                outcome.errors.append((request, exc))
    members.update(batch_store.get_members_by_conversation(conn, sorted(known & set(uncached))))
    for cid in uncached:
        if cid.startswith(DIRECT_PREFIX) and len(members.get(cid, {})) == 2:
            direct_members.put(cid, members[cid])

    accepted: list[SendRequest] = []
    retries: list[tuple[SendRequest, Any]] = []
    in_batch: dict[str, SendRequest] = {}
    failed = {id(r) for r, _ in outcome.errors}
    for request in sends:
        if id(request) in failed:
            continue
        header = request.envelope.header
        previous = existing.get(header.message_id)
        earlier = in_batch.get(header.message_id)
        if previous is not None or earlier is not None:
            same = (
                previous["sender_id"] == request.principal.user_id
                and previous["envelope_sha256"] == request.digest
                if previous is not None
                else earlier is not None
                and earlier.principal.user_id == request.principal.user_id
                and earlier.digest == request.digest
            )
            if not same:
                outcome.errors.append(
                    (request, MessageIdReused("this message id was already used for a different message"))
                )
            else:
                retries.append((request, previous if previous is not None else earlier))
            continue
        conversation_members = members.get(header.conversation_id, {})
        if request.principal.username not in conversation_members:
            outcome.errors.append(
                (request, Forbidden("not a member of this conversation", reason="not_member"))
            )
            continue
        if set(request.envelope.recipients) != set(conversation_members):
            outcome.errors.append(
                (
                    request,
                    InvalidEnvelope(
                        "wrapped keys must cover exactly the conversation's members",
                        reason="recipients_mismatch",
                    ),
                )
            )
            continue
        accepted.append(request)
        in_batch[header.message_id] = request

    # Acknowledgements: which entries become delivered, and which receipts that makes.
    # All acks in the batch are applied with two statements, whatever their number.
    up_to: dict[int, int] = {}
    usernames: dict[int, str] = {}
    # Users with an ack in the batch that asks for the server's own receipts.
    wants_receipts: set[int] = set()
    for ack in acks:
        uid = ack.principal.user_id
        up_to[uid] = max(up_to.get(uid, 0), ack.up_to_seq)
        usernames[uid] = ack.principal.username
        if ack.server_receipts:
            wants_receipts.add(uid)
    newly_delivered = batch_store.get_undelivered_messages_up_to(conn, up_to)
    batch_store.mark_delivered_up_to(conn, up_to, now)
    receipts: dict[int, list[dict[str, Any]]] = {}
    by_pair: dict[tuple[int, int], list[str]] = {}
    delivered_count: dict[int, int] = {}
    claims: dict[int, list[int]] = {}
    for row in newly_delivered:
        delivered_count[row["user_id"]] = delivered_count.get(row["user_id"], 0) + 1
        if row["sender_id"] != row["user_id"] and row["user_id"] in wants_receipts:
            claims.setdefault(row["user_id"], []).append(row["message_pk"])
    # Each unsigned "delivered" once per reader and message, on every instance: two acks
    # on two instances can both find the same entries undelivered before either commits.
    first: set[tuple[int, int]] = set()
    for recipient_id, pks in sorted(claims.items()):
        added = batch_store.add_receipt_marks(conn, recipient_id, "delivered", False, pks, now)
        first.update((recipient_id, pk) for pk in added)
    for row in newly_delivered:
        if (row["user_id"], row["message_pk"]) in first:
            by_pair.setdefault((row["user_id"], row["sender_id"]), []).append(row["message_id"])
    for (recipient_id, sender_id), message_ids in by_pair.items():
        receipts.setdefault(sender_id, []).append(
            {
                "message_ids": message_ids,
                "recipient": usernames[recipient_id],
                "status": "delivered",
                "at": now,
            }
        )
    counted: set[int] = set()
    for ack in acks:
        uid = ack.principal.user_id
        # The first ack of a user in the batch reports the entries it made delivered.
        outcome.results.append((ack, 0 if uid in counted else delivered_count.get(uid, 0)))
        counted.add(uid)

    # Sequence numbers for every new inbox entry, allocated in one locked step.
    counts: dict[int, int] = {}
    for request in accepted:
        for uid in members[request.envelope.header.conversation_id].values():
            counts[uid] = counts.get(uid, 0) + 1
    for sender_id, items in receipts.items():
        counts[sender_id] = counts.get(sender_id, 0) + len(items)
    next_seq = batch_store.allocate_inbox_seqs(conn, counts)

    pks = batch_store.add_messages(
        conn,
        [
            {
                "message_id": r.envelope.header.message_id,
                "conversation_id": r.envelope.header.conversation_id,
                "sender_id": r.principal.user_id,
                "client_ts": r.envelope.header.sent_at,
                "server_ts": now,
                "size": len(r.text),
                "envelope_sha256": r.digest,
                "envelope": r.text,
            }
            for r in accepted
        ],
    )
    entries: list[dict[str, Any]] = []
    for request, pk in zip(accepted, pks, strict=True):
        header = request.envelope.header
        sender_seq = 0
        for uid in members[header.conversation_id].values():
            seq = next_seq[uid]
            next_seq[uid] = seq + 1
            entries.append(
                {
                    "user_id": uid,
                    "seq": seq,
                    "kind": "message",
                    "message_pk": pk,
                    "data": None,
                    "created_at": now,
                    # The sender has its own message: its copy is delivered from the start.
                    "delivered_at": now if uid == request.principal.user_id else None,
                }
            )
            frame = message_frame(
                seq, header.message_id, header.conversation_id, header.sender, now, request.text
            )
            outcome.events.append(InboxEvent(uid, seq, frame, header.message_id))
            if uid == request.principal.user_id:
                sender_seq = seq
        outcome.results.append(
            (request, SendResult(header.message_id, header.conversation_id, sender_seq, now))
        )
    for sender_id, items in receipts.items():
        for item in items:
            seq = next_seq[sender_id]
            next_seq[sender_id] = seq + 1
            entry, event = data_entry(sender_id, seq, "receipt", json.dumps(item, separators=(",", ":")), now)
            entries.append(entry)
            outcome.events.append(event)
    batch_store.add_inbox_entries(conn, entries)

    # Retries of messages stored earlier answer with the stored result.
    for request, previous in retries:
        if isinstance(previous, SendRequest):
            outcome.results.append((request, _RetryOf(previous)))
        else:
            seq = batch_store.get_inbox_seq_for_message(conn, request.principal.user_id, previous["id"])
            outcome.results.append(
                (
                    request,
                    SendResult(
                        previous["message_id"], previous["conversation_id"], seq, previous["server_ts"]
                    ),
                )
            )
    _resolve_in_batch_retries(outcome)
    return outcome


@dataclass(frozen=True)
class _RetryOf:
    original: SendRequest


def _resolve_in_batch_retries(outcome: _Outcome) -> None:
    answers = {id(request): result for request, result in outcome.results if not isinstance(result, _RetryOf)}
    outcome.results = [
        (request, answers[id(result.original)] if isinstance(result, _RetryOf) else result)
        for request, result in outcome.results
    ]


def _create_direct_conversation(conn: DriverConnection, request: SendRequest, now: int) -> None:
    """A first message to someone creates the direct conversation, if its id is theirs."""
    envelope, principal = request.envelope, request.principal
    conversation_id = envelope.header.conversation_id
    others = [name for name in envelope.recipients if name != principal.username]
    if len(others) != 1 or direct_conversation_id(principal.username, others[0]) != conversation_id:
        raise NotFound("no such conversation")
    ids = batch_store.get_user_ids(conn, [principal.username, others[0]])
    if len(ids) != 2:
        raise NotFound("no such user", field="recipient")
    batch_store.add_conversation(conn, conversation_id, "direct", list(ids.values()), now, if_absent=True)


def message_source(database: Database) -> Callable[[int, int, str], Awaitable[Callable[[int], str] | None]]:
    """For the Redis broker (realtime/redis_broker.py): read a message entry that another
    instance announced by reference, once, and render it for any recipient's seq."""

    async def load(user_id: int, seq: int, message_id: str) -> Callable[[int], str] | None:
        async with database.read() as conn:
            rows = await messages_store.get_inbox_after(conn, user_id, seq - 1, 1)
        if not rows or rows[0]["seq"] != seq or rows[0]["message_id"] != message_id:
            return None
        row = rows[0]

        def render(recipient_seq: int) -> str:
            return message_frame(
                recipient_seq,
                row["message_id"],
                row["conversation_id"],
                row["sender"],
                row["server_ts"],
                row["envelope"],
            )

        return render

    return load


def inbox_heads(database: Database) -> Callable[[list[int]], Awaitable[dict[int, int]]]:
    """For the Redis broker while Redis is unhealthy: the newest inbox position of each
    of these users, in one query (users with an empty inbox are left out)."""

    async def heads(user_ids: list[int]) -> dict[int, int]:
        query = (
            select(inbox_entries.c.user_id, func.max(inbox_entries.c.seq))
            .where(inbox_entries.c.user_id.in_(user_ids))
            .group_by(inbox_entries.c.user_id)
        )
        async with database.read() as conn:
            rows = (await conn.execute(query)).all()
        return {int(user_id): int(seq) for user_id, seq in rows}

    return heads
