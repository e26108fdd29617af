"""the device of a session

``sessions.device_id`` names the device that last proved itself in the session (a device
credential issued, PROTOCOL.md 15.16), so that ``GET /sessions`` can say which device a
session is and a client can offer to revoke it. A hint for the interface only: a client
offers only devices of the account's signed list. Nullable: sessions stored before, and
sessions in which no device has proved itself, have none.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("device_id", sa.String(32), nullable=True))


def downgrade() -> None:
    # Native ALTER TABLE ... DROP COLUMN on both databases (SQLite 3.35+). Not batch mode:
    # its copy of "sessions" would drop the old table, and the foreign key's cascade
    # would take every refresh token with it.
    op.drop_column("sessions", "device_id")
