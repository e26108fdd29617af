"""`securechat admin`: the operator makes an admin on the server's data, and the admin's
terminal shows the message log and exports it with no plaintext in either, and lists
file uploads (parties, size, times) without their names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import PASSWORDS, MakeClient


def cli(
    *args: str, home: Path | None = None, server: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if home is not None:
        env["SECURECHAT_HOME"] = str(home)
    if server is not None:
        env["SECURECHAT_SERVER"] = server
    return subprocess.run(
        [sys.executable, "-m", "securechat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_admin_create_then_message_log_and_export(live_server, make_client: MakeClient) -> None:  # type: ignore[no-untyped-def]
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.send_text("bob", "cli-admin plaintext 1")
    await alice.send_text("bob", "cli-admin plaintext 2")
    # Then both have a device of their own: the next message is v2 (PROTOCOL.md 15).
    await alice.enable_v2()
    await bob.enable_v2()
    await alice.send_text("bob", "cli-admin plaintext 3")

    refused = cli("admin", "messages", "--json", home=alice.state.home, server=live_server.url)
    assert refused.returncode == 1 and "administrators only" in refused.stderr

    made = cli("admin", "create", "alice", "--data-dir", str(live_server.data_dir))
    assert made.returncode == 0, made.stderr
    assert "alice is now an administrator" in made.stdout
    assert cli("admin", "create", "nobody", "--data-dir", str(live_server.data_dir)).returncode == 1

    listed = cli(
        "admin", "messages", "--json", "--sender", "alice", home=alice.state.home, server=live_server.url
    )
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    device = alice.v2.device()
    assert device is not None
    assert [(e["sender"], e["recipients"], e["sender_device"]) for e in entries] == [
        ("alice", ["bob"], device.device_id)
    ]
    listed_v1 = cli(
        "admin", "messages", "--json", "--protocol", "1", home=alice.state.home, server=live_server.url
    )
    assert listed_v1.returncode == 0, listed_v1.stderr
    entries = [json.loads(line) for line in listed_v1.stdout.splitlines()]
    assert [(e["sender"], e["recipients"]) for e in entries] == [("alice", ["bob"])] * 2
    # bob's device has not read its inbox yet: the body is still stored. Once it has, the
    # table says the ciphertext is gone.
    table = cli("admin", "messages", home=alice.state.home, server=live_server.url)
    assert table.returncode == 0 and "sender device" in table.stdout and "deleted once" not in table.stdout

    exported = cli("admin", "export", home=alice.state.home, server=live_server.url)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["envelope"]["v"] == 2 and "slots" not in lines[0]["envelope"]
    exported_v1 = cli("admin", "export", "--protocol", "1", home=alice.state.home, server=live_server.url)
    lines = [json.loads(line) for line in exported_v1.stdout.splitlines()]
    assert len(lines) == 2 and all(line["envelope"]["v"] == 1 for line in lines)
    plaintexts = (
        "cli-admin plaintext 1",
        "cli-admin plaintext 2",
        "cli-admin plaintext 3",
        PASSWORDS["alice"],
    )
    for text in plaintexts:
        assert (
            text not in listed.stdout + listed_v1.stdout + table.stdout + exported.stdout + exported_v1.stdout
        )

    # bob's device reads its inbox (and sends a delivered receipt, a v2 message too).
    await bob.sync_inbox()
    delivered = cli(
        "admin", "messages", "--json", "--sender", "alice", home=alice.state.home, server=live_server.url
    )
    (entry,) = [json.loads(line) for line in delivered.stdout.splitlines()]
    assert entry["body_deleted_at"] is not None and entry["ciphertext_preview"] == ""
    shown = cli("admin", "messages", "--sender", "alice", home=alice.state.home, server=live_server.url)
    assert "deleted once" in shown.stdout

    audit = cli("admin", "audit", home=alice.state.home, server=live_server.url)
    assert audit.returncode == 0 and "export_messages" in audit.stdout and "grant_admin" in audit.stdout


async def test_admin_files_shows_records_never_names(  # type: ignore[no-untyped-def]
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    await make_client("bob")
    report = tmp_path / "Merger plan — Falcon Heavy draft.pdf"
    report.write_bytes(os.urandom(3000))
    sent = await alice.send_file("bob", report, caption="cli-admin file caption")

    def files(*args: str) -> subprocess.CompletedProcess[str]:
        return cli("admin", "files", *args, home=alice.state.home, server=live_server.url)

    refused = files("--json")
    assert refused.returncode == 1 and "administrators only" in refused.stderr
    assert cli("admin", "create", "alice", "--data-dir", str(live_server.data_dir)).returncode == 0

    listed = files("--json")
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(e["file_id"], e["sender"], e["recipients"], e["size"], e["chunks"]) for e in entries] == [
        (sent["file_id"], "alice", ["bob"], 3000, 1)
    ]
    assert entries[0]["completed_at"] >= entries[0]["created_at"] > 0
    assert files("--json", "--sender", "bob").stdout == ""
    assert len(files("--json", "--recipient", "bob").stdout.splitlines()) == 1

    table = files()
    assert table.returncode == 0, table.stderr
    assert sent["file_id"] in table.stdout and "2.9 KiB" in table.stdout and "alice" in table.stdout
    for secret in ("Merger plan", "Falcon", "cli-admin file caption"):
        assert secret not in listed.stdout + table.stdout

    audit = cli("admin", "audit", home=alice.state.home, server=live_server.url)
    assert audit.returncode == 0 and "view_files" in audit.stdout


async def test_admin_commands_and_fingerprint_take_the_password_on_stdin(
    live_server, make_client: MakeClient
) -> None:  # type: ignore[no-untyped-def]
    alice = await make_client("alice")
    await make_client("bob")
    assert cli("admin", "create", "alice", "--data-dir", str(live_server.data_dir)).returncode == 0
    home, url = alice.state.home, live_server.url
    for command in (("admin", "users"), ("fingerprint", "bob")):
        wrong = cli(*command, "--password-stdin", home=home, server=url, stdin="not the password\n")
        assert wrong.returncode == 1, wrong.stdout
        right = cli(*command, "--password-stdin", home=home, server=url, stdin=PASSWORDS["alice"] + "\n")
        assert right.returncode == 0, right.stderr
        assert PASSWORDS["alice"] not in right.stdout + right.stderr
    assert "bob" in cli("admin", "users", home=home, server=url).stdout
