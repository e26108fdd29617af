"""A v2 envelope from a device to other devices of its own account alone (PROTOCOL.md
15.10.2, 15.16): the history hand-over to one new device. The server takes it only in the
account's conversation with itself, and only naming devices of the account's current
list; an envelope between two accounts must still name every device."""

from __future__ import annotations

from securechat.protocol.identifiers import Username, direct_conversation_id

from . import test_device_inbox as inbox
from .test_device_inbox import World, error

# The device-inbox tests' server settings and world (alice's laptop and phone, bob's phone).
settings = inbox.settings
world = inbox.world

SELF = direct_conversation_id(Username("alice"), Username("alice"))


async def test_a_self_addressed_envelope_reaches_only_the_device_it_names(world: World) -> None:
    envelope = world.seal("to my phone alone", [("alice", 1, [world.phone])], conversation=SELF)
    sent = await world.send(envelope)
    assert sent.status_code == 201, sent.text
    assert sent.json()["devices"] == 1
    (entry,) = (await world.inbox(world.phone))["entries"]
    assert world.open(world.phone, entry["envelope"]) == "to my phone alone"
    assert (await world.inbox(world.bob_phone))["entries"] == []


async def test_a_self_addressed_envelope_outside_the_own_conversation_is_refused(world: World) -> None:
    with_bob = direct_conversation_id(Username("alice"), Username("bob"))
    envelope = world.seal("to my phone, filed with bob", [("alice", 1, [world.phone])], conversation=with_bob)
    assert error(await world.send(envelope), 400, "invalid_envelope")["reason"] == "wrong_conversation"
    assert (await world.inbox(world.phone))["head"] == 0


async def test_a_self_addressed_envelope_naming_an_unlisted_device_is_refused(world: World) -> None:
    # bob's phone, named as if it were alice's (a session exists, so a slot can be sealed).
    world.sessions[("alice", world.bob_phone.device_id)] = world.sessions[("bob", world.bob_phone.device_id)]
    envelope = world.seal("to a stranger", [("alice", 1, [world.bob_phone])], conversation=SELF)
    error(await world.send(envelope), 409, "device_list_stale")
    assert (await world.inbox(world.bob_phone))["head"] == 0


async def test_an_envelope_between_two_accounts_still_names_every_device(world: World) -> None:
    # Leaving alice's phone out of a message to bob is no hand-over: refused as before.
    envelope = world.seal("not to my phone", [("alice", 1, []), ("bob", 1, [world.bob_phone])])
    error(await world.send(envelope), 409, "device_list_stale")
    assert (await world.inbox(world.bob_phone))["head"] == 0
