"""Groups between terminal clients and a real server: chat and files among three, a
removed member locked out of what follows, a member row slipped into the server's
database detected and never encrypted to, invites, and the `securechat group` commands."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from securechat.client.core import invite_code
from securechat.client.errors import MembershipMismatch
from securechat.client.messenger import InboxItem, Messenger
from securechat.protocol.envelope import Envelope, open_message, seal_message
from securechat.protocol.errors import VerificationFailed
from securechat.protocol.identifiers import ConversationId, Username

from .conftest import PASSWORDS, MakeClient
from .test_two_clients import run_cli, scan


async def messages(client: Messenger) -> list[InboxItem]:
    return [i for i in await client.sync_inbox() if i.kind == "message"]


def server_db(live_server) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    return sqlite3.connect(live_server.data_dir / "securechat.db", timeout=30)


def stored_envelopes(live_server, group_id: str) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    with server_db(live_server) as db:
        rows = db.execute("SELECT envelope FROM messages WHERE conversation_id = ?", (group_id,)).fetchall()
    return [json.loads(row[0]) for row in rows]


async def test_three_members_chat_and_share_files(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = await make_client("alice"), await make_client("bob"), await make_client("carol")
    group_id = await alice.groups.create("Secure", ["bob", "carol"])
    await alice.send_text("#Secure", "hello both")
    for member in (bob, carol):
        items = await messages(member)
        assert [(i.sender, i.text, i.verified) for i in items] == [
            ("alice", "named the group “Secure”", True),
            ("alice", "hello both", True),
        ]
        assert member.state.get_group(group_id)["name"] == "Secure"  # type: ignore[index]
    await carol.send_text(group_id, "hi from carol")
    assert [(i.sender, i.text, i.verified) for i in await messages(bob)] == [("carol", "hi from carol", True)]
    # Every envelope in the group is wrapped for exactly the three.
    assert {
        tuple(sorted(k["recipient"] for k in e["keys"])) for e in stored_envelopes(live_server, group_id)
    } == {("alice", "bob", "carol")}

    contents = os.urandom(1024 * 1024 + 77)
    (tmp_path / "plan.bin").write_bytes(contents)
    result = await bob.send_file("#Secure", tmp_path / "plan.bin", caption="the plan")
    for member, name in ((alice, "alice"), (carol, "carol")):
        item = (await messages(member))[-1]
        assert item.verified and item.file is not None and item.file["name"] == "plan.bin"
        out = tmp_path / f"out-{name}"
        out.mkdir()
        saved = await member.get_file(result["file_id"], out)
        assert saved.read_bytes() == contents

    # The server kept neither the group's name, nor the texts, nor the file.
    live_server.stop()
    stored = [p for p in live_server.data_dir.rglob("*") if p.is_file()] + [live_server.log_path]
    needles = {
        "group name": b"Secure",
        "text": b"hello both",
        "reply": b"hi from carol",
        "caption": b"the plan",
        "file name": b"plan.bin",
        "file contents": contents[1000:1032],
    }
    assert scan(stored, needles) == []


async def test_removed_member_cannot_read_what_follows(live_server, make_client: MakeClient) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = await make_client("alice"), await make_client("bob"), await make_client("carol")
    group_id = await alice.groups.create("Team", ["bob", "carol"])
    await messages(carol)
    await alice.groups.change(group_id, "remove", ["carol"])
    await alice.send_text(group_id, "after carol left")

    items = await carol.sync_inbox()
    assert [(i.kind, i.text) for i in items] == [("group", "removed carol")]
    assert carol.state.get_group(group_id)["status"] == "removed"  # type: ignore[index]
    (envelope_wire,) = [e for e in stored_envelopes(live_server, group_id) if e["sender"] == "alice"][-1:]
    envelope = Envelope.from_wire(envelope_wire)
    assert sorted(envelope.recipients) == ["alice", "bob"]
    # Even handed the envelope, carol has no wrapped key in it.
    assert carol.identity is not None
    with pytest.raises(VerificationFailed):
        open_message(
            envelope,
            me=carol.identity,
            sender_identity=alice.identity.public,  # type: ignore[union-attr]
            conversation_id=envelope.header.conversation_id,
            members=frozenset(envelope.recipients),
        )
    # And a server that delivers it to her anyway gets it shown as unverifiable.
    forged = {
        "type": "message",
        "seq": 10_000,
        "message_id": envelope.header.message_id,
        "conversation_id": group_id,
        "sender": "alice",
        "server_ts": 1,
        "envelope": envelope_wire,
    }
    item = await carol.process_frame(forged)
    assert item is not None and not item.verified
    # Bob still reads it.
    assert [(i.text, i.verified) for i in await messages(bob)][-1] == ("after carol left", True)


async def test_member_row_injected_into_the_database_is_detected(
    live_server, make_client: MakeClient
) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_client("alice"), await make_client("bob")
    mallory = await make_client("mallory")
    group_id = await alice.groups.create("Private", ["bob"])
    await messages(bob)
    with server_db(live_server) as db:
        mallory_id = db.execute("SELECT id FROM users WHERE username = 'mallory'").fetchone()[0]
        db.execute(
            "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, 0)",
            (group_id, mallory_id),
        )
    # Both members' clients see the server's list disagree with the signed chain, and
    # refuse to send: nothing is ever encrypted to mallory.
    for member in (alice, bob):
        with pytest.raises(MembershipMismatch) as caught:
            await member.send_text(group_id, "secret plans")
        assert caught.value.extra == {"mallory"}
    assert not any(
        k["recipient"] == "mallory" for e in stored_envelopes(live_server, group_id) for k in e["keys"]
    )
    # A message the server now accepts from mallory (it believes its own row) is shown
    # to the members as unverifiable: no verified membership had those recipients.
    assert mallory.identity is not None
    recipients = {
        Username(n): (await mallory.trusted_identity(n)) if n != "mallory" else mallory.identity.public
        for n in ("alice", "bob", "mallory")
    }
    envelope = seal_message(
        mallory.identity, ConversationId(group_id), recipients, {"type": "text", "text": "hi"}
    )
    await mallory.api.send(envelope.to_wire())
    (item,) = await messages(bob)
    assert not item.verified
    assert item.reason == "wrong_members"
    # The terminal client shows the problem.
    shown = run_cli(
        live_server_home(alice), live_server.url, "group", "members", group_id, password=PASSWORDS["alice"]
    )
    assert shown.returncode == 0, shown.stderr
    assert "not in the signed membership: mallory" in shown.stdout


def live_server_home(client: Messenger) -> Path:
    return client.home


async def test_invite_join_and_no_history_from_before(live_server, make_client: MakeClient) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = await make_client("alice"), await make_client("bob"), await make_client("carol")
    group_id = await alice.groups.create("Secure", ["bob"])
    await alice.send_text(group_id, "before carol")
    invite = await alice.groups.make_invite(group_id, hours=1, uses=2)
    assert await carol.groups.join(invite_code(invite)) == group_id
    # Bob's client verifies the join; alice's client, seeing it, tells carol the name.
    bob_items = await bob.sync_inbox()
    assert ("group", "joined with an invite from alice", True) in [
        (i.kind, i.text, i.verified) for i in bob_items
    ]
    await alice.sync_inbox()
    await alice.send_text(group_id, "welcome carol")
    carol_items = [(i.sender, i.text, i.verified) for i in await messages(carol)]
    assert carol_items == [("alice", "named the group “Secure”", True), ("alice", "welcome carol", True)]
    assert carol.state.get_group(group_id)["name"] == "Secure"  # type: ignore[index]
    history = await carol.api.history(group_id)
    assert "before carol" not in json.dumps(history)
    assert len(history["messages"]) == 2


async def test_group_commands(live_server, make_client: MakeClient, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("alice", "bob", "carol"):
        await make_client(name)
    home = {name: tmp_path / f"home-{name}" for name in ("alice", "bob", "carol")}

    def cli(name: str, *args: str) -> str:
        result = run_cli(home[name], live_server.url, *args, password=PASSWORDS[name])
        assert result.returncode == 0, result.stderr
        return result.stdout

    created = cli("alice", "group", "create", "Secure", "bob")
    group_id = created.split()[-1]
    assert group_id.startswith("grp-")
    code = cli("alice", "group", "invite", "Secure", "--hours", "2", "--uses", "1").split()[-1]
    assert f"joined group {group_id}" in cli("carol", "group", "join", code)
    cli("alice", "inbox")  # alice's client sees the join and sends the name
    cli("bob", "send", "#Secure", "hello group")
    listed = cli("carol", "group", "list")
    assert "Secure" in listed and group_id in listed and "3 members" in listed
    assert "bob: hello group" in cli("carol", "inbox")
    members = cli("carol", "group", "members", "Secure")
    assert "alice (admin)" in members and "bob" in members and "carol" in members
    assert "the server's list matches" in members
    cli("alice", "group", "remove", "Secure", "carol")
    left = run_cli(
        home["carol"], live_server.url, "send", "#Secure", "still here?", password=PASSWORDS["carol"]
    )
    assert left.returncode == 1
    assert "not a member" in left.stderr


async def test_a_group_named_after_a_user_does_not_capture_messages_to_them(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice, bob, mallory = await make_client("alice"), await make_client("bob"), await make_client("mallory")
    # Mallory, admin of her own group, names it after bob and adds alice.
    trap = await mallory.groups.create("bob", ["alice"])
    note = tmp_path / "for-bob.txt"
    note.write_text("the plan, for bob")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(alice.home, live_server.url, *args, password=PASSWORDS["alice"])

    sent = cli("send", "bob", "for bob only")
    assert sent.returncode == 0, sent.stderr
    shared = cli("send-file", "bob", str(note))
    assert shared.returncode == 0, shared.stderr
    to_bob = await messages(bob)
    assert [(i.sender, i.text) for i in to_bob][:1] == [("alice", "for bob only")]
    assert [i.file["name"] for i in to_bob if i.file] == ["for-bob.txt"]

    async def from_alice(member: Messenger) -> list[str | None]:
        return [i.text for i in await messages(member) if i.sender == "alice"]

    assert await from_alice(mallory) == []
    # The terminal says how the group would have been written.
    assert "'#bob'" in sent.stderr

    # The group is addressed explicitly: '#' and its name, or its id.
    assert cli("send", "#bob", "to the group").returncode == 0
    assert cli("send", trap, "to the group, by id").returncode == 0
    assert await from_alice(mallory) == ["to the group", "to the group, by id"]

    # A name two groups share addresses neither: the error lists both.
    second = await mallory.groups.create("bob", ["alice"])
    ambiguous = cli("send", "#bob", "which one?")
    assert ambiguous.returncode == 1
    assert trap in ambiguous.stderr and second in ambiguous.stderr
    assert await from_alice(mallory) == []
