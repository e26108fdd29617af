"""v2 messages keep their metadata after delivery, never their body

Until now a v2 message (``v2_messages``) was deleted once no device inbox entry named it
any more: delivered everywhere, its row went, and with it the admin console's only record
of it. From now on only its ciphertext goes: the stored envelope is cut down to its
header (who, which device, when, to which accounts and devices; no ``iv``, ``body`` or
``signature``) and ``body_deleted_at`` says when. ``size`` is the envelope's size as sent
(slots included), kept for the log. Rows stored before get the size of what they hold
(the envelope without its slots); rows already deleted are gone.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("v2_messages", sa.Column("size", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("v2_messages", sa.Column("body_deleted_at", sa.BigInteger, nullable=True))
    op.execute("UPDATE v2_messages SET size = length(envelope)")


def downgrade() -> None:
    # Before 0019 a row without its body did not exist: those go, as 0018's code deleted
    # them. Native DROP COLUMN on both databases (SQLite 3.35+), as 0017 does.
    op.execute("DELETE FROM v2_messages WHERE body_deleted_at IS NOT NULL")
    op.drop_column("v2_messages", "body_deleted_at")
    op.drop_column("v2_messages", "size")
