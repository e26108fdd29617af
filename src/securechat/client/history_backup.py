"""The terminal client's history backups (PROTOCOL.md 15.10.1).

What is backed up is the history this home keeps (its ``messages`` table): every verified
message with a text, as shown. File messages (their descriptors hold file keys) and
refused items are not. The recovery key is made here, shown once, and kept in this
home's state sealed like the v2 records (client/v2/sealed.py: under a key derived from
the account key, so opening it needs the password). The state holds the history up to
now in the clear, but the recovery key would also open every *later* backup: a copy of
the home's files alone must not give that. It is never sent to the server and never
derived from the password.

The highest backup version this home has seen (uploaded or restored) under its recovery
key is kept too, with which key it belongs to (``key_id``), so an older backup of that key
the server hands back later is refused (``backup_rollback``), and an upload never goes
below it (``BackupBehind``: the server's copy was deleted or rolled back; the user
decides). Another key has its own count: turning backups on again (a new key) or
restoring one made under another key starts from what that key has seen. A restore adds
only the rows that pass a hand-over's row check (``client.core.v2.backup``), since
whoever held the recovery key once can upload any archive; what it skips is counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol.encoding import b64decode, b64encode
from ..protocol.errors import VerificationFailed
from ..protocol.v2.backup import (
    MAX_SAFE_INTEGER,
    MAX_SEALED_BYTES,
    Archive,
    BackupMessage,
    BackupRefused,
    format_recovery_key,
    open_backup,
    parse_recovery_key,
    seal_backup,
)
from .api import ApiClient
from .core.v2.backup import restore_rows
from .errors import ApiError, ClientError, ServerMisbehaved
from .session import Session
from .state import StateStore
from .v2.device import account_seed
from .v2.sealed import local_state_key, open_record, seal_record

PATH = "/api/v1/account/history-backup"
KEY = "history_backup.recovery_key.sealed"
# Where earlier releases kept the key unsealed; sealed and removed when next read.
UNSEALED_KEY = "history_backup.recovery_key"
HIGHEST = "history_backup.highest_version"
# Which recovery key HIGHEST belongs to (``key_id``); absent in homes of earlier
# releases, whose highest version then counts for any key.
HIGHEST_KEY = "history_backup.highest_key"
KEY_ID_LABEL = b"securechat/v2/history-backup/key-id\x00"
# The longest answer to GET: the largest sealed backup in base64, and its few other
# members. Read with this bound as it streams (a malicious server could send without end).
MAX_ANSWER_BYTES = 4 * ((MAX_SEALED_BYTES + 2) // 3) + 4096


def key_id(key: bytes) -> str:
    """A name for a recovery key in this home's state: which key the highest version seen
    belongs to. A hash of it (the key cannot be had back from it)."""
    return hashlib.sha256(KEY_ID_LABEL + key).hexdigest()[:32]


class BackupNotEnabled(ClientError):
    pass


class BackupBehind(ClientError):
    """The server holds an older version than this home has seen under its key: the backup
    was deleted (by a device of the account or anyone with the password) or rolled back.
    Nothing is uploaded: going on from the server's version would let that key's older
    backups, replayed by the server, pass for new ones."""

    def __init__(self, stored: int, highest: int) -> None:
        super().__init__(
            f"the server holds backup version {stored}, older than version {highest} this home has "
            "seen under its recovery key: the backup was deleted or rolled back, so nothing was "
            "uploaded. Restore the backup there with its recovery key (`securechat backup restore`), "
            "or turn backups off here (`securechat backup disable`) and on again with a new key"
        )
        self.stored = stored
        self.highest = highest


@dataclass(frozen=True)
class Uploaded:
    version: int
    messages: int
    size: int


@dataclass(frozen=True)
class Restored:
    version: int
    messages: int  # rows in the backup
    added: int  # new to this home
    present: int = 0  # fitting rows whose message id this home holds: its copy kept
    differing: int = 0  # of those, rows whose conversation, sender or text differ from it
    group: int = 0  # rows of group conversations, not restored
    unfit: int = 0  # rows that fail the row check of 15.10.2, not restored
    repeated: int = 0  # rows with a message id an earlier row has, not restored

    def lines(self) -> list[str]:
        """What to tell the user: the counts, then each kind of row left out."""
        lines = [f"backup {self.version}: {self.messages} messages, {self.added} new to this home"]
        if self.present:
            lines.append(f"{_count(self.present, 'message')} already here")
        if self.differing:
            lines.append(
                f"{self.differing} of them here with another conversation, sender or text than in "
                "the backup: the copy here was kept"
            )
        if self.group:
            lines.append(
                f"{_count(self.group, 'group message')} not restored: a backup restores direct messages only"
            )
        if self.unfit:
            what = "not a direct message" if self.unfit == 1 else "not direct messages"
            lines.append(
                f"{_count(self.unfit, 'message')} not restored: {what} of this account (an id, "
                "conversation, sender or text none of your messages can have)"
            )
        if self.repeated:
            whose = "its message id" if self.repeated == 1 else "their message ids"
            lines.append(
                f"{_count(self.repeated, 'message')} not restored: {whose} came earlier in the backup"
            )
        return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class HistoryBackups:
    def __init__(
        self,
        state: StateStore,
        api: ApiClient,
        session: Session,
        sealing_key: Callable[[], bytes] | None = None,
    ) -> None:
        self.state = state
        self.api = api
        self.session = session
        self._sealing_key = sealing_key or (lambda: local_state_key(account_seed(session.me())))

    def enabled(self) -> bool:
        return self.state.get(KEY) is not None or self.state.get(UNSEALED_KEY) is not None

    def _keep(self, key: bytes) -> None:
        self.state.put(KEY, b64encode(seal_record(self._sealing_key(), KEY, key)))
        self.state.put(UNSEALED_KEY, None)

    def _recovery_key(self) -> bytes | None:
        sealed = self.state.get(KEY)
        if sealed is not None:
            try:
                return open_record(self._sealing_key(), KEY, b64decode(sealed))
            except VerificationFailed as exc:
                raise ClientError("this home's recovery key does not open with this account's keys") from exc
        unsealed = self.state.get(UNSEALED_KEY)
        if unsealed is None:
            return None
        key = b64decode(unsealed)
        self._keep(key)
        return key

    def highest_seen(self, key: bytes | None = None) -> int:
        """The highest version this home has seen; with ``key``, under that key (0 for a key
        it has not seen a backup of)."""
        highest = int(self.state.get(HIGHEST) or 0)
        owner = self.state.get(HIGHEST_KEY)
        if key is None or owner is None or owner == key_id(key):
            return highest
        return 0

    def _saw(self, key: bytes, version: int) -> None:
        """Note that ``version`` of ``key``'s backups was uploaded or restored here."""
        self.state.put(HIGHEST, str(max(version, self.highest_seen(key))))
        self.state.put(HIGHEST_KEY, key_id(key))

    def _settle_highest(self, key: bytes | None) -> None:
        """A highest version kept without its key (an earlier release) belongs to the key
        kept with it; with no key kept, it is dropped (the caller is the user's delete)."""
        if self.state.get(HIGHEST) is None or self.state.get(HIGHEST_KEY) is not None:
            return
        if key is None:
            self.state.put(HIGHEST, None)
        else:
            self.state.put(HIGHEST_KEY, key_id(key))

    def disable(self) -> None:
        """Turn backups off in this home: forget its recovery key (the server's copy stays
        and still opens with the key written down). The highest version seen under that
        key stays, so restoring with it later still refuses its older backups."""
        try:
            kept = self._recovery_key()
        except ClientError:
            kept = None  # a key that does not open is forgotten all the same
        with self.state.transaction():
            if kept is not None:
                self._settle_highest(kept)
            self.state.put(KEY, None)
            self.state.put(UNSEALED_KEY, None)

    async def delete(self) -> bool:
        """Delete the account's backup on the server and turn backups off here; whether
        there was one. Turning them on again makes a new key, whose versions start at 1."""
        answer = await self.api.request("DELETE", PATH)
        self.disable()
        # A count that belongs to no key (nothing to tie it to) would hold back the new
        # key's first upload: the user's delete ends it.
        self._settle_highest(None)
        return bool(answer.get("deleted")) if isinstance(answer, dict) else False

    def local_archive(self, version: int) -> Archive:
        with self.state.transaction() as db:
            rows = db.execute(
                "SELECT message_id, conversation_id, sender, peer, sent_at, server_ts, text FROM messages "
                "WHERE verified = 1 AND text IS NOT NULL AND message_id IS NOT NULL ORDER BY id"
            ).fetchall()
        messages = tuple(
            BackupMessage(
                str(row["message_id"]),
                str(row["conversation_id"] or ""),
                str(row["sender"] or ""),
                str(row["peer"] or ""),
                int(row["sent_at"] or 0),
                int(row["server_ts"] or 0),
                str(row["text"]),
            )
            for row in rows
        )
        return Archive(str(self.session.username), version, int(time.time() * 1000), messages)

    async def enable(self) -> tuple[str, Uploaded]:
        """Make a recovery key, keep it here, upload a first backup; the key's shown form
        (to print once) and what was uploaded."""
        if self.enabled():
            raise ClientError("backups are already on for this home (`securechat backup now` uploads one)")
        key = os.urandom(32)
        self._keep(key)
        try:
            uploaded = await self.upload()
        except BaseException:
            self.state.put(KEY, None)
            raise
        return format_recovery_key(key), uploaded

    async def upload(self) -> Uploaded:
        """Seal this home's history as the next version and upload it. The server takes
        only its stored version plus one: if another home of the account uploaded a later
        version meanwhile, go above it once; if it holds an older one than this home has
        seen under its key, upload nothing (``BackupBehind``)."""
        key = self._recovery_key()
        if key is None:
            raise BackupNotEnabled("backups are off for this home: run `securechat backup enable`")
        highest = self.highest_seen(key)
        version = highest + 1
        for attempt in range(2):
            if version >= MAX_SAFE_INTEGER:
                raise ClientError(
                    "the backup's versions are used up: `securechat backup delete`, then "
                    "`securechat backup enable` starts again under a new key"
                )
            archive = self.local_archive(version)
            sealed = seal_backup(key, archive, os.urandom(12))
            try:
                await self.api.request("PUT", PATH, json={"version": version, "sealed": b64encode(sealed)})
            except ApiError as exc:
                stored = exc.body.get("version") if isinstance(exc.body, dict) else None
                if (
                    exc.code != "backup_version_stale"
                    or not isinstance(stored, int)
                    or isinstance(stored, bool)
                ):
                    raise
                if stored < highest:
                    raise BackupBehind(stored, highest) from None
                if attempt or stored < version:
                    raise
                version = stored + 1
                continue
            self._saw(key, version)
            return Uploaded(version, len(archive.messages), len(sealed))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(self) -> object:
        """The server's answer to GET, refused as ``backup_too_large`` once it is longer
        than any backup can be: before reading it when its length is declared, else as
        soon as more has arrived."""
        async with self.api.stream("GET", PATH) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise BackupRefused("backup_too_large")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise BackupRefused("backup_too_large")
            status = response.status_code
        try:
            answer = json.loads(body)
        except ValueError as exc:
            raise ServerMisbehaved(f"the server answered {status} without JSON") from exc
        if status >= 400:
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            error = error if isinstance(error, dict) else {}
            raise ApiError(status, str(error.get("code", "error")), str(error.get("message", "")), error)
        return answer

    async def restore(self, typed_key: str) -> Restored:
        """Check the typed key (its checksum, before anything is downloaded), fetch the
        latest backup, open it, and add the rows that pass the hand-over's row check
        (``restore_rows``) and whose message ids this home does not hold: a message it
        holds keeps the copy here (it was checked here; the backup's row is only as
        trustworthy as whoever held the recovery key)."""
        key = parse_recovery_key(typed_key)
        answer = await self._fetch()
        version = answer.get("version") if isinstance(answer, dict) else None
        sealed_b64 = answer.get("sealed") if isinstance(answer, dict) else None
        if not isinstance(version, int) or isinstance(version, bool) or not isinstance(sealed_b64, str):
            raise ClientError("the server's answer is not a backup")
        me = str(self.session.username)
        archive = open_backup(key, me, version, b64decode(sealed_b64), highest_seen=self.highest_seen(key))
        sorted_rows = restore_rows(me, archive.messages)
        added = present = differing = 0
        with self.state.transaction() as db:
            for message in sorted_rows.rows:
                held = db.execute(
                    "SELECT conversation_id, sender, text FROM messages WHERE message_id = ?",
                    (message.message_id,),
                ).fetchall()
                if held:
                    present += 1
                    same = (message.conversation_id, message.sender, message.text)
                    if not any(tuple(row) == same for row in held):
                        differing += 1
                    continue
                self.state.add_message(
                    message_id=message.message_id,
                    conversation_id=message.conversation_id,
                    sender=message.sender,
                    peer=message.peer,
                    text=message.text,
                    sent_at=message.sent_at,
                    server_ts=message.server_ts,
                    verified=1,
                    status="sent" if message.sender == me else None,
                    imported="backup",
                )
                added += 1
            self._settle_highest(self._recovery_key())
            self._keep(key)
            self._saw(key, version)
        return Restored(
            version,
            len(archive.messages),
            added,
            present=present,
            differing=differing,
            group=sorted_rows.group,
            unfit=sorted_rows.unfit,
            repeated=sorted_rows.repeated,
        )
