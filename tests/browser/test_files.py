"""Encrypted files in the browser: two browsers exchange files with progress, a checked
hash and an image preview; a browser and a terminal client exchange files both ways; a
tampered chunk is reported and nothing is offered; hostile names and types stay text."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import zlib
from pathlib import Path

from playwright.sync_api import Page, expect

from ..conftest import LiveServer
from .conftest import MakeTerminal, Person

SENT = re.compile(r" · (Sent|Delivered|Read)")

# Records the value of every file progress bar the page shows, as it changes.
PROGRESS_WATCH = """
window.__progress = [];
new MutationObserver(() => {
  for (const bar of document.querySelectorAll("progress.file-progress")) {
    const value = bar.getAttribute("value");
    if (window.__progress.at(-1) !== value) window.__progress.push(value);
  }
}).observe(document.body, {subtree: true, childList: true, attributes: true});
"""


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def attach(person: Person, name: str, mime_type: str, data: bytes) -> None:
    person.page.locator("#composer-file").set_input_files(
        files=[{"name": name, "mimeType": mime_type, "buffer": data}]
    )


def file_card(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(".message .file-card").filter(has=page.locator(".file-name", has_text=name))


def saved_bytes(page: Page, name: str) -> bytes:
    """Click "Save" and read the file the browser actually wrote."""
    with page.expect_download() as download:
        file_card(page, name).locator(".file-save").click()
    assert download.value.suggested_filename == name
    return Path(download.value.path()).read_bytes()


def chunk_files(server: LiveServer) -> list[Path]:
    return sorted(p for p in (server.data_dir / "files").rglob("*") if p.is_file())


def test_two_browsers_exchange_files_with_progress_hash_and_preview(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    alice.start_chat("bob")

    report = os.urandom(2 * 1024 * 1024 + 4321)
    # Progress is shown while the upload runs: record every value the bar takes.
    alice.page.evaluate(PROGRESS_WATCH)
    alice.page.get_by_label("Message", exact=True).fill("the report")
    attach(alice, "report.bin", "application/octet-stream", report)
    card = file_card(alice.page, "report.bin")
    expect(card.locator(".file-name")).to_have_text("report.bin")
    expect(alice.page.locator(".message.mine .status").last).to_have_text(SENT, timeout=30_000)
    expect(card.locator(".file-details")).to_have_text("2.0 MiB · application/octet-stream")
    seen = alice.page.evaluate("window.__progress")
    assert seen[0] == "0" and "100" in seen and len(set(seen)) >= 3, seen

    picture = png(40, 30, (200, 30, 30))
    attach(alice, "red.png", "image/png", picture)
    expect(alice.page.locator(".message.mine .status")).to_have_text([SENT, SENT], timeout=30_000)

    bob.open_chat("alice")
    received = file_card(bob.page, "report.bin")
    expect(received.locator(".file-details")).to_have_text("2.0 MiB · application/octet-stream")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(["the report"])
    expect(bob.page.locator(".conversation-item[data-peer='alice'] .conversation-preview")).to_have_text(
        "📎 red.png"
    )
    # The image is fetched, checked and previewed without a click; it is really decoded.
    preview = file_card(bob.page, "red.png").locator("img.file-preview")
    expect(preview).to_have_attribute("alt", "Preview of red.png")
    bob.page.wait_for_function("img => img.complete && img.naturalWidth === 40", arg=preview.element_handle())
    # The other file waits for a click, then shows progress and a save link.
    bob.page.evaluate(PROGRESS_WATCH)
    received.get_by_role("button", name="Download: report.bin").click()
    expect(received.locator(".file-save")).to_have_text("Save report.bin", timeout=30_000)
    assert hashlib.sha256(saved_bytes(bob.page, "report.bin")).digest() == hashlib.sha256(report).digest()
    seen = bob.page.evaluate("window.__progress")
    assert "100" in seen and len(set(seen)) >= 3, seen
    assert saved_bytes(bob.page, "red.png") == picture
    expect(file_card(bob.page, "red.png").locator(".file-save")).to_have_attribute("type", "image/png")
    # Bob has both on screen: the read receipts come back to the sender.
    expect(alice.page.locator(".message.mine .status")).to_have_text([" · Read", " · Read"])


def test_browser_and_terminal_client_exchange_files(
    people: dict[str, Person], terminal: MakeTerminal, tmp_path: Path
) -> None:
    carol = people["carol"]
    carol.register()
    dave = terminal("dave")

    notes = tmp_path / "notes from dave.txt"
    notes.write_bytes("ünïcödé notes\n".encode() * 50_000)
    dave.run(dave.messenger.send_file("carol", notes, caption="from the terminal"))
    carol.open_chat("dave")
    card = file_card(carol.page, "notes from dave.txt")
    expect(card.locator(".file-details")).to_have_text("878.9 KiB · text/plain")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(["from the terminal"])
    card.get_by_role("button", name="Download: notes from dave.txt").click()
    expect(card.locator(".file-save")).to_be_visible(timeout=30_000)
    assert saved_bytes(carol.page, "notes from dave.txt") == notes.read_bytes()

    sheet = os.urandom(1024 * 1024 + 1)  # one byte into a second chunk
    attach(carol, "sheet.ods", "application/vnd.oasis.opendocument.spreadsheet", sheet)
    expect(carol.page.locator(".message.mine .status")).to_have_text([SENT], timeout=30_000)
    items = [i for i in dave.run(dave.messenger.sync_inbox()) if i.kind == "message" and i.sender == "carol"]
    assert [(i.verified, i.file and i.file["name"]) for i in items] == [(True, "sheet.ods")]
    assert items[0].file is not None
    saved = dave.run(dave.messenger.get_file(items[0].file["id"], tmp_path))
    assert saved.read_bytes() == sheet


def test_tampered_file_is_reported_and_not_offered(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    alice.start_chat("bob")
    attach(alice, "contract.pdf", "application/pdf", os.urandom(300_000))
    expect(alice.page.locator(".message.mine .status")).to_have_text([SENT], timeout=30_000)

    (stored,) = chunk_files(server)
    data = bytearray(stored.read_bytes())
    data[1000] ^= 0x01
    stored.write_bytes(bytes(data))

    bob.open_chat("alice")
    card = file_card(bob.page, "contract.pdf")
    card.get_by_role("button", name="Download: contract.pdf").click()
    expect(card.locator(".file-error")).to_contain_text("corrupt or incomplete", timeout=30_000)
    expect(card.locator(".file-save")).to_have_count(0)
    expect(card.get_by_role("button", name="Try again: contract.pdf")).to_be_visible()

    # Put the chunk back: the same message now downloads (so the check above could fail).
    data[1000] ^= 0x01
    stored.write_bytes(bytes(data))
    card.get_by_role("button", name="Try again: contract.pdf").click()
    expect(card.locator(".file-save")).to_be_visible(timeout=30_000)


def test_hostile_file_names_and_types_stay_inert(
    people: dict[str, Person], terminal: MakeTerminal, tmp_path: Path
) -> None:
    carol = people["carol"]
    carol.register()
    dave = terminal("dave")
    names = {
        '<img src=x onerror="window.__xss=1">.svg': b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.__xss=2"/>',
        "<svg onload=window.__xss=3>.html": b"<script>window.__xss=4</script>",
    }
    for name, contents in names.items():
        path = tmp_path / name
        path.write_bytes(contents)
        dave.run(dave.messenger.send_file("carol", path))
    carol.open_chat("dave")
    for name in names:
        card = file_card(carol.page, name)
        expect(card.locator(".file-name")).to_have_text(name)
        card.get_by_role("button", name=f"Download: {name}").click()
        expect(card.locator(".file-save")).to_be_visible(timeout=30_000)
        # Not previewed, and the object URL is typed as an opaque download.
        expect(card.locator("img")).to_have_count(0)
        href = card.locator(".file-save").get_attribute("href")
        assert href is not None and href.startswith("blob:")
        # The Blob behind it has an opaque type: opened, it downloads instead of rendering.
        expect(card.locator(".file-save")).to_have_attribute("type", "application/octet-stream")
    canary = carol.canary()
    assert canary["xss"] == 0
    assert canary["csp"] == []
    expect(carol.page.locator(".conversation-item[data-peer='dave'] .conversation-preview")).to_have_text(
        "📎 <svg onload=window.__xss=3>.html"
    )
