"""identity-key transitions

``identity_transitions`` keeps each account's identity-key transitions (PROTOCOL.md
15.11, 15.16) as signed, numbered per account; ``new_key`` is unique per account (a key
never comes back). A new table: nothing stored before changes, and every account's
identity key stays its registered v1 signing key until it rotates.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_transitions",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("old_key", sa.LargeBinary(32), nullable=False),
        sa.Column("new_key", sa.LargeBinary(32), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("user_id", "new_key", name="uq_identity_transitions_new_key"),
    )


def downgrade() -> None:
    op.drop_table("identity_transitions")
