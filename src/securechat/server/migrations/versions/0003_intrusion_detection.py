"""intrusion detection and rate limits: login attempts, blocks, rate events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
    )
    op.create_index("ix_auth_attempts_ip_at", "auth_attempts", ["ip", "at"])
    op.create_index("ix_auth_attempts_username_at", "auth_attempts", ["username", "at"])
    op.create_index("ix_auth_attempts_at", "auth_attempts", ["at"])
    op.create_table(
        "blocks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("until", sa.BigInteger, nullable=False),
        sa.Column("lifted_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_blocks_subject", "blocks", ["scope", "subject", "until"])
    op.create_table(
        "rate_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rate_events_subject", "rate_events", ["action", "subject", "at"])


def downgrade() -> None:
    op.drop_table("rate_events")
    op.drop_table("blocks")
    op.drop_table("auth_attempts")
