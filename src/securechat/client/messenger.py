"""The client: accounts, key pinning, sealing and opening messages, inbox sync.

Every inbox frame becomes an :class:`InboxItem`: a verified message, a receipt, or an
unverifiable message with a reason. Nothing that fails a check is dropped or shown
as valid.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from ..protocol import errors as protocol_errors
from ..protocol.encoding import b64encode
from ..protocol.envelope import Envelope, seal_message
from ..protocol.files import FileDescriptor
from ..protocol.identifiers import Username, direct_conversation_id, parse_username
from ..protocol.kdf import KdfParams, derive_keys
from ..protocol.keys import PrivateIdentity, PublicIdentity, open_key_bundle, seal_key_bundle
from .api import ApiClient
from .core import SeenRecord, decide_own_keys
from .errors import ApiError, ClientError, KeyChanged, NotLoggedIn, ServerMisbehaved
from .files import Progress, download_file, safe_file_name, unused_path, upload_file
from .groups import GroupBook
from .passwords import check_password
from .receiving import InboxItem, InboxReader
from .state import Contact, StateStore

# InboxItem is re-exported: callers read items from the messenger.
__all__ = ["InboxItem", "Messenger", "dumps_item"]

# Refresh the access token this long before it expires.
_REFRESH_MARGIN_S = 60


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
        self.inbox = InboxReader(self)
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
        """The directory must publish exactly our keys; anything else is substitution (14.6)."""
        me = self._me()
        published = await self.api.public_keys(me.username)
        try:
            identity = PublicIdentity.from_wire(me.username, published)
        except protocol_errors.ProtocolError as exc:
            raise ServerMisbehaved("the server publishes keys for you that are not yours") from exc
        if decide_own_keys(me, identity) is not None:
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
            )
            if descriptor is not None:
                shared = descriptor.to_payload()["file"]
                self.state.add_file(shared["id"], header.message_id, header.sender, shared)

    # Receiving --------------------------------------------------------------------
    async def process_frame(self, frame: dict[str, Any]) -> InboxItem | None:
        """Turn one inbox frame into an item and record it (see receiving.InboxReader)."""
        return await self.inbox.frame(frame)

    async def identity_on_first_use(self, sender: Username) -> PublicIdentity | None:
        """A contact's keys fetched and pinned now (8.1); None if that fails or they changed."""
        try:
            return await self.trusted_identity(sender)
        except (KeyChanged, ServerMisbehaved, ApiError):
            return None

    @staticmethod
    def pending_identity(contact: Contact) -> PublicIdentity | None:
        if contact.pending_identity is None:
            return None
        try:
            return PublicIdentity.from_wire(Username(contact.username), dict(contact.pending_identity))
        except protocol_errors.ProtocolError:
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
