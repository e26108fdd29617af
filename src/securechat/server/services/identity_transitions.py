"""Identity-key rotation (PROTOCOL.md 15.11, 15.16): an account hands its identity key
over to a new one with a transition signed by both keys, together with its first device
list under the new key; anyone logged in fetches the chain from a key they pinned.

The transition and the list are stored in one transaction, and a list published under
the old key meanwhile is refused (services/devices.py re-reads the key inside its own
transaction), so at no moment does the stored list fail to verify under the stored key.
The server checks everything as clients will, as defence in depth; clients check the
chain themselves (client.core.v2.transitions) against the key they pinned.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ...protocol.encoding import b64encode
from ...protocol.errors import ProtocolError, UnsupportedVersion
from ...protocol.v2.account_key_seal import parse_account_key_seal
from ...protocol.v2.transitions import MAX_TRANSITIONS, parse_transition, verify_transition
from ..errors import (
    DeviceListStale,
    IdentityKeyStale,
    InvalidInput,
    InvalidTransition,
    NoAccountKeySeal,
    NotFound,
    UnknownKey,
)
from ..storage import devices as device_store
from ..storage import identity_transitions as store
from .context import ServiceContext, now_ms
from .devices import check_list, count_update
from .principal import Principal


def _refuse(reason: str) -> InvalidTransition:
    return InvalidTransition(f"the identity transition is refused: {reason}", reason=reason)


def _seal_document(raw_seal: Any, account_key: bytes) -> str:
    """The sealed account key as sent, if it has the form of 15.11 and names ``account_key``
    (the server cannot open it; clients check what it opens to)."""
    try:
        seal = parse_account_key_seal(raw_seal)
    except ProtocolError as exc:
        raise InvalidInput(f"account_key_seal: {exc}", field="account_key_seal") from exc
    if seal.account_key != account_key:
        raise InvalidInput("account_key_seal must seal the new account key", field="account_key_seal")
    return json.dumps(raw_seal, separators=(",", ":"))


async def rotate(
    ctx: ServiceContext,
    principal: Principal,
    raw_transition: Any,
    raw_list: Any,
    raw_seal: Any = None,
) -> dict[str, Any]:
    """``POST /account/identity-transition``: checks in PROTOCOL.md 15.16's order."""
    await count_update(ctx, principal)
    try:
        transition = parse_transition(raw_transition)
    except ProtocolError as exc:
        raise _refuse("unsupported_version" if isinstance(exc, UnsupportedVersion) else "malformed") from exc
    if transition.username != principal.username:
        raise _refuse("transition_invalid")
    try:
        verify_transition(transition)
    except ProtocolError as exc:
        raise _refuse("bad_signature") from exc
    device_list = check_list(raw_list, principal, transition.new_key)
    seal_document = None if raw_seal is None else _seal_document(raw_seal, transition.new_key)
    transition_document = json.dumps(raw_transition, separators=(",", ":"), ensure_ascii=False)
    list_document = json.dumps(raw_list, separators=(",", ":"), ensure_ascii=False)
    listed = [(device.device_id, device.signing_key) for device in device_list.devices]
    now = now_ms()
    try:
        async with ctx.database.write() as conn:
            # Taken first, as a password change's re-seal does (reseal_in).
            await store.lock_account_key(conn, principal.user_id)
            current = await store.current_key(conn, principal.user_id)
            if current is None:  # the account was deleted after the token was checked
                raise NotFound("no such user")
            if transition.old_key != current:
                raise IdentityKeyStale(
                    "the transition does not start at the account's identity key",
                    current_key=b64encode(current),
                )
            previous = await store.last(conn, principal.user_id)
            if previous is not None and transition.at <= int(previous["at"]):
                raise _refuse("transition_invalid")
            if await store.key_was_used(conn, principal.user_id, transition.new_key):
                raise _refuse("transition_invalid")
            seq = 1 if previous is None else int(previous["seq"]) + 1
            await store.add(
                conn,
                principal.user_id,
                seq,
                transition.old_key,
                transition.new_key,
                transition.at,
                transition_document,
                now,
            )
            written = await device_store.put_list(
                conn,
                principal.user_id,
                device_list.version,
                device_list.list_hash,
                list_document,
                listed,
                now,
            )
            if written.outcome != "stored":
                # The old list was signed by the old key, so it is never "unchanged" here.
                raise DeviceListStale("a device list's version must be higher than the stored one")
            if seal_document is not None:
                await store.put_account_key_seal(
                    conn, principal.user_id, transition.new_key, seal_document, now
                )
    except IntegrityError as exc:
        # Another rotation (or a first list) of this account was stored meanwhile.
        raise IdentityKeyStale(
            "the account's identity key changed meanwhile; fetch it and try again"
        ) from exc
    return {
        "seq": seq,
        "new_key": b64encode(transition.new_key),
        "version": device_list.version,
        "devices": [device.device_id for device in device_list.devices],
        "added": list(written.added),
        "removed": list(written.removed),
    }


async def transitions_since(ctx: ServiceContext, username: str, since_key: bytes) -> dict[str, Any]:
    """``GET /users/{u}/identity-transitions?since_key=…``: the chain from ``since_key``
    (at most 16 transitions; ``more`` if the account rotated further)."""
    async with ctx.database.read() as conn:
        user_id = await device_store.get_user_id(conn, username)
        if user_id is None:
            raise NotFound("no such user")
        registered = await store.registered_key(conn, user_id)
        rows = await store.chain(conn, user_id)
    current = bytes(rows[-1]["new_key"]) if rows else registered
    keys = [registered, *(bytes(row["new_key"]) for row in rows)]
    if since_key not in keys:
        raise UnknownKey("that key was never this account's identity key")
    following = rows[keys.index(since_key) :]
    page = following[:MAX_TRANSITIONS]
    return {
        "username": username,
        "current_key": None if current is None else b64encode(current),
        "transitions": [json.loads(row["document"]) for row in page],
        "more": len(following) > MAX_TRANSITIONS,
    }


async def get_account_key_seal(ctx: ServiceContext, principal: Principal) -> dict[str, Any]:
    """``GET /account/identity-key-seal``: the caller's sealed account key, null if the
    account never rotated (asked at every login: an answer, not an error)."""
    async with ctx.database.read() as conn:
        row = await store.account_key_seal(conn, principal.user_id)
    return {"account_key_seal": None if row is None else json.loads(row["document"])}


def check_seal_form(raw_seal: Any) -> None:
    """A password change's seal has 15.11's form (422 ``invalid_input`` otherwise); which
    key it names is checked inside the change's transaction (:func:`reseal_in`)."""
    try:
        parse_account_key_seal(raw_seal)
    except ProtocolError as exc:
        raise InvalidInput(f"account_key_seal: {exc}", field="account_key_seal") from exc


async def reseal_in(conn: AsyncConnection, user_id: int, raw_seal: Any, now: int) -> None:
    """Inside a password change's transaction (``POST /account/password``, 15.16): the
    account key sealed under the new password replaces the seal, so the password and the
    seal change together or not at all. Under the lock a rotation takes, the seal must
    name the account's current key (409 ``identity_key_stale`` with ``current_key``
    otherwise: a rotation came first). An account that rotated must send one (422
    ``invalid_input``: else later logins could not open the seal); one that never rotated
    must not (404 ``no_account_key_seal``)."""
    await store.lock_account_key(conn, user_id)
    current = await store.current_key(conn, user_id)
    if current is None:
        raise NotFound("no such user")
    rotated = await store.last(conn, user_id) is not None
    if raw_seal is None:
        if rotated:
            raise InvalidInput(
                "the account rotated its identity key: a password change must seal it again",
                field="account_key_seal",
            )
        return
    if not rotated:
        raise NoAccountKeySeal("the account never rotated its identity key")
    if parse_account_key_seal(raw_seal).account_key != current:
        raise IdentityKeyStale(
            "the sealed key is not the account's identity key (it was rotated meanwhile)",
            current_key=b64encode(current),
        )
    await store.put_account_key_seal(conn, user_id, current, _seal_document(raw_seal, current), now)
