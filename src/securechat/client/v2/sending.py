"""Sending a direct message over v2 (PROTOCOL.md 15.5, 15.8, 15.16).

One envelope for every device of the peer and every other device of ours: devices
without a session get one from a bundle claimed for them alone (checked by
``client.core.v2.accept_bundle``); the server's 409 ``device_list_stale`` means a list
changed, so the lists are fetched again (through the core) and the message sealed
once more. The new session states are stored before the envelope is posted (a lost answer
must never lead to a message key used twice); the seen record and the sent message
once the server has it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...protocol.encoding import b64encode
from ...protocol.envelope import encode_payload
from ...protocol.identifiers import ConversationId, MessageId, Username, direct_conversation_id
from ...protocol.v2.devices import DeviceList
from ...protocol.v2.envelope import EnvelopeV2, HeaderV2, Target, seal_envelope
from ...protocol.v2.ratchet import SessionState
from ...protocol.v2.setup import Party, initiate_session
from ..core import Refused, SeenRecord
from ..core.v2 import SessionSet, accept_bundle, start_session, with_active
from ..errors import ApiError, ClientError, ServerMisbehaved
from ..state import StateStore
from .device import LocalDevice
from .directory import DeviceDirectory, ListNotice
from .files import shared_file
from .store import V2Store
from .transport import V2Api

REPAIRS = "repair"
# A network failure is tried again with the same envelope this many times in all.
# An envelope whose POST met no server (restarting, unreachable, a gateway error) goes
# again, the same bytes, for this long, waiting longer each time up to the cap.
POST_PATIENCE_S = 60.0
POST_WAIT_CAP_S = 2.0
TRANSIENT_STATUSES = {0, 502, 503, 504}


@dataclass(frozen=True)
class Sent:
    envelope: EnvelopeV2
    answer: dict[str, Any]
    notices: list[ListNotice]


class Sender:
    def __init__(
        self,
        state: StateStore,
        store: V2Store,
        api: V2Api,
        directory: DeviceDirectory,
        now: Callable[[], int],
    ) -> None:
        self.state, self.store, self.api, self.directory, self.now = state, store, api, directory, now

    async def _lists(self, names: list[str], fetch: bool) -> tuple[dict[str, DeviceList], list[ListNotice]]:
        lists: dict[str, DeviceList] = {}
        notices: list[ListNotice] = []
        for name in names:
            accepted = None if fetch else self.directory.accepted(name)
            if accepted is None:
                accepted, news = await self.directory.refresh(name)
                notices += news
            if accepted is None:
                raise ClientError(f"{name} has no device list: this conversation uses protocol v1")
            lists[name] = accepted
        return lists, notices

    def _needs_repair(self, username: str, device_id: str) -> bool:
        with self.state.transaction() as conn:
            repairs = self.store.record(conn, REPAIRS) or []
        return [username, device_id] in repairs

    async def _sessions(
        self,
        me: Party,
        device: LocalDevice,
        lists: dict[str, DeviceList],
        targets: list[tuple[str, str]],
    ) -> dict[tuple[str, str], SessionSet]:
        """Each target device's session set, with a new session for those without an
        active one (or marked for repair by a refused message)."""
        sets: dict[tuple[str, str], SessionSet] = {}
        with self.state.transaction() as conn:
            for name, device_id in targets:
                sets[(name, device_id)] = self.store.session_set(conn, name, device_id)
        missing: dict[str, list[str]] = {}
        for key, sessions in sets.items():
            if sessions.active is None or self._needs_repair(*key):
                missing.setdefault(key[0], []).append(key[1])
        for name, device_ids in missing.items():
            answer = await self.api.claim_bundles(name, sorted(device_ids))
            bundles = answer.get("bundles")
            if not isinstance(bundles, list):
                raise ServerMisbehaved("the server's bundles are not a list")
            found = set()
            for bundle in bundles:
                decision = accept_bundle(bundle, lists[name], self.now())
                if isinstance(decision, Refused):
                    raise ClientError(f"a prekey bundle of {name} is not accepted: {decision.reason}")
                if decision.device.device_id not in device_ids:
                    continue
                found.add(decision.device.device_id)
                state = initiate_session(
                    me,
                    device.dh_private,
                    Party(Username(name), lists[name].account_key, decision.device),
                    decision.signed_prekey,
                    decision.one_time_prekey,
                    os.urandom(32),
                )
                key = (name, decision.device.device_id)
                sets[key] = start_session(sets[key], state)
            if found != set(device_ids):
                raise ClientError(f"a device of {name} has no prekeys yet; try again later")
        return sets

    async def _post(self, envelope: EnvelopeV2) -> dict[str, Any]:
        """POST the envelope; the same envelope again when the network failed (the server
        answers a retry with the same message id as it answered the first time)."""
        deadline = time.monotonic() + POST_PATIENCE_S
        wait = 0.25
        while True:
            try:
                return await self.api.send(envelope.to_wire())
            except ApiError as exc:
                if exc.status not in TRANSIENT_STATUSES or time.monotonic() + wait > deadline:
                    raise
            await asyncio.sleep(wait)
            wait = min(wait * 2, POST_WAIT_CAP_S)

    async def send(
        self,
        identity_name: str,
        account_key: bytes,
        device: LocalDevice,
        peer: str,
        payload: dict[str, Any],
        *,
        keep: bool = True,
    ) -> Sent:
        me_name = Username(identity_name)
        me = Party(me_name, account_key, device.device)
        conversation = direct_conversation_id(me_name, Username(peer))
        message_id = MessageId(str(uuid.uuid4()))
        shared = shared_file(payload)
        notices: list[ListNotice] = []
        for attempt in range(2):
            lists, news = await self._lists(sorted({identity_name, peer}), fetch=attempt > 0)
            notices += news
            if device.device_id not in {d.device_id for d in lists[identity_name].devices}:
                raise ClientError("this device is no longer in your device list (revoked)")
            # The account key as the own accepted list names it: a rotation followed
            # just now (15.11) is what new setups bind.
            me = Party(me_name, lists[identity_name].account_key, device.device)
            targets = tuple(
                Target(
                    Username(name),
                    lists[name].version,
                    tuple(
                        sorted(d.device_id for d in lists[name].devices if d.device_id != device.device_id)
                    ),
                )
                for name in sorted(lists)
            )
            header = HeaderV2(
                message_id, ConversationId(conversation), me_name, device.device_id, self.now(), targets
            )
            sets = await self._sessions(me, device, lists, header.target_devices())
            active: dict[tuple[str, str], SessionState] = {}
            for key, sessions in sets.items():
                assert sessions.active is not None
                active[key] = sessions.active
            envelope, states = seal_envelope(
                header,
                encode_payload(payload),
                os.urandom(32),
                os.urandom(12),
                active,
                device.signing_seed,
                os.urandom,
            )
            # The sessions' new positions are stored before the envelope leaves: if its
            # answer is lost, the next message must not use a message key again (its
            # AES-GCM key and nonce come from it). A position the peer never sees costs
            # it one skipped key, nothing more.
            with self.state.transaction() as conn:
                for key, state in states.items():
                    self.store.put_session_set(conn, key[0], key[1], with_active(sets[key], state))
                repairs = [r for r in (self.store.record(conn, REPAIRS) or []) if tuple(r) not in states]
                self.store.put_record(conn, REPAIRS, repairs)
            try:
                answer = await self._post(envelope)
            except ApiError as exc:
                if exc.status == 409 and exc.code == "device_list_stale" and attempt == 0:
                    continue
                raise
            if not keep:
                # A receipt (15.17): its seen record only, no message of this home's history.
                with self.state.transaction():
                    self.state.put_seen(message_id, SeenRecord(b64encode(envelope.signature), None))
                return Sent(envelope, answer, notices)
            with self.state.transaction():
                self.state.put_seen(message_id, SeenRecord(b64encode(envelope.signature), None))
                self.state.add_message(
                    seq=None,
                    message_id=message_id,
                    conversation_id=conversation,
                    sender=identity_name,
                    peer=peer,
                    text=payload.get("text"),
                    sent_at=header.sent_at,
                    server_ts=answer.get("server_ts"),
                    verified=1,
                    status="sent",
                    recipients=json_list([identity_name, peer]),
                )
                if shared is not None:
                    # Kept with its key, so this home can fetch its own file again (15.18).
                    self.state.add_file(shared["id"], message_id, identity_name, shared)
            return Sent(envelope, answer, notices)
        raise ClientError("the device lists keep changing; try again")


def json_list(names: list[str]) -> str:
    return json.dumps(sorted(set(names)))
