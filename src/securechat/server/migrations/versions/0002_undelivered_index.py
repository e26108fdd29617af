"""partial index of undelivered inbox entries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WHERE = sa.text("delivered_at IS NULL AND kind = 'message'")


def upgrade() -> None:
    op.create_index(
        "ix_inbox_entries_undelivered",
        "inbox_entries",
        ["user_id", "seq"],
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_entries_undelivered", table_name="inbox_entries")
