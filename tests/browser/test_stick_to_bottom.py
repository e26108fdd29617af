"""A conversation read at its newest message stays there while images load: a preview
that takes its height after the list was scrolled does not push the newest message out
of sight (issue 16, defect 4). Scrolled up to read, the list stays where the reader is."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import PHONE, Person
from .test_files import attach, file_card, png


def distance_from_bottom(page: Page) -> float:
    return float(
        page.evaluate(
            "() => { const l = document.querySelector('#message-list');"
            " return l.scrollHeight - l.scrollTop - l.clientHeight; }"
        )
    )


def wait_decoded(page: Page, name: str) -> None:
    preview = file_card(page, name).locator("img.file-preview")
    expect(preview).to_have_count(1, timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle())


def test_an_image_loading_after_the_scroll_keeps_the_newest_message_in_view(
    people: dict[str, Person],
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    bob.page.set_viewport_size(PHONE)
    alice.start_chat("bob")
    for number in range(12):
        alice.send(f"filler {number}")
    bob.open_chat("alice")
    expect(bob.page.locator(".message.theirs .message-text").last).to_have_text("filler 11")
    assert distance_from_bottom(bob.page) < 2

    # A tall picture, and a line right after it: both arrive while bob reads the newest.
    attach(alice, "tall.png", "image/png", png(200, 400, (30, 120, 200)))
    expect(file_card(alice.page, "tall.png")).to_have_count(1)
    alice.send("after the picture")
    wait_decoded(bob.page, "tall.png")
    newest = bob.page.locator(".message.theirs .message-text").last
    expect(newest).to_have_text("after the picture")
    expect(newest).to_be_in_viewport()
    bob.page.wait_for_function(
        "() => { const l = document.querySelector('#message-list');"
        " return l.scrollHeight - l.scrollTop - l.clientHeight < 2; }",
        timeout=5_000,
    )

    # Scrolled up to read older messages, a new picture does not move the list.
    bob.page.evaluate("document.querySelector('#message-list').scrollTop = 0")
    attach(alice, "second.png", "image/png", png(200, 400, (200, 120, 30)))
    wait_decoded(bob.page, "second.png")
    assert bob.page.evaluate("document.querySelector('#message-list').scrollTop") < 5
