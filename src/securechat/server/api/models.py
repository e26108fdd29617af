"""Request bodies: strict (no extra fields) with explicit size limits.

Deeper checks (strict base64, key formats, KDF floors) happen in the services, which
turn protocol errors into the server's error tree.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .identifiers import ConversationId, FileId, MessageId, Username

B64_SHORT = 64
B64_KEY = 2048
B64_BUNDLE = 12_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=B64_BUNDLE)


class KdfBody(Strict):
    algorithm: str = Field(max_length=32)
    iterations: int
    salt: str = Field(max_length=B64_SHORT)


class PublicKeysBody(Strict):
    signing_key: str = Field(max_length=B64_KEY)
    encryption_key: str = Field(max_length=B64_KEY)
    encryption_key_signature: str = Field(max_length=B64_SHORT * 2)


class KeyBundleBody(Strict):
    v: int
    iv: str = Field(max_length=B64_SHORT)
    ciphertext: str = Field(max_length=B64_BUNDLE)


class UsernameBody(Strict):
    username: Username


class RegisterBody(Strict):
    username: Username
    auth_key: str = Field(max_length=B64_SHORT)
    kdf: KdfBody
    public_keys: PublicKeysBody
    key_bundle: KeyBundleBody


class LoginBody(Strict):
    username: Username
    auth_key: str = Field(max_length=B64_SHORT)


class RefreshBody(Strict):
    # Absent when the browser presents its refresh token as an HttpOnly cookie.
    refresh_token: str | None = Field(default=None, max_length=128)


class PasswordChangeBody(Strict):
    current_auth_key: str = Field(max_length=B64_SHORT)
    new_auth_key: str = Field(max_length=B64_SHORT)
    kdf: KdfBody
    key_bundle: KeyBundleBody
    # The account key sealed under the new password (15.11), required once the account
    # rotated; checked by the protocol layer's parser and against the current key.
    account_key_seal: dict[str, Any] | None = None


class DirectConversationBody(Strict):
    peer: Username


class SendBody(Strict):
    # The envelope is validated by the protocol layer's strict parser.
    envelope: dict[str, Any]


class AckBody(Strict):
    seq: int = Field(ge=0, le=2**62)
    # The client sends signed receipts of its own (PROTOCOL.md 9.3): make none for this ack.
    signed_receipts: bool = False


class ReceiptBody(Strict):
    # Any JSON: the protocol layer's strict parser refuses what is not a receipt (400).
    receipt: Any


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump()


class FileUploadBody(Strict):
    file_id: FileId
    conversation_id: ConversationId
    size: int = Field(ge=0, le=2**53 - 1)


class GroupChangeBody(Strict):
    # Checked by the protocol layer's strict parser and the chain rules.
    change: dict[str, Any]


class InviteBody(Strict):
    invite: dict[str, Any]


class ReadBody(Strict):
    message_ids: list[MessageId] = Field(min_length=1, max_length=100)
