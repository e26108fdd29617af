"""History backups in the browser (PROTOCOL.md 15.10.1): the account dialog's section
turns them on (the recovery key shown once and kept only after "I wrote it down"),
backs up now and after new messages, and restores on a new profile from the typed key: a
typo is told before anything is downloaded, a wrong key opens nothing, an older backup
than one already seen is refused; and the archives are the terminal's own (each restores
the other's)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Request, expect

from securechat.client.history_backup import HistoryBackups
from securechat.protocol.v2.backup import format_recovery_key, parse_recovery_key

from ..conftest import LiveServer, server_database
from .conftest import PASSWORDS, MakeTerminal, Person
from .terminal import TerminalUser
from .v2_support import raw_v2_store, switch_on_v2, two_in_a_v2_chat

KEY = re.compile(r"^(?:[0-9A-Z]{4} ){15}[0-9A-Z]{4}$")
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def stored_backup(server: LiveServer, username: str) -> tuple[int, bytes] | None:
    database = server_database(server)
    try:
        row = database.execute(
            "SELECT version, sealed FROM history_backups JOIN users ON users.id = history_backups.user_id"
            " WHERE users.username = ?",
            (username,),
        ).fetchone()
    finally:
        database.close()
    return None if row is None else (int(row[0]), bytes(row[1]))


def put_back(server: LiveServer, username: str, version: int, sealed: bytes) -> None:
    """What a server can do: hand out an older backup it kept."""
    database = server_database(server)
    try:
        database.execute(
            "UPDATE history_backups SET version = ?, sealed = ?, size = ?"
            " WHERE user_id = (SELECT id FROM users WHERE username = ?)",
            (version, sealed, len(sealed), username),
        )
    finally:
        database.close()


def open_backups(person: Person) -> None:
    person.page.locator("#open-account").click()
    expect(person.page.locator("#backup-state")).not_to_have_text("", timeout=20_000)


def result(person: Person, busy: str) -> str:
    line = person.page.locator("#backup-result")
    expect(line).not_to_have_text(busy, timeout=30_000)
    expect(line).not_to_have_text("", timeout=30_000)
    return line.inner_text()


def turn_on(person: Person) -> str:
    """Turn backups on in the open dialog; the recovery key as shown."""
    page = person.page
    page.locator("#backup-enable").click()
    shown = page.locator("#backup-key").inner_text()
    assert KEY.match(shown), shown
    expect(page.locator("#backup-confirm")).to_be_disabled()
    page.locator("#backup-written").check()
    page.locator("#backup-confirm").click()
    assert "Backups are on" in result(person, "Backing up…")
    expect(page.locator("#backup-key")).to_have_text("")  # shown once
    return shown


def restore(person: Person, typed: str) -> str:
    page = person.page
    page.locator("#backup-restore-key").fill(typed)
    page.locator("#backup-restore").click()
    return result(person, "Restoring…")


def kept_key(person: Person, username: str) -> bool:
    """Whether the profile's v2 store holds a (sealed) recovery key for ``username``."""
    found: bool = person.page.evaluate(
        """(name) => new Promise((resolve, reject) => {
            const request = indexedDB.open('securechat');
            request.onerror = () => reject(request.error);
            request.onsuccess = () => {
                const read = request.result.transaction('v2').objectStore('v2').get([name, 'backup-recovery-key']);
                read.onsuccess = () => resolve(read.result !== undefined);
            };
        })""",
        username,
    )
    return found


def backup_requests(person: Person) -> list[str]:
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if "/account/history-backup" in request.url:
            seen.append(request.method)

    person.page.on("request", on_request)
    return seen


def test_a_key_not_confirmed_is_kept_nowhere_and_backs_nothing_up(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, _ = two_in_a_v2_chat(people, "before any backup")
    open_backups(alice)
    expect(alice.page.locator("#backup-state")).to_contain_text("off")
    alice.page.locator("#backup-enable").click()
    shown = alice.page.locator("#backup-key").inner_text()
    key = parse_recovery_key(shown)
    expect(alice.page.locator("#backup-confirm")).to_be_disabled()
    alice.page.locator("#account-close").click()

    open_backups(alice)
    expect(alice.page.locator("#backup-state")).to_contain_text("off")
    expect(alice.page.locator("#backup-key")).to_have_text("")
    assert stored_backup(server, "alice") is None
    assert key not in raw_v2_store(alice.page)
    assert not kept_key(alice, "alice")


def test_restoring_refuses_a_typo_before_downloading_a_wrong_key_and_a_rollback(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, _ = two_in_a_v2_chat(people, "kept in the backup")
    open_backups(alice)
    shown = turn_on(alice)
    assert stored_backup(server, "alice") is not None
    # The key is kept sealed: its bytes are nowhere in the profile's IndexedDB.
    assert parse_recovery_key(shown) not in raw_v2_store(alice.page)
    first = stored_backup(server, "alice")
    assert first is not None and first[0] == 1
    alice.page.locator("#backup-now").click()
    assert "Version 2 uploaded: 1 messages" in result(alice, "Backing up…")
    alice.page.locator("#account-close").click()

    tablet = people["alice-tablet"]
    tablet.name = "alice"
    tablet.login()
    switch_on_v2(tablet)
    requests = backup_requests(tablet)
    open_backups(tablet)

    compact = shown.replace(" ", "")
    typo = compact[:10] + ALPHABET[(ALPHABET.index(compact[10]) + 1) % 32] + compact[11:]
    assert "typo" in restore(tablet, typo)
    swapped = compact[:20] + compact[21] + compact[20] + compact[22:]
    if swapped != compact:
        assert "typo" in restore(tablet, swapped)
    assert requests == []  # nothing was downloaded for a typo

    other = format_recovery_key(os.urandom(32))
    assert restore(tablet, other) == "The backup does not open with this recovery key."
    assert requests == ["GET"]
    expect(tablet.page.locator("#backup-state")).to_contain_text("off")
    assert not kept_key(tablet, "alice")  # a key that opened nothing is not kept

    answer = restore(tablet, shown.lower().replace(" ", "-"))
    assert "version 2 restored: 1 of its 1 messages were new here" in answer
    tablet.page.locator("#account-close").click()
    tablet.open_chat("bob")
    expect(tablet.page.locator("#message-list .message .message-text")).to_have_text(
        ["kept in the backup"], timeout=20_000
    )

    assert kept_key(tablet, "alice")

    put_back(server, "alice", *first)
    open_backups(tablet)
    assert "older backup" in restore(tablet, shown)

    # Turning backups off forgets the key here; the server's copy stays.
    tablet.page.once("dialog", lambda dialog: dialog.accept())
    tablet.page.locator("#backup-off").click()
    expect(tablet.page.locator("#backup-state")).to_contain_text("off")
    assert not kept_key(tablet, "alice")
    assert stored_backup(server, "alice") == first


def test_new_messages_are_backed_up_on_their_own(people: dict[str, Person], server: LiveServer) -> None:
    alice, bob = two_in_a_v2_chat(people, "first")
    open_backups(alice)
    turn_on(alice)
    alice.page.locator("#account-close").click()
    first = stored_backup(server, "alice")
    assert first is not None and first[0] == 1
    bob.open_chat("alice")
    bob.send("second, after backups were turned on")
    expect(alice.page.locator(".message.theirs .message-text")).to_have_text(
        ["second, after backups were turned on"], timeout=20_000
    )
    # At most 2 uploads a minute: the automatic one comes about 30 s after the first.
    for _ in range(90):
        stored = stored_backup(server, "alice")
        if stored and stored[0] >= 2:
            break
        alice.page.wait_for_timeout(1_000)
    assert stored is not None and stored[0] == 2
    # Nothing new: no third upload follows.
    alice.page.wait_for_timeout(5_000)
    stored = stored_backup(server, "alice")
    assert stored is not None and stored[0] == 2


def test_terminal_and_browser_restore_each_others_backups(
    people: dict[str, Person], terminal: MakeTerminal, server: LiveServer, tmp_path: Path
) -> None:
    carol = people["carol"]
    carol.register()
    switch_on_v2(carol)
    home = TerminalUser(tmp_path / "carol-terminal", server.url)
    try:
        home.run(home.messenger.login("carol", PASSWORDS["carol"]))
        home.run(home.messenger.enable_v2())
        dave = terminal("dave")
        dave.run(dave.messenger.enable_v2())
        dave.run(dave.messenger.send_text("carol", "dave to carol, on both her devices"))
        home.run(home.messenger.sync_v2())
        terminal_backups = HistoryBackups(home.messenger.state, home.messenger.api, home.messenger.session)
        shown, uploaded = home.run(terminal_backups.enable())
        assert uploaded.messages >= 1
    finally:
        home.close()

    # The browser opens the terminal's archive.
    carol.page.locator(".conversation-item[data-peer='dave']").wait_for(timeout=20_000)
    carol.open_chat("dave")
    expect(carol.page.locator(".message.theirs .message-text")).to_have_text(
        ["dave to carol, on both her devices"], timeout=20_000
    )
    open_backups(carol)
    answer = restore(carol, shown)
    assert f"version {uploaded.version} restored" in answer
    assert f"of its {uploaded.messages} messages" in answer
    carol.page.locator("#account-close").click()
    carol.send("carol from the browser, after the restore")
    expect(carol.page.locator(".message.mine .message-text")).to_have_text(
        ["carol from the browser, after the restore"], timeout=20_000
    )
    # Backed up once the server has it (a message still sending is not in an archive).
    expect(carol.page.locator(".message.mine .status")).to_have_text(
        re.compile(r" · (Sent|Delivered|Read)"), timeout=20_000
    )

    # The browser uploads the next version; a new terminal home restores it.
    open_backups(carol)
    carol.page.locator("#backup-now").click()
    # (An automatic upload after carol's message may have come first: then this is the next.)
    done = re.search(r"Version (\d+) uploaded", result(carol, "Backing up…"))
    assert done is not None and int(done.group(1)) > uploaded.version
    latest = int(done.group(1))
    fresh = TerminalUser(tmp_path / "carol-second-terminal", server.url)
    try:
        fresh.run(fresh.messenger.login("carol", PASSWORDS["carol"]))
        second = HistoryBackups(fresh.messenger.state, fresh.messenger.api, fresh.messenger.session)
        restored = fresh.run(second.restore(shown))
        assert restored.version == latest
        texts = {m["text"] for m in fresh.call(fresh.messenger.stored_messages)}
        assert {"dave to carol, on both her devices", "carol from the browser, after the restore"} <= texts
    finally:
        fresh.close()
