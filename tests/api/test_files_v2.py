"""Uploads in a conversation that only ever had v2 messages (PROTOCOL.md 15.18, 12.4): a
v2 message records its direct conversation and both accounts as members (as a v1 message
does), so either of them can upload to it at once (opening it, `POST
/conversations/direct`, as both clients do first, changes nothing), and nobody else can.
Before any message, an upload for the direct id is 404 until one of them opens it."""

from __future__ import annotations

import httpx

from securechat.protocol.identifiers import Username, direct_conversation_id

from .conftest import RegisteredUser, RegisterUser
from .test_device_inbox import World, settings, world
from .test_files import FILES, create, direct, download, error_code, upload

__all__ = ["settings", "world"]  # fixtures used here


async def test_a_v2_only_conversation_takes_uploads_once_opened_and_both_are_members(
    world: World, http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    mallory: RegisteredUser = await register_user("mallory")
    conversation = direct_conversation_id(Username("alice"), Username("bob"))
    # Not a conversation on the server yet: the same 404 as for one that does not exist.
    refused = await create(http, world.bob, conversation, 10)
    assert (refused.status_code, error_code(refused)) == (404, "not_found")

    sent = await world.send(world.seal("only v2 here"))
    assert sent.status_code == 201, sent.text
    # Bob opens it (alice never does: her v2 message recorded it) and uploads; alice is a
    # member all the same.
    assert await direct(http, world.bob, "alice") == conversation
    encryptor, chunks = await upload(http, world.bob, conversation, b"bytes shared in v2")
    assert await download(http, world.alice, encryptor.file_id, 1) == chunks
    described = await http.get(f"{FILES}/{encryptor.file_id}", headers=world.alice.headers)
    assert described.json()["uploader"] == "bob"
    # Nobody else is: mallory can neither read it nor upload to it.
    for path in (f"{FILES}/{encryptor.file_id}", f"{FILES}/{encryptor.file_id}/chunks/0"):
        assert (await http.get(path, headers=mallory.headers)).status_code == 404
    assert (await create(http, mallory, conversation, 10)).status_code == 404
