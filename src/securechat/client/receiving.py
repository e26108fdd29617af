"""The inbox, turned into items: gathers the state each decision needs, asks the core
(PROTOCOL.md 14), stores what it decided. No rule lives here; the rules are in ``core``.

Every frame becomes at most one :class:`InboxItem`: a verified message, a membership
change, a receipt, a new login to the account, or an unverifiable message with its
reason code. Nothing that fails
a check is dropped or shown as valid; only what was already shown (a duplicate) is not
shown again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol import errors as protocol_errors
from ..protocol.envelope import Envelope
from ..protocol.files import FileDescriptor
from ..protocol.groups import GroupChange
from ..protocol.identifiers import Username, parse_conversation_id
from .core import (
    Accepted,
    Claim,
    Duplicate,
    GroupView,
    Pin,
    ReceiptAccepted,
    Refused,
    change_position,
    decide_group_chain,
    decide_group_name,
    decide_message,
)
from .errors import ApiError

if TYPE_CHECKING:
    from .contacts import ContactBook
    from .groups import GroupBook
    from .receipts import ReceiptBook
    from .session import Session
    from .state import StateStore


@dataclass
class InboxItem:
    kind: str  # "message", "group", "receipt", or "session" (a new login: text, sent_at, session_id)
    seq: int
    verified: bool = False
    message_id: str | None = None
    conversation_id: str | None = None
    sender: str | None = None
    peer: str | None = None
    text: str | None = None
    sent_at: int | None = None
    server_ts: int | None = None
    # A reason code of PROTOCOL.md 14 when not verified.
    reason: str | None = None
    recipient: str | None = None
    status: str | None = None
    message_ids: list[str] = field(default_factory=list)
    # A shared file: id, name, media_type, size, sha256 (never the key).
    file: dict[str, Any] | None = None
    # The same with its key, kept in the local state so the file can be fetched later.
    file_with_key: dict[str, Any] | None = field(default=None, repr=False)
    # A new login: its session's id (``text`` is the client's description, the server's word).
    session_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "seq": self.seq,
            "message_id": self.message_id,
            "conversation_id": self.conversation_id,
            "sender": self.sender,
            "text": self.text,
            "sent_at": self.sent_at,
            "server_ts": self.server_ts,
            "verified": self.verified,
            "reason": self.reason,
        }


def describe_change(change: GroupChange) -> str:
    """A group change as a line in the conversation."""
    targets = ", ".join(change.members)
    return {
        "create": f"created the group with {targets or 'nobody else yet'}",
        "add": f"added {targets}",
        "remove": f"removed {targets}",
        "promote": f"made {targets} admin",
        "leave": "left the group",
        "join": "joined with an invite" + (f" from {change.invite.inviter}" if change.invite else ""),
    }.get(change.action, change.action)


def _claimed_sender(wire: object) -> Username | None:
    """Whose pin a message needs: the sender the envelope names, if it parses."""
    try:
        return Envelope.from_wire(wire).header.sender
    except protocol_errors.ProtocolError:
        return None


# State key: the inbox head when this device logged in; new-login notices up to it are
# older than this device's session (session.py sets it at login).
SESSION_NOTICES_AFTER = "session_notices_after"


def store_item(
    state: StateStore, item: InboxItem, *, seq: int | None, status: str, recipients: str | None
) -> None:
    """Keep a shown item in the local history: one row whatever the protocol version
    (v2 passes ``seq=None``, its positions being per device, not the account's inbox)."""
    state.add_message(
        seq=seq,
        message_id=item.message_id,
        conversation_id=item.conversation_id,
        sender=item.sender,
        peer=item.peer,
        text=item.text,
        sent_at=item.sent_at,
        server_ts=item.server_ts,
        verified=int(item.verified),
        reason=item.reason,
        status=status,
        recipients=recipients,
    )


class InboxReader:
    """Reads inbox frames into items and the local state, for one account."""

    def __init__(
        self,
        state: StateStore,
        session: Session,
        contacts: ContactBook,
        groups: GroupBook,
        receipts: ReceiptBook,
    ) -> None:
        self.state = state
        self.session = session
        self.contacts = contacts
        self.groups = groups
        self.receipts = receipts

    # Messages ---------------------------------------------------------------------
    async def _pins_for(self, sender: Username | None) -> dict[str, Pin]:
        """The sender's pin, pinning on first use (8.1), with any pending key change."""
        if sender is None:
            return {}
        pinned = self.contacts.pinned_identity(sender)
        if pinned is None:
            pinned = await self.contacts.identity_on_first_use(sender)
        if pinned is None:
            return {}
        contact = self.state.get_contact(sender)
        pending = self.contacts.pending_identity(contact) if contact is not None else None
        return {sender: Pin(pinned, pending)}

    async def _groups_for(self, wire: object, *, fresh: bool) -> dict[str, GroupView]:
        try:
            conversation_id = Envelope.from_wire(wire).header.conversation_id
        except protocol_errors.ProtocolError:
            return {}
        if not conversation_id.startswith("grp-"):
            return {}
        state = await self.groups.verified_state(conversation_id, fresh=fresh)
        return {conversation_id: state} if state is not None else {}

    async def decide(self, wire: object, *, inbox_seq: int | None, delivered_in: str | None = None) -> Any:
        """The core's decision on one envelope, with the state it needs gathered first.

        A group message whose recipients match no verified membership may come from a
        change this device has not fetched yet: the chain is fetched once, and the
        decision made again (13.5).
        """
        me = self.session.me()
        pins = await self._pins_for(_claimed_sender(wire))
        message_id = wire.get("message_id") if isinstance(wire, Mapping) else None
        record = self.state.seen_record(message_id) if isinstance(message_id, str) else None
        seen = {message_id: record} if record is not None and isinstance(message_id, str) else {}

        def decide(groups: Mapping[str, GroupView]) -> Accepted | Duplicate | Refused:
            return decide_message(
                wire,
                me=me,
                delivered_in=delivered_in,
                pins=pins,
                groups=groups,
                seen=seen,
                inbox_seq=inbox_seq,
            )

        decision = decide(await self._groups_for(wire, fresh=False))
        if isinstance(decision, Refused) and decision.reason in ("unknown_group", "wrong_members"):
            groups = await self._groups_for(wire, fresh=True)
            if groups:
                decision = decide(groups)
        return decision

    def _refused_item(self, seq: int, frame: Mapping[str, Any], refusal: Refused) -> InboxItem:
        claim = refusal.claim if isinstance(refusal.claim, Claim) else None
        server_ts = frame.get("server_ts")
        item = InboxItem(
            kind="message",
            seq=seq,
            reason=refusal.reason,
            server_ts=server_ts if isinstance(server_ts, int) else None,
            # Unparsed: only the server's word, shown as such.
            message_id=claim.message_id if claim else str(frame.get("message_id")),
            conversation_id=claim.conversation_id if claim else str(frame.get("conversation_id")),
            sender=claim.sender if claim else str(frame.get("sender")),
            sent_at=claim.sent_at if claim else None,
        )
        if item.conversation_id and item.conversation_id.startswith("grp-"):
            item.peer = item.conversation_id
        return item

    def _accepted_item(self, seq: int, frame: Mapping[str, Any], accepted: Accepted) -> InboxItem:
        payload = accepted.payload
        text = payload.get("text")
        shared: dict[str, Any] | None = None
        if payload.get("type") == "file":
            shared = FileDescriptor.from_payload(payload).to_payload()["file"]
        server_ts = frame.get("server_ts")
        return InboxItem(
            kind="message",
            seq=seq,
            verified=True,
            message_id=accepted.message_id,
            conversation_id=accepted.conversation_id,
            sender=accepted.sender,
            peer=accepted.peer if accepted.kind == "direct" else accepted.conversation_id,
            text=text if isinstance(text, str) else None,
            sent_at=accepted.sent_at,
            server_ts=server_ts if isinstance(server_ts, int) else None,
            file={k: v for k, v in shared.items() if k != "key"} if shared else None,
            file_with_key=shared,
        )

    async def _name_line(self, accepted: Accepted) -> str:
        """A group_info message: rename the group if the core says so (14.4), and the line."""
        name = str(accepted.payload["name"])
        if accepted.kind != "group":
            return f"sent a group name (“{name}”) in a direct chat; it is ignored"
        state = await self.groups.verified_state(accepted.conversation_id, fresh=False)
        if state is None:
            return f"sent a group name (“{name}”); the group is not verified here"
        decision = decide_group_name(
            self.state.group_name(accepted.conversation_id),
            sender=accepted.sender,
            name=name,
            sent_at=accepted.sent_at,
            message_id=accepted.message_id,
            group=state,
        )
        if isinstance(decision, Refused):
            why = (
                "a newer name is known"
                if decision.reason == "older_name"
                else "only the group's admins name it"
            )
            return f"sent a group name (“{name}”), ignored: {why}"
        with self.state.transaction():
            self.state.set_group_name(accepted.conversation_id, decision)
        return f"named the group “{name}”"

    async def message(self, seq: int, frame: Mapping[str, Any]) -> InboxItem | None:
        decision = await self.decide(frame.get("envelope"), inbox_seq=seq)
        if isinstance(decision, Duplicate):
            with self.state.transaction():
                self.state.put_seen(decision.message_id, decision.seen)
                self.state.put("last_seq", str(seq))
            return None
        recipients: str | None = None
        if isinstance(decision, Refused):
            item = self._refused_item(seq, frame, decision)
        else:
            item = self._accepted_item(seq, frame, decision)
            # Who it was sealed for: a receipt for it must come from one of them (14.7).
            recipients = json.dumps(list(decision.recipients))
            with self.state.transaction():
                self.state.put_seen(decision.message_id, decision.seen)
            if decision.payload.get("type") == "group_info":
                item.text = await self._name_line(decision)
            if decision.sender != self.session.username:
                self.receipts.delivered(decision.conversation_id, decision.sender, decision.message_id)
        with self.state.transaction():
            if item.file_with_key is not None and item.sender is not None and item.message_id is not None:
                self.state.add_file(
                    item.file_with_key["id"], item.message_id, item.sender, item.file_with_key
                )
            self._store(
                item,
                status="received" if item.sender != self.session.username else "sent",
                recipients=recipients,
            )
            self.state.put("last_seq", str(seq))
        return item

    def _store(self, item: InboxItem, *, status: str, recipients: str | None = None) -> None:
        store_item(self.state, item, seq=item.seq, status=status, recipients=recipients)

    # Group changes ----------------------------------------------------------------
    async def group_change(self, seq: int, frame: Mapping[str, Any]) -> InboxItem | None:
        """A membership change (14.3): shown once when new, never again when replayed."""
        change_wire = frame.get("change")
        try:
            group_id = parse_conversation_id(frame.get("group_id"))
            if not group_id.startswith("grp-") or not isinstance(change_wire, Mapping):
                raise protocol_errors.MalformedInput("not a group change")
        except protocol_errors.ProtocolError:
            return self._group_problem(seq, str(frame.get("group_id")), None, "malformed")
        local = self.groups.local_chain(group_id)
        position = change_position(local, change_wire)
        if isinstance(position, Refused):
            return self._group_problem(seq, group_id, None, position.reason)
        change = GroupChange.from_wire(change_wire)
        if position == "known":
            with self.state.transaction():
                self.state.put("last_seq", str(seq))
            return None
        if position == "next":
            offered: list[Any] = [*local, dict(change_wire)]
        else:
            try:
                offered = await self.groups.fetch_chain(group_id)
            except ApiError:
                return self._group_problem(seq, group_id, change, "chain_invalid")
        pins = await self.groups.pins_for(offered)
        decision = decide_group_chain(local, offered, group_id=group_id, pins=pins)
        if isinstance(decision, Refused):
            return self._group_problem(seq, group_id, change, decision.reason)
        self.groups.store_verified(group_id, offered, decision.state)
        item: InboxItem | None = None
        with self.state.transaction():
            for new in decision.new:
                line = InboxItem(
                    kind="group",
                    seq=seq,
                    verified=True,
                    conversation_id=group_id,
                    sender=new.actor,
                    peer=group_id,
                    text=describe_change(new),
                    sent_at=new.at,
                )
                self._store(line, status="group")
                if new.to_wire() == dict(change_wire):
                    item = line
            self.state.put("last_seq", str(seq))
        await self.groups.after_change(group_id, change, decision.state)
        return item

    def _group_problem(self, seq: int, group_id: str, change: GroupChange | None, reason: str) -> InboxItem:
        item = InboxItem(
            kind="group",
            seq=seq,
            conversation_id=group_id,
            sender=change.actor if change else None,
            peer=group_id,
            sent_at=change.at if change else None,
            reason=reason,
        )
        with self.state.transaction():
            self._store(item, status="group")
            self.state.put("last_seq", str(seq))
        return item

    # Receipts ---------------------------------------------------------------------
    def receipt(self, seq: int, frame: Mapping[str, Any]) -> InboxItem | None:
        """A receipt (14.7): only one its reader signed moves my messages forward, and
        only those it names that I sent to that reader. The server's own unsigned
        receipts (9.3) are passed over; a signed one that fails is shown with its reason,
        with no reader or status."""
        decision = self.receipts.decide(frame)
        with self.state.transaction():
            if isinstance(decision, ReceiptAccepted):
                for message_id in decision.message_ids:
                    self.state.set_status(message_id, decision.status)
            self.state.put("last_seq", str(seq))
        if isinstance(decision, ReceiptAccepted):
            return InboxItem(
                kind="receipt",
                seq=seq,
                verified=True,
                conversation_id=decision.conversation_id,
                recipient=decision.reader,
                status=decision.status,
                message_ids=list(decision.message_ids),
            )
        if decision.reason == "unsigned":
            return None
        return InboxItem(kind="receipt", seq=seq, reason=decision.reason)

    # New logins ------------------------------------------------------------------
    def session_started(self, seq: int, frame: Mapping[str, Any]) -> InboxItem | None:
        """Another session of this account started (PROTOCOL.md 9.2): the server's word,
        shown so the owner learns of a login that can unseal the keys. Not shown: this
        device's own session, and logins from before this device logged in."""
        with self.state.transaction():
            self.state.put("last_seq", str(seq))
        session_id, at, agent = frame.get("session_id"), frame.get("at"), frame.get("user_agent")
        if not isinstance(session_id, str) or session_id == self.state.get("session_id"):
            return None
        if seq <= int(self.state.get(SESSION_NOTICES_AFTER) or 0):
            return None
        return InboxItem(
            kind="session",
            seq=seq,
            session_id=session_id[:64],
            text=agent[:200] if isinstance(agent, str) else "",
            sent_at=at if isinstance(at, int) and not isinstance(at, bool) else None,
        )

    async def frame(self, frame: Mapping[str, Any]) -> InboxItem | None:
        """One inbox frame; None for one already processed or with nothing new to show."""
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq <= self.state.last_seq():
            return None
        kind = frame.get("type")
        if kind == "group":
            return await self.group_change(seq, frame)
        if kind == "receipt":
            return self.receipt(seq, frame)
        if kind == "session_started":
            return self.session_started(seq, frame)
        return await self.message(seq, frame)
