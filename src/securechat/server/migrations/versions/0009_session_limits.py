"""an index for the audit log's entries of one action

The server now writes security events of its own to the append-only audit log (a
refresh token presented again after its grace, which ended its session: action
``refresh_token_reuse``), and the admin intrusion view lists the recent ones. The index
finds them by action and time without reading the whole log.

Sessions need no new column for their limits: a session's absolute lifetime counts from
``sessions.created_at`` (its login), and the refresh grace is computed from
``refresh_tokens.used_at`` and the server secret (services/tokens.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_admin_audit_action_at", "admin_audit", ["action", "at"])


def downgrade() -> None:
    op.drop_index("ix_admin_audit_action_at", table_name="admin_audit")
