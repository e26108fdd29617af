"""A malicious server against the terminal client's groups (PROTOCOL.md 14.3-14.5): an
invite code answered with another group's invite, an old membership change delivered
again, and naming messages replayed or delivered out of order. Each must be refused or
shown for what it is, never taken as new and verified."""

from __future__ import annotations

import json

import pytest

from securechat.client.core import invite_code
from securechat.client.errors import GroupUnverifiable
from securechat.client.messenger import Messenger

from ..conftest import reinsert_inbox_entry, server_database
from .conftest import MakeClient


async def test_an_invite_code_answered_with_another_groups_invite_is_refused(
    live_server, make_client: MakeClient
) -> None:  # type: ignore[no-untyped-def]
    alice, bob, mallory = await make_client("alice"), await make_client("bob"), await make_client("mallory")
    wanted = await alice.groups.create("Book club", ["bob"])
    invite = await alice.groups.make_invite(wanted, hours=1, uses=1)
    trap = await mallory.groups.create("Trap", [])
    trap_invite = await mallory.groups.make_invite(trap, hours=1, uses=1)

    # The server answers alice's code with mallory's invite (its row, under alice's id).
    connection = server_database(live_server)
    (trap_row,) = connection.execute(
        "SELECT invite FROM group_invites WHERE invite_id = ?", (trap_invite.invite_id,)
    ).fetchone()
    swapped = json.loads(trap_row)
    connection.execute(
        "UPDATE group_invites SET conversation_id = ?, invite = ? WHERE invite_id = ?",
        (trap, json.dumps(swapped), invite.invite_id),
    )

    carol = await make_client("carol")
    with pytest.raises(GroupUnverifiable, match="invite"):
        await carol.groups.join(invite_code(invite))
    assert carol.state.list_groups() == []
    # And a bare invite id, which commits to nothing, is not accepted as a code.
    with pytest.raises(GroupUnverifiable):
        await carol.groups.join(invite.invite_id)
    assert carol.state.list_groups() == []
    del bob


async def test_a_replayed_membership_change_is_not_shown_again(live_server, make_client: MakeClient) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = await make_client("alice"), await make_client("bob"), await make_client("carol")
    group_id = await alice.groups.create("Team", ["bob"])
    await alice.groups.change(group_id, "add", ["carol"])
    first = await bob.sync_inbox()
    lines = [(i.kind, i.text, i.verified) for i in first if i.kind == "group"]
    assert ("group", "added carol", True) in lines
    added_seq = next(i.seq for i in first if i.kind == "group" and i.text == "added carol")

    reinsert_inbox_entry(live_server, "bob", added_seq)
    again = await bob.sync_inbox()
    assert [(i.kind, i.text, i.verified) for i in again if i.kind == "group"] == []
    rows = [row for row in bob.stored_messages(group_id) if row["text"] == "added carol"]
    assert len(rows) == 1, "the change is shown once"
    del carol


async def group_name(client: Messenger, group_id: str) -> str | None:
    await client.sync_inbox()
    record = client.state.get_group(group_id)
    return record["name"] if record else None


async def test_a_replayed_naming_message_does_not_roll_the_name_back(
    live_server, make_client: MakeClient
) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_client("alice"), await make_client("bob")
    group_id = await alice.groups.create("Old name", ["bob"])
    assert await group_name(bob, group_id) == "Old name"
    old_seq = max(
        row["seq"] for row in bob.stored_messages(group_id) if row["text"] == "named the group “Old name”"
    )
    await alice.groups.send(group_id, {"type": "group_info", "name": "New name"})
    assert await group_name(bob, group_id) == "New name"

    reinsert_inbox_entry(live_server, "bob", old_seq)
    items = await bob.sync_inbox()
    assert bob.state.get_group(group_id)["name"] == "New name"  # type: ignore[index]
    assert [(i.verified, i.reason) for i in items if i.kind == "message"] == [(False, "replayed")]


async def test_the_newest_name_by_signed_time_wins_over_the_servers_order(
    live_server, make_client: MakeClient
) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_client("alice"), await make_client("bob")
    group_id = await alice.groups.create("First", ["bob"])
    assert await group_name(bob, group_id) == "First"
    await alice.groups.send(group_id, {"type": "group_info", "name": "Second"})
    await alice.groups.send(group_id, {"type": "group_info", "name": "Third"})

    # The server delivers the newer naming message before the older one.
    connection = server_database(live_server)
    (user_id,) = connection.execute("SELECT id FROM users WHERE username = 'bob'").fetchone()
    last_two = connection.execute(
        "SELECT seq, message_pk FROM inbox_entries WHERE user_id = ? ORDER BY seq DESC LIMIT 2", (user_id,)
    ).fetchall()
    (third_seq, third_pk), (second_seq, second_pk) = last_two
    connection.execute(
        "UPDATE inbox_entries SET message_pk = ? WHERE user_id = ? AND seq = ?",
        (third_pk, user_id, second_seq),
    )
    connection.execute(
        "UPDATE inbox_entries SET message_pk = ? WHERE user_id = ? AND seq = ?",
        (second_pk, user_id, third_seq),
    )
    items = await bob.sync_inbox()
    assert [(i.text, i.verified) for i in items if i.kind == "message"] == [
        ("named the group “Third”", True),
        ("sent a group name (“Second”), ignored: a newer name is known", True),
    ]
    assert bob.state.get_group(group_id)["name"] == "Third"  # type: ignore[index]
