"""Concurrent sends on SQLite, and the send/inbox flow on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from securechat.server.app import create_app
from securechat.server.services import accounts
from securechat.server.settings import Settings

from .conftest import RegisteredUser, RegisterUser, registrar
from .support import dm, receipted_ids, registration_body, seal

SENDS = 20


async def send_many(
    http: httpx.AsyncClient, alice: RegisteredUser, bob: RegisteredUser
) -> list[httpx.Response]:
    envelopes = [seal(alice.identity, [alice.identity, bob.identity], f"message {i}") for i in range(SENDS)]
    return await asyncio.gather(
        *(http.post("/api/v1/messages", headers=alice.headers, json={"envelope": env}) for env in envelopes)
    )


async def assert_all_delivered_in_order(
    http: httpx.AsyncClient, alice: RegisteredUser, bob: RegisteredUser, responses: list[httpx.Response]
) -> None:
    assert [r.status_code for r in responses] == [201] * SENDS, [
        r.text for r in responses if r.status_code != 201
    ]
    sent_ids = {r.json()["message_id"] for r in responses}
    # The sender's own sequence numbers are a permutation of 1..20 too.
    assert sorted(r.json()["seq"] for r in responses) == list(range(1, SENDS + 1))

    page = (await http.get("/api/v1/inbox", headers=bob.headers, params={"since": 0})).json()
    entries = page["entries"]
    assert [e["seq"] for e in entries] == list(range(1, SENDS + 1))
    assert page["head"] == SENDS
    assert {e["message_id"] for e in entries} == sent_ids
    assert all(e["type"] == "message" and e["sender"] == "alice" for e in entries)
    # One conversation, made once, though twenty first messages raced to create it.
    conversations = (await http.get("/api/v1/conversations", headers=bob.headers)).json()["conversations"]
    assert [c["id"] for c in conversations] == [dm("alice", "bob")]
    history = await http.get(
        f"/api/v1/conversations/{dm('alice', 'bob')}/messages", headers=bob.headers, params={"limit": 200}
    )
    assert len(history.json()["messages"]) == SENDS


async def test_concurrent_sends_on_sqlite(http: httpx.AsyncClient, register_user: RegisterUser) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")

    responses = await send_many(http, alice, bob)

    await assert_all_delivered_in_order(http, alice, bob, responses)


async def test_concurrent_acks_and_sends_on_sqlite(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    first = await send_many(http, alice, bob)
    assert all(r.status_code == 201 for r in first)

    # bob acknowledges (writing receipts into alice's inbox) while alice keeps sending.
    acks = [
        http.post("/api/v1/inbox/ack", headers=bob.headers, json={"seq": seq}) for seq in range(1, SENDS + 1)
    ]
    results = await asyncio.gather(send_many(http, alice, bob), *acks)

    assert all(r.status_code == 201 for r in results[0])
    assert all(r.status_code == 200 for r in results[1:])
    assert sum(r.json()["acknowledged"] for r in results[1:]) == SENDS
    alice_inbox = (
        await http.get("/api/v1/inbox", headers=alice.headers, params={"since": 0, "limit": 500})
    ).json()
    entries = alice_inbox["entries"]
    # No gaps and nothing lost: 40 own messages, then receipts that cover each of the
    # first 20 messages exactly once (however the receipts group them).
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert alice_inbox["head"] == len(entries)
    assert sum(e["type"] == "message" for e in entries) == 2 * SENDS
    covered = [mid for e in entries if e["type"] == "receipt" for mid in receipted_ids(e)]
    assert sorted(covered) == sorted(r.json()["message_id"] for r in first)


@pytest.fixture
async def pg_app(postgres_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(postgres_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def pg_http(pg_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=pg_app), base_url="http://testserver"
    ) as client:
        yield client


async def test_send_inbox_ack_history_on_postgres(pg_app: FastAPI, pg_http: httpx.AsyncClient) -> None:
    assert not pg_app.state.context.database.is_sqlite
    register = registrar(pg_http)
    alice, bob = await register("alice"), await register("bob")
    envelope = seal(alice.identity, [alice.identity, bob.identity], "over postgres")

    sent = await pg_http.post("/api/v1/messages", headers=alice.headers, json={"envelope": envelope})
    again = await pg_http.post("/api/v1/messages", headers=alice.headers, json={"envelope": envelope})

    assert sent.status_code == again.status_code == 201, sent.text
    assert again.json() == sent.json()
    inbox = (await pg_http.get("/api/v1/inbox", headers=bob.headers, params={"since": 0})).json()
    assert [(e["seq"], e["message_id"]) for e in inbox["entries"]] == [(1, envelope["message_id"])]
    assert inbox["entries"][0]["envelope"] == envelope
    acked = await pg_http.post("/api/v1/inbox/ack", headers=bob.headers, json={"seq": 1})
    assert acked.json() == {"acknowledged": 1}
    receipts = (await pg_http.get("/api/v1/inbox", headers=alice.headers, params={"since": 1})).json()[
        "entries"
    ]
    assert [(receipted_ids(r), r["recipient"]) for r in receipts] == [([envelope["message_id"]], "bob")]
    history = (
        await pg_http.get(f"/api/v1/conversations/{dm('alice', 'bob')}/messages", headers=alice.headers)
    ).json()
    assert [(m["message_id"], m["delivered_to"]) for m in history["messages"]] == [
        (envelope["message_id"], ["bob"])
    ]


async def test_registration_conflicts_and_login_on_postgres(
    pg_http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    register = registrar(pg_http)
    alice = await register("alice")

    taken = await pg_http.post("/api/v1/auth/register", json=registration_body("alice", username="Alice"))
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "username_taken"
    login = await pg_http.post("/api/v1/auth/login", json={"username": "alice", "auth_key": alice.auth_key})
    assert login.status_code == 200
    rotated = await pg_http.post(
        "/api/v1/auth/refresh", json={"refresh_token": alice.tokens["refresh_token"]}
    )
    assert rotated.status_code == 200
    # Past the short grace in which the token just spent gets the same pair again.
    later = accounts.now_ms() + 60_000
    monkeypatch.setattr(accounts, "now_ms", lambda: later)
    reuse = await pg_http.post("/api/v1/auth/refresh", json={"refresh_token": alice.tokens["refresh_token"]})
    assert reuse.status_code == 401
    assert (await pg_http.get("/api/v1/account", headers=alice.headers)).status_code == 401


async def test_concurrent_sends_on_postgres(pg_http: httpx.AsyncClient) -> None:
    register = registrar(pg_http)
    alice, bob = await register("alice"), await register("bob")

    responses = await send_many(pg_http, alice, bob)

    await assert_all_delivered_in_order(pg_http, alice, bob, responses)
