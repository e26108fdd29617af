"""The v2 messages a browser keeps (PROTOCOL.md 15.10): the server cannot serve a v2
message again, so each profile keeps what it received and sent, sealed in IndexedDB
under its non-extractable key. They survive a reload, in order with the server's v1
history; the raw IndexedDB holds none of their text; a second tab shows what the first
opened; a logout that does not remember the device leaves nothing readable and takes the
device out of the account's list."""

from __future__ import annotations

import json
import time

from playwright.sync_api import Page, expect

from ..conftest import LiveServer, server_database
from .conftest import Person
from .v2_support import raw_v2_store, switch_on_v2, two_in_a_v2_chat, v2_posts


def set_v2(person: Person, on: bool) -> None:
    page = person.page
    page.locator("#open-account").click()
    page.locator("#setting-v2").set_checked(on)
    page.locator("#account-close").click()


def texts(page: Page) -> list[str]:
    result: list[str] = page.eval_on_selector_all(
        "#message-list .message .message-text", "items => items.map(i => i.textContent)"
    )
    return result


def raw_indexeddb(page: Page) -> bytes:
    """Every object store of the profile's database as stored (keys and values)."""
    dump: str = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const request = indexedDB.open('securechat');
            request.onerror = () => reject(request.error);
            request.onsuccess = () => {
                const db = request.result;
                const names = [...db.objectStoreNames];
                const tx = db.transaction(names);
                const out = {};
                for (const name of names) {
                    const store = tx.objectStore(name);
                    const keys = store.getAllKeys();
                    const values = store.getAll();
                    values.onsuccess = () => { out[name] = {keys: keys.result, values: values.result}; };
                }
                tx.oncomplete = () => resolve(JSON.stringify(out, (key, value) => {
                    if (value instanceof Uint8Array) return 'bytes:' + Array.from(value).join(',');
                    if (value instanceof CryptoKey) return {cryptoKey: value.extractable};
                    return value;
                }));
            };
        })"""
    )
    parts = [bytes(int(b) for b in p.split('"')[0].split(",") if b) for p in dump.split('"bytes:')[1:]]
    return dump.encode() + b"".join(parts)


def test_v2_messages_survive_a_reload_in_order_with_v1_ones_and_are_sealed(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    alice.start_chat("bob")
    alice.send("one v1")
    bob.page.locator(".conversation-item[data-peer='alice']").wait_for(timeout=20_000)
    bob.open_chat("alice")
    bob.send("two v1")
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(["two v1"], timeout=20_000)

    switch_on_v2(alice)
    switch_on_v2(bob)
    posts = v2_posts(alice.page)
    alice.send("three v2")
    expect(bob.page.locator(".message.theirs .message-text").last).to_have_text("three v2", timeout=20_000)
    bob.send("four v2")
    expect(alice.page.locator(".message.theirs .message-text").last).to_have_text("four v2", timeout=20_000)
    # Read by alice: her page has sealed a delivered and a read receipt for it (15.17).
    expect(bob.page.locator(".message.mine .status").last).to_have_text(" · Read", timeout=20_000)
    assert len(posts) == 3
    # Alice goes back to v1 for one message: the conversation mixes both.
    set_v2(alice, False)
    alice.send("five v1")
    expect(bob.page.locator(".message.theirs .message-text").last).to_have_text("five v1", timeout=20_000)
    assert len(posts) == 3
    expected = ["one v1", "two v1", "three v2", "four v2", "five v1"]

    for person in (alice, bob):
        person.page.reload()
        person.unlock()
        peer = "bob" if person is alice else "alice"
        person.open_chat(peer)
        expect(person.page.locator("#message-list .message .message-text")).to_have_text(
            expected, timeout=20_000
        )
        assert all(m["verified"] for m in person.messages())
        # Each read the other's v2 message: "Read" is kept with it (15.17).
        mine_v2 = person.page.locator(".message.mine", has_text="v2")
        expect(mine_v2.locator(".status")).to_have_text([" · Read"])
        # The texts are in the profile only sealed: not in any object store as stored.
        raw = raw_indexeddb(person.page) + raw_v2_store(person.page)
        for text in ("three v2", "four v2"):
            assert text.encode() not in raw


def test_a_second_tab_shows_messages_the_first_tab_opened(people: dict[str, Person]) -> None:
    alice, bob = two_in_a_v2_chat(people, "hello from alice", remember=True)
    bob.open_chat("alice")

    # A second tab of alice's profile: the same device; whichever tab reads an inbox entry
    # first opens it, the other finds it processed (duplicate) and shows the kept copy.
    second = alice.context.new_page()
    alice.watch(second)
    second.goto(alice.base_url)
    second.locator("#connection[data-state=online]").wait_for(timeout=30_000)
    second.locator(".conversation-item[data-peer='bob']").click()
    sent = [f"from bob {n}" for n in range(3)]
    for text in sent:
        bob.send(text)
    for page in (alice.page, second):
        expect(page.locator(".message.theirs .message-text")).to_have_text(sent, timeout=20_000)
        expect(page.locator(".message.unverifiable")).to_have_count(0)


def v2_keys(page: Page, username: str) -> list[str]:
    """The keys of the profile's `v2` records for `username` (what is stored, by name)."""
    keys: list[str] = page.evaluate(
        """(name) => new Promise((resolve, reject) => {
            const request = indexedDB.open('securechat');
            request.onerror = () => reject(request.error);
            request.onsuccess = () => {
                const all = request.result.transaction('v2').objectStore('v2').getAllKeys();
                all.onsuccess = () => resolve(all.result.filter(k => k[0] === name).map(k => JSON.stringify(k)));
            };
        })""",
        username,
    )
    return keys


def expect_own_devices(person: Person, count: int) -> None:
    page = person.page
    page.locator("#open-account").click()
    expect(page.locator("#device-list li.current")).to_have_count(1, timeout=20_000)
    expect(page.locator("#device-list li")).to_have_count(count, timeout=20_000)
    page.locator("#account-close").click()


def log_out(person: Person) -> None:
    page = person.page
    page.locator("#open-account").click()
    # The app replaces the page once logged out (nothing of the session stays in memory).
    with page.expect_navigation(timeout=30_000):
        page.locator("#logout").click()
    page.locator("#login-form").wait_for(timeout=30_000)


def test_own_device_added_is_said_and_logout_without_remember_removes_it_leaving_nothing_readable(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, bob = two_in_a_v2_chat(people, "hello in v2")
    bob.open_chat("alice")

    # A second device of alice: her first device says so in the conversation, as bob's
    # client does for a contact's new device.
    laptop = people["alice-laptop"]
    laptop.name = "alice"
    laptop.login()
    switch_on_v2(laptop)
    expect_own_devices(alice, 2)
    expect(
        alice.page.locator(".system-line", has_text="You added a new device to your account")
    ).to_have_count(1, timeout=20_000)

    bob.send("a secret for both of alice's devices")
    laptop.page.locator(".conversation-item[data-peer='bob']").click()
    expect(laptop.page.locator(".message.theirs .message-text")).to_have_text(
        ["a secret for both of alice's devices"], timeout=20_000
    )
    assert any('"msg"' in key for key in v2_keys(laptop.page, "alice"))

    # The laptop logs out without having been remembered: it leaves alice's list, and
    # nothing of v2 that could be opened stays in the profile: no sealing key, no device,
    # no session, no kept message (v2 is on by default, so no switch was stored either).
    log_out(laptop)
    left = v2_keys(laptop.page, "alice")
    assert left == [], left
    raw = raw_indexeddb(laptop.page)
    assert b"cryptoKey" not in raw
    assert b"a secret for both" not in raw

    # Bob's next message goes to alice's one device left; her first device sees the
    # list of one and says so in the conversation.
    started = time.monotonic()
    bob.send("after the laptop left")
    expect(alice.page.locator(".message.theirs .message-text").last).to_have_text(
        "after the laptop left", timeout=20_000
    )
    expect(
        alice.page.locator(".system-line", has_text="You removed a device from your account")
    ).to_have_count(1, timeout=20_000)
    expect_own_devices(alice, 1)
    expect(bob.page.locator(".system-line", has_text="alice removed a device")).to_have_count(
        1, timeout=20_000
    )
    print(f"after the removal, send to display: {time.monotonic() - started:.2f} s")


def listed(server: LiveServer, username: str) -> list[str]:
    """The device ids in the account's list as the server stores it."""
    database = server_database(server)
    try:
        (document,) = database.execute(
            "SELECT document FROM device_lists JOIN users ON users.id = device_lists.user_id"
            " WHERE users.username = ?",
            (username,),
        ).fetchone()
    finally:
        database.close()
    return [device["device_id"] for device in json.loads(document)["devices"]]


def test_the_only_device_logged_out_is_replaced_by_the_next_login_in_that_profile(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice = people["alice"]
    alice.register()
    switch_on_v2(alice)
    first = listed(server, "alice")
    assert len(first) == 1
    log_out(alice)
    # The only device cannot leave the list (1 to 32 devices); its keys are gone here.
    assert v2_keys(alice.page, "alice") == ['["alice","wiped-device"]']
    alice.login()
    expect_own_devices(alice, 1)
    now = listed(server, "alice")
    assert len(now) == 1 and now != first
    assert v2_keys(alice.page, "alice").count('["alice","wiped-device"]') == 0


def test_a_thousand_kept_v2_messages_open_in_pages_in_order(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.register()
    bob.register()
    switch_on_v2(alice)
    switch_on_v2(bob)
    alice.start_chat("bob")
    alice.send("a v2 message first")
    # 1,000 more kept the way the app keeps what it receives (sealed, one record each).
    alice.page.evaluate(
        """async () => {
            const { LocalHistory } = await import('/static/app/v2-history.js');
            const { directConversationId } = await import('/static/protocol/index.js');
            const store = await import('/static/app/store.js');
            const local = await LocalHistory.existing('alice');
            const id = await directConversationId('alice', 'bob');
            const start = Date.now() - 10_000_000;
            const writes = [];
            for (let n = 0; n < 1000; n += 1) {
                writes.push(await local.write({
                    messageId: crypto.randomUUID(), conversationId: id, sender: 'bob',
                    text: `kept ${n}`, sentAt: start + n * 1000, serverTs: null, verified: true,
                    refusal: null, reason: null, status: 'received', envelopeText: null, file: null,
                }));
            }
            await store.writeAll(writes);
        }"""
    )
    alice.page.reload()
    alice.unlock()
    started = time.monotonic()
    alice.open_chat("bob")
    items = alice.page.locator("#message-list .message .message-text")
    expect(items.last).to_have_text("a v2 message first", timeout=20_000)
    print(f"open with 1,000 kept v2 messages: {time.monotonic() - started:.2f} s, {items.count()} shown")
    assert items.count() <= 60  # one page, not all of them
    started = time.monotonic()
    for _ in range(40):
        if alice.page.locator(".message-text", has_text="kept 0").count():
            break
        alice.page.evaluate(
            "() => { const list = document.querySelector('#message-list'); list.scrollTop = 0; list.dispatchEvent(new Event('scroll')); }"
        )
        alice.page.wait_for_timeout(100)
    expect(alice.page.locator(".message-text", has_text="kept 0")).to_have_count(1)
    print(f"scrolling up through 1,000: {time.monotonic() - started:.2f} s")
    shown = texts(alice.page)
    assert shown == [f"kept {n}" for n in range(1000)] + ["a v2 message first"]


def test_a_remembered_device_is_kept_at_logout_unless_the_user_asks_to_remove_it(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice = people["alice"]
    alice.register(remember=True)
    switch_on_v2(alice)
    laptop = people["alice-laptop"]
    laptop.name = "alice"
    laptop.login(remember=True)
    switch_on_v2(laptop)
    assert len(listed(server, "alice")) == 2

    # Declined: the device, its keys and what it keeps stay (the next login resumes it).
    laptop.page.once("dialog", lambda dialog: dialog.dismiss())
    log_out(laptop)
    assert len(listed(server, "alice")) == 2
    assert '["alice","sealing-key"]' in v2_keys(laptop.page, "alice")

    # Asked for: it leaves the account's list and nothing of it stays in the profile.
    laptop.login(remember=True)
    laptop.page.once("dialog", lambda dialog: dialog.accept())
    log_out(laptop)
    assert len(listed(server, "alice")) == 1
    assert v2_keys(laptop.page, "alice") == []
