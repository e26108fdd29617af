"""protocol v2: device lists, devices and their prekeys

``device_lists`` keeps each account's latest signed device list (PROTOCOL.md 15.3) as
sent, ``devices`` one row per device of that list (its signing key, its signed prekey
and the next prekey ids it may use), ``one_time_prekeys`` the unclaimed one-time
prekeys (15.4). New tables only: nothing stored before is touched, and a downgrade
drops them with what v2 clients published.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_lists",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("list_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "devices",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("signing_key", sa.LargeBinary(32), nullable=False),
        sa.Column("signed_prekey", sa.Text, nullable=True),
        sa.Column("next_signed_prekey_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("next_one_time_prekey_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("added_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "one_time_prekeys",
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("prekey_id", sa.BigInteger, primary_key=True),
        sa.Column("prekey", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "device_id"], ["devices.user_id", "devices.device_id"], ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("one_time_prekeys")
    op.drop_table("devices")
    op.drop_table("device_lists")
