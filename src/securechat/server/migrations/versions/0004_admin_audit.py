"""admin audit log (append-only) and an index for the message log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("admin", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_messages_sender", "messages", ["sender_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'admin_audit is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER admin_audit_append_only BEFORE UPDATE OR DELETE ON admin_audit"
            " FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER admin_audit_no_{event.lower()} BEFORE {event} ON admin_audit"
                " BEGIN SELECT RAISE(ABORT, 'admin_audit is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER admin_audit_append_only ON admin_audit")
        op.execute("DROP FUNCTION admin_audit_append_only()")
    op.drop_index("ix_messages_sender", table_name="messages")
    op.drop_table("admin_audit")
