"""Files in protocol v2 (PROTOCOL.md 15.18): two browsers with v2 on share an image and
another file; the `file` payload travels in the v2 body (POST /v2/messages, never a v1
message), bob's image is previewed and the other file downloads with its checks, both
stay after a reload (sealed in the profile, no file name in the clear there), a chunk
altered on the server is reported corrupt and not offered, and a browser and the
terminal client share files in v2 both ways. The server's files and log never hold a
file's name or contents."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from playwright.sync_api import Page, expect

from ..conftest import LiveServer
from .conftest import MakeTerminal, Person
from .test_files import SENT, attach, chunk_files, file_card, png, saved_bytes
from .test_v2_browsers import server_bytes
from .v2_support import raw_v2_store, switch_on_v2, two_in_a_v2_chat, v2_posts


def v1_posts(page: Page) -> list[str]:
    """Every v1 send this page makes (HTTP; the socket's send frames are counted apart)."""
    posts: list[str] = []
    page.on(
        "request",
        lambda request: (
            posts.append(request.url)
            if request.method == "POST" and request.url.endswith("/api/v1/messages")
            else None
        ),
    )
    return posts


def v1_socket_sends(page: Page) -> list[str]:
    """Every v1 `send` frame this page writes to its WebSocket."""
    frames: list[str] = []
    page.on(
        "websocket",
        lambda socket: socket.on(
            "framesent",
            lambda payload: frames.append(str(payload)) if '"type":"send"' in str(payload) else None,
        ),
    )
    return frames


def test_two_browsers_share_files_in_v2(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob = people["alice"], people["bob"]
    posts, http_v1, socket_v1 = v2_posts(alice.page), v1_posts(alice.page), v1_socket_sends(alice.page)
    two_in_a_v2_chat(people, "files follow")

    picture = png(48, 32, (20, 160, 90))
    attach(alice, "green-square.png", "image/png", picture)
    expect(alice.page.locator(".message.mine .status").last).to_have_text(SENT, timeout=30_000)
    ledger = os.urandom(1024 * 1024 + 777)  # two chunks
    alice.page.get_by_label("Message", exact=True).fill("the ledger, in v2")
    attach(alice, "quarterly-ledger.bin", "application/octet-stream", ledger)
    expect(alice.page.locator(".message.mine .status")).to_have_text([SENT, SENT, SENT], timeout=30_000)
    # Every message went through POST /v2/messages; no file message went in v1.
    assert len(posts) == 3, posts
    assert http_v1 == [] and socket_v1 == [], (http_v1, socket_v1)

    bob.open_chat("alice")
    preview = file_card(bob.page, "green-square.png").locator("img.file-preview")
    expect(preview).to_have_attribute("alt", "Preview of green-square.png", timeout=30_000)
    bob.page.wait_for_function("img => img.complete && img.naturalWidth === 48", arg=preview.element_handle())
    assert saved_bytes(bob.page, "green-square.png") == picture
    card = file_card(bob.page, "quarterly-ledger.bin")
    expect(card.locator(".file-details")).to_have_text("1.0 MiB · application/octet-stream")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(
        ["files follow", "the ledger, in v2"]
    )
    card.get_by_role("button", name="Download: quarterly-ledger.bin").click()
    expect(card.locator(".file-save")).to_be_visible(timeout=30_000)
    assert (
        hashlib.sha256(saved_bytes(bob.page, "quarterly-ledger.bin")).digest()
        == hashlib.sha256(ledger).digest()
    )
    assert all(m["verified"] for m in bob.messages())

    # Kept across a reload on both sides (the server cannot serve v2 messages again),
    # sealed: the profile's stored v2 records hold neither name in the clear.
    for person, name in ((bob, "quarterly-ledger.bin"), (alice, "green-square.png")):
        person.page.reload()
        person.unlock()
        person.open_chat("bob" if person is alice else "alice")
        expect(file_card(person.page, name).locator(".file-name")).to_have_text(name, timeout=30_000)
        stored = raw_v2_store(person.page)
        for secret in (b"quarterly-ledger", b"green-square", b"the ledger, in v2"):
            assert secret not in stored, secret
    card = file_card(bob.page, "quarterly-ledger.bin")
    card.get_by_role("button", name="Download: quarterly-ledger.bin").click()
    expect(card.locator(".file-save")).to_be_visible(timeout=30_000)
    assert saved_bytes(bob.page, "quarterly-ledger.bin") == ledger

    # Invariant 1: neither the names nor the contents are in the server's files or log.
    stored = server_bytes(server)
    for secret in (b"quarterly-ledger", b"green-square", b"the ledger, in v2", ledger[:64], ledger[-64:]):
        assert secret not in stored
    assert picture[16:48] not in stored


def test_a_v2_file_with_a_chunk_altered_on_the_server_is_reported_corrupt(
    people: dict[str, Person], server: LiveServer
) -> None:
    posts = v2_posts(people["alice"].page)
    alice, bob = two_in_a_v2_chat(people, "a contract follows")
    attach(alice, "contract-v2.pdf", "application/pdf", os.urandom(200_000))
    expect(alice.page.locator(".message.mine .status")).to_have_text([SENT, SENT], timeout=30_000)
    assert len(posts) == 2  # the file's message too went in v2

    (stored,) = chunk_files(server)
    data = bytearray(stored.read_bytes())
    data[500] ^= 0x80
    stored.write_bytes(bytes(data))

    bob.open_chat("alice")
    card = file_card(bob.page, "contract-v2.pdf")
    card.get_by_role("button", name="Download: contract-v2.pdf").click()
    expect(card.locator(".file-error")).to_contain_text("corrupt or incomplete", timeout=30_000)
    expect(card.locator(".file-save")).to_have_count(0)

    # The chunk put back, the same message downloads: the failure above was the check.
    data[500] ^= 0x80
    stored.write_bytes(bytes(data))
    card.get_by_role("button", name="Try again: contract-v2.pdf").click()
    expect(card.locator(".file-save")).to_be_visible(timeout=30_000)


def test_browser_and_terminal_share_files_in_v2(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer, tmp_path: Path
) -> None:
    carol = people["carol"]
    carol.register()
    switch_on_v2(carol)
    posts, http_v1, socket_v1 = v2_posts(carol.page), v1_posts(carol.page), v1_socket_sends(carol.page)
    dave = terminal("dave")
    dave.run(dave.messenger.enable_v2())

    # Terminal -> browser, in v2 (the terminal never sent anything before).
    notes = tmp_path / "dave-field-notes.txt"
    notes.write_bytes("ünïcödé field notes\n".encode() * 70_000)
    sent = dave.run(dave.messenger.send_file("carol", notes, caption="notes in v2"))
    assert sent["devices"] == 1  # POST /v2/messages's answer: carol's one device
    carol.page.locator(".conversation-item[data-peer='dave']").wait_for(timeout=20_000)
    carol.open_chat("dave")
    card = file_card(carol.page, "dave-field-notes.txt")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(["notes in v2"])
    card.get_by_role("button", name="Download: dave-field-notes.txt").click()
    expect(card.locator(".file-save")).to_be_visible(timeout=30_000)
    assert saved_bytes(carol.page, "dave-field-notes.txt") == notes.read_bytes()

    # Browser -> terminal, in v2.
    sheet = os.urandom(1024 * 1024 + 1)
    attach(carol, "carol-sheet.ods", "application/vnd.oasis.opendocument.spreadsheet", sheet)
    expect(carol.page.locator(".message.mine .status")).to_have_text([SENT], timeout=30_000)
    # In v2 (its receipts go there too): nothing of carol's went in v1.
    assert posts and http_v1 == [] and socket_v1 == [], (posts, http_v1, socket_v1)
    items = [i for i in dave.run(dave.messenger.sync_v2()) if i.kind == "message"]
    assert [(i.sender, i.verified, i.file and i.file["name"]) for i in items] == [
        ("carol", True, "carol-sheet.ods")
    ]
    assert items[0].file is not None and "key" not in items[0].file
    saved = dave.run(dave.messenger.get_file(items[0].file["id"], tmp_path))
    assert saved.read_bytes() == sheet

    stored = server_bytes(server)
    for secret in (b"dave-field-notes", b"carol-sheet", b"notes in v2", sheet[:64], b"field notes"):
        assert secret not in stored
