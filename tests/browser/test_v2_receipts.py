"""Delivered and read receipts in v2 direct conversations in the browser (PROTOCOL.md
15.17): an own v2 message goes Sent -> Delivered -> Read as a v1 one does, the status
survives a reload, the receipts travel as ordinary v2 messages (POST /v2/messages, no v1
receipt), a receipt is never shown as a chat item, and with read receipts off the reader
gives only "delivered"."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import Person
from .v2_support import switch_on_v2, two_in_a_v2_chat, v2_posts


def v1_receipt_sends(page: Page) -> list[str]:
    """v1 receipts: POST /receipts, or a `receipt` frame on the inbox socket."""
    sent: list[str] = []
    page.on(
        "request",
        lambda request: sent.append(request.url) if request.url.endswith("/api/v1/receipts") else None,
    )
    page.on(
        "websocket",
        lambda socket: socket.on(
            "framesent",
            lambda frame: (
                sent.append(str(frame)) if '"type":"receipt"' in str(frame).replace(" ", "") else None
            ),
        ),
    )
    return sent


def read_receipts_off(person: Person) -> None:
    page = person.page
    page.locator("#open-account").click()
    page.locator("#setting-read-receipts").uncheck()
    page.locator("#account-close").click()


def test_an_own_v2_message_goes_sent_delivered_read_and_stays_read(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    bob_posts = v2_posts(bob.page)
    bob_v1 = v1_receipt_sends(bob.page)
    alice, bob = two_in_a_v2_chat(people, "hello in v2")
    status = alice.page.locator(".message.mine .status")
    # bob's page accepted it (his chat is not open): "delivered", not yet "read".
    expect(status).to_have_text([" · Delivered"], timeout=20_000)
    assert len(bob_posts) == 1

    bob.open_chat("alice")
    expect(status).to_have_text([" · Read"], timeout=20_000)
    assert len(bob_posts) == 2
    assert bob_v1 == []
    # Neither receipt is a chat item on either side, and alice sent none back for them.
    expect(bob.page.locator("#message-list .message")).to_have_count(1)
    expect(alice.page.locator("#message-list .message")).to_have_count(1)
    assert [m["text"] for m in alice.messages()] == ["hello in v2"]

    # After a reload the kept v2 message still says "Read".
    alice.page.reload()
    alice.unlock()
    alice.open_chat("bob")
    expect(alice.page.locator(".message.mine .status")).to_have_text([" · Read"], timeout=20_000)
    expect(alice.page.locator("#message-list .message")).to_have_count(1)


def test_with_read_receipts_off_a_v2_message_is_only_delivered(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    switch_on_v2(alice)
    switch_on_v2(bob)
    read_receipts_off(bob)
    bob_posts = v2_posts(bob.page)
    alice.start_chat("bob")
    alice.send("do not tell me you read this")
    status = alice.page.locator(".message.mine .status")
    expect(status).to_have_text([" · Delivered"], timeout=20_000)
    bob.open_chat("alice")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(["do not tell me you read this"])
    # bob answers: alice's page receipts bob's message, and bob's own message's status
    # moving proves alice's receipts got through after anything bob's page would have sent.
    bob.send("noted")
    expect(bob.page.locator(".message.mine .status")).to_have_text([" · Read"], timeout=20_000)
    expect(status).to_have_text([" · Delivered"])
    # bob's page sent the reply and one "delivered" receipt, no "read" one.
    assert len(bob_posts) == 2
