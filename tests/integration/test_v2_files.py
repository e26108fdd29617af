"""Files in protocol v2 between two terminal clients and a real server (PROTOCOL.md
15.18): the chunks and the upload API are 12's, the `file` payload travels in the v2
body. A conversation that only ever had v2 messages takes uploads from either side; a
receiver checks the descriptor as 12.3 (a bad one is an unverifiable item with its
reason, never dropped), and the download as 12.5. The server keeps neither the name nor
the contents."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from securechat.client.errors import FileCorrupt
from securechat.client.v2 import sending
from securechat.protocol.files import FILE_CHUNK_BYTES

from .conftest import PASSWORDS, MakeClient
from .test_files import chunk_paths
from .test_two_clients import run_cli, scan


def v1_messages_on_server(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "securechat.db") as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def message_items(items: list[Any]) -> list[Any]:
    return [item for item in items if item.kind == "message"]


async def test_files_go_both_ways_in_v2(live_server, make_client: MakeClient, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    ledger = tmp_path / "secret ledger 2026.xlsx"
    contents = os.urandom(2 * FILE_CHUNK_BYTES + 999)
    ledger.write_bytes(contents)

    sent = await alice.send_file("bob", ledger, caption="the v2 ledger")
    assert sent["devices"] == 1  # the answer of POST /v2/messages: bob's one device
    (item,) = message_items(await bob.sync_inbox())
    assert item.verified and item.sender == "alice" and item.text == "the v2 ledger"
    assert item.file is not None and "key" not in item.file
    assert (item.file["name"], item.file["size"]) == ("secret ledger 2026.xlsx", len(contents))
    assert item.file["id"] == sent["file_id"]
    saved = await bob.get_file(sent["file_id"], tmp_path / "bob-downloads.bin")
    assert saved.read_bytes() == contents
    assert [r["file"] and r["file"]["name"] for r in bob.stored_messages("alice")] == [
        "secret ledger 2026.xlsx"
    ]
    # The sender's own copy names the file too (and it can fetch it again).
    assert [r["file"] and r["file"]["id"] for r in alice.stored_messages("bob")] == [sent["file_id"]]

    # Bob answers with a file: he never opened the conversation in v1 or sent in it.
    reply = tmp_path / "bob reply notes.txt"
    reply.write_bytes(b"bob's reply, in v2\n" * 1000)
    answer = await bob.send_file("alice", reply)
    (back,) = message_items(await alice.sync_inbox())
    assert back.verified and back.file is not None and back.file["name"] == "bob reply notes.txt"
    fetched = await alice.get_file(answer["file_id"], tmp_path)
    assert fetched.read_bytes() == reply.read_bytes()

    # No v1 message at all; neither name nor contents on the server's disk or log.
    data_dir = live_server.data_dir
    assert v1_messages_on_server(data_dir) == 0
    paths = [p for p in data_dir.rglob("*") if p.is_file()] + [live_server.log_path]
    needles = {
        "name": b"secret ledger",
        "caption": b"the v2 ledger",
        "reply name": b"bob reply notes",
        "reply": b"bob's reply, in v2",
        "contents": contents[FILE_CHUNK_BYTES : FILE_CHUNK_BYTES + 48],
    }
    assert scan(paths, needles) == []


async def test_a_bad_descriptor_in_v2_is_unverifiable_not_dropped(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    bad = {
        "type": "file",
        "file": {
            "id": "0b7e4a2c-5d7f-4f3e-9a1b-2c3d4e5f6a7b",
            "key": "AAAA",  # 3 bytes, not 32 (12.3)
            "name": "evil.bin",
            "media_type": "application/octet-stream",
            "size": 10,
            "sha256": "0" * 64,
        },
    }

    # A sender refuses to send one; a modified sender seals it anyway.
    def raw(payload: dict[str, Any]) -> bytes:
        return json.dumps(payload).encode()

    monkeypatch.setattr(sending, "encode_payload", raw)
    monkeypatch.setattr(sending, "shared_file", lambda payload: None)
    await alice.v2.send("bob", bad)
    (item,) = message_items(await bob.sync_inbox())
    assert (item.verified, item.reason, item.sender) == (False, "bad_payload", "alice")
    assert item.file is None
    # Kept as unverifiable, not dropped.
    assert [(r["verified"], r["file"]) for r in bob.stored_messages("alice")] == [(0, None)]


async def test_a_v2_file_with_an_altered_chunk_is_not_saved(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    source = tmp_path / "plans.pdf"
    source.write_bytes(os.urandom(FILE_CHUNK_BYTES + 10))
    sent = await alice.send_file("bob", source)
    assert message_items(await bob.sync_inbox())[0].verified
    (first, _second) = chunk_paths(live_server.data_dir, sent["file_id"])
    data = bytearray(first.read_bytes())
    data[7] ^= 1
    first.write_bytes(bytes(data))
    target = tmp_path / "downloads"
    target.mkdir()
    with pytest.raises(FileCorrupt):
        await bob.get_file(sent["file_id"], target)
    assert list(target.iterdir()) == []


async def test_the_terminal_commands_share_files_in_v2(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    home = {name: tmp_path / f"home-{name}" for name in ("alice", "bob")}
    memo = tmp_path / "v2 memo.txt"
    memo.write_text("sent with securechat send-file, in v2")

    sent = run_cli(
        home["alice"],
        live_server.url,
        "send-file",
        "bob",
        str(memo),
        "-m",
        "memo",
        password=PASSWORDS["alice"],
    )
    assert sent.returncode == 0, sent.stderr
    file_id = sent.stdout.strip().split()[-1]
    listed = run_cli(home["bob"], live_server.url, "inbox", password=PASSWORDS["bob"])
    assert listed.returncode == 0, listed.stderr
    assert (
        "alice: [file] 'v2 memo.txt'" in listed.stdout and f"securechat get-file {file_id}" in listed.stdout
    )
    got = run_cli(
        home["bob"],
        live_server.url,
        "get-file",
        file_id,
        "-o",
        str(tmp_path / "got.txt"),
        password=PASSWORDS["bob"],
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "got.txt").read_text() == "sent with securechat send-file, in v2"
    # It went in v2: the server holds no v1 message.
    assert v1_messages_on_server(live_server.data_dir) == 0
