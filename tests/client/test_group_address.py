"""Which conversation a name on the command line addresses: a username is always the
user; a group only by its id or by ``#name`` (so no group admin can capture messages
meant for someone by naming a group after them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from securechat.client.core import NameRecord
from securechat.client.errors import ClientError
from securechat.client.groups import find_group, group_address
from securechat.client.messenger import Messenger

BOB_GROUP = "grp-" + "b" * 32
TEAM_ONE = "grp-" + "1" * 32
TEAM_TWO = "grp-" + "2" * 32
NAMELESS = "grp-" + "0" * 32
ESCAPED = "grp-" + "e" * 32

GROUPS: list[dict[str, Any]] = [
    {"group_id": BOB_GROUP, "name": "bob", "status": "member"},
    {"group_id": TEAM_ONE, "name": "Team", "status": "member"},
    {"group_id": TEAM_TWO, "name": "Team", "status": "removed"},
    {"group_id": NAMELESS, "name": None, "status": "member"},
    # A name that is another group's id, and one with a terminal escape in it.
    {"group_id": ESCAPED, "name": TEAM_ONE, "status": "member"},
    {"group_id": "grp-" + "f" * 32, "name": "\x1b]52;c;aGk=\x07x", "status": "member"},
    {"group_id": "grp-" + "9" * 32, "name": "\x1b]52;c;aGk=\x07x", "status": "member"},
]


@pytest.mark.parametrize("target", ["bob", "Bob", "ＢＯＢ", "grp-abc", "team"])
def test_a_valid_username_is_the_user_even_when_a_group_has_that_name(target: str) -> None:
    assert group_address(target, GROUPS) is None


def test_a_group_is_addressed_by_its_id() -> None:
    assert group_address(TEAM_TWO, GROUPS) == TEAM_TWO
    assert group_address(NAMELESS, GROUPS) == NAMELESS


def test_a_group_id_not_on_this_device_is_refused() -> None:
    with pytest.raises(ClientError, match="no group"):
        group_address("grp-" + "7" * 32, GROUPS)


def test_a_group_is_addressed_by_hash_and_its_name() -> None:
    assert group_address("#bob", GROUPS) == BOB_GROUP
    # '#' then the name exactly as written: an id-like name is a name here.
    assert group_address(f"#{TEAM_ONE}", GROUPS) == ESCAPED
    with pytest.raises(ClientError, match="no group"):
        group_address("#Bob", GROUPS)
    with pytest.raises(ClientError, match="no group"):
        group_address("#", GROUPS)


def test_a_name_of_several_groups_is_an_error_that_lists_them() -> None:
    with pytest.raises(ClientError) as caught:
        group_address("#Team", GROUPS)
    message = str(caught.value)
    assert TEAM_ONE in message and TEAM_TWO in message and "'Team'" in message
    assert "\n" not in message


def test_the_choices_are_listed_without_their_control_characters() -> None:
    with pytest.raises(ClientError) as caught:
        group_address("#\x1b]52;c;aGk=\x07x", GROUPS)
    message = str(caught.value)
    assert "grp-" + "f" * 32 in message and "grp-" + "9" * 32 in message
    assert "\x1b" not in message and "\x07" not in message
    assert "\\x1b]52" in message


def test_a_bare_word_that_cannot_be_a_username_is_refused_with_a_hint() -> None:
    with pytest.raises(ClientError, match="#") as caught:
        group_address("My Team", GROUPS)
    assert "not a username" in str(caught.value)


def test_group_commands_take_an_id_a_hash_name_or_a_bare_name() -> None:
    # `securechat group ...` can only mean a group, so a bare name is no redirection.
    assert find_group(BOB_GROUP, GROUPS) == BOB_GROUP
    assert find_group("bob", GROUPS) == BOB_GROUP
    assert find_group("#bob", GROUPS) == BOB_GROUP
    # An id wins over a group whose name is that id.
    assert find_group(TEAM_ONE, GROUPS) == TEAM_ONE
    with pytest.raises(ClientError, match="several groups"):
        find_group("Team", GROUPS)
    with pytest.raises(ClientError, match="no group"):
        find_group("nobody", GROUPS)


async def test_the_messenger_sends_to_the_user_not_to_a_group_of_that_name(tmp_path: Path) -> None:
    async with Messenger(tmp_path / "home", "http://127.0.0.1:9") as client:
        with client.state.transaction():
            client.state.put_group(BOB_GROUP, [], "member")
            client.state.set_group_name(
                BOB_GROUP, NameRecord("bob", 1, "10000000-0000-4000-8000-000000000000")
            )
        assert client.group_target("bob") is None
        assert client.group_target("#bob") == BOB_GROUP
        assert client.group_target(BOB_GROUP) == BOB_GROUP
