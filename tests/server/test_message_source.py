"""The database read behind a broker reference (issue 13, item 5): one read of the entry
named, rendered for any recipient's position, and nothing if that entry does not hold
the message the reference announced."""

from __future__ import annotations

import json

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from securechat.server.services.writer import message_source
from securechat.server.storage.tables import users

from ..api.support import bearer, identity_for, registration_body, seal


async def test_a_reference_renders_the_stored_message_or_nothing(app: FastAPI, http: AsyncClient) -> None:
    tokens = {}
    for name in ("alice", "bob"):
        response = await http.post("/api/v1/auth/register", json=registration_body(name))
        assert response.status_code == 201, response.text
        tokens[name] = response.json()["access_token"]
    envelope = seal(identity_for("alice"), [identity_for("alice"), identity_for("bob")], "hello")
    sent = await http.post("/api/v1/messages", headers=bearer(tokens["alice"]), json={"envelope": envelope})
    assert sent.status_code in (200, 201), sent.text
    message_id = sent.json()["message_id"]
    database = app.state.context.database
    async with database.read() as conn:
        bob = (await conn.execute(select(users.c.id).where(users.c.username == "bob"))).scalar_one()
    inbox = await http.get("/api/v1/inbox", headers=bearer(tokens["bob"]), params={"since": 0})
    seq = next(e["seq"] for e in inbox.json()["entries"] if e.get("message_id") == message_id)
    load = message_source(database)
    render = await load(bob, seq, message_id)
    assert render is not None
    frame = json.loads(render(77))
    assert (frame["seq"], frame["message_id"], frame["sender"]) == (77, message_id, "alice")
    assert frame["envelope"] == envelope
    # Another message id at that position, or no entry there: nothing to render.
    assert await load(bob, seq, "0" * len(message_id)) is None
    assert await load(bob, seq + 100, message_id) is None
