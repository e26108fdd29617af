"""the account key sealed under the password

``account_key_seals`` keeps, for an account that rotated its identity key (PROTOCOL.md
15.11), the new account private key sealed by a client under the password's wrap key
(4.2), as the v1 key bundle is: the server cannot open it. One row per account, replaced
by each rotation and by a password change. A new table: nothing stored before changes,
and an account without a row has never rotated (its account key is its v1 signing key).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_key_seals",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_key", sa.LargeBinary(32), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("account_key_seals")
