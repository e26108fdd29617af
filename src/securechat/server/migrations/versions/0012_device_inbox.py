"""protocol v2: per-device inboxes

``v2_messages`` holds each v2 direct message once (the envelope without its slots),
``device_inbox`` one entry per target device with only that device's slot, numbered
per device; ``devices.inbox_head`` is the last number given, so numbers are never
reused once acknowledged entries are deleted. New tables and a column with a default:
nothing stored before changes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("inbox_head", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "v2_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False, unique=True),
        sa.Column("conversation_id", sa.String(40), nullable=False),
        sa.Column("sender_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("envelope_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("server_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "device_inbox",
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column(
            "message_pk", sa.Integer, sa.ForeignKey("v2_messages.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("slot", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "device_id"], ["devices.user_id", "devices.device_id"], ondelete="CASCADE"
        ),
    )
    op.create_index("ix_device_inbox_message", "device_inbox", ["message_pk"])


def downgrade() -> None:
    op.drop_index("ix_device_inbox_message", table_name="device_inbox")
    op.drop_table("device_inbox")
    op.drop_table("v2_messages")
    # Native ALTER TABLE ... DROP COLUMN on both databases (SQLite 3.35+). Not batch mode:
    # its copy of "devices" would drop the old table, and the foreign key's cascade
    # would take every one-time prekey with it.
    op.drop_column("devices", "inbox_head")
