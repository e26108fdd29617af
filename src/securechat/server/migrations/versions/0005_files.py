"""encrypted files: uploads, their chunks, and the database chunk store

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file_id", sa.String(36), nullable=False, unique=True),
        sa.Column("conversation_id", sa.String(40), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("uploader_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_files_conversation", "files", ["conversation_id", "id"])
    op.create_index("ix_files_pending", "files", ["completed_at", "created_at"])
    op.create_table(
        "file_chunks",
        sa.Column("file_pk", sa.Integer, sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "file_blobs",
        sa.Column("blob_key", sa.String(160), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_blobs")
    op.drop_table("file_chunks")
    op.drop_index("ix_files_pending", table_name="files")
    op.drop_index("ix_files_conversation", table_name="files")
    op.drop_table("files")
