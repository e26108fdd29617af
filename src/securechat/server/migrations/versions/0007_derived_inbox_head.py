"""inbox heads and conversations' last message times are derived, not stored

Each send rewrote the sender's and every recipient's ``users`` row (the inbox counter)
and the conversation's row (its last message time): several pages of the write-ahead
log per commit. Both values are now read from the entries and messages themselves,
through indexes that already exist.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Native ALTER TABLE ... DROP COLUMN on both databases (SQLite 3.35 and later):
    # no table copy, so no foreign-key cascade can fire.
    op.drop_column("users", "inbox_seq")
    op.drop_column("conversations", "last_message_at")


def downgrade() -> None:
    op.add_column("users", sa.Column("inbox_seq", sa.BigInteger, nullable=False, server_default="0"))
    op.execute(
        "UPDATE users SET inbox_seq = COALESCE("
        "(SELECT max(e.seq) FROM inbox_entries e WHERE e.user_id = users.id), 0)"
    )
    op.add_column("conversations", sa.Column("last_message_at", sa.BigInteger, nullable=True))
    op.execute(
        "UPDATE conversations SET last_message_at = "
        "(SELECT max(m.server_ts) FROM messages m WHERE m.conversation_id = conversations.id)"
    )
