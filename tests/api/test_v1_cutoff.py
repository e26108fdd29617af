"""V1_SENDS_UNTIL (PROTOCOL.md 15.12): from the cut-off on, v1 sends are refused with 410
v1_retired and nothing is stored; v1 history and inboxes stay readable; v2 sends go on.
The server's clock is the test's (services.clock.now_ms)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from securechat.server.services import clock
from securechat.server.settings import Settings

from ..conftest import GENEROUS_LIMITS
from .conftest import RegisteredUser, RegisterUser
from .support import dm, seal
from .test_device_inbox import World
from .test_devices import V2_LIMITS

CUTOFF = "2027-01-01T00:00:00Z"
CUTOFF_MS = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings.model_validate(
        {"data_dir": tmp_path / "server", "v1_sends_until": CUTOFF, **GENEROUS_LIMITS, **V2_LIMITS}
    )


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the server's clock: ``at(ms)``."""

    def set_clock(ms: int) -> None:
        monkeypatch.setattr(clock, "now_ms", lambda: ms)

    return set_clock


async def send(http: httpx.AsyncClient, user: RegisteredUser, envelope: dict[str, Any]) -> httpx.Response:
    return await http.post("/api/v1/messages", headers=user.headers, json={"envelope": envelope})


async def history_ids(http: httpx.AsyncClient, user: RegisteredUser) -> list[str]:
    answer = await http.get(f"/api/v1/conversations/{dm('alice', 'bob')}/messages", headers=user.headers)
    assert answer.status_code == 200, answer.text
    return [item["message_id"] for item in answer.json()["messages"]]


async def inbox_ids(http: httpx.AsyncClient, user: RegisteredUser) -> list[str]:
    answer = await http.get("/api/v1/inbox", headers=user.headers, params={"since": 0})
    assert answer.status_code == 200, answer.text
    return [e["message_id"] for e in answer.json()["entries"] if e["type"] == "message"]


async def test_v1_sends_stop_at_the_cutoff_and_stored_messages_stay_readable(
    http: httpx.AsyncClient, register_user: RegisterUser, at: Any
) -> None:
    alice, bob = await register_user("alice"), await register_user("bob")
    at(CUTOFF_MS - 1)
    before = seal(alice.identity, [alice.identity, bob.identity], "just in time")
    assert (await send(http, alice, before)).status_code == 201

    at(CUTOFF_MS)  # the instant itself is past the cut-off
    late = seal(alice.identity, [alice.identity, bob.identity], "too late")
    refused = await send(http, alice, late)
    assert refused.status_code == 410, refused.text
    assert refused.json()["error"]["code"] == "v1_retired"
    assert refused.json()["error"]["sends_until"] == CUTOFF

    at(CUTOFF_MS + 86_400_000)
    assert (await send(http, bob, seal(bob.identity, [alice.identity, bob.identity]))).status_code == 410
    # A retry of the message stored before the cut-off is refused too, and changes nothing.
    assert (await send(http, alice, before)).status_code == 410

    # Nothing stored before is lost, nothing refused was stored.
    for user in (alice, bob):
        assert await history_ids(http, user) == [before["message_id"]]
    assert await inbox_ids(http, bob) == [before["message_id"]]


async def test_without_a_cutoff_v1_sends_go_on(
    http: httpx.AsyncClient, register_user: RegisterUser, at: Any, settings: Settings
) -> None:
    settings.v1_sends_until = None
    alice, bob = await register_user("alice"), await register_user("bob")
    at(CUTOFF_MS + 10**12)
    assert (await send(http, alice, seal(alice.identity, [alice.identity, bob.identity]))).status_code == 201


async def test_v2_sends_go_on_after_the_cutoff(
    http: httpx.AsyncClient, register_user: RegisterUser, at: Any
) -> None:
    world = World(http, await register_user("alice"), await register_user("bob"))
    await world.setup()
    await world.session_with(world.phone)
    await world.session_with(world.bob_phone)
    at(CUTOFF_MS + 1)
    sent = await world.send(world.seal("v2 after the cut-off"))
    assert sent.status_code == 201, sent.text
    (entry,) = (await world.inbox(world.bob_phone))["entries"]
    assert world.open(world.bob_phone, entry["envelope"]) == "v2 after the cut-off"


@pytest.mark.parametrize(
    "value",
    [
        "2027-01-01",  # a date without a time: which zone's midnight?
        "2027-01-01T00:00:00",  # no zone
        "2027-01-01T01:00:00+01:00",  # another zone
        "2027-01-01T00:00:00.0001Z",  # below a millisecond
        "2027-02-30T00:00:00Z",
        "next year",
    ],
)
def test_a_bad_cutoff_stops_the_server_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match=r"ISO-8601 UTC date-time|day is out of range"):
        Settings.model_validate({"v1_sends_until": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("2027-01-01T00:00:00Z", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01T00:00:00.250+00:00", datetime(2027, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_good_cutoffs_are_read_as_utc(value: str, expected: datetime | None) -> None:
    assert Settings.model_validate({"v1_sends_until": value}).v1_sends_until == expected


def test_the_cutoff_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECURECHAT_V1_SENDS_UNTIL", "2027-01-01T00:00:00Z")
    assert Settings().v1_sends_until == datetime(2027, 1, 1, tzinfo=UTC)
    monkeypatch.setenv("SECURECHAT_V1_SENDS_UNTIL", "2027-01-01")
    with pytest.raises(ValidationError):
        Settings()


def test_a_v1_send_frame_on_the_websocket_is_refused_too(settings: Settings, at: Any) -> None:
    from securechat.server.app import create_app

    from .support import material
    from .test_websocket import ORIGIN, WS, TestClient, authenticate, receive, register

    with TestClient(create_app(settings)) as client:
        alice = register(client, "alice")
        register(client, "bob")
        at(CUTOFF_MS)
        envelope = seal(material("alice").identity, [material("alice").identity, material("bob").identity])
        with client.websocket_connect(WS, headers=ORIGIN) as ws:
            authenticate(ws, alice["access_token"])
            ws.send_json({"type": "send", "ref": "late", "envelope": envelope})
            refused = receive(ws)
        assert (refused["type"], refused["ref"], refused["code"]) == ("error", "late", "v1_retired")
        assert refused["sends_until"] == CUTOFF
        history = client.get(
            f"/api/v1/conversations/{dm('alice', 'bob')}/messages",
            headers={"authorization": f"Bearer {alice['access_token']}"},
        )
        # Nothing was stored: not even the conversation exists.
        assert history.status_code == 404, history.text
