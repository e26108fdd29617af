"""Group conversations in the browser (PROTOCOL.md 13): three browsers and a terminal
client chat in real time; a member row slipped into the server's database is detected
and never encrypted to; a removed member cannot read what follows; files in a group;
joining with an invite code made in the page. Every membership a page uses comes from
the signed chain it verified, never from the server's word."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
from typing import Any

from playwright.sync_api import Locator, Page, expect

from securechat.protocol.envelope import seal_message
from securechat.protocol.groups import GroupChange
from securechat.protocol.identifiers import ConversationId, Username

from ..conftest import LiveServer
from .conftest import DESKTOP, PHONE, MakeTerminal, Person
from .test_files import attach, file_card, saved_bytes
from .test_screens import no_horizontal_scroll
from .test_trust import substitute_keys

# The server has it (a receipt may already say more).
SENT = re.compile(r" · (Sent|Delivered|Read)")
MISMATCH = "The server lists mallory, who was never added by a signed change. Sending is paused."


# Acting as a person in a group ---------------------------------------------------------
def group_item(page: Page, name: str) -> Locator:
    return page.locator(".conversation-item[data-group]").filter(
        has=page.locator(".conversation-title").filter(has_text=re.compile("^" + re.escape(name) + "$"))
    )


def create_group(person: Person, name: str, members: list[str]) -> str:
    page = person.page
    page.get_by_role("button", name="New group").click()
    page.get_by_label("Group name").fill(name)
    page.get_by_label("Members", exact=True).fill(", ".join(members))
    page.get_by_role("button", name="Create group").click()
    expect(page.locator("#conversation-title")).to_have_text(name)
    group_id = page.locator(".conversation-item[aria-current='true']").get_attribute("data-group")
    assert group_id is not None and group_id.startswith("grp-")
    return group_id


def open_group(person: Person, name: str) -> None:
    group_item(person.page, name).click()
    expect(person.page.locator("#conversation-title")).to_have_text(name)


def send(person: Person, text: str) -> None:
    """Send and wait until the server has it, so that everyone's order is the sending order."""
    person.send(text)
    mine = person.page.locator(".message.mine").filter(has_text=text).last
    expect(mine.locator(".status")).to_have_text(SENT)


def group_messages(person: Person) -> list[tuple[str, str, bool]]:
    """(sender, text, verified) of each message bubble; a page's own messages carry its name."""
    items: list[dict[str, Any]] = person.page.eval_on_selector_all(
        "#message-list .message",
        """items => items.map(item => ({
            mine: item.classList.contains('mine'),
            sender: item.querySelector('.message-sender')?.textContent ?? '',
            text: item.querySelector('.message-text')?.textContent ?? '',
            verified: item.dataset.verified === 'true',
        }))""",
    )
    return [(person.name if i["mine"] else i["sender"], i["text"], i["verified"]) for i in items]


def lines(page: Page) -> Locator:
    """The membership and group-name lines of the open conversation."""
    return page.locator("#message-list .system-line")


def open_details(person: Person) -> Locator:
    person.page.get_by_role("button", name="Group details").first.click()
    dialog = person.page.locator("#group-dialog")
    expect(dialog).to_be_visible()
    return dialog


def close_details(person: Person) -> None:
    person.page.locator("#group-close").click()
    expect(person.page.locator("#group-dialog")).to_be_hidden()


# The server's database -----------------------------------------------------------------
def database(server: LiveServer) -> sqlite3.Connection:
    connection = sqlite3.connect(server.data_dir / "securechat.db", timeout=30, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def stored_envelopes(server: LiveServer, group_id: str) -> list[dict[str, Any]]:
    with database(server) as connection:
        rows = connection.execute(
            "SELECT envelope FROM messages WHERE conversation_id = ? ORDER BY id", (group_id,)
        ).fetchall()
    return [json.loads(row[0]) for row in rows]


def recipients(envelope: dict[str, Any]) -> list[str]:
    return sorted(key["recipient"] for key in envelope["keys"])


def deliver_again(server: LiveServer, message_id: str, username: str) -> None:
    """Append a stored message to a user's inbox: a server handing it to a non-member."""
    connection = database(server)
    (user_id, head) = connection.execute(
        "SELECT u.id, (SELECT coalesce(max(seq), 0) FROM inbox_entries WHERE user_id = u.id)"
        " FROM users u WHERE u.username = ?",
        (username,),
    ).fetchone()
    (message_pk,) = connection.execute(
        "SELECT id FROM messages WHERE message_id = ?", (message_id,)
    ).fetchone()
    connection.execute(
        "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, created_at) VALUES (?, ?, 'message', ?, 0)",
        (user_id, head + 1, message_pk),
    )
    connection.close()


# Tests ----------------------------------------------------------------------------------
def test_three_browsers_and_a_terminal_chat_in_a_group_in_real_time(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    for person in (alice, bob, carol):
        person.register()
    dave = terminal("dave")

    group_id = create_group(alice, "Secure", ["bob", "carol", "dave"])
    expect(lines(alice.page).first).to_have_text(re.compile("^alice created the group with bob, carol, dave"))
    # The others learn the name from alice's signed group_info, not from the server.
    for person in (bob, carol):
        expect(group_item(person.page, "Secure")).to_be_visible()
        open_group(person, "Secure")
        expect(person.page.locator("#conversation-subtitle")).to_have_text("4 members")
        expect(lines(person.page)).to_have_text(
            [
                re.compile("^alice created the group with bob, carol, dave"),
                re.compile("^alice named the group “Secure”"),
            ]
        )
    items = dave.run(dave.messenger.sync_inbox())
    assert [(i.kind, i.sender, i.text, i.verified) for i in items] == [
        ("group", "alice", "created the group with bob, carol, dave", True),
        ("message", "alice", "named the group “Secure”", True),
    ]
    assert dave.call(dave.messenger.state.get_group, group_id)["name"] == "Secure"

    send(alice, "hello everyone")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(["hello everyone"])
    send(bob, "hi from bob")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(
        ["hello everyone", "hi from bob"]
    )
    send(carol, "carol here")
    dave.run(dave.messenger.send_text(group_id, "dave from the terminal ✓"))

    expected = [
        ("alice", "hello everyone", True),
        ("bob", "hi from bob", True),
        ("carol", "carol here", True),
        ("dave", "dave from the terminal ✓", True),
    ]
    for person in (alice, bob, carol):
        expect(person.page.locator("#message-list .message")).to_have_count(4)
        assert group_messages(person) == expected, person.name
        # Sender names are shown on the others' messages.
        expect(person.page.locator(".message.theirs .message-sender")).to_have_text(
            [sender for sender, _, _ in expected if sender != person.name]
        )
    items = [i for i in dave.run(dave.messenger.sync_inbox()) if i.kind == "message" and i.sender != "dave"]
    assert [(i.sender, i.text, i.verified) for i in items] == [
        ("alice", "hello everyone", True),
        ("bob", "hi from bob", True),
        ("carol", "carol here", True),
    ]
    # Every envelope of the group is wrapped for exactly the four members.
    assert {tuple(recipients(e)) for e in stored_envelopes(server, group_id)} == {
        ("alice", "bob", "carol", "dave")
    }
    # Only an admin names the group: a signed group_info from dave (a member, not an
    # admin) is shown as ignored and changes nothing.
    dave.run(dave.messenger.groups.send(group_id, {"type": "group_info", "name": "Hijacked"}))
    for person in (alice, bob, carol):
        expect(lines(person.page).last).to_have_text(
            re.compile(
                "^dave sent a group name \\(“Hijacked”\\), ignored: it is not signed by an admin of the group"
            )
        )
        expect(person.page.locator("#conversation-title")).to_have_text("Secure")
    # The list shows the group with its name and newest message; bob's count is unread.
    alice.start_chat("bob")
    send(carol, "one more for alice")
    item = group_item(alice.page, "Secure")
    expect(item.locator(".conversation-preview")).to_have_text("carol: one more for alice")
    expect(item.locator(".unread")).to_have_text("1")


def test_member_injected_into_the_database_is_shown_and_never_encrypted_to(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register(remember=True)
    mallory = terminal("mallory")
    group_id = create_group(alice, "Private", ["bob"])
    open_group(bob, "Private")
    send(alice, "before the injection")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(["before the injection"])

    with database(server) as connection:
        (mallory_id,) = connection.execute("SELECT id FROM users WHERE username = 'mallory'").fetchone()
        connection.execute(
            "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, 0)",
            (group_id, mallory_id),
        )
    stored_before = len(stored_envelopes(server, group_id))

    # Alice's page checks the server's list before sealing: it refuses and says why.
    box = alice.page.get_by_label("Message", exact=True)
    box.fill("secret plans")
    box.press("Enter")
    expect(alice.page.locator("#composer-error")).to_have_text(MISMATCH)
    expect(alice.page.locator("#group-banner")).to_contain_text(MISMATCH)
    expect(box).to_be_disabled()
    expect(alice.page.locator("#composer-send")).to_be_disabled()

    # Bob's page shows it too, at once after a reload (the list is compared on start).
    bob.page.reload()
    bob.wait_chat()
    open_group(bob, "Private")
    expect(bob.page.locator("#group-banner")).to_contain_text(MISMATCH)
    expect(bob.page.get_by_label("Message", exact=True)).to_be_disabled()
    dialog = open_details(bob)
    expect(dialog.locator("#group-server-warning")).to_have_text(MISMATCH)
    expect(dialog.locator("#group-members li .member-name")).to_have_text(["alice", "bob"])
    expect(dialog.locator("#group-members li[data-member='alice'] .admin-badge")).to_have_text("admin")
    expect(dialog.locator("#group-server-list")).to_have_text("alice, bob, mallory")
    # At phone width the warning and the details fit without sideways scrolling.
    bob.page.set_viewport_size(PHONE)
    assert no_horizontal_scroll(bob.page)
    close_details(bob)
    expect(bob.page.locator("#group-banner")).to_be_visible()
    assert no_horizontal_scroll(bob.page)
    bob.page.get_by_role("button", name="Back to conversations").click()
    expect(group_item(bob.page, "Private").locator(".conversation-warning")).to_have_count(1)
    assert no_horizontal_scroll(bob.page)
    bob.page.set_viewport_size(DESKTOP)
    open_group(bob, "Private")

    # Nothing left for the injected member: no new envelope, none with a key for mallory.
    envelopes = stored_envelopes(server, group_id)
    assert len(envelopes) == stored_before
    assert not any("mallory" in recipients(e) for e in envelopes)
    assert "secret plans" not in bob.page.locator("#message-list").inner_text()

    # A message the server now takes from mallory (it believes its own row) shows as
    # unverifiable: no signed membership ever had those recipients.
    me = mallory.messenger.identity
    assert me is not None
    keys = {
        Username(name): mallory.run(mallory.messenger.trusted_identity(name)) for name in ("alice", "bob")
    } | {Username("mallory"): me.public}
    envelope = seal_message(me, ConversationId(group_id), keys, {"type": "text", "text": "mallory says hi"})
    mallory.run(mallory.messenger.api.send(envelope.to_wire()))
    unverifiable = bob.page.locator(".message.unverifiable")
    expect(unverifiable).to_have_count(1)
    expect(unverifiable.locator(".message-reason")).to_contain_text(
        "its recipients are not the members of the conversation (for a group: of its signed membership)"
    )
    expect(unverifiable).to_have_attribute("data-reason", "wrong_members")
    assert "mallory says hi" not in bob.page.locator("#message-list").inner_text()

    # Once the server's list agrees again, sending resumes (so the refusal above was the check).
    with database(server) as connection:
        connection.execute(
            "DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?",
            (group_id, mallory_id),
        )
    alice.page.get_by_role("button", name="Check again").click()
    expect(alice.page.locator("#group-banner")).to_be_hidden()
    send(alice, "after the check")
    assert recipients(stored_envelopes(server, group_id)[-1]) == ["alice", "bob"]


def test_removed_member_cannot_read_what_follows(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    alice.register()
    bob.register()
    carol.register(remember=True)
    group_id = create_group(alice, "Team", ["bob", "carol"])
    for person in (bob, carol):
        expect(group_item(person.page, "Team")).to_be_visible()
        open_group(person, "Team")
    send(alice, "before carol left")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(["before carol left"])

    dialog = open_details(alice)
    expect(dialog.locator("#group-members li .member-name")).to_have_text(["alice", "bob", "carol"])
    dialog.get_by_role("button", name="Remove carol from the group").click()
    expect(dialog.locator("#group-members li .member-name")).to_have_text(["alice", "bob"])
    close_details(alice)
    for person in (alice, bob, carol):
        expect(lines(person.page).last).to_have_text(re.compile("^alice removed carol"))
    # Carol's page knows she is out: sending is off.
    expect(carol.page.locator("#group-banner")).to_contain_text("You are no longer a member of this group.")
    expect(carol.page.get_by_label("Message", exact=True)).to_be_disabled()

    send(alice, "after carol left")
    expect(bob.page.locator(".message.theirs .message-text")).to_have_text(
        ["before carol left", "after carol left"]
    )
    after = stored_envelopes(server, group_id)[-1]
    assert recipients(after) == ["alice", "bob"]
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(["before carol left"])

    # A server that hands her the envelope anyway gets it shown as unverifiable.
    deliver_again(server, after["message_id"], "carol")
    carol.page.reload()
    carol.wait_chat()
    open_group(carol, "Team")
    unverifiable = carol.page.locator(".message.unverifiable")
    expect(unverifiable).to_have_count(1)
    expect(unverifiable.locator(".message-reason")).to_contain_text("not encrypted for you")
    assert "after carol left" not in carol.page.locator("#message-list").inner_text()
    expect(carol.page.locator("#group-banner")).to_contain_text("You are no longer a member of this group.")
    # Bob's view is unchanged and verified.
    assert group_messages(bob) == [("alice", "before carol left", True), ("alice", "after carol left", True)]

    # Alice makes bob an admin: his page offers the admin tools. Then alice leaves.
    dialog = open_details(alice)
    dialog.get_by_role("button", name="Make bob an admin").click()
    expect(dialog.locator("#group-members li[data-member='bob'] .admin-badge")).to_have_text("admin")
    close_details(alice)
    expect(lines(bob.page).last).to_have_text(re.compile("^alice made bob admin"))
    dialog = open_details(bob)
    expect(dialog.get_by_role("button", name="Make invite code")).to_be_visible()
    close_details(bob)
    dialog = open_details(alice)
    dialog.get_by_role("button", name="Leave group").click()
    dialog.get_by_role("button", name="Leave", exact=True).click()
    expect(dialog.locator("#group-dialog-status")).to_have_text("You are no longer a member of this group.")
    close_details(alice)
    expect(alice.page.get_by_label("Message", exact=True)).to_be_disabled()
    expect(lines(bob.page).last).to_have_text(re.compile("^alice left the group"))
    expect(bob.page.locator("#conversation-subtitle")).to_have_text("1 member")


def test_three_browsers_share_a_file_in_a_group(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    for person in (alice, bob, carol):
        person.register()
    group_id = create_group(alice, "Files", ["bob", "carol"])
    for person in (bob, carol):
        expect(group_item(person.page, "Files")).to_be_visible()
        open_group(person, "Files")

    plan = os.urandom(2 * 1024 * 1024 + 777)
    bob.page.get_by_label("Message", exact=True).fill("the plan")
    attach(bob, "plan.bin", "application/octet-stream", plan)
    expect(bob.page.locator(".message.mine .status").last).to_have_text(SENT, timeout=30_000)
    for person in (alice, carol):
        card = file_card(person.page, "plan.bin")
        expect(card.locator(".file-details")).to_have_text("2.0 MiB · application/octet-stream")
        expect(person.page.locator(".message.theirs .message-sender")).to_have_text(["bob"])
        expect(person.page.locator(".message.theirs .message-text")).to_have_text(["the plan"])
        card.get_by_role("button", name="Download: plan.bin").click()
        expect(card.locator(".file-save")).to_have_text("Save plan.bin", timeout=30_000)
        assert saved_bytes(person.page, "plan.bin") == plan
    # The file's message key went to the three members and nobody else.
    (envelope,) = [e for e in stored_envelopes(server, group_id) if e["sender"] == "bob"]
    assert recipients(envelope) == ["alice", "bob", "carol"]


def test_join_with_an_invite_code_made_in_the_page(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    alice.register()
    bob.register()
    carol.register(remember=True)
    group_id = create_group(alice, "Secure", ["bob"])
    send(alice, "before carol")

    dialog = open_details(alice)
    dialog.get_by_label("Valid for (hours)").fill("2")
    dialog.get_by_label("Uses").fill("1")
    dialog.get_by_role("button", name="Make invite code").click()
    code_node = dialog.locator("#invite-code")
    # The code is the invite id and a commitment to the whole signed invite (PROTOCOL.md
    # 14.5): what a server answers for it is checked against it.
    expect(code_node).to_have_text(
        re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.[0-9a-f]{32}$")
    )
    code = code_node.inner_text()
    dialog.get_by_role("button", name="Copy code").click()
    expect(dialog.locator("#invite-details")).to_have_text(re.compile("^(Copied|Selected)"))
    close_details(alice)

    page = carol.page
    page.get_by_role("button", name="Join with code").click()
    page.get_by_label("Invite code").fill(f"  {code}  ")
    page.get_by_role("button", name="Join", exact=True).click()
    # The name comes from alice's page, which sees the join and sends it.
    expect(page.locator("#conversation-title")).to_have_text("Secure")
    expect(lines(page)).to_contain_text([re.compile("carol joined with an invite from alice")])
    expect(lines(alice.page).last).to_have_text(re.compile("^carol joined with an invite from alice"))
    open_group(bob, "Secure")
    expect(lines(bob.page)).to_contain_text([re.compile("^carol joined with an invite from alice")])

    send(alice, "welcome carol")
    expect(page.locator(".message.theirs .message-text")).to_have_text(["welcome carol"])
    send(carol, "thanks")
    expect(bob.page.locator(".message .message-text")).to_have_text(
        ["before carol", "welcome carol", "thanks"]
    )
    assert group_messages(carol) == [("alice", "welcome carol", True), ("carol", "thanks", True)]
    assert "before carol" not in page.locator("#message-list").inner_text()

    # After a reload the history starts at her join, and the name was kept.
    page.reload()
    carol.wait_chat()
    open_group(carol, "Secure")
    expect(page.locator("#message-list .message")).to_have_count(2)
    assert group_messages(carol) == [("alice", "welcome carol", True), ("carol", "thanks", True)]
    # An admin renames the group: a signed group_info, shown by every member.
    dialog = open_details(alice)
    dialog.get_by_label("New name for the group").fill("Secure & sound")
    dialog.get_by_role("button", name="Rename").click()
    expect(dialog.locator("#group-dialog-name")).to_have_text("Secure & sound")
    close_details(alice)
    expect(page.locator("#conversation-title")).to_have_text("Secure & sound")
    expect(group_item(bob.page, "Secure & sound")).to_be_visible()
    expect(lines(page).last).to_have_text(re.compile("^alice named the group “Secure & sound”"))

    # The code was for one use: a second joiner is refused.
    erin = people["erin"]
    erin.expected_statuses.add(404)
    erin.register()
    erin.page.get_by_role("button", name="Join with code").click()
    erin.page.get_by_label("Invite code").fill(code)
    erin.page.get_by_role("button", name="Join", exact=True).click()
    expect(erin.page.locator("#join-error")).to_have_text("This invite code is unknown, expired or used up.")
    assert recipients(stored_envelopes(server, group_id)[-1]) == ["alice", "bob", "carol"]


def test_a_chain_that_does_not_verify_or_extend_pauses_the_group(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register(remember=True)
    terminal("dave")
    group_id = create_group(alice, "Audit", ["bob"])
    dialog = open_details(alice)
    dialog.get_by_label("Add members (usernames)").fill("dave")
    dialog.get_by_role("button", name="Add", exact=True).click()
    expect(dialog.locator("#group-members li .member-name")).to_have_text(["alice", "bob", "dave"])
    close_details(alice)
    open_group(bob, "Audit")
    expect(lines(bob.page)).to_contain_text([re.compile("^alice added dave")])
    banner = bob.page.locator("#group-banner")
    box = bob.page.get_by_label("Message", exact=True)

    # The server rolls the chain back to before the add: bob's page keeps what it verified.
    with database(server) as connection:
        (added,) = connection.execute(
            "SELECT change FROM group_changes WHERE conversation_id = ? AND seq = 1", (group_id,)
        ).fetchone()
        connection.execute("DELETE FROM group_changes WHERE conversation_id = ? AND seq = 1", (group_id,))
    bob.page.reload()
    bob.wait_chat()
    open_group(bob, "Audit")
    expect(banner).to_contain_text(
        "cannot be verified: the server's membership chain does not extend the one verified on this device"
    )
    expect(box).to_be_disabled()
    expect(group_item(bob.page, "Audit").locator(".conversation-warning")).to_have_count(1)

    # Put back, the chain verifies again and sending resumes.
    with database(server) as connection:
        connection.execute(
            "INSERT INTO group_changes (conversation_id, seq, change, created_at) VALUES (?, 1, ?, 0)",
            (group_id, added),
        )
    bob.page.get_by_role("button", name="Check again").click()
    expect(banner).to_be_hidden()
    expect(box).to_be_enabled()

    # A forged change (a member "added" without alice's signature) is refused.
    previous = GroupChange.from_wire(json.loads(added))
    forged = previous.to_wire() | {
        "seq": 2,
        "prev": previous.digest().hex(),
        "members": ["mallory"],
        "signature": base64.b64encode(os.urandom(64)).decode(),
    }
    with database(server) as connection:
        connection.execute(
            "INSERT INTO group_changes (conversation_id, seq, change, created_at) VALUES (?, 2, ?, 0)",
            (group_id, json.dumps(forged)),
        )
    bob.page.get_by_role("button", name="Group details").first.click()
    expect(bob.page.locator("#group-dialog-status")).to_contain_text("its membership chain does not verify")
    expect(bob.page.locator("#group-members li .member-name")).to_have_text(["alice", "bob", "dave"])
    close_details(bob)
    expect(banner).to_contain_text("its membership chain does not verify")
    expect(box).to_be_disabled()


def test_an_accepted_key_change_does_not_void_earlier_changes(
    people: dict[str, Person], server: LiveServer
) -> None:
    """Each change is verified once, with the keys pinned then (PROTOCOL.md 13.7): after
    bob accepts alice's new keys, his page still verifies the chain she signed before."""
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register(remember=True)
    create_group(alice, "Keys", ["bob"])
    open_group(bob, "Keys")
    expect(bob.page.locator("#conversation-subtitle")).to_have_text("2 members")

    substitute_keys(server, "alice")
    bob.page.reload()
    bob.wait_chat()
    open_group(bob, "Keys")
    page = bob.page
    expect(page.locator("#key-change-banner")).to_contain_text("alice")
    expect(page.get_by_label("Message", exact=True)).to_be_disabled()
    page.get_by_role("button", name="Accept new keys").click()
    expect(page.locator("#key-change-banner")).to_be_hidden()

    page.reload()
    bob.wait_chat()
    open_group(bob, "Keys")
    expect(page.locator("#conversation-subtitle")).to_have_text("2 members")
    expect(lines(page).first).to_have_text(re.compile("^alice created the group with bob"))
    expect(page.locator("#group-banner")).to_be_hidden()
    expect(page.get_by_label("Message", exact=True)).to_be_enabled()
