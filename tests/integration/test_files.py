"""Encrypted files between terminal clients and a real server: the whole exchange
through the CLI, and every kind of chunk tampering on the server's disk detected."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from securechat.client.errors import FileCorrupt
from securechat.protocol.files import FILE_CHUNK_BYTES

from .conftest import PASSWORDS, MakeClient
from .test_two_clients import run_cli, scan


def chunk_paths(data_dir: Path, file_id: str) -> list[Path]:
    """The stored chunks of a file, in index order."""
    paths = list((data_dir / "files" / file_id[:2] / file_id).glob("*.*"))
    return sorted(paths, key=lambda p: int(p.name.split(".")[0]))


async def test_file_exchange_through_the_terminal_client(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    await make_client("alice")
    await make_client("bob")
    home = {name: tmp_path / f"home-{name}" for name in ("alice", "bob")}
    report = tmp_path / "quarterly report (final).pdf"
    contents = os.urandom(2 * FILE_CHUNK_BYTES + 54321)
    report.write_bytes(contents)

    sent = run_cli(
        home["alice"],
        live_server.url,
        "send-file",
        "bob",
        str(report),
        "-m",
        "the numbers",
        password=PASSWORDS["alice"],
    )
    assert sent.returncode == 0, sent.stderr
    assert "sent quarterly report (final).pdf (2.1 MiB) as file" in sent.stdout
    # The progress bar (on stderr) ends complete: every byte counted.
    assert "encrypting and sending quarterly report (final).pdf" in sent.stderr
    assert "━" in sent.stderr and "2.1/2" in sent.stderr, sent.stderr
    file_id = sent.stdout.strip().split()[-1]

    listed = run_cli(home["bob"], live_server.url, "inbox", password=PASSWORDS["bob"])
    assert listed.returncode == 0, listed.stderr
    assert (
        "alice: [file] 'quarterly report (final).pdf' (2.1 MiB, application/pdf) — the numbers"
        in listed.stdout
    )
    assert f"securechat get-file {file_id}" in listed.stdout

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    got = run_cli(
        home["bob"], live_server.url, "get-file", file_id, "-o", str(downloads), password=PASSWORDS["bob"]
    )
    assert got.returncode == 0, got.stderr
    assert "downloading and decrypting" in got.stderr and "2.1/2" in got.stderr, got.stderr
    saved = downloads / "quarterly report (final).pdf"
    assert saved.read_bytes() == contents
    assert "SHA-256 checked" in got.stdout
    # A second download does not overwrite the first.
    again = run_cli(
        home["bob"], live_server.url, "get-file", file_id, "-o", str(downloads), password=PASSWORDS["bob"]
    )
    assert again.returncode == 0, again.stderr
    assert (downloads / "quarterly report (final) (1).pdf").read_bytes() == contents

    # And back the other way.
    reply = tmp_path / "reply.txt"
    reply.write_text("received, thanks")
    back = run_cli(home["bob"], live_server.url, "send-file", "alice", str(reply), password=PASSWORDS["bob"])
    assert back.returncode == 0, back.stderr
    reply_id = back.stdout.strip().split()[-1]
    fetched = run_cli(
        home["alice"],
        live_server.url,
        "get-file",
        reply_id,
        "-o",
        str(tmp_path / "r.txt"),
        password=PASSWORDS["alice"],
    )
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "r.txt").read_text() == "received, thanks"

    # The server kept neither the contents, nor the name, nor the key.
    live_server.stop()
    stored = [p for p in live_server.data_dir.rglob("*") if p.is_file()] + [live_server.log_path]
    assert len(chunk_paths(live_server.data_dir, file_id)) == 3
    from securechat.client.state import StateStore

    descriptor = StateStore(home["alice"]).get_file(file_id)
    assert descriptor is not None
    needles = {
        "file name": b"quarterly report",
        "caption": b"the numbers",
        "file key": __import__("base64").b64decode(descriptor["key"]),
        "reply": b"received, thanks",
    }
    for offset in range(0, len(contents) - 32, FILE_CHUNK_BYTES // 2):
        needles[f"contents at {offset}"] = contents[offset : offset + 32]
    assert scan(stored, needles) == []


@contextmanager
def altered(path: Path, new_bytes: bytes | None) -> Iterator[None]:
    """Replace (or, with None, remove) a stored chunk for the block; then put it back."""
    original = path.read_bytes()
    if new_bytes is None:
        path.unlink()
    else:
        path.write_bytes(new_bytes)
    try:
        yield
    finally:
        path.write_bytes(original)


async def test_tampered_reordered_dropped_or_cut_chunks_are_detected(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice = await make_client("alice")
    bob = await make_client("bob")
    source = tmp_path / "data.bin"
    contents = os.urandom(3 * FILE_CHUNK_BYTES + 1000)
    source.write_bytes(contents)
    result = await alice.send_file("bob", source)
    await bob.sync_inbox()
    file_id = result["file_id"]
    chunks = chunk_paths(live_server.data_dir, file_id)
    assert len(chunks) == 4
    out = tmp_path / "out"
    out.mkdir()

    def flipped(path: Path, at: int) -> bytes:
        data = bytearray(path.read_bytes())
        data[at] ^= 1
        return bytes(data)

    attacks = {
        "a flipped ciphertext bit": (chunks[1], flipped(chunks[1], 100)),
        "a flipped tag bit": (chunks[3], flipped(chunks[3], -1)),
        "chunk 0 served in place of chunk 1 (reordered)": (chunks[1], chunks[0].read_bytes()),
        "the last chunk dropped": (chunks[3], None),
        "the last chunk cut short": (chunks[3], chunks[3].read_bytes()[:-1]),
    }
    for name, (path, replacement) in attacks.items():
        with altered(path, replacement), pytest.raises(FileCorrupt):
            await bob.get_file(file_id, out)
        assert list(out.iterdir()) == [], f"{name}: something was saved"

    # A chunk from another file with the same key position does not fit either.
    other = tmp_path / "other.bin"
    other.write_bytes(os.urandom(2 * FILE_CHUNK_BYTES))
    other_id = (await alice.send_file("bob", other))["file_id"]
    await bob.sync_inbox()
    with (
        altered(chunks[0], chunk_paths(live_server.data_dir, other_id)[0].read_bytes()),
        pytest.raises(FileCorrupt),
    ):
        await bob.get_file(file_id, out)
    assert list(out.iterdir()) == []

    # Untouched, the same download works (so the checks above can tell).
    saved = await bob.get_file(file_id, out)
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(contents).digest()


async def test_cli_reports_a_corrupt_file_and_saves_nothing(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice = await make_client("alice")
    await make_client("bob")
    source = tmp_path / "notes.txt"
    source.write_bytes(b"meeting notes " * 1000)
    file_id = (await alice.send_file("bob", source))["file_id"]
    (chunk,) = chunk_paths(live_server.data_dir, file_id)
    data = bytearray(chunk.read_bytes())
    data[5] ^= 0x80
    chunk.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    got = run_cli(
        tmp_path / "home-bob", live_server.url, "get-file", file_id, "-o", str(out), password=PASSWORDS["bob"]
    )
    assert got.returncode == 4
    assert "corrupt or incomplete" in got.stderr
    assert "Nothing was saved" in got.stderr
    assert list(out.iterdir()) == []
    shutil.rmtree(out)
