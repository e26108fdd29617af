"""Deleting the history backup from the browser (PROTOCOL.md 15.10.1): the backup panel's
button deletes the server's copy and makes this profile forget the recovery key; turning
backups on again shows a new key and starts from version 1. A profile whose key has seen
a later version than the server now holds (deleted, or rolled back by the server) uploads
nothing and says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..conftest import LiveServer, start_server
from .conftest import Person
from .test_v2_backup import kept_key, open_backups, put_back, result, stored_backup, turn_on
from .v2_support import two_in_a_v2_chat


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The live server, taking more than the default 2 uploads a minute (this test makes 5)."""
    live = start_server(
        tmp_path / "server-data",
        tmp_path / "server.log",
        extra_env={"SECURECHAT_HISTORY_BACKUP_UPLOADS_PER_MINUTE": "100"},
    )
    yield live
    live.stop()


def back_up_now(person: Person) -> str:
    person.page.locator("#backup-now").click()
    return result(person, "Backing up…")


def test_delete_the_backup_and_start_again_and_a_rollback_uploads_nothing(
    people: dict[str, Person], server: LiveServer
) -> None:
    alice, _ = two_in_a_v2_chat(people, "kept in the backup")
    open_backups(alice)
    first_key = turn_on(alice)
    assert "Version 2 uploaded" in back_up_now(alice)
    assert stored_backup(server, "alice") is not None

    alice.page.once("dialog", lambda dialog: dialog.accept())
    alice.page.locator("#backup-delete").click()
    assert "deleted" in result(alice, "Deleting…")
    assert stored_backup(server, "alice") is None
    assert not kept_key(alice, "alice")
    expect(alice.page.locator("#backup-state")).to_contain_text("off")
    expect(alice.page.locator("#backup-enable")).to_be_visible()

    second_key = turn_on(alice)
    assert second_key != first_key
    first = stored_backup(server, "alice")
    assert first is not None and first[0] == 1
    assert "Version 2 uploaded" in back_up_now(alice)
    stored = stored_backup(server, "alice")
    assert stored is not None and stored[0] == 2

    # The server hands back the profile's own version 1 (or deletes the backup and takes
    # that blob again): nothing is uploaded over it, and the user is told.
    put_back(server, "alice", 1, first[1])
    said = back_up_now(alice)
    assert "older" in said and "version 1" in said and "version 2" in said, said
    assert stored_backup(server, "alice") == first
