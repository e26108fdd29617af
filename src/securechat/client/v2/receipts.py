"""Receipts in v2 direct conversations (PROTOCOL.md 15.17): the ones this device makes,
and what the core needs to decide the ones it gets.

A v2 receipt is an ordinary v2 message, sealed with 15.8's fan-out to the original
sender's devices and this account's other devices, whose payload names the messages:
the server cannot tell it from a chat message. Making: each message of the peer accepted
from the device inbox is queued for a "delivered" receipt, sent once the inbox page is
acknowledged; messages of the peer shown to the user get a "read" receipt (the caller
respects the user's switch). A receipt is never receipted, never shown as a chat item,
never makes anything be sent.

Pacing (15.17): a receipt is a whole message and counts against the account's send
budget, so peers sending a trickle of messages must not make this device spend that
budget on receipts. Ids wait in a queue per (peer, status); each such batch goes at most
once every ``RECEIPT_INTERVAL_S`` (100 ids at most), and receipts in all at most
``RECEIPTS_PER_MINUTE``; a receipt refused with 429 puts its ids back and no receipt goes
until the server's ``retry_after_ms`` (or a minute) has passed, nor after the user's own
message got a 429. The queue is flushed when the inbox is read and when messages are
marked read.

Checking: the decision is ``core.v2.decide_receipt_v2``, with the messages this user
sent (and who each was sealed for) and those it received, from the local state only.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from ...protocol.receipts import MAX_RECEIPT_IDS
from ..core.v2 import AcceptedV2, ReceiptV2Decision, decide_receipt_v2, receipt_payload
from ..state import StateStore

# At most one receipt per (peer, status) this often: ids that arrive meanwhile join it.
RECEIPT_INTERVAL_S = 5.0
# At most this many receipts a minute in all, whatever the number of peers: the rest of
# the account's send budget (the server's MESSAGES_PER_MINUTE) is the user's.
RECEIPTS_PER_MINUTE = 20
# Without the server's retry_after_ms, how long receipts wait after a 429.
DEFAULT_PAUSE_S = 60.0


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    ordered = sorted(set(ids))
    return [ordered[start : start + MAX_RECEIPT_IDS] for start in range(0, len(ordered), MAX_RECEIPT_IDS)]


class V2Receipts:
    def __init__(self, state: StateStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self.clock = clock
        # (peer, status) -> ids awaiting a receipt. In memory: a process that dies first
        # leaves the peer's messages "sent" a little longer, nothing more.
        self._pending: dict[tuple[str, str], set[str]] = {}
        self._last: dict[tuple[str, str], float] = {}
        self._recent: collections.deque[float] = collections.deque()
        self._paused_until = -float("inf")
        # Messages another device of this account said it has shown (an own "read"
        # receipt): this device sends no read receipt for them again. In memory: the
        # same entries are read and then marked read in one run of the client.
        self._read_elsewhere: set[str] = set()

    # Making -----------------------------------------------------------------------
    def delivered(self, peer: str, message_id: str) -> None:
        """A message of ``peer`` (not a receipt) was accepted: receipt it after the ack."""
        self.queue(peer, "delivered", [message_id])

    def queue(self, peer: str, status: str, message_ids: Iterable[str]) -> None:
        """Ids for a receipt to ``peer``, sent when ``take_due`` says."""
        self._pending.setdefault((peer, status), set()).update(message_ids)

    def pending(self) -> dict[tuple[str, str], list[str]]:
        return {key: sorted(ids) for key, ids in self._pending.items() if ids}

    def take_due(self) -> list[tuple[str, dict[str, Any]]]:
        """The receipts to send now as (peer, payload), each taken off the queue: per
        (peer, status), one of at most 100 ids if none went within the interval; in all,
        no more than the minute's allowance; none while paused after a 429."""
        now = self.clock()
        if now < self._paused_until:
            return []
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        due: list[tuple[str, dict[str, Any]]] = []
        for key in sorted(self._pending):
            if len(self._recent) >= RECEIPTS_PER_MINUTE:
                break
            last = self._last.get(key)
            if last is not None and now - last < RECEIPT_INTERVAL_S:
                continue
            peer, status = key
            chunk = _chunks(self._pending[key])[0]
            self._pending[key].difference_update(chunk)
            if not self._pending[key]:
                del self._pending[key]
            self._last[key] = now
            self._recent.append(now)
            due.append((peer, receipt_payload(status, chunk)))
        return due

    def refused(self, peer: str, payload: dict[str, Any], retry_after_ms: object = None) -> None:
        """A receipt got 429: its ids wait again, and no receipt goes for a while."""
        self.queue(peer, str(payload["status"]), payload["message_ids"])
        self.pause(retry_after_ms)

    def pause(self, retry_after_ms: object = None) -> None:
        """No receipt until the server's wait is over (a 429 for a receipt or for the
        user's own message: the budget is the user's first)."""
        wait = (
            retry_after_ms / 1000
            if isinstance(retry_after_ms, int | float)
            and not isinstance(retry_after_ms, bool)
            and retry_after_ms > 0
            else DEFAULT_PAUSE_S
        )
        self._paused_until = max(self._paused_until, self.clock() + min(wait, 600.0))

    def read_elsewhere(self, message_ids: Iterable[str]) -> None:
        """Another device of this account has shown these (15.17, an own receipt)."""
        self._read_elsewhere.update(message_ids)

    def read(self, me: str, conversation_id: str, message_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """ "read" receipts as (peer, payload) for the named messages of others in this
        direct conversation that this device accepted."""
        by_sender: dict[str, list[str]] = {}
        for row in self.state.verified_messages(message_ids):
            if row["message_id"] in self._read_elsewhere:
                continue
            if row["conversation_id"] == conversation_id and row["sender"] != me:
                by_sender.setdefault(str(row["sender"]), []).append(str(row["message_id"]))
        return [
            (sender, receipt_payload("read", chunk))
            for sender, ids in sorted(by_sender.items())
            for chunk in _chunks(ids)
        ]

    # Checking ---------------------------------------------------------------------
    def decide(self, me: str, accepted: AcceptedV2) -> ReceiptV2Decision:
        """The core's decision (15.17) on an accepted receipt message, with its inputs
        (the named messages sent and received here) from local state."""
        raw = accepted.payload.get("message_ids")
        named = [m for m in raw[:MAX_RECEIPT_IDS] if isinstance(m, str)] if isinstance(raw, list) else []
        sent: dict[str, dict[str, list[str]]] = {}
        received: dict[str, list[str]] = {}
        for row in self.state.verified_messages(named):
            conversation, message_id = str(row["conversation_id"]), str(row["message_id"])
            if row["sender"] == me:
                recipients = list(json.loads(row["recipients"])) if row["recipients"] else []
                if not recipients and conversation.startswith("dm-") and row["peer"]:
                    # Recorded before recipients were kept: a direct message went to its peer.
                    recipients = sorted({me, str(row["peer"])})
                sent.setdefault(conversation, {})[message_id] = recipients
            else:
                received.setdefault(conversation, []).append(message_id)
        return decide_receipt_v2(
            sender=accepted.sender,
            conversation_id=accepted.conversation_id,
            payload=accepted.payload,
            me=me,
            sent=sent,
            received=received,
        )
