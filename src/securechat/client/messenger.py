"""The client: one account's messaging, composed of its session (session.py), contacts
(contacts.py), groups (groups.py) and inbox reader (receiving.py); sending lives here.

Every inbox frame becomes an :class:`InboxItem`: a verified message, a receipt, or an
unverifiable message with a reason. Nothing that fails a check is dropped or shown
as valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from ..protocol.encoding import b64encode
from ..protocol.envelope import Envelope, seal_message
from ..protocol.files import FileDescriptor
from ..protocol.identifiers import Username, direct_conversation_id
from ..protocol.keys import PrivateIdentity, PublicIdentity
from .api import ApiClient
from .contacts import ContactBook
from .core import SeenRecord
from .errors import ClientError
from .files import Progress, download_file, safe_file_name, unused_path, upload_file
from .groups import GroupBook
from .receipts import ReceiptBook
from .receiving import InboxItem, InboxReader
from .session import Session
from .state import StateStore
from .v2 import V2Client
from .v2.client import Revoked
from .v2.files import send_file_v2

# InboxItem is re-exported: callers read items from the messenger.
__all__ = ["InboxItem", "Messenger", "dumps_item"]


class Messenger:
    def __init__(
        self,
        home: Path,
        server: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        read_receipts: bool = True,
        typing_indicators: bool = True,
    ) -> None:
        self.home = home
        self.state = StateStore(home)
        server_url = server or self.state.get("server") or "http://127.0.0.1:8000"
        self.api = ApiClient(server_url, transport=transport)
        self.session = Session(self.state, self.api)
        self.contacts = ContactBook(self.state, self.api)
        self.groups = GroupBook(self.state, self.api, self.session, self.contacts, self.record_sent)
        self.receipts = ReceiptBook(self.state, self.api, self.session, self.contacts)
        self.inbox = InboxReader(self.state, self.session, self.contacts, self.groups, self.receipts)
        # Protocol v2 (PROTOCOL.md 15): this home's device, used for direct conversations
        # once both accounts have a device list (15.12); see enable_v2.
        self.v2 = V2Client(self.state, self.session, self.contacts)
        # Whether this device tells others it has read their messages, or is typing
        # (both opt-outs).
        self.read_receipts = read_receipts
        self.typing_indicators = typing_indicators
        # Why v2 did not start for this process (start_v2), once said.
        self.v2_off: str | None = None

    async def close(self) -> None:
        await self.api.close()
        self.state.close()

    async def __aenter__(self) -> Messenger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def username(self) -> Username:
        return self.session.username

    @property
    def server_url(self) -> str:
        return self.api.base_url

    @property
    def identity(self) -> PrivateIdentity | None:
        """This device's unlocked keys (None while locked)."""
        return self.session.identity

    def _me(self) -> PrivateIdentity:
        return self.session.me()

    # Account and contacts (session.py, contacts.py) ---------------------------------
    async def register(self, username: str, password: str) -> None:
        await self.session.register(username, password)

    async def login(self, username: str, password: str) -> None:
        """Start a new session and unlock the keys."""
        await self.session.login(username, password)

    async def unlock(self, password: str) -> None:
        """Unlock the keys within the existing session (no new session is made)."""
        await self.session.unlock(password)

    async def ensure_token(self) -> None:
        await self.session.ensure_token()

    async def logout(self) -> None:
        await self.session.logout()

    async def change_password(self, current: str, new: str) -> int:
        # A rotated account key is sealed under the password too (15.11): sealed again in
        # the same request, obtained before anything changes.
        return await self.session.change_password(current, new, self.v2.account_key_seal_for)

    async def fetch_identity(self, username: str) -> PublicIdentity:
        """The keys the server publishes now (checked, not pinned)."""
        return await self.contacts.fetch_identity(username)

    async def trusted_identity(self, username: str) -> PublicIdentity:
        return await self.contacts.trusted_identity(username)

    def pinned_identity(self, username: str) -> PublicIdentity | None:
        return self.contacts.pinned_identity(username)

    def accept_key_change(self, username: str) -> bool:
        return self.contacts.accept_key_change(username)

    # Sending ----------------------------------------------------------------------
    async def seal_text(self, peer: str, text: str) -> Envelope:
        return await self._seal(peer, {"type": "text", "text": text})

    async def _seal(self, peer: str, payload: dict[str, Any]) -> Envelope:
        me = self._me()
        peer_identity = await self.trusted_identity(peer)
        conversation_id = direct_conversation_id(me.username, peer_identity.username)
        recipients = {me.username: me.public, peer_identity.username: peer_identity}
        return seal_message(me, conversation_id, recipients, payload)

    def group_target(self, target: str) -> str | None:
        """The group id ``target`` names (its id, or '#' and its name here); None for a user.

        A valid username is always the user, even if a group is named so (see group_address).
        """
        return self.groups.address(target)

    async def send_file(
        self, target: str, path: Path, *, caption: str | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Encrypt and upload a file, then share it with a contact or a group in a signed message.

        The recipients' keys are checked (and a key change refused) before anything is uploaded.
        """
        await self.ensure_token()
        group_id = self.group_target(target)
        if group_id is not None:
            await self.groups.seal(group_id, {"type": "text", "text": ""})  # checks members and keys first
            conversation_id = group_id
        else:
            peer_identity = await self.trusted_identity(target)
            if await self.v2.uses_v2(peer_identity.username):
                return await send_file_v2(
                    self.v2, self.api, peer_identity.username, path, caption=caption, progress=progress
                )
            conversation_id = (await self.api.open_direct(peer_identity.username))["id"]
        descriptor = await upload_file(self.api, conversation_id, path, progress)
        await self.ensure_token()
        payload = descriptor.to_payload(caption)
        if group_id is not None:
            envelope = await self.groups.seal(group_id, payload)
        else:
            envelope = await self._seal(peer_identity.username, payload)
        result = await self.api.send(envelope.to_wire())
        self.record_sent(envelope, caption, result, descriptor)
        return result | {"file_id": descriptor.file_id, "size": descriptor.size}

    async def get_file(self, file_id: str, destination: Path, *, progress: Progress | None = None) -> Path:
        """Download a file shared with us; ``destination`` is a directory or a new file path."""
        stored = self.state.get_file(file_id)
        if stored is None:
            raise ClientError(f"no file {file_id} in any message received here; run `securechat inbox` first")
        descriptor = FileDescriptor.from_payload({"file": stored})
        if destination.is_dir():
            name = safe_file_name(descriptor.name, fallback=descriptor.file_id)
            destination = unused_path(destination, name)
        elif destination.exists():
            raise ClientError(f"{destination} already exists")
        await self.ensure_token()
        return await download_file(self.api, descriptor, destination, progress)

    async def send_text(self, peer: str, text: str) -> dict[str, Any]:
        """Send a text to a contact, or to a group (by its id, or '#' and its name here)."""
        await self.ensure_token()
        group_id = self.group_target(peer)
        if group_id is not None:
            return await self.groups.send(group_id, {"type": "text", "text": text})
        if await self.v2.uses_v2(peer):
            sent, notices = await self.v2.send(peer, {"type": "text", "text": text})
            return sent.answer | {"notices": [item.to_json() for item in notices]}
        envelope = await self.seal_text(peer, text)
        result = await self.api.send(envelope.to_wire())
        self.record_sent(envelope, text, result)
        return result

    async def enable_v2(self) -> str:
        """Give this home a v2 device (once), listed and with prekeys; its id."""
        return (await self.v2.enable()).device_id

    async def start_v2(self) -> str | None:
        """v2 is the default (PROTOCOL.md 15.12): make sure this home is a listed device
        with prekeys, as every unlocked start does. If it cannot (this home was revoked
        from another device, the server refused or could not be reached), the command goes
        on in v1; what to tell the user is returned."""
        try:
            await self.enable_v2()
        except Revoked as exc:
            return str(exc)
        except ClientError as exc:
            return f"protocol v2 could not start ({exc}); this goes on in protocol v1"
        return None

    async def other_devices(self) -> int:
        """How many other devices the account's verified list names."""
        return sum(1 for entry in await self.v2.devices() if not entry.this_device)

    async def sync_v2(self) -> list[InboxItem]:
        """This device's v2 inbox (nothing while it has no v2 device or is locked)."""
        if self.identity is None or self.v2.device() is None:
            return []
        try:
            return await self.v2.sync()
        except Revoked as exc:
            # Its v1 inbox was read and acknowledged already: say why nothing v2 comes.
            return [InboxItem(kind="notice", seq=0, verified=True, text=str(exc))]

    async def post_envelope(self, envelope: Envelope) -> dict[str, Any]:
        """Send a sealed envelope over HTTP; the server's answer (message id, seq, time)."""
        await self.ensure_token()
        return await self.api.send(envelope.to_wire())

    def record_sent(
        self,
        envelope: Envelope,
        text: str | None,
        result: dict[str, Any],
        descriptor: FileDescriptor | None = None,
    ) -> None:
        header = envelope.header
        peer: str
        if header.conversation_id.startswith("grp-"):
            peer = header.conversation_id
        else:
            peer = next((r for r in envelope.recipients if r != header.sender), header.sender)
        with self.state.transaction():
            if self.state.seen_record(header.message_id) is not None:
                return
            # Its copy in this device's inbox is then a duplicate, not news (14.2).
            self.state.put_seen(header.message_id, SeenRecord(b64encode(envelope.signature), None))
            self.state.add_message(
                seq=result.get("seq"),
                message_id=header.message_id,
                conversation_id=header.conversation_id,
                sender=header.sender,
                peer=peer,
                text=text,
                sent_at=header.sent_at,
                server_ts=result.get("server_ts"),
                verified=1,
                status="sent",
                # Who it was sealed for: a receipt for it must come from one of them (14.7).
                recipients=json.dumps(list(envelope.recipients)),
            )
            if descriptor is not None:
                shared = descriptor.to_payload()["file"]
                self.state.add_file(shared["id"], header.message_id, header.sender, shared)

    # Receiving --------------------------------------------------------------------
    async def process_frame(self, frame: dict[str, Any]) -> InboxItem | None:
        """Turn one inbox frame into an item and record it (see receiving.InboxReader)."""
        return await self.inbox.frame(frame)

    async def sync_inbox(self) -> list[InboxItem]:
        """Fetch everything after the last sequence over REST, record it, acknowledge it."""
        await self.ensure_token()
        items: list[InboxItem] = []
        while True:
            page = await self.api.inbox(self.state.last_seq())
            entries = page["entries"]
            for frame in entries:
                item = await self.process_frame(frame)
                if item is not None:
                    items.append(item)
            # Always acknowledge: an ack lost on an earlier connection is made good here.
            # This client signs its own receipts (PROTOCOL.md 9.3): the server makes none.
            await self.api.ack(self.state.last_seq(), signed_receipts=True)
            await self.receipts.send_delivered()
            if len(entries) < 200:
                return items + await self.sync_v2()

    async def mark_read(self, conversation_id: str, message_ids: list[str]) -> int:
        """Send signed read receipts (PROTOCOL.md 9.3) for messages of others shown to the
        user (unless turned off with SECURECHAT_READ_RECEIPTS=false); how many went."""
        if not self.read_receipts or not message_ids:
            return 0
        await self.ensure_token()
        # A direct conversation in v2 gets its receipts in v2 (PROTOCOL.md 15.17).
        sent_v2 = await self.v2.send_read(conversation_id, message_ids)
        if sent_v2 is not None:
            return sent_v2
        return await self.receipts.send_read(conversation_id, message_ids)

    def stored_messages(self, peer: str | None = None) -> list[dict[str, Any]]:
        files = self.state.files_by_message()
        rows = self.state.messages(peer)
        for row in rows:
            shared = files.get(row["message_id"]) if row["verified"] else None
            row["file"] = {k: v for k, v in shared.items() if k != "key"} if shared else None
        return rows


def dumps_item(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False)
