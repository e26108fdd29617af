"""An own "read" receipt (PROTOCOL.md 15.17: another device of my account has shown
messages I received) is decided against what this browser keeps (15.10), not only what
is on screen: the kept history answers which of the named messages it accepted from
others in the conversation, whether or not that conversation was ever opened here."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import Person
from .v2_support import switch_on_v2


def test_the_received_set_comes_from_the_kept_history(people: dict[str, Person]) -> None:
    alice = people["alice"]
    alice.register()
    switch_on_v2(alice)
    expect(alice.page.locator("#message-list .message")).to_have_count(0)
    found = alice.page.evaluate(
        """async () => {
            const { LocalHistory } = await import('/static/app/v2-history.js');
            const { directConversationId } = await import('/static/protocol/index.js');
            const store = await import('/static/app/store.js');
            const local = await LocalHistory.existing('alice');
            const withBob = await directConversationId('alice', 'bob');
            const withCarol = await directConversationId('alice', 'carol');
            const ids = Array.from({ length: 5 }, () => crypto.randomUUID());
            const item = (messageId, conversationId, sender, verified, sentAt) => ({
                messageId, conversationId, sender, text: 'kept', sentAt, serverTs: null, verified,
                refusal: null, reason: verified ? null : 'bad_signature', status: 'received',
                envelopeText: null, file: null,
            });
            await store.writeAll([
                await local.write(item(ids[0], withBob, 'bob', true, 1000)),     // received
                await local.write(item(ids[1], withBob, 'bob', false, 1001)),    // unverifiable
                await local.write(item(ids[2], withBob, 'alice', true, 1002)),   // my own
                await local.write(item(ids[3], withCarol, 'carol', true, 1003)), // elsewhere
            ]);
            return {
                named: await local.received(withBob, ids),
                none: await local.received(withBob, []),
                carol: await local.received(withCarol, [ids[3], ids[0]]),
                ids,
            };
        }"""
    )
    ids = found["ids"]
    # Neither conversation is on screen; the kept history still knows.
    assert found["named"] == [ids[0]]
    assert found["none"] == []
    assert found["carol"] == [ids[3]]
