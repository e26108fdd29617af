"""The client: accounts, key pinning, sealing and opening messages, inbox sync.

Every inbox frame becomes an :class:`InboxItem`: a verified message, a receipt, or an
unverifiable message with a reason. Nothing that fails a check is dropped or shown
as valid.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..protocol import errors as protocol_errors
from ..protocol.encoding import b64encode
from ..protocol.envelope import Envelope, open_message, seal_message
from ..protocol.files import FileDescriptor
from ..protocol.groups import GroupChange
from ..protocol.identifiers import ConversationId, Username, direct_conversation_id, parse_username
from ..protocol.kdf import KdfParams, derive_keys
from ..protocol.keys import PrivateIdentity, PublicIdentity, open_key_bundle, seal_key_bundle
from .api import ApiClient
from .errors import ApiError, ClientError, KeyChanged, NotLoggedIn, ServerMisbehaved
from .files import Progress, download_file, safe_file_name, unused_path, upload_file
from .groups import GroupBook
from .passwords import check_password
from .state import StateStore

# Refresh the access token this long before it expires.
_REFRESH_MARGIN_S = 60


@dataclass
class InboxItem:
    kind: str  # "message" or "receipt"
    seq: int
    verified: bool = False
    message_id: str | None = None
    conversation_id: str | None = None
    sender: str | None = None
    peer: str | None = None
    text: str | None = None
    sent_at: int | None = None
    server_ts: int | None = None
    reason: str | None = None
    recipient: str | None = None
    status: str | None = None
    message_ids: list[str] = field(default_factory=list)
    # A shared file: id, name, media_type, size, sha256 (never the key).
    file: dict[str, Any] | None = None
    # The same with its key, kept in the local state so the file can be fetched later.
    file_with_key: dict[str, Any] | None = field(default=None, repr=False)

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


def _identity_dict(identity: PublicIdentity) -> dict[str, str]:
    wire = identity.to_wire()
    return {k: wire[k] for k in ("signing_key", "encryption_key", "encryption_key_signature")}


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
        self.identity: PrivateIdentity | None = None
        self._token_lock = asyncio.Lock()
        self.groups = GroupBook(self)
        # Whether this device tells others it has read their messages, or is typing
        # (both opt-outs).
        self.read_receipts = read_receipts
        self.typing_indicators = typing_indicators

    async def close(self) -> None:
        await self.api.close()
        self.state.close()

    async def __aenter__(self) -> Messenger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def username(self) -> Username:
        name = self.state.get("username")
        if name is None:
            raise NotLoggedIn("not logged in: run `securechat login USER` first")
        return Username(name)

    def _me(self) -> PrivateIdentity:
        if self.identity is None:
            raise NotLoggedIn("keys are locked: this command needs your password")
        return self.identity

    # Accounts ---------------------------------------------------------------------
    async def register(self, username: str, password: str) -> None:
        name = parse_username(username)
        self._check_home_is_for(name)
        check_password(password, name)
        params = KdfParams.generate()
        derived = await asyncio.to_thread(derive_keys, password, params)
        identity = await asyncio.to_thread(PrivateIdentity.generate, name)
        body = {
            "username": name,
            "auth_key": b64encode(derived.auth_key),
            "kdf": params.to_wire(),
            "public_keys": _identity_dict(identity.public),
            "key_bundle": seal_key_bundle(identity, derived.wrap_key),
        }
        answer = await self.api.register(body)
        with self.state.transaction():
            self._save_session(name, answer)
            self.state.put("last_seq", "0")
            self.state.pin_contact(name, _identity_dict(identity.public))
        self.identity = identity

    async def login(self, username: str, password: str) -> None:
        """Start a new session and unlock the keys."""
        name = parse_username(username)
        self._check_home_is_for(name)
        params = KdfParams.from_wire((await self.api.prelogin(name)).get("kdf"))
        derived = await asyncio.to_thread(derive_keys, password, params)
        answer = await self.api.login(name, b64encode(derived.auth_key))
        identity = self._open_bundle(answer["key_bundle"], derived.wrap_key, name)
        with self.state.transaction():
            self._check_home_is_for(name)
            self._save_session(name, answer)
            if self.state.get_contact(name) is None:
                self.state.pin_contact(name, _identity_dict(identity.public))
        self.identity = identity
        await self._check_own_keys()

    def _check_home_is_for(self, name: Username) -> None:
        """One home, one account: another account's history and pins must not mix in."""
        if self.state.get("username") not in (None, name):
            raise NotLoggedIn("this SECURECHAT_HOME belongs to another user; use another directory")

    async def unlock(self, password: str) -> None:
        """Unlock the keys within the existing session (no new session is made)."""
        name = self.username
        await self.ensure_token()
        bundle = await self.api.key_bundle()
        params = KdfParams.from_wire(bundle["kdf"])
        derived = await asyncio.to_thread(derive_keys, password, params)
        self.identity = self._open_bundle(bundle["key_bundle"], derived.wrap_key, name)
        await self._check_own_keys()

    def _open_bundle(self, bundle: Any, wrap_key: bytes, name: Username) -> PrivateIdentity:
        try:
            return open_key_bundle(bundle, wrap_key, name)
        except protocol_errors.VerificationFailed as exc:
            raise ServerMisbehaved("the key bundle does not open with this password") from exc

    async def _check_own_keys(self) -> None:
        """The directory must publish exactly our keys; anything else is substitution."""
        me = self._me()
        published = await self.api.public_keys(me.username)
        if {k: published.get(k) for k in ("signing_key", "encryption_key")} != {
            k: _identity_dict(me.public)[k] for k in ("signing_key", "encryption_key")
        }:
            raise ServerMisbehaved("the server publishes keys for you that are not yours")

    def _save_session(self, name: str, answer: dict[str, Any]) -> None:
        self.state.put("server", self.api.base_url)
        self.state.put("username", name)
        self.state.put("session_id", answer["session_id"])
        self._save_tokens(answer)

    def _save_tokens(self, answer: dict[str, Any]) -> None:
        self.state.put("refresh_token", answer["refresh_token"])
        self.state.put("access_token", answer["access_token"])
        self.state.put("access_expires", str(int(time.time()) + int(answer["expires_in"])))
        self.api.access_token = answer["access_token"]

    async def ensure_token(self) -> None:
        """Use the cached access token, or rotate the refresh token.

        Rotation holds a lock file, so two commands on one home never both spend the
        same refresh token (which the server would treat as theft and revoke).
        """
        async with self._token_lock:
            with self.state.file_lock():
                refresh_token = self.state.get("refresh_token")
                if refresh_token is None:
                    raise NotLoggedIn("not logged in: run `securechat login USER` first")
                expires = int(self.state.get("access_expires") or 0)
                if expires - _REFRESH_MARGIN_S > time.time():
                    self.api.access_token = self.state.get("access_token")
                    return
                try:
                    answer = await self.api.refresh(refresh_token)
                except ApiError as exc:
                    if exc.status == 401:
                        self.state.clear_session()
                        raise NotLoggedIn("the session has ended: log in again") from exc
                    raise
                self._save_tokens(answer)

    async def logout(self) -> None:
        await self.ensure_token()
        try:
            await self.api.logout()
        finally:
            with self.state.transaction():
                self.state.clear_session()
            self.identity = None

    async def change_password(self, current: str, new: str) -> int:
        name = self.username
        check_password(new, name)
        await self.ensure_token()
        bundle = await self.api.key_bundle()
        old_params = KdfParams.from_wire(bundle["kdf"])
        old = await asyncio.to_thread(derive_keys, current, old_params)
        identity = self._open_bundle(bundle["key_bundle"], old.wrap_key, name)
        params = KdfParams.generate()
        new_keys = await asyncio.to_thread(derive_keys, new, params)
        answer = await self.api.change_password(
            {
                "current_auth_key": b64encode(old.auth_key),
                "new_auth_key": b64encode(new_keys.auth_key),
                "kdf": params.to_wire(),
                "key_bundle": seal_key_bundle(identity, new_keys.wrap_key),
            }
        )
        self.identity = identity
        return int(answer["revoked_sessions"])

    # Trust ------------------------------------------------------------------------
    async def fetch_identity(self, username: str) -> PublicIdentity:
        name = parse_username(username)
        data = await self.api.public_keys(name)
        try:
            return PublicIdentity.from_wire(name, data).verified()
        except protocol_errors.ProtocolError as exc:
            raise ServerMisbehaved(f"the server's keys for {name} are invalid: {exc}") from exc

    async def trusted_identity(self, username: str) -> PublicIdentity:
        """The contact's keys: pinned on first use; a change is recorded and refused."""
        current = await self.fetch_identity(username)
        current_dict = _identity_dict(current)
        with self.state.transaction():
            contact = self.state.get_contact(current.username)
            if contact is None:
                self.state.pin_contact(current.username, current_dict)
                return current
            changed = contact.identity != current_dict
            if changed:
                # Recorded (committed) so the change can be shown and accepted later.
                self.state.set_pending_identity(current.username, current_dict)
        if changed:
            raise KeyChanged(current.username, contact.identity, current_dict)
        return current

    def pinned_identity(self, username: str) -> PublicIdentity | None:
        contact = self.state.get_contact(username)
        if contact is None:
            return None
        return PublicIdentity.from_wire(Username(username), dict(contact.identity))

    def accept_key_change(self, username: str) -> bool:
        with self.state.transaction():
            contact = self.state.get_contact(username)
            if contact is None or contact.pending_identity is None:
                return False
            self.state.pin_contact(username, contact.pending_identity)
        return True

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
        envelope = await self.seal_text(peer, text)
        result = await self.api.send(envelope.to_wire())
        self.record_sent(envelope, text, result)
        return result

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
            if self.state.seen(header.message_id):
                return
            self.state.mark_seen(header.message_id)
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
            )
            if descriptor is not None:
                self._remember_file(header.message_id, header.sender, descriptor.to_payload()["file"])

    # Receiving --------------------------------------------------------------------
    def _direct_peer(self, conversation_id: ConversationId, envelope: Envelope) -> Username | None:
        """The other member of a direct conversation, if the id really is ours with them."""
        me = self.username
        for name in envelope.recipients:
            if name != me and direct_conversation_id(me, name) == conversation_id:
                return name
        return None

    async def process_frame(self, frame: dict[str, Any]) -> InboxItem | None:
        """Turn one inbox frame into an item and record it; None for an already-seen seq."""
        seq = frame.get("seq")
        if not isinstance(seq, int) or seq <= self.state.last_seq():
            return None
        if frame.get("type") == "group":
            return await self._group_entry(seq, frame)
        if frame.get("type") == "receipt":
            raw_ids = frame.get("message_ids")
            message_ids = [m for m in raw_ids if isinstance(m, str)] if isinstance(raw_ids, list) else []
            item = InboxItem(
                kind="receipt",
                seq=seq,
                recipient=frame.get("recipient"),
                status=frame.get("status"),
                message_ids=message_ids,
            )
            with self.state.transaction():
                if item.status in ("delivered", "read"):
                    for message_id in message_ids:
                        self.state.set_status(message_id, str(item.status))
                self.state.put("last_seq", str(seq))
            return item
        item = await self._open_frame(seq, frame)
        with self.state.transaction():
            if item.verified and item.message_id:
                if self.state.seen(item.message_id):
                    if item.sender == self.username:
                        # Our own message, already recorded when we sent it.
                        self.state.put("last_seq", str(seq))
                        return item
                    item.verified, item.reason, item.text = False, "replayed message id", None
                    item.file = None
                else:
                    self.state.mark_seen(item.message_id)
                    if item.file is not None and item.sender is not None:
                        self._remember_file(item.message_id, item.sender, item.file_with_key)
            self.state.add_message(
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
                status="received" if item.sender != self.username else "sent",
            )
            self.state.put("last_seq", str(seq))
        return item

    async def _group_entry(self, seq: int, frame: dict[str, Any]) -> InboxItem:
        group_id, change, problem = await self.groups.on_change(frame)
        if change is None or problem is not None:
            text, verified = None, False
        else:
            text, verified = describe_change(change), True
        item = InboxItem(
            kind="group",
            seq=seq,
            verified=verified,
            conversation_id=group_id,
            sender=change.actor if change else None,
            peer=group_id,
            text=text,
            sent_at=change.at if change else None,
            reason=problem,
        )
        with self.state.transaction():
            self.state.add_message(
                seq=seq,
                conversation_id=group_id,
                sender=item.sender,
                peer=group_id,
                text=text,
                sent_at=item.sent_at,
                verified=int(verified),
                reason=problem,
                status="group",
            )
            self.state.put("last_seq", str(seq))
        return item

    async def _open_frame(self, seq: int, frame: dict[str, Any]) -> InboxItem:
        server_ts = frame.get("server_ts") if isinstance(frame.get("server_ts"), int) else None
        unverifiable = InboxItem(
            kind="message",
            seq=seq,
            message_id=str(frame.get("message_id")),
            sender=str(frame.get("sender")),
            conversation_id=str(frame.get("conversation_id")),
            server_ts=server_ts,
        )
        try:
            envelope = Envelope.from_wire(frame.get("envelope"))
        except protocol_errors.ProtocolError as exc:
            unverifiable.reason = f"malformed envelope: {exc}"
            return unverifiable
        header = envelope.header
        unverifiable.sender = header.sender
        unverifiable.message_id = header.message_id
        unverifiable.conversation_id = header.conversation_id
        unverifiable.sent_at = header.sent_at
        members: frozenset[Username] | None
        if header.conversation_id.startswith("grp-"):
            peer: str | None = header.conversation_id
            unverifiable.peer = peer
            members = await self.groups.recipients_for(envelope)
            if members is None:
                unverifiable.reason = "recipient list differs from the group's signed membership"
                return unverifiable
        else:
            peer = self._direct_peer(header.conversation_id, envelope)
            unverifiable.peer = peer
            if peer is None:
                unverifiable.reason = "conversation does not match its members"
                return unverifiable
            members = frozenset({self.username, peer})
        sender_identity = await self._sender_identity(header.sender)
        if sender_identity is None:
            unverifiable.reason = "sender keys unknown or changed"
            return unverifiable
        try:
            opened = open_message(
                envelope,
                me=self._me(),
                sender_identity=sender_identity,
                conversation_id=header.conversation_id,
                members=members,
            )
        except protocol_errors.ProtocolError:
            unverifiable.reason = "signature, key or ciphertext check failed"
            return unverifiable
        text = opened.payload.get("text")
        if opened.payload.get("type") == "group_info":
            name = str(opened.payload["name"])
            state = await self.groups.local_state(header.conversation_id)
            self.groups.note_info(header.conversation_id, header.sender, opened.payload, state)
            text = f"named the group “{name}”"
        shared: dict[str, Any] | None = None
        if opened.payload.get("type") == "file":
            shared = FileDescriptor.from_payload(opened.payload).to_payload()["file"]
        return InboxItem(
            file={k: v for k, v in shared.items() if k != "key"} if shared else None,
            file_with_key=shared,
            kind="message",
            seq=seq,
            verified=True,
            message_id=header.message_id,
            conversation_id=header.conversation_id,
            sender=header.sender,
            peer=peer,
            text=text if isinstance(text, str) else None,
            sent_at=header.sent_at,
            server_ts=server_ts,
        )

    def _remember_file(self, message_id: str, sender: str, descriptor: dict[str, Any] | None) -> None:
        if descriptor is not None:
            self.state.add_file(descriptor["id"], message_id, sender, descriptor)

    async def _sender_identity(self, sender: Username) -> PublicIdentity | None:
        pinned = self.pinned_identity(sender)
        if pinned is not None:
            return pinned
        try:
            return await self.trusted_identity(sender)
        except (KeyChanged, ServerMisbehaved, ApiError):
            return None

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
            await self.api.ack(self.state.last_seq())
            if len(entries) < 200:
                return items

    async def mark_read(self, conversation_id: str, message_ids: list[str]) -> int:
        """Send read receipts (unless turned off with SECURECHAT_READ_RECEIPTS=false)."""
        if not self.read_receipts or not message_ids:
            return 0
        await self.ensure_token()
        sent = 0
        for start in range(0, len(message_ids), 100):
            answer = await self.api.mark_read(conversation_id, message_ids[start : start + 100])
            sent += int(answer["receipts"])
        return sent

    def stored_messages(self, peer: str | None = None) -> list[dict[str, Any]]:
        files = self.state.files_by_message()
        rows = self.state.messages(peer)
        for row in rows:
            shared = files.get(row["message_id"]) if row["verified"] else None
            row["file"] = {k: v for k, v in shared.items() if k != "key"} if shared else None
        return rows


def dumps_item(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False)


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
