"""On PostgreSQL, the two devices that still wait for a v2 message acknowledge it at the
same moment: each transaction has deleted its entry before either commits, so each
alone would still see the other's entry and keep the body. Locking the message row makes
the second check wait for the first commit; the body goes (SECURITY.md: no v2 ciphertext
of delivered messages stays)."""

from __future__ import annotations

import asyncio

from sqlalchemy import and_, delete, insert, select, text

from securechat.server.settings import Settings
from securechat.server.storage import device_inbox as store
from securechat.server.storage.database import Database
from securechat.server.storage.migrate import migrate
from securechat.server.storage.tables import device_inbox, v2_messages

from ..conftest import throwaway_postgres
from .migration_support import add_user


async def test_two_last_acknowledgements_at_once_delete_the_body() -> None:
    async with throwaway_postgres("v2body") as (_, url):
        database = Database(Settings(database_url=url).sqlalchemy_url())
        try:
            await migrate(database)
            async with database.write() as conn:
                await add_user(conn, 1, "alice")
                for device in ("a" * 32, "b" * 32):
                    await conn.execute(
                        text(
                            "INSERT INTO device_lists (user_id, version, list_hash, document, updated_at)"
                            " VALUES (1, 1, :h, '{}', 1) ON CONFLICT DO NOTHING"
                        ),
                        {"h": bytes(32)},
                    )
                    await conn.execute(
                        text(
                            "INSERT INTO devices (user_id, device_id, signing_key, added_at) VALUES (1, :d, :k, 1)"
                        ),
                        {"d": device, "k": bytes(32)},
                    )
                pk = (
                    await conn.execute(
                        insert(v2_messages)
                        .values(
                            message_id="00000000-0000-4000-8000-000000000001",
                            conversation_id="dm-" + "0" * 32,
                            sender_id=1,
                            envelope_sha256=bytes(32),
                            envelope='{"v":2,"body":"c2VjcmV0","iv":"aXY="}',
                            server_ts=1,
                            size=40,
                        )
                        .returning(v2_messages.c.id)
                    )
                ).scalar_one()
                for device in ("a" * 32, "b" * 32):
                    await conn.execute(
                        insert(device_inbox).values(
                            user_id=1, device_id=device, seq=1, message_pk=pk, slot="{}", created_at=1
                        )
                    )

            def drop_entry(device: str) -> object:
                return delete(device_inbox).where(
                    and_(device_inbox.c.device_id == device, device_inbox.c.seq == 1)
                )

            engine = database.write_engine
            async with engine.connect() as first, engine.connect() as second:
                await first.begin()
                await second.begin()
                await first.execute(drop_entry("a" * 32))
                await second.execute(drop_entry("b" * 32))
                await store.delete_unreferenced_bodies(first, [pk], 10)
                later = asyncio.create_task(store.delete_unreferenced_bodies(second, [pk], 11))
                await asyncio.sleep(0.5)
                await first.commit()
                await later
                await second.commit()
            async with database.read() as conn:
                row = (
                    await conn.execute(select(v2_messages.c.envelope, v2_messages.c.body_deleted_at))
                ).one()
            assert row.body_deleted_at == 11
            assert "c2VjcmV0" not in row.envelope
        finally:
            await database.dispose()
