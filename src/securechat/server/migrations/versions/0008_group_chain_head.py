"""groups keep their verified membership head

Each group change used to be checked by replaying the group's whole chain, on the
writer's thread: a cost that grew with every change. ``group_heads`` keeps, per group,
what checking the next change needs (the head's seq, hash and time, the members and the
admins), so a change is checked against it alone.

The heads of existing groups are filled in here, once, by replaying each stored chain's
rules and hashes (``verify_chain`` without signature checks): every stored change had
its signature checked when the server stored it (each append re-verified the whole
chain), and checking again would need today's registered keys, which is what clients
avoid too (PROTOCOL.md 13.7). A chain that does not replay (its rows were altered in
the database) gets no head and is logged: that group then takes no further changes
(404 ``not_found``), which is what its members' clients, unable to verify it, make of
it too. Backfilling here rather than on first append keeps one code path in the
service and no whole-chain replay at request time, ever.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from alembic import op

from securechat.protocol.errors import ProtocolError
from securechat.protocol.groups import GroupChange, verify_chain

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

logger = logging.getLogger("alembic.runtime.migration")

group_changes = sa.table(
    "group_changes",
    sa.column("conversation_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("change", sa.Text),
)
group_heads = sa.table(
    "group_heads",
    sa.column("conversation_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("head", sa.LargeBinary),
    sa.column("at", sa.BigInteger),
    sa.column("members", sa.Text),
    sa.column("admins", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "group_heads",
        sa.Column("conversation_id", sa.String(40), sa.ForeignKey("conversations.id"), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("head", sa.LargeBinary(32), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("members", sa.Text, nullable=False),
        sa.Column("admins", sa.Text, nullable=False),
    )
    connection = op.get_bind()
    group_ids = connection.execute(sa.select(group_changes.c.conversation_id).distinct()).scalars().all()
    for group_id in sorted(group_ids):
        texts = connection.execute(
            sa.select(group_changes.c.change)
            .where(group_changes.c.conversation_id == group_id)
            .order_by(group_changes.c.seq)
        ).scalars()
        try:
            changes = [GroupChange.from_wire(json.loads(text)) for text in texts]
            # Signatures were checked when each change was stored; rules and hashes now.
            state = verify_chain(changes, lambda _name: None, group_id=group_id, verified_prefix=len(changes))
        except (ProtocolError, ValueError) as exc:
            logger.warning("group %s: stored chain does not replay (%s); it gets no head", group_id, exc)
            continue
        connection.execute(
            sa.insert(group_heads).values(
                conversation_id=group_id,
                seq=state.seq,
                head=state.head,
                at=state.at,
                members=json.dumps(sorted(state.members), separators=(",", ":")),
                admins=json.dumps(sorted(state.admins), separators=(",", ":")),
            )
        )


def downgrade() -> None:
    op.drop_table("group_heads")
