"""The terminal client on a new home (a new device of the account) and groups (issue 16,
defects 1 and 2, as the browser had them): it reads the whole inbox, so it has each
group's signed name and its membership lines before the messages; a member who joined
by invite while no admin's client ran learns the name once one does, a new home of the
admin included. Names only ever come from an admin's signed group_info."""

from __future__ import annotations

from pathlib import Path

from securechat.client.core import invite_code
from securechat.client.messenger import Messenger

from .conftest import PASSWORDS, MakeClient


async def new_home(tmp_path: Path, server_url: str, name: str) -> Messenger:
    client = Messenger(tmp_path / f"new-home-{name}", server_url)
    await client.login(name, PASSWORDS[name])
    return client


def timeline(client: Messenger, group_id: str) -> list[tuple[str | None, str | None]]:
    return [(row["sender"], row["text"]) for row in client.stored_messages(group_id)]


async def test_a_new_home_has_the_names_and_the_lines_before_the_messages(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_client("alice"), await make_client("bob")
    first = await alice.groups.create("First", ["bob"])
    second = await alice.groups.create("Second", ["bob"])
    for number in range(3):
        await alice.send_text(first, f"first {number}")
    await alice.send_text(second, "second 0")
    await bob.sync_inbox()

    laptop = await new_home(tmp_path, live_server.url, "bob")
    try:
        await laptop.sync_inbox()
        names = {group["group_id"]: group["name"] for group in laptop.groups.all()}
        assert names == {first: "First", second: "Second"}
        assert timeline(laptop, first) == [
            ("alice", "created the group with bob"),
            ("alice", "named the group “First”"),
            ("alice", "first 0"),
            ("alice", "first 1"),
            ("alice", "first 2"),
        ]
        assert timeline(laptop, second) == [
            ("alice", "created the group with bob"),
            ("alice", "named the group “Second”"),
            ("alice", "second 0"),
        ]
    finally:
        await laptop.close()


async def test_a_joiner_gets_the_name_when_a_new_home_of_the_admin_starts(
    live_server, make_client: MakeClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice, carol = await make_client("alice"), await make_client("carol")
    await make_client("bob")
    group_id = await alice.groups.create("Secure", ["bob"])
    invite = await alice.groups.make_invite(group_id, hours=1, uses=1)
    # Alice's client does not run while carol joins: nobody can tell carol the name.
    assert await carol.groups.join(invite_code(invite)) == group_id
    await carol.sync_inbox()
    assert carol.groups.record(group_id)["name"] is None  # type: ignore[index]

    laptop = await new_home(tmp_path, live_server.url, "alice")
    try:
        await laptop.sync_inbox()
        assert laptop.groups.record(group_id)["name"] == "Secure"  # type: ignore[index]
    finally:
        await laptop.close()
    items = await carol.sync_inbox()
    assert [(i.sender, i.text, i.verified) for i in items if i.kind == "message"] == [
        ("alice", "named the group “Secure”", True)
    ]
    assert carol.groups.record(group_id)["name"] == "Secure"  # type: ignore[index]
