"""Table definitions (SQLAlchemy Core). Migrations in ``server/migrations`` create them.

Times are integer milliseconds since the Unix epoch, the same on SQLite and PostgreSQL.
Envelopes are stored as the opaque JSON text the client sent; the server never
decrypts them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("auth_hash", String(200), nullable=False),
    Column("kdf_salt", LargeBinary(16), nullable=False),
    Column("kdf_iterations", Integer, nullable=False),
    Column("signing_key", LargeBinary, nullable=False),
    Column("encryption_key", LargeBinary, nullable=False),
    Column("encryption_key_signature", LargeBinary, nullable=False),
    Column("key_bundle", Text, nullable=False),
    Column("keys_updated_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("is_admin", Boolean, nullable=False, server_default="0"),
    # Bytes of encrypted file chunks the user's uploads hold or have reserved (each
    # upload's whole stored size from its start), checked against the quota in the same
    # statement that adds to it (migration 0010; services/files.py).
    Column("stored_bytes", BigInteger, nullable=False, server_default="0"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("user_agent", String(200), nullable=False, server_default=""),
    # The device that last proved itself in this session (a device credential issued,
    # PROTOCOL.md 15.16): a hint for the sessions view, never a trust decision.
    Column("device_id", String(32), nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column(
        "session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("created_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

conversation_members = Table(
    "conversation_members",
    metadata,
    Column(
        "conversation_id", String(40), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("joined_at", BigInteger, nullable=False),
    Index("ix_conversation_members_user", "user_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("conversation_id", String(40), ForeignKey("conversations.id"), nullable=False),
    Column("sender_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("client_ts", BigInteger, nullable=False),
    Column("server_ts", BigInteger, nullable=False),
    Column("size", Integer, nullable=False),
    Column("envelope_sha256", LargeBinary(32), nullable=False),
    Column("envelope", Text, nullable=False),
    Index("ix_messages_conversation", "conversation_id", "id"),
)

inbox_entries = Table(
    "inbox_entries",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=True),
    # Small JSON for non-message entries (receipts); never ciphertext or plaintext.
    Column("data", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    Index("ix_inbox_entries_message", "message_pk"),
    # Only entries still waiting for an acknowledgement: what an ack has to look at.
    Index(
        "ix_inbox_entries_undelivered",
        "user_id",
        "seq",
        sqlite_where=text("delivered_at IS NULL AND kind = 'message'"),
        postgresql_where=text("delivered_at IS NULL AND kind = 'message'"),
    ),
)

# One row per receipt a reader has given for a message (PROTOCOL.md 9.3): the key makes a
# receipt idempotent on every instance, so the same reader, message, status and kind
# (signed by the reader, or the server's transitional unsigned claim) reaches the sender's
# inbox once, however often it is sent (migration 0010; services/receipts.py).
receipt_marks = Table(
    "receipt_marks",
    metadata,
    Column("message_pk", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("reader_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(9), primary_key=True),  # delivered | read
    Column("signed", Boolean, primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

# Intrusion detection: login attempts in the sliding window (pending while the password
# check runs, so parallel attempts count), and blocks with their history (repeat
# offenders get longer ones). Kept in the database so they survive restarts and hold
# across instances.
auth_attempts = Table(
    "auth_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ip", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("outcome", String(8), nullable=False),  # pending | failed
    Index("ix_auth_attempts_ip_at", "ip", "at"),
    Index("ix_auth_attempts_username_at", "username", "at"),
    Index("ix_auth_attempts_at", "at"),
)

blocks = Table(
    "blocks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(8), nullable=False),  # ip
    Column("subject", String(64), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("until", BigInteger, nullable=False),
    Column("lifted_at", BigInteger, nullable=True),
    Index("ix_blocks_subject", "scope", "subject", "until"),
)

# Rate limits per address (registration, pre-login, WebSocket connects): one row per
# event in the window, so the count is exact and shared by every instance.
rate_events = Table(
    "rate_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_rate_events_subject", "action", "subject", "at"),
)

# What administrators did, and security events the server records itself (admin
# "(server)": a session ended by refresh-token reuse). Append-only: the migration adds
# triggers that refuse UPDATE and DELETE, so not even the application can rewrite it.
admin_audit = Table(
    "admin_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("admin", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(128), nullable=False),
    Column("details", Text, nullable=False),
    # The server's own entries (refresh-token reuse) are looked up by action and time.
    Index("ix_admin_audit_action_at", "action", "at"),
)

# Encrypted files: the upload's metadata here, the chunks' bytes behind a ChunkStore
# (storage/chunks.py). The server knows a file's conversation, uploader and size, never
# its name, type or key.
files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", String(36), nullable=False, unique=True),
    Column("conversation_id", String(40), ForeignKey("conversations.id"), nullable=False),
    Column("uploader_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger, nullable=True),
    Index("ix_files_conversation", "conversation_id", "id"),
    Index("ix_files_pending", "completed_at", "created_at"),
)

file_chunks = Table(
    "file_chunks",
    metadata,
    Column("file_pk", Integer, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    # SHA-256 of the stored ciphertext: the chunk's key in the store, and what tells a
    # retried upload (same bytes) from a conflicting one.
    Column("digest", LargeBinary(32), nullable=False),
)

# The database chunk store (PostgreSQL default): one row per stored chunk.
file_blobs = Table(
    "file_blobs",
    metadata,
    Column("blob_key", String(160), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# Groups: the signed membership chain as clients sent it (PROTOCOL.md 13), one row per
# change, and the invites admins made. conversation_members follows the chain.
group_changes = Table(
    "group_changes",
    metadata,
    Column("conversation_id", String(40), ForeignKey("conversations.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("change", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# The verified head of each group's chain (protocol ChainHead): a new change is checked
# against it alone, and it moves only from the seq and hash it was read at (migration 0008).
# members and admins are JSON arrays of usernames (at most 256 each).
group_heads = Table(
    "group_heads",
    metadata,
    Column("conversation_id", String(40), ForeignKey("conversations.id"), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("head", LargeBinary(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("members", Text, nullable=False),
    Column("admins", Text, nullable=False),
)

group_invites = Table(
    "group_invites",
    metadata,
    Column("invite_id", String(36), primary_key=True),
    Column("conversation_id", String(40), ForeignKey("conversations.id"), nullable=False),
    Column("invite", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

# Protocol v2 (PROTOCOL.md 15.3, 15.4, 15.16; migration 0011). Each account's latest
# device list exactly as its client signed it, with the version a new list must exceed
# and the hash that makes the same list sent again a no-op.
device_lists = Table(
    "device_lists",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("list_hash", LargeBinary(32), nullable=False),
    Column("document", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# One row per device of an account's current list: its signing key (which checks its
# prekeys), its signed prekey as published (JSON, null until it publishes one), and the
# lowest prekey id of each kind it may still use: ids only go up, so the server never
# hands out two keys under one id. Deleted, with its prekeys, by a list without it.
devices = Table(
    "devices",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", String(32), primary_key=True),
    Column("signing_key", LargeBinary(32), nullable=False),
    Column("signed_prekey", Text, nullable=True),
    Column("next_signed_prekey_id", BigInteger, nullable=False, server_default="0"),
    Column("next_one_time_prekey_id", BigInteger, nullable=False, server_default="0"),
    Column("added_at", BigInteger, nullable=False),
    # The last position of the device's v2 inbox (migration 0012).
    Column("inbox_head", BigInteger, nullable=False, server_default="0"),
)

# Identity-key transitions (PROTOCOL.md 15.11; migration 0014): each as the client signed
# it, numbered per account. The account's identity key is the last new_key (the
# registered v1 signing key before any). A key never comes back: new_key is unique per
# account.
identity_transitions = Table(
    "identity_transitions",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("old_key", LargeBinary(32), nullable=False),
    Column("new_key", LargeBinary(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("user_id", "new_key", name="uq_identity_transitions_new_key"),
)

# The account key of the last transition, sealed by a client under the password's wrap
# key (PROTOCOL.md 15.11; migration 0016): opaque to the server, one row per account.
account_key_seals = Table(
    "account_key_seals",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("account_key", LargeBinary(32), nullable=False),
    Column("document", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Unclaimed one-time prekeys (JSON as published). A claim deletes the row in the
# statement that returns it, so each is handed out at most once on any instance.
one_time_prekeys = Table(
    "one_time_prekeys",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("device_id", String(32), primary_key=True),
    Column("prekey_id", BigInteger, primary_key=True),
    Column("prekey", Text, nullable=False),
    ForeignKeyConstraint(
        ["user_id", "device_id"], ["devices.user_id", "devices.device_id"], ondelete="CASCADE"
    ),
)

# v2 direct messages (PROTOCOL.md 15.8, 15.16; migration 0012): the envelope stored once,
# without its slots, and one entry per target device in that device's own inbox with
# only its slot. devices.inbox_head is the last position given to each device, so
# positions are never reused after acknowledged entries are deleted.
v2_messages = Table(
    "v2_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("conversation_id", String(40), nullable=False),
    Column("sender_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # Of the whole envelope as sent: the same message id again is a retry only with it.
    Column("envelope_sha256", LargeBinary(32), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("server_ts", BigInteger, nullable=False),
    # The envelope's size as sent, slots included (migration 0019).
    Column("size", BigInteger, nullable=False, server_default="0"),
    # When the last device's entry went and the envelope was cut to its header: the
    # metadata stays for the admin log, the ciphertext does not (migration 0019).
    Column("body_deleted_at", BigInteger, nullable=True),
)

device_inbox = Table(
    "device_inbox",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("device_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("message_pk", Integer, ForeignKey("v2_messages.id", ondelete="CASCADE"), nullable=False),
    Column("slot", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["user_id", "device_id"], ["devices.user_id", "devices.device_id"], ondelete="CASCADE"
    ),
    Index("ix_device_inbox_message", "message_pk"),
)

# Nonces a device signs to prove it holds its signing key (PROTOCOL.md 15.16; migration
# 0015): only their SHA-256 is kept, with the account, device and session that asked;
# deleted when answered (good once, on any instance) or when expired.
device_challenges = Table(
    "device_challenges",
    metadata,
    Column("nonce_hash", LargeBinary(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("device_id", String(32), nullable=False),
    Column("session_id", String(36), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_device_challenges_device", "user_id", "device_id"),
)

# The last inbox position of a revoked device (migration 0015): listed again, it goes on
# from there, so a position is never given twice to one device id.
device_inbox_floors = Table(
    "device_inbox_floors",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", String(32), primary_key=True),
    Column("inbox_head", BigInteger, nullable=False),
)

# History backups (PROTOCOL.md 15.10.1): the latest sealed backup of each account, opaque
# to the server (AES-256-GCM under a key only the user's recovery key gives). version
# only grows; size counts against users.stored_bytes (the account's storage quota).
history_backups = Table(
    "history_backups",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
