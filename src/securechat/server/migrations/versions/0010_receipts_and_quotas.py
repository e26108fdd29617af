"""one receipt per reader, message and kind; stored file bytes per account

``receipt_marks`` holds one row per (message, reader, status, signed): a receipt whose
row exists already adds no inbox entry, on any instance (its primary key is the
constraint). Receipts given before this revision have no row, so each may reach its
sender once more.

``users.stored_bytes`` is what the user's uploads hold or have reserved (the chunks'
ciphertext: the plaintext size and 16 bytes per chunk of up to 1 MiB), filled here from
the uploads already stored, complete or not.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipt_marks",
        sa.Column(
            "message_pk", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("reader_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("status", sa.String(9), primary_key=True),
        sa.Column("signed", sa.Boolean, primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    # Native ALTER TABLE ... ADD COLUMN on both databases: no table copy.
    op.add_column("users", sa.Column("stored_bytes", sa.BigInteger, nullable=False, server_default="0"))
    # files.chunks is the number of chunks; each stores its plaintext and a 16-byte tag.
    op.execute(
        "UPDATE users SET stored_bytes = COALESCE("
        "(SELECT sum(f.size + 16 * f.chunks) FROM files f WHERE f.uploader_id = users.id), 0)"
    )


def downgrade() -> None:
    op.drop_column("users", "stored_bytes")
    op.drop_table("receipt_marks")
