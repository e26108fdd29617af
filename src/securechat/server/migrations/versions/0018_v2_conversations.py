"""v2 direct conversations recorded like v1's

A v2 direct message now records its conversation and the two members in
``conversations`` and ``conversation_members`` when it is stored, as a v1 message does,
so that the admin console's message log can filter v2 messages by recipient and the
conversation list names them (metadata the server holds anyway: the envelope's targets
name both accounts). This fills those rows in for the v2 messages stored before: for each
conversation of ``v2_messages`` that has no row, its first message's targets give the two
accounts. A message to the account's own devices (a history hand-over, 15.10.2) names
one account and gets no conversation, as at send time. No schema change.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

logger = logging.getLogger("alembic.runtime.migration")

_meta = sa.MetaData()
users = sa.Table("users", _meta, sa.Column("id", sa.Integer), sa.Column("username", sa.String))
conversations = sa.Table(
    "conversations",
    _meta,
    sa.Column("id", sa.String),
    sa.Column("kind", sa.String),
    sa.Column("created_at", sa.BigInteger),
)
members = sa.Table(
    "conversation_members",
    _meta,
    sa.Column("conversation_id", sa.String),
    sa.Column("user_id", sa.Integer),
    sa.Column("joined_at", sa.BigInteger),
)
v2_messages = sa.Table(
    "v2_messages",
    _meta,
    sa.Column("id", sa.Integer),
    sa.Column("conversation_id", sa.String),
    sa.Column("envelope", sa.Text),
    sa.Column("server_ts", sa.BigInteger),
)


def _target_names(envelope_text: str) -> list[str]:
    """The accounts the stored envelope names (checked when it was stored), or none."""
    try:
        targets = json.loads(envelope_text)["targets"]
        return sorted({str(target["username"]) for target in targets})
    except (ValueError, KeyError, TypeError):
        return []


def upgrade() -> None:
    connection = op.get_bind()
    known = sa.select(conversations.c.id)
    first = connection.execute(
        sa.select(v2_messages.c.conversation_id, sa.func.min(v2_messages.c.id))
        .where(v2_messages.c.conversation_id.not_in(known))
        .group_by(v2_messages.c.conversation_id)
    ).all()
    for conversation_id, message_pk in sorted(first):
        row = connection.execute(
            sa.select(v2_messages.c.envelope, v2_messages.c.server_ts).where(v2_messages.c.id == message_pk)
        ).one()
        names = _target_names(row.envelope)
        if len(names) != 2:
            continue
        ids = connection.execute(sa.select(users.c.id).where(users.c.username.in_(names))).scalars().all()
        if len(ids) != 2:
            logger.warning("v2 conversation %s: an account of it is gone; no row", conversation_id)
            continue
        connection.execute(
            sa.insert(conversations).values(id=conversation_id, kind="direct", created_at=row.server_ts)
        )
        connection.execute(
            sa.insert(members),
            [{"conversation_id": conversation_id, "user_id": uid, "joined_at": row.server_ts} for uid in ids],
        )


def downgrade() -> None:
    # The rows are what a v1 message to the same peer would have made; 0017's code reads
    # them as it reads those, so they stay.
    pass
