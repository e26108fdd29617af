"""Revoking a device from the sessions view (PROTOCOL.md 15.16: a session names the
device that proved itself in it). Two browser profiles are two devices of alice; from the
first one's sessions view she revokes the second: the signed list no longer has it, its
session ends, and nothing sent afterwards is addressed to it. The server's word on which
device a session is counts only for devices of the list this browser verified."""

from __future__ import annotations

import json
import time

from playwright.sync_api import Page, Response, expect

from ..conftest import LiveServer, server_database
from .conftest import Person
from .v2_support import switch_on_v2, two_in_a_v2_chat


def accepted_v2_posts(page: Page) -> list[str]:
    """The bodies of this page's POST /v2/messages the server took (a 409 stale-list answer
    is sealed again for the new list, so only what was stored counts)."""
    bodies: list[str] = []

    def on_response(response: Response) -> None:
        request = response.request
        if request.method == "POST" and request.url.endswith("/api/v1/v2/messages") and response.ok:
            bodies.append(request.post_data or "")

    page.on("response", on_response)
    return bodies


def session_of_device(server: LiveServer, device_id: str) -> tuple[str, int | None]:
    """The id of the session the device proved itself in, and when it was revoked."""
    database = server_database(server)
    try:
        rows = database.execute(
            "SELECT id, revoked_at FROM sessions WHERE device_id = ?", (device_id,)
        ).fetchall()
    finally:
        database.close()
    assert len(rows) == 1, rows
    return rows[0][0], rows[0][1]


def listed_devices(server: LiveServer, username: str) -> list[str]:
    """The device ids of the account's current signed list, as the server stores it."""
    database = server_database(server)
    try:
        (document,) = database.execute(
            "SELECT d.document FROM device_lists d JOIN users u ON u.id = d.user_id"
            " WHERE u.username = ? ORDER BY d.version DESC LIMIT 1",
            (username,),
        ).fetchone()
    finally:
        database.close()
    return [device["device_id"] for device in json.loads(document)["devices"]]


def test_a_device_is_revoked_from_the_sessions_view_and_its_session_ends(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, bob = two_in_a_v2_chat(people, "before the laptop")
    laptop = people["alice-laptop"]
    laptop.name = "alice"
    laptop.login()
    switch_on_v2(laptop)
    # The laptop's device has proved itself in its session (its inbox read needs that).
    bob.open_chat("alice")
    bob.send("to both of alice's devices")
    expect(laptop.page.locator(".conversation-item[data-peer='bob']")).to_have_count(1, timeout=20_000)

    page = alice.page
    page.locator("#open-account").click()
    expect(page.locator("#device-list li")).to_have_count(2, timeout=20_000)
    phone_id = page.locator("#device-list li.current").get_attribute("data-device-id")
    laptop_id = page.locator("#device-list li:not(.current)").get_attribute("data-device-id")
    assert phone_id and laptop_id and phone_id != laptop_id
    assert sorted(listed_devices(server, "alice")) == sorted([phone_id, laptop_id])
    laptop_session, revoked_at = session_of_device(server, laptop_id)
    assert revoked_at is None

    sessions = page.locator("#session-list li")
    expect(sessions).to_have_count(2)
    # This browser's own session names its own device, with nothing to revoke.
    mine = page.locator("#session-list li.current")
    expect(mine).to_contain_text("this device")
    expect(mine.get_by_role("button", name="Revoke device")).to_have_count(0)
    # The laptop's session names the laptop as the devices panel does, with its button.
    other = page.locator(f"#session-list li[data-session-id='{laptop_session}']")
    expect(other.locator(".session-device")).to_contain_text(laptop_id[:16])
    panel_name = page.locator("#device-list li:not(.current) .device-name").inner_text()
    expect(other.locator(".session-device")).to_contain_text(panel_name)

    page.once("dialog", lambda dialog: dialog.accept())
    other.get_by_role("button", name="Revoke device").click()
    expect(page.locator("#sessions-result")).to_have_text(
        "The device was revoked (it receives no new messages) and its session ended."
    )
    expect(sessions).to_have_count(1)
    expect(page.locator("#device-list li")).to_have_count(1)

    # The signed list no longer has the laptop, and its session is over: its page says so.
    assert listed_devices(server, "alice") == [phone_id]
    # Watched from the new list on (receipts sent before it was published may name the laptop).
    alice_posts, bob_posts = accepted_v2_posts(page), accepted_v2_posts(bob.page)
    assert session_of_device(server, laptop_id)[1] is not None
    expect(laptop.page.locator("#auth-error")).to_contain_text("Your session has ended", timeout=20_000)
    page.locator("#account-close").click()

    # Nothing sent afterwards, by alice or by bob, carries a key for the laptop.
    alice.send("after the revocation, from alice")
    bob.send("after the revocation, from bob")
    expect(page.locator(".message.theirs .message-text").last).to_have_text(
        "after the revocation, from bob", timeout=20_000
    )
    assert alice_posts and bob_posts
    for body in alice_posts + bob_posts:
        assert laptop_id not in body
    assert any(phone_id in body for body in bob_posts)


def test_a_device_the_verified_list_does_not_have_is_not_offered(
    people: dict[str, Person], server: LiveServer
) -> None:
    """The server names, on a session, a device this browser's verified list does not
    have (bob's device, put on alice's other session by a malicious server): the row
    shows no device and offers nothing to revoke."""
    alice, bob = two_in_a_v2_chat(people, "hello")
    second = people["alice-second"]
    second.name = "alice"
    second.login()
    # v2 is on by default: the second browser is a device, and its session names it.
    second.page.locator("#open-account").click()
    expect(second.page.locator("#device-list li.current")).to_have_count(1, timeout=20_000)
    seconds_device = second.page.locator("#device-list li.current").get_attribute("data-device-id")
    second.page.locator("#account-close").click()
    bob.page.locator("#open-account").click()
    expect(bob.page.locator("#device-list li.current")).to_have_count(1, timeout=20_000)
    bobs_device = bob.page.locator("#device-list li.current").get_attribute("data-device-id")
    assert bobs_device and seconds_device
    database = server_database(server)
    try:
        # Once the second browser has proved itself (its device credential), the server
        # lies: its session names bob's device instead.
        deadline = time.monotonic() + 20
        while not database.execute(
            "SELECT 1 FROM sessions WHERE device_id = ?", (seconds_device,)
        ).fetchone():
            assert time.monotonic() < deadline, "the second browser's session never named its device"
            time.sleep(0.1)
        database.execute(
            "UPDATE sessions SET device_id = ? WHERE device_id = ?", (bobs_device, seconds_device)
        )
    finally:
        database.close()

    page = alice.page
    page.locator("#open-account").click()
    sessions = page.locator("#session-list li")
    expect(sessions).to_have_count(2)
    expect(page.locator("#session-list li.current")).to_contain_text("this device")
    other = page.locator("#session-list li:not(.current)")
    expect(other).not_to_contain_text(bobs_device[:16])
    expect(other.get_by_role("button", name="Revoke device")).to_have_count(0)
