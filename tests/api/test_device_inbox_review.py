"""Review findings on v2 device inboxes (PROTOCOL.md 15.16), each on SQLite and
PostgreSQL: a device listed again goes on from its last position (a client resuming
from its stored position must not skip new entries as seen); a page is bounded in bytes
as well as in entries; and a list published between the send's checks and its write
cannot get an envelope stored for lists that are no longer current."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from securechat.server.services import device_inbox as service
from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS, throwaway_postgres
from .conftest import RegisterUser
from .test_device_inbox import World
from .test_devices import V2_LIMITS, device_list, error, make_device, publish

PAGE_BYTES = 4096


@pytest.fixture(params=["sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Settings]:
    options: dict[str, Any] = {**GENEROUS_LIMITS, **V2_LIMITS, "device_inbox_page_bytes": PAGE_BYTES}
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "server", **options)
        return
    async with throwaway_postgres("securechat_inbox_review") as (_, url):
        yield Settings(data_dir=tmp_path / "server", database_url=url, **options)


@pytest.fixture
async def world(http: httpx.AsyncClient, register_user: RegisterUser) -> World:
    made = World(http, await register_user("alice"), await register_user("bob"))
    await made.setup()
    await made.session_with(made.phone)
    await made.session_with(made.bob_phone)
    return made


async def test_a_device_listed_again_goes_on_from_its_last_position(world: World) -> None:
    assert (await world.send(world.seal("before"))).status_code == 201
    (entry,) = (await world.inbox(world.bob_phone))["entries"]
    assert (await world.ack(world.bob_phone, entry["seq"])).status_code == 200
    stored_position = entry["seq"]  # what bob's phone keeps, and resumes from
    tablet = make_device(world.bob.identity, "tablet")
    assert (
        await publish(world.http, world.bob, device_list(world.bob.identity, [tablet], 2))
    ).status_code == 200
    again = device_list(world.bob.identity, [world.bob_phone], 3)
    assert (await publish(world.http, world.bob, again)).status_code == 200
    world.credentials.clear()
    sent = await world.send(world.seal("after", [("alice", 1, [world.phone]), ("bob", 3, [world.bob_phone])]))
    assert sent.status_code == 201, sent.text
    # Resuming from its stored position, the phone finds the new entry: its position 2.
    page = await world.inbox(world.bob_phone, since=stored_position)
    assert [e["seq"] for e in page["entries"]] == [stored_position + 1]
    assert page["head"] == stored_position + 1


async def test_a_page_is_bounded_in_bytes(world: World) -> None:
    for number in range(3):
        assert (await world.send(world.seal(f"{number}" + "x" * 3000))).status_code == 201
    seen: list[int] = []
    pages = 0
    since, more = 0, True
    while more:
        page = await world.inbox(world.bob_phone, since=since)
        assert page["entries"], page
        # Each entry is over half the budget: one per page, whatever the count limit.
        assert len(page["entries"]) == 1
        seen += [e["seq"] for e in page["entries"]]
        since, more = seen[-1], page["more"]
        pages += 1
    assert (seen, pages) == ([1, 2, 3], 3)
    # Small entries share a page, up to the count limit.
    for number in range(3):
        assert (await world.send(world.seal(f"small {number}"))).status_code == 201
    page = await world.inbox(world.bob_phone, since=3)
    assert ([e["seq"] for e in page["entries"]], page["more"]) == ([4, 5, 6], False)


async def test_a_list_published_between_check_and_write_is_not_overlooked(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bob adds a tablet after the send checked his list (version 1) and before it stores
    the envelope: storing it for version 1 would leave the tablet out unnoticed."""
    tablet = make_device(world.bob.identity, "tablet")
    original = service.device_store.get_device
    published: list[int] = []

    async def check_then_publish(conn: Any, user_id: int, device_id: str) -> Any:
        found = await original(conn, user_id, device_id)
        if device_id == world.laptop.device_id and not published:
            listed = device_list(world.bob.identity, [world.bob_phone, tablet], 2)
            published.append((await publish(world.http, world.bob, listed)).status_code)
        return found

    monkeypatch.setattr(service.device_store, "get_device", check_then_publish)
    refused = error(await world.send(world.seal("racing")), 409, "device_list_stale")
    assert published == [200]
    assert refused["versions"] == {"alice": 1, "bob": 2}
    assert (await world.inbox(world.bob_phone))["head"] == 0


async def test_a_device_revoked_between_check_and_write_gets_nothing(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tablet = make_device(world.bob.identity, "tablet")
    original = service.device_store.get_device
    published: list[int] = []

    async def check_then_revoke(conn: Any, user_id: int, device_id: str) -> Any:
        found = await original(conn, user_id, device_id)
        if device_id == world.laptop.device_id and not published:
            for version, devices in ((2, [tablet]), (3, [world.bob_phone, tablet])):
                listed = device_list(world.bob.identity, devices, version)
                published.append((await publish(world.http, world.bob, listed)).status_code)
        return found

    monkeypatch.setattr(service.device_store, "get_device", check_then_revoke)
    # Revoked and listed again meanwhile: the sessions the envelope was sealed for are gone.
    refused = error(await world.send(world.seal("racing")), 409, "device_list_stale")
    assert published == [200, 200]
    assert refused["versions"] == {"alice": 1, "bob": 3}
    world.credentials.clear()
    assert (await world.inbox(world.bob_phone))["entries"] == []
