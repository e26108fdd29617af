"""Key and peer lookups are limited per account (SECURECHAT_LOOKUPS_PER_MINUTE), on real
server processes: everything that tells whether a username exists (its public keys, a
direct conversation with it, a group change naming it) spends one budget, a name that
does not exist costs the same as one that does, and the budget holds across two
instances on one PostgreSQL database. Names the caller already shares a conversation
with (and its own) cost nothing, so the apps' repeated key checks never reach it."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from securechat.client.messenger import Messenger
from securechat.protocol.groups import sign_change

from ..api.support import bearer, identity_for, registration_body
from ..conftest import LiveServer, postgres_database, start_server
from .conftest import PASSWORDS

LIMIT = 10
LIMITED = {"SECURECHAT_LOOKUPS_PER_MINUTE": str(LIMIT)}


def random_name() -> str:
    return "nobody-" + uuid.uuid4().hex[:12]


def register(http: httpx.Client, name: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/register", json=registration_body(name))
    assert response.status_code == 201, response.text
    return bearer(response.json()["access_token"])


def keys(http: httpx.Client, headers: dict[str, str], name: str) -> httpx.Response:
    return http.get(f"/api/v1/users/{name}/keys", headers=headers)


def direct(http: httpx.Client, headers: dict[str, str], name: str) -> httpx.Response:
    return http.post("/api/v1/conversations/direct", headers=headers, json={"peer": name})


def create_group(
    http: httpx.Client, headers: dict[str, str], actor: str, members: list[str]
) -> httpx.Response:
    change = sign_change(identity_for(actor), None, "create", members, at=int(time.time() * 1000))
    return http.post("/api/v1/groups", headers=headers, json={"change": change.to_wire()})


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    running = start_server(tmp_path / "data", tmp_path / "server.log", extra_env=LIMITED)
    yield running
    running.stop()


def test_lookups_are_limited_per_account_and_unknown_names_cost_the_same(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        alice, mallory, eve = (register(http, name) for name in ("alice", "mallory", "eve"))
        # mallory spends the budget on names that do not exist ...
        for _ in range(LIMIT):
            assert keys(http, mallory, random_name()).status_code == 404
        # ... and then learns nothing more, whether a name exists or not, by any route.
        assert_limited(keys(http, mallory, random_name()))
        assert_limited(keys(http, mallory, "alice"))
        assert_limited(direct(http, mallory, "alice"))
        assert_limited(direct(http, mallory, random_name()))
        assert_limited(create_group(http, mallory, "mallory", ["alice"]))
        assert_limited(create_group(http, mallory, "mallory", [random_name()]))
        # eve spends hers on names that do exist (and a direct conversation counts too):
        # a name that does not exist is refused the same way afterwards.
        assert direct(http, eve, "alice").status_code == 200
        for _ in range(LIMIT - 1):
            assert keys(http, eve, "mallory").status_code == 200
        assert_limited(keys(http, eve, random_name()))
        # The budget is per account: alice is not affected by theirs.
        assert keys(http, alice, random_name()).status_code == 404
    log = server.log()
    assert "Traceback" not in log


def test_contacts_and_oneself_cost_nothing(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        alice, bob, carol = (register(http, name) for name in ("alice", "bob", "carol"))
        assert direct(http, alice, "bob").status_code == 200  # one lookup for alice
        created = create_group(http, bob, "bob", ["carol"])  # a group that succeeds is no lookup
        assert created.status_code == 201, created.text
        for _ in range(3 * LIMIT):
            assert keys(http, alice, "bob").status_code == 200
            assert keys(http, alice, "alice").status_code == 200
            assert direct(http, alice, "bob").status_code == 200
            assert keys(http, bob, "alice").status_code == 200  # bob shares the conversation
            assert keys(http, carol, "bob").status_code == 200  # and carol the group
        # alice's budget is still there for strangers: LIMIT - 1 left.
        for _ in range(LIMIT - 1):
            assert keys(http, alice, random_name()).status_code == 404
        assert_limited(keys(http, alice, "carol"))


def test_group_changes_naming_unknown_users_spend_the_budget(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        mallory = register(http, "mallory")
        register(http, "alice")
        # Each refused change told mallory about every name in it: each costs a lookup.
        half = [random_name() for _ in range(LIMIT // 2 - 1)]
        refused = create_group(http, mallory, "mallory", sorted(["alice", *half]))
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["unknown"] == sorted(half)
        refused = create_group(http, mallory, "mallory", sorted(random_name() for _ in range(LIMIT // 2)))
        assert refused.status_code == 404, refused.text
        assert_limited(create_group(http, mallory, "mallory", [random_name()]))
        assert_limited(create_group(http, mallory, "mallory", ["alice"]))
        assert_limited(keys(http, mallory, "alice"))


async def test_a_terminal_client_with_many_contacts_stays_far_below_the_budget(
    server: LiveServer, tmp_path: Path
) -> None:
    """The terminal client checks a contact's keys before every message; only the first
    look at each new contact is counted."""
    names = ["alice", "bob", "carol", "mallory"]
    clients = {name: Messenger(tmp_path / name, server.url) for name in names}
    try:
        for name, client in clients.items():
            await client.register(name, PASSWORDS[name])
        alice = clients["alice"]
        for _ in range(3):
            for peer in names[1:]:
                await alice.send_text(peer, "hello")
                await clients[peer].send_text("alice", "hello back")
            await alice.sync_inbox()
        counted = counted_lookups(server, "alice")
        # One per contact (the first key check); the other eight sends to them were free.
        assert counted == len(names) - 1, counted
    finally:
        for client in clients.values():
            await client.close()


def counted_lookups(server: LiveServer, username: str) -> int:
    connection = sqlite3.connect(server.data_dir / "securechat.db", timeout=30)
    try:
        (user_id,) = connection.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
        (count,) = connection.execute(
            "SELECT count(*) FROM rate_events WHERE action = 'lookup' AND subject = ?", (f"user:{user_id}",)
        ).fetchone()
        return int(count)
    finally:
        connection.close()


def test_the_budget_holds_across_two_instances(tmp_path: Path) -> None:
    with postgres_database("securechat_lookups") as url:
        env = {**LIMITED, "SECURECHAT_DATABASE_URL": url}
        first = start_server(tmp_path / "data", tmp_path / "first.log", extra_env=env)
        second = start_server(tmp_path / "data", tmp_path / "second.log", extra_env=env)
        try:
            with (
                httpx.Client(base_url=first.url, timeout=60) as one,
                httpx.Client(base_url=second.url, timeout=60) as other,
            ):
                mallory = register(one, "mallory")
                for n in range(LIMIT):
                    assert keys(one if n % 2 else other, mallory, random_name()).status_code == 404
                assert_limited(keys(one, mallory, random_name()))
                assert_limited(keys(other, mallory, random_name()))
        finally:
            first.stop()
            second.stop()
