"""A malicious server against the browser client (issue 11, section 3): every attack the
terminal client already resists, tried on the page. The server edits its own database
(behind its own back, as a compromised server can) or rewrites what it sends; the page
must decide with its own state (PROTOCOL.md 14) and show what it refused, and why.

- 3.1 a direct chat's contact comes from the conversation id, never from the server's
  member list or its answer when a chat is started;
- 3.4 a message delivered again is never new: not when history showed it first, and
  flagged as replayed the second time;
- 3.6 an invite code commits to its invite: the server cannot answer it with another
  group's invite;
- 3.7 a group's name is the newest by signed time (then message id), whatever the order
  the server delivers naming messages in, and a replayed one does not roll it back;
- 3.8 a membership change delivered again is not shown again;
- 3.9 a remembered device stops if the server publishes other keys for its user.
"""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import Locator, Page, Route, expect

from securechat.client.core import invite_code
from securechat.protocol.envelope import seal_message
from securechat.protocol.identifiers import ConversationId, MessageId, Username, direct_conversation_id

from ..conftest import LiveServer, reinsert_inbox_entry
from .conftest import MakeTerminal, Person
from .test_groups import database, deliver_again, group_item, lines, open_details, open_group
from .test_trust import substitute_keys


def conversation_items(page: Page, peer: str) -> Locator:
    return page.locator(f".conversation-item[data-peer='{peer}']")


def reload(person: Person) -> None:
    person.page.reload()
    person.wait_chat()


def away(person: Person) -> None:
    """Close the app (a remembered device), so that nothing arrives while the server edits."""
    person.page.goto("about:blank")


def back(person: Person) -> None:
    person.page.goto(person.base_url)
    person.wait_chat()


# 3.1 ------------------------------------------------------------------------------------
def test_a_server_edited_member_row_does_not_put_mallorys_message_under_bob(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    bob, mallory = terminal("bob"), terminal("mallory")
    bob.run(bob.messenger.send_text("alice", "hi, bob here"))
    alice.open_chat("bob")
    expect(alice.page.locator(".message .message-text")).to_have_text(["hi, bob here"])
    alice.page.get_by_role("button", name="Safety number").click()
    alice.page.get_by_role("button", name="Mark as verified").click()
    alice.page.locator("#contact-dialog").get_by_role("button", name="Close").click()
    expect(alice.page.locator("#conversation-verified")).to_be_visible()

    mallory.run(mallory.messenger.send_text("alice", "mallory's words"))
    expect(conversation_items(alice.page, "mallory")).to_have_count(1)

    # The server lists bob, not mallory, as alice's partner in mallory's conversation.
    conversation = direct_conversation_id(Username("alice"), Username("mallory"))
    with database(server) as connection:
        ids = dict(connection.execute("SELECT username, id FROM users").fetchall())
        connection.execute(
            "UPDATE conversation_members SET user_id = ? WHERE conversation_id = ? AND user_id = ?",
            (ids["bob"], conversation, ids["mallory"]),
        )
    reload(alice)
    page = alice.page
    # One conversation is bob's: the one whose id both names make.
    expect(conversation_items(page, "bob")).to_have_count(1)
    expect(conversation_items(page, "mallory")).to_have_count(1)
    alice.open_chat("bob")
    expect(page.locator(".message .message-text")).to_have_text(["hi, bob here"])
    expect(page.locator("#conversation-verified")).to_be_visible()
    alice.open_chat("mallory")
    expect(page.locator(".message .message-text")).to_have_text(["mallory's words"])
    expect(page.locator("#conversation-verified")).to_be_hidden()


def test_a_forged_answer_to_starting_a_chat_is_refused(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    alice = people["alice"]
    alice.register()
    terminal("bob")
    mallory = terminal("mallory")
    mallory_conversation = direct_conversation_id(Username("alice"), Username("mallory"))

    # Alice asks for her conversation with bob; the server answers with mallory's.
    def forge(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["id"] = mallory_conversation
        route.fulfill(response=response, body=json.dumps(body))

    page = alice.page
    page.route("**/api/v1/conversations/direct", forge)
    page.get_by_label("Start a conversation with (username)").fill("bob")
    page.keyboard.press("Enter")
    expect(page.locator("#new-conversation-error")).to_contain_text("another conversation")
    expect(conversation_items(page, "bob")).to_have_count(0)

    # What mallory sends lands in her own conversation, never under bob's name.
    mallory.run(mallory.messenger.send_text("alice", "mallory's words"))
    expect(conversation_items(page, "mallory")).to_have_count(1)
    expect(conversation_items(page, "bob")).to_have_count(0)

    # With an honest answer, the chat with bob starts.
    page.unroute("**/api/v1/conversations/direct")
    alice.start_chat("bob")
    expect(page.locator("#message-list .message")).to_have_count(0)


# 3.4 ------------------------------------------------------------------------------------
def test_a_message_seen_in_history_and_delivered_again_is_never_new(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    terminal("alice")
    bob = terminal("bob")
    sent = bob.run(bob.messenger.send_text("alice", "hello from bob"))
    # A new device of alice's: the message reaches it through history only.
    alice = people["alice"]
    alice.login(remember=True)
    alice.open_chat("bob")
    expect(alice.page.locator(".message .message-text")).to_have_text(["hello from bob"])

    # The server puts the message in alice's inbox again, then bob writes once more.
    away(alice)
    deliver_again(server, sent["message_id"], "alice")
    bob.run(bob.messenger.send_text("alice", "after"))
    page = alice.page
    back(alice)
    item = conversation_items(page, "bob")
    expect(item.locator(".conversation-preview")).to_have_text("after")
    # Only bob's new message is unread: the one history showed is not new.
    expect(item.locator(".unread")).to_have_text("1")
    alice.open_chat("bob")
    expect(page.locator(".message .message-text")).to_have_text(["hello from bob", "after"])
    assert [m["verified"] for m in alice.messages()] == [True, True]

    # A second copy is a replay: shown as one, never as a message.
    deliver_again(server, sent["message_id"], "alice")
    reload(alice)
    alice.open_chat("bob")
    expect(page.locator("#message-list .message")).to_have_count(3)
    assert [m["verified"] for m in alice.messages()] == [True, True, False]
    expect(page.locator(".message.unverifiable .message-reason")).to_contain_text("replayed")
    expect(page.locator(".message.unverifiable .message-sender")).to_have_text("bob (claimed, not verified)")


# 3.6 ------------------------------------------------------------------------------------
def test_an_invite_code_answered_with_another_groups_invite_is_refused(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    alice, mallory = terminal("alice"), terminal("mallory")
    terminal("bob")
    wanted = alice.run(alice.messenger.groups.create("Book club", ["bob"]))
    invite = alice.run(alice.messenger.groups.make_invite(wanted, hours=1, uses=5))
    trap = mallory.run(mallory.messenger.groups.create("Trap", []))
    trap_invite = mallory.run(mallory.messenger.groups.make_invite(trap, hours=1, uses=5))
    # The server answers alice's invite with mallory's (its row, under alice's invite id).
    with database(server) as connection:
        (trap_row,) = connection.execute(
            "SELECT invite FROM group_invites WHERE invite_id = ?", (trap_invite.invite_id,)
        ).fetchone()
        connection.execute(
            "UPDATE group_invites SET conversation_id = ?, invite = ? WHERE invite_id = ?",
            (trap, trap_row, invite.invite_id),
        )

    carol = people["carol"]
    carol.register()
    page = carol.page
    error = page.locator("#join-error")
    # A bare invite id commits to nothing: it is not a code.
    page.get_by_role("button", name="Join with code").click()
    page.get_by_label("Invite code").fill(invite.invite_id)
    page.get_by_role("button", name="Join", exact=True).click()
    expect(error).to_contain_text("not an invite code")
    expect(page.locator(".conversation-item[data-group]")).to_have_count(0)
    # The real code: the server's answer is not the invite it names.
    page.get_by_label("Invite code").fill(invite_code(invite))
    page.get_by_role("button", name="Join", exact=True).click()
    expect(error).to_contain_text("answered this code with another invite")
    expect(page.locator(".conversation-item[data-group]")).to_have_count(0)
    with database(server) as connection:
        (joins,) = connection.execute(
            "SELECT count(*) FROM group_changes WHERE conversation_id = ? AND change LIKE '%\"join\"%'",
            (trap,),
        ).fetchone()
    assert joins == 0


# 3.7 ------------------------------------------------------------------------------------
def test_group_names_follow_signed_time_not_the_servers_order(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    bob = people["bob"]
    bob.register(remember=True)
    alice = terminal("alice")
    group_id = alice.run(alice.messenger.groups.create("Old name", ["bob"]))
    page = bob.page
    open_group(bob, "Old name")
    with database(server) as connection:
        (old_message_id,) = connection.execute(
            "SELECT message_id FROM messages WHERE conversation_id = ? ORDER BY id LIMIT 1", (group_id,)
        ).fetchone()

    # Two names signed at the same moment: the greater message id wins, on every device,
    # whichever the server delivers last.
    me = alice.messenger.identity
    assert me is not None
    keys = {Username("alice"): me.public, Username("bob"): alice.run(alice.messenger.trusted_identity("bob"))}
    at = int(time.time() * 1000)
    for message_id, name in (
        ("f0000000-0000-4000-8000-000000000000", "Tie winner"),
        ("10000000-0000-4000-8000-000000000000", "Tie loser"),
    ):
        envelope = seal_message(
            me,
            ConversationId(group_id),
            keys,
            {"type": "group_info", "name": name},
            message_id=MessageId(message_id),
            sent_at=at,
        )
        alice.run(alice.messenger.api.send(envelope.to_wire()))
    expect(lines(page).last).to_have_text(
        re.compile("^alice sent a group name \\(“Tie loser”\\), ignored: a newer name is known")
    )
    expect(page.locator("#conversation-title")).to_have_text("Tie winner")

    # The server delivers the first naming message again: the name does not roll back.
    deliver_again(server, old_message_id, "bob")
    reload(bob)
    expect(group_item(page, "Tie winner")).to_be_visible()
    open_group(bob, "Tie winner")
    unverifiable = page.locator(".message.unverifiable")
    expect(unverifiable).to_have_count(1)
    expect(unverifiable.locator(".message-reason")).to_contain_text("replayed")
    expect(page.locator("#conversation-title")).to_have_text("Tie winner")


# 3.8 ------------------------------------------------------------------------------------
def test_a_replayed_membership_change_is_not_shown_again(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    bob = people["bob"]
    bob.register(remember=True)
    alice = terminal("alice")
    terminal("carol")
    group_id = alice.run(alice.messenger.groups.create("Team", ["bob"]))
    page = bob.page
    open_group(bob, "Team")
    alice.run(alice.messenger.groups.change(group_id, "add", ["carol"]))
    added = lines(page).filter(has_text="alice added carol")
    expect(added).to_have_count(1)
    with database(server) as connection:
        (seq,) = connection.execute(
            "SELECT max(seq) FROM inbox_entries JOIN users ON users.id = inbox_entries.user_id"
            " WHERE username = 'bob' AND kind = 'group'"
        ).fetchone()

    # Delivered again, live and after a reload: the change is shown once, and nothing
    # else about the group changes.
    reinsert_inbox_entry(server, "bob", seq)
    alice.run(alice.messenger.send_text(group_id, "after the replay"))
    reload(bob)
    open_group(bob, "Team")
    expect(page.locator(".message .message-text")).to_have_text(["after the replay"])
    expect(added).to_have_count(1)
    expect(page.locator("#message-list .system-line.unverifiable")).to_have_count(0)
    reinsert_inbox_entry(server, "bob", seq)
    alice.run(alice.messenger.send_text(group_id, "live"))
    expect(page.locator(".message .message-text")).to_have_text(["after the replay", "live"])
    expect(added).to_have_count(1)
    expect(page.locator("#conversation-subtitle")).to_have_text("3 members")
    dialog = open_details(bob)
    expect(dialog.locator("#group-members li .member-name")).to_have_text(["alice", "bob", "carol"])


# 3.9 ------------------------------------------------------------------------------------
def test_a_remembered_device_stops_when_the_server_publishes_other_keys_for_its_user(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    page = alice.page
    substitute_keys(server, "alice")
    page.reload()
    expect(page.locator("#auth-error")).to_contain_text("keys")
    expect(page.locator("#auth-error")).to_contain_text("not the ones this device holds")
    expect(page.locator("#chat-screen")).to_be_hidden()
