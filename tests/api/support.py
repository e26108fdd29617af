"""Request bodies for the API tests, built with the real protocol code.

PBKDF2 at 600,000 iterations and RSA-2048 key generation each cost a few hundred
milliseconds, so each username's identity and derived keys are made once per test
session and shared. A username is bound into its keys (the encryption key binding
signature), so identities are per username.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from securechat.protocol.encoding import b64encode
from securechat.protocol.envelope import seal_message
from securechat.protocol.identifiers import ConversationId, MessageId, direct_conversation_id, parse_username
from securechat.protocol.kdf import DerivedKeys, KdfParams, derive_keys
from securechat.protocol.keys import PrivateIdentity, PublicIdentity, seal_key_bundle


@dataclass(frozen=True)
class Material:
    """Everything a client holds for one username: keys, KDF parameters, derived keys."""

    identity: PrivateIdentity
    kdf: KdfParams
    derived: DerivedKeys
    password: str

    @property
    def auth_key(self) -> str:
        return b64encode(self.derived.auth_key)


def password_for(name: str, generation: int = 0) -> str:
    return f"correct horse battery staple {name} {generation}"


@functools.cache
def material(name: str, generation: int = 0) -> Material:
    """The identity of ``name`` and a password-derived key set (one per generation)."""
    identity = identity_for(name)
    kdf = KdfParams.generate()
    password = password_for(name, generation)
    return Material(identity, kdf, derive_keys(password, kdf), password)


@functools.cache
def identity_for(name: str) -> PrivateIdentity:
    return PrivateIdentity.generate(parse_username(name))


def public_keys(identity: PrivateIdentity | PublicIdentity) -> dict[str, str]:
    public = identity.public if isinstance(identity, PrivateIdentity) else identity
    wire = public.to_wire()
    return {k: wire[k] for k in ("signing_key", "encryption_key", "encryption_key_signature")}


def registration_body(name: str, **overrides: Any) -> dict[str, Any]:
    """A valid registration body for ``name``; ``overrides`` replace top-level fields."""
    mat = material(name)
    body: dict[str, Any] = {
        "username": name,
        "auth_key": mat.auth_key,
        "kdf": mat.kdf.to_wire(),
        "public_keys": public_keys(mat.identity),
        "key_bundle": seal_key_bundle(mat.identity, mat.derived.wrap_key),
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def dm(first: str, second: str) -> ConversationId:
    return direct_conversation_id(parse_username(first), parse_username(second))


def seal(
    sender: PrivateIdentity,
    members: list[PrivateIdentity],
    text: str = "hello",
    *,
    conversation_id: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A wire envelope from ``sender`` with a wrapped key for each of ``members``.

    The conversation defaults to the direct one between the sender and the first
    other member.
    """
    recipients = {m.username: m.public for m in members}
    if conversation_id is None:
        peer = next(m.username for m in members if m.username != sender.username)
        conversation_id = direct_conversation_id(sender.username, peer)
    envelope = seal_message(
        sender,
        ConversationId(conversation_id),
        recipients,
        {"type": "text", "text": text},
        message_id=MessageId(message_id) if message_id else None,
    )
    return envelope.to_wire()


RECEIPT_FIELDS = {"type", "seq", "message_ids", "recipient", "status", "at"}


def receipted_ids(entry: dict[str, Any]) -> list[str]:
    """The message ids a receipt entry reports on, after checking its shape.

    PROTOCOL.md ("Transport"): ``{type: receipt, seq, message_ids: [...], recipient,
    status: delivered, at}``, one per acknowledgement and sender.
    """
    assert entry["type"] == "receipt", entry
    assert set(entry) == RECEIPT_FIELDS, entry
    ids = entry["message_ids"]
    assert isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids), entry
    return list(ids)


@asynccontextmanager
async def client_from(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client whose requests come from the address ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
