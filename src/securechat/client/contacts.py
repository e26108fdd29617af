"""Contacts' keys: pinned on first use (PROTOCOL.md 8.1), a change recorded and refused
until the user accepts it (8.3)."""

from __future__ import annotations

from ..protocol import errors as protocol_errors
from ..protocol.identifiers import Username, parse_username
from ..protocol.keys import PublicIdentity
from .api import ApiClient
from .errors import ApiError, KeyChanged, ServerMisbehaved
from .session import identity_dict
from .state import Contact, StateStore


class ContactBook:
    def __init__(self, state: StateStore, api: ApiClient) -> None:
        self.state = state
        self.api = api

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
        current_dict = identity_dict(current)
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

    def all(self) -> list[Contact]:
        return self.state.list_contacts()

    def mark_verified(self, username: str, verified: bool = True) -> None:
        """The user compared the safety number (8.2): the mark belongs to the pinned keys."""
        with self.state.transaction():
            self.state.set_verified(username, verified)
