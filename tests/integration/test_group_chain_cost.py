"""What a group change costs the server (issue 12, item 2), against real server processes.

The server keeps the verified head of each group's membership chain and checks only
the new change against it: an old stored link is never read again, a change that does
not extend the head is refused, two changes racing for one head on two instances
cannot both be stored (the loser gets ``group_conflict``), and one account can append
only so fast (429 ``rate_limited``) without slowing anyone else's changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from securechat.protocol.encoding import b64decode, b64encode
from securechat.protocol.groups import GroupChange, GroupState, genesis, sign_change

from ..api.support import bearer, identity_for, registration_body
from ..conftest import LiveServer, postgres_instances, server_database, start_server


def now() -> int:
    return int(time.time() * 1000)


def lookup(name: str) -> Any:
    return identity_for(name).public


async def register(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    response = await http.post("/api/v1/auth/register", json=registration_body(name))
    assert response.status_code == 201, response.text
    return bearer(response.json()["access_token"])


class Chain:
    """One group as its members' clients see it: the verified state they sign changes on."""

    def __init__(self, headers: dict[str, dict[str, str]]) -> None:
        self.headers = headers
        self.state: GroupState | None = None

    def sign(self, actor: str, action: str, members: list[str] = ()) -> GroupChange:  # type: ignore[assignment]
        return sign_change(identity_for(actor), self.state, action, members, at=now())

    async def submit(self, http: httpx.AsyncClient, actor: str, change: GroupChange) -> httpx.Response:
        path = "/api/v1/groups" if change.seq == 0 else f"/api/v1/groups/{change.group_id}/changes"
        response = await http.post(path, headers=self.headers[actor], json={"change": change.to_wire()})
        if response.status_code == 201:
            self.take(change)
        return response

    def take(self, change: GroupChange) -> None:
        self.state = genesis(change, lookup) if self.state is None else self.state.apply(change, lookup)

    async def make(self, http: httpx.AsyncClient, actor: str, action: str, members: list[str] = ()) -> None:  # type: ignore[assignment]
        response = await self.submit(http, actor, self.sign(actor, action, members))
        assert response.status_code == 201, response.text

    @property
    def id(self) -> str:
        assert self.state is not None
        return self.state.group_id


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_an_append_is_checked_against_the_stored_head_not_the_old_links(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "server.log")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            headers = {name: await register(http, name) for name in ("alice", "bob", "carol")}
            chain = Chain(headers)
            await chain.make(http, "alice", "create", ["bob"])
            for _ in range(6):
                await chain.make(http, "alice", "add", ["carol"])
                await chain.make(http, "alice", "remove", ["carol"])
            assert chain.state is not None and chain.state.seq == 12

            # Someone with the database breaks an old link: change 3's signature no
            # longer verifies. Replaying the stored chain would now fail at change 3.
            connection = server_database(server)
            try:
                (text,) = connection.execute(
                    "SELECT change FROM group_changes WHERE conversation_id = ? AND seq = 3", (chain.id,)
                ).fetchone()
                broken = json.loads(text)
                signature = bytearray(b64decode(broken["signature"], max_bytes=64))
                signature[0] ^= 0xFF
                broken["signature"] = b64encode(bytes(signature))
                connection.execute(
                    "UPDATE group_changes SET change = ? WHERE conversation_id = ? AND seq = 3",
                    (json.dumps(broken), chain.id),
                )
            finally:
                connection.close()

            # A valid change on the head is still taken: the server checked change 3
            # when it was stored, and does not check it again.
            response = await chain.submit(http, "alice", chain.sign("alice", "add", ["carol"]))
            assert response.status_code == 201, response.text
            assert response.json() == {"group_id": chain.id, "seq": 13, "members": ["alice", "bob", "carol"]}

            # A change at the right position that does not name the head's hash is refused.
            assert chain.state is not None
            elsewhere = dataclasses.replace(chain.state, head=bytes(32))
            forked = sign_change(identity_for("alice"), elsewhere, "remove", ["carol"], at=now())
            response = await chain.submit(http, "alice", forked)
            assert response.status_code == 400 and error_code(response) == "invalid_group_change"
            # So is one that breaks a rule at the head (bob is not an admin).
            by_bob = chain.sign("bob", "remove", ["carol"])
            response = await chain.submit(http, "bob", by_bob)
            assert response.status_code == 400 and error_code(response) == "invalid_group_change"
            # And one for a position already taken is a conflict, naming the head.
            stale = sign_change(
                identity_for("alice"), dataclasses.replace(chain.state, seq=12), "remove", ["carol"], at=now()
            )
            response = await chain.submit(http, "alice", stale)
            assert response.status_code == 409 and error_code(response) == "group_conflict"
            assert response.json()["error"]["head"] == 13

            listed = await http.get(f"/api/v1/groups/{chain.id}/changes", headers=headers["bob"])
            assert [c["seq"] for c in listed.json()["changes"]] == list(range(14))
        assert "Traceback" not in server.log()
    finally:
        server.stop()


@pytest.fixture(params=["postgresql", "sqlite"])
async def two_instances(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on one database: PostgreSQL (with Redis between them), or
    two on one SQLite file."""
    if request.param == "sqlite":
        first = start_server(tmp_path / "data", tmp_path / "first.log")
        second = start_server(tmp_path / "data", tmp_path / "second.log")
        try:
            yield first, second
        finally:
            first.stop()
            second.stop()
        return
    async with postgres_instances(tmp_path, "securechat_group_heads") as instances:
        yield instances


async def test_two_changes_racing_for_one_head_on_two_instances(two_instances) -> None:  # type: ignore[no-untyped-def]
    first, second = two_instances
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=60) as one,
        httpx.AsyncClient(base_url=second.url, timeout=60) as two,
    ):
        headers = {name: await register(one, name) for name in ("alice", "bob", "carol", "dave")}
        chain = Chain(headers)
        await chain.make(one, "alice", "create", ["bob"])
        await chain.make(one, "alice", "promote", ["bob"])
        # A longer chain makes a wider window for the two to overlap in.
        for _ in range(15):
            await chain.make(one, "alice", "add", ["carol"])
            await chain.make(one, "alice", "remove", ["carol"])

        outcomes: list[tuple[int, int]] = []
        for round_number in range(12):
            action = "add" if round_number % 2 == 0 else "remove"
            # From the same head: alice (through the first instance) and bob (through
            # the second) each sign a valid change of their own.
            hers = chain.sign("alice", action, ["carol"])
            his = chain.sign("bob", action, ["dave"])
            answers = await asyncio.gather(
                one.post(
                    f"/api/v1/groups/{chain.id}/changes",
                    headers=headers["alice"],
                    json={"change": hers.to_wire()},
                ),
                two.post(
                    f"/api/v1/groups/{chain.id}/changes",
                    headers=headers["bob"],
                    json={"change": his.to_wire()},
                ),
            )
            statuses = sorted(answer.status_code for answer in answers)
            outcomes.append((statuses[0], statuses[1]))
            assert statuses == [201, 409], [answer.text for answer in answers]
            won, lost = (hers, his) if answers[0].status_code == 201 else (his, hers)
            loser = answers[1] if answers[0].status_code == 201 else answers[0]
            assert error_code(loser) == "group_conflict"
            assert loser.json()["error"]["head"] == won.seq
            chain.take(won)
            # Nothing is lost: the loser signs again on the new head and is stored.
            again = chain.sign(lost.actor, action, list(lost.members))
            retried = await chain.submit(two if lost.actor == "bob" else one, lost.actor, again)
            assert retried.status_code == 201, retried.text

        assert outcomes == [(201, 409)] * 12
        assert chain.state is not None
        for http in (one, two):
            listed = await http.get(f"/api/v1/groups/{chain.id}/changes", headers=headers["bob"])
            stored = [GroupChange.from_wire(c) for c in listed.json()["changes"]]
            assert len(stored) == chain.state.seq + 1
            assert stored[-1].digest() == chain.state.head
            conversations = await http.get("/api/v1/conversations", headers=headers["alice"])
            (group,) = [c for c in conversations.json()["conversations"] if c["id"] == chain.id]
            assert sorted(group["members"]) == sorted(chain.state.members)
    for server in (first, second):
        assert "Traceback" not in server.log()


async def test_one_account_appends_only_so_fast_and_others_are_unaffected(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data", tmp_path / "server.log", extra_env={"SECURECHAT_GROUP_CHANGES_PER_MINUTE": "5"}
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            headers = {name: await register(http, name) for name in ("alice", "bob", "carol", "mallory")}
            mallory = Chain(headers)
            await mallory.make(http, "mallory", "create", ["alice"])
            for action in ("add", "remove", "add", "remove"):
                await mallory.make(http, "mallory", action, ["carol"])
            # The sixth change within the minute is refused, and nothing is stored.
            response = await mallory.submit(http, "mallory", mallory.sign("mallory", "add", ["carol"]))
            assert response.status_code == 429, response.text
            assert error_code(response) == "rate_limited"
            assert int(response.headers["retry-after"]) >= 1
            listed = await http.get(f"/api/v1/groups/{mallory.id}/changes", headers=headers["alice"])
            assert len(listed.json()["changes"]) == 5
            # So is a new group of hers.
            response = await Chain(headers).submit(http, "mallory", Chain(headers).sign("mallory", "create"))
            assert response.status_code == 429 and error_code(response) == "rate_limited"

            # Alice, a member of mallory's group, still changes her own group (and
            # leaves mallory's) at her own pace.
            alice = Chain(headers)
            await alice.make(http, "alice", "create", ["bob"])
            for action in ("add", "remove", "add"):
                await alice.make(http, "alice", action, ["carol"])
            await mallory.make(http, "alice", "leave")
    finally:
        server.stop()
