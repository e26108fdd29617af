"""Linking a device to this home's history (PROTOCOL.md 15.10.2).

The old side (``Linker.link``): check the typed link code against the account's freshly
accepted device list (``client.core.v2.link``), seal this home's history archive as a
file (12.2) in the account's conversation with itself, and send its key to that one
device in a v2 message of type ``history_link``. Nothing is uploaded or sent for a code
that names no listed device.

The new side (``link_item`` and ``import_history``): a ``history_link`` that 15.8 has
accepted is decided by the core; a refusal is kept as an unverifiable item with its
reason, an acceptance is downloaded, checked (size, tags, SHA-256, the archive's account)
and its rows checked by the core (each a direct message of this account, else the whole
archive is refused), then merged into the local history, skipping message ids already
here; the import closes the wait the shown code opened, in the same transaction, so one
shown code takes one hand-over.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ...protocol import errors as protocol_errors
from ...protocol.envelope import encode_payload
from ...protocol.files import FILE_CHUNK_BYTES, FileDecryptor, FileDescriptor, FileEncryptor
from ...protocol.identifiers import ConversationId, MessageId, Username, direct_conversation_id
from ...protocol.v2.envelope import EnvelopeV2, HeaderV2, Target, seal_envelope
from ...protocol.v2.link import (
    LINK_ARCHIVE_VERSION,
    LinkRefused,
    encode_link_archive,
    link_code,
    open_link_archive,
)
from ...protocol.v2.setup import Party
from ..core.v2 import AcceptedV2, with_active
from ..core.v2.link import (
    PAYLOAD_TYPE,
    LinkAccepted,
    LinkReason,
    accept_history_link,
    check_archive_rows,
    choose_link_target,
    row_fits,
)
from ..errors import ApiError, ClientError
from ..receiving import InboxItem
from ..state import StateStore

if TYPE_CHECKING:
    from ..api import ApiClient
    from .client import V2Client

ARCHIVE_NAME = "history-archive"
# Showing the link code opens a wait: a hand-over is accepted only until it ends (15.10.2).
EXPECTED_UNTIL = "v2_link_expected_until"
LINK_WAIT_MS = 3_600_000


class LinkFailed(ClientError):
    def __init__(self, reason: LinkReason, message: str) -> None:
        super().__init__(message)
        self.reason: LinkReason = reason


REFUSALS: dict[str, str] = {
    "link_code_malformed": "that is not a link code: 24 characters, in 6 groups of 4",
    "link_code_checksum": "that link code has a typo (its checksum does not match)",
    "link_device_unknown": "no device in your accepted device list shows that code; nothing was sent",
    "link_self": "that is this device's own code; type the code shown on the new device",
    "link_foreign": "not from a device of your account to itself",
    "link_not_for_me": "not addressed to this device alone",
    "link_unexpected": "this device was not waiting for a hand-over (show its link code first)",
    "link_malformed": "it is not a history hand-over",
    "link_too_large": "the history archive is too large",
    "link_archive_corrupt": "the history archive is missing or fails its checks",
    "link_archive_malformed": "the history archive is not your account's",
}


@dataclass(frozen=True)
class Linked:
    device_id: str
    messages: int
    size: int  # the archive's padded size, what the server sees


def is_history_link(payload: dict[str, Any]) -> bool:
    return payload.get("type") == PAYLOAD_TYPE


def own_link_code(v2: V2Client, now: int) -> str:
    """This device's link code (15.10.2), to show so an old device can hand over history;
    showing it opens an hour in which a hand-over is accepted here."""
    device = v2.device()
    if device is None:
        raise ClientError("this home has no device yet: run `securechat devices add`")
    v2.state.put(EXPECTED_UNTIL, str(now + LINK_WAIT_MS))
    return link_code(str(v2.session.username), device.device)


class Linker:
    """The old device's side: hand this home's history to the device named by a code."""

    def __init__(self, v2: V2Client) -> None:
        self.v2 = v2

    async def link(self, typed: str) -> Linked:
        v2 = self.v2
        await v2.session.ensure_token()
        identity = v2.session.me()
        me = str(identity.username)
        device = v2.device()
        if device is None:
            raise ClientError("this home has no device yet: run `securechat devices add`")
        # Fetched and checked now: the device to trust must be in the account's current list.
        own, _ = await v2.directory.refresh(me)
        decision = choose_link_target(typed, me, [] if own is None else own.devices, device.device_id)
        if decision.outcome == "refused":
            raise LinkFailed(decision.reason, REFUSALS[decision.reason])
        target = decision.device
        # Imported here: history_backup imports this package (its sealing key).
        from ..history_backup import HistoryBackups

        kept = HistoryBackups(v2.state, v2.session.api, v2.session).local_archive(LINK_ARCHIVE_VERSION)
        # Only rows the new device accepts (15.10.2): group messages, whose members only
        # their chain tells, and rows without a peer stay behind rather than refuse it all.
        archive = replace(kept, messages=tuple(m for m in kept.messages if row_fits(me, m)))
        padded = encode_link_archive(archive)
        descriptor = await _upload(v2.session.api, me, padded)
        payload = {
            "type": PAYLOAD_TYPE,
            "device_id": target.device_id,
            "archive": descriptor.to_payload()["file"],
        }
        await self._send(
            me, identity.signing_private.public_key().public_bytes_raw(), target.device_id, payload
        )
        return Linked(target.device_id, len(archive.messages), len(padded))

    async def _send(self, me: str, account_key: bytes, target: str, payload: dict[str, Any]) -> None:
        """A 15.8 envelope in the account's conversation with itself, to one device."""
        v2 = self.v2
        sender = v2.sender
        local = v2._ready()
        party = Party(Username(me), account_key, local.device)
        async with v2._sessions_lock:
            for attempt in range(2):
                lists, _ = await sender._lists([me], fetch=True)
                if target not in {d.device_id for d in lists[me].devices}:
                    raise LinkFailed("link_device_unknown", REFUSALS["link_device_unknown"])
                header = HeaderV2(
                    MessageId(str(uuid.uuid4())),
                    ConversationId(direct_conversation_id(Username(me), Username(me))),
                    Username(me),
                    local.device_id,
                    v2.sender.now(),
                    (Target(Username(me), lists[me].version, (target,)),),
                )
                sets = await sender._sessions(party, local, lists, header.target_devices())
                active = {key: sets[key].active for key in sets if sets[key].active is not None}
                envelope, states = seal_envelope(
                    header,
                    encode_payload(payload),
                    os.urandom(32),
                    os.urandom(12),
                    active,  # type: ignore[arg-type]
                    local.signing_seed,
                    os.urandom,
                )
                # As in sending: the new positions are stored before the envelope leaves.
                with v2.state.transaction() as conn:
                    for key, state in states.items():
                        v2.store.put_session_set(conn, key[0], key[1], with_active(sets[key], state))
                try:
                    await sender._post(envelope)
                except ApiError as exc:
                    if exc.status == 409 and exc.code == "device_list_stale" and attempt == 0:
                        continue
                    raise
                return
        raise ClientError("your device list keeps changing; try again")


async def _upload(api: ApiClient, username: str, data: bytes) -> FileDescriptor:
    """Encrypt and upload the padded archive as a file (12.2, 12.4) in the account's
    conversation with itself (opened first: an upload needs an existing conversation)."""
    conversation_id = direct_conversation_id(Username(username), Username(username))
    await api.open_direct(username)
    encryptor = FileEncryptor(len(data))
    await api.create_upload(encryptor.file_id, conversation_id, len(data))
    for index in range(encryptor.chunks):
        chunk = data[index * FILE_CHUNK_BYTES : (index + 1) * FILE_CHUNK_BYTES]
        await api.put_chunk(encryptor.file_id, index, encryptor.encrypt(chunk))
    await api.complete_upload(encryptor.file_id)
    return encryptor.descriptor(ARCHIVE_NAME)


# The new device's side -----------------------------------------------------------------
def link_item(
    state: StateStore,
    decision: AcceptedV2,
    envelope: EnvelopeV2 | None,
    username: str,
    device_id: str,
    item: InboxItem,
    now: int,
) -> tuple[InboxItem, LinkAccepted | None]:
    """What to keep for an accepted ``history_link`` message instead of a text: a notice
    while it is imported, or an unverifiable item with the core's reason."""
    targets = [] if envelope is None else envelope.header.target_devices()
    waiting = state.get(EXPECTED_UNTIL)
    verdict = accept_history_link(
        username=username,
        device_id=device_id,
        sender=decision.sender,
        sender_device=decision.sender_device,
        conversation_id=decision.conversation_id,
        target_devices=targets,
        payload=decision.payload,
        expected_until=None if waiting is None else int(waiting),
        now=now,
    )
    if verdict.outcome == "refused":
        item.verified, item.reason, item.text = False, verdict.reason, None
        return item, None
    item.kind = "notice"
    item.message_id = None
    item.text = f"a history hand-over from device {decision.sender_device} arrived"
    return item, verdict


async def import_history(
    state: StateStore, api: ApiClient, username: str, accepted: LinkAccepted, seq: int
) -> InboxItem:
    """Download, check and merge a hand-over; a notice saying how many messages were new,
    or an unverifiable item with ``link_archive_corrupt`` or ``link_archive_malformed``."""
    conversation = direct_conversation_id(Username(username), Username(username))
    base: dict[str, Any] = {"seq": seq, "sender": username, "peer": username, "conversation_id": conversation}
    try:
        plaintext = await _download(api, accepted)
        archive = open_link_archive(plaintext, username)
    except LinkRefused as exc:
        return _refused(state, InboxItem(kind="message", verified=False, reason=exc.reason, **base))
    except ApiError as exc:
        if exc.status not in (404, 400):
            # Not the archive's fault (the network, the server): nothing is imported and
            # the user is told to link again; the message itself was genuine.
            text = f"the history hand-over from device {accepted.sender_device} could not be downloaded ({exc}); link again from that device"
            return InboxItem(kind="notice", verified=True, text=text, **base)
        return _refused(
            state, InboxItem(kind="message", verified=False, reason="link_archive_corrupt", **base)
        )
    except protocol_errors.VerificationFailed:
        return _refused(
            state, InboxItem(kind="message", verified=False, reason="link_archive_corrupt", **base)
        )
    rows = check_archive_rows(username, archive.messages)
    if rows is not None:
        # One planted row (another conversation, another sender, no 3.2 id) and the
        # archive is not trusted at all; the wait stays open for the genuine hand-over.
        return _refused(state, InboxItem(kind="message", verified=False, reason=rows.reason, **base))
    added = 0
    with state.transaction() as db:
        # One hand-over per shown code: the import closes the wait, atomically with it,
        # so a second hand-over (a forged one pushed after the genuine) is link_unexpected.
        if state.get(EXPECTED_UNTIL) is None:
            unexpected = InboxItem(kind="message", verified=False, reason="link_unexpected", **base)
            state.add_message(
                conversation_id=conversation,
                sender=username,
                peer=username,
                verified=0,
                reason="link_unexpected",
                status="received",
            )
            return unexpected
        state.put(EXPECTED_UNTIL, None)
        for message in archive.messages:
            if db.execute("SELECT 1 FROM messages WHERE message_id = ?", (message.message_id,)).fetchone():
                continue
            state.add_message(
                message_id=message.message_id,
                conversation_id=message.conversation_id,
                sender=message.sender,
                peer=message.peer,
                text=message.text,
                sent_at=message.sent_at,
                server_ts=message.server_ts,
                verified=1,
                status="sent" if message.sender == username else None,
                recipients=json.dumps(sorted({message.sender, message.peer} - {""})),
                imported="link",
            )
            added += 1
    text = f"History from device {accepted.sender_device} imported: {added} messages"
    return InboxItem(kind="notice", verified=True, text=text, **base)


async def _download(api: ApiClient, accepted: LinkAccepted) -> bytes:
    """The archive's plaintext: every chunk's length and tag, then the size and SHA-256
    against the message (12.5), never the server's word."""
    decryptor = FileDecryptor(accepted.archive)
    parts = [
        decryptor.decrypt(await api.get_chunk(accepted.archive.file_id, i))
        for i in range(accepted.archive.chunks)
    ]
    decryptor.finish()
    return b"".join(parts)


def _refused(state: StateStore, item: InboxItem) -> InboxItem:
    with state.transaction():
        state.add_message(
            conversation_id=item.conversation_id,
            sender=item.sender,
            peer=item.peer,
            verified=0,
            reason=item.reason,
            status="received",
        )
    return item
