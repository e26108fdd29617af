"""device authentication and inbox positions that outlive a revocation

``device_challenges`` holds the nonces a device signs to prove it holds its signing key
(PROTOCOL.md 15.16, device credentials): stored as SHA-256 hashes with the account, the
device, the session that asked and an expiry, each deleted when it is answered, so a
nonce is good once, on any instance sharing the database.

``device_inbox_floors`` keeps the last inbox position of a revoked device, so that a
device listed again continues its positions after it instead of starting at 1 again
(positions are never reused, 15.16). New tables: nothing stored before changes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_challenges",
        sa.Column("nonce_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_device_challenges_device", "device_challenges", ["user_id", "device_id"])
    op.create_table(
        "device_inbox_floors",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("inbox_head", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_inbox_floors")
    op.drop_index("ix_device_challenges_device", table_name="device_challenges")
    op.drop_table("device_challenges")
