"""The one import path of a restored backup and a device's hand-over (PROTOCOL.md 15.10.1,
15.10.2: `LocalHistory.importWrites`) finds a kept message by its id alone: an item's key
holds its conversation and time too, so a row with a kept id but another time (or
conversation) is a second copy, never added; an id twice in one archive is taken once."""

from __future__ import annotations

from typing import Any

from .conftest import Person
from .v2_support import switch_on_v2


def test_an_archive_row_with_a_kept_id_is_not_added_whatever_its_time(people: dict[str, Person]) -> None:
    alice = people["alice"]
    alice.register()
    switch_on_v2(alice)
    found: dict[str, Any] = alice.page.evaluate(
        """async () => {
            const { LocalHistory } = await import('/static/app/v2-history.js');
            const { directConversationId } = await import('/static/protocol/index.js');
            const store = await import('/static/app/store.js');
            const local = await LocalHistory.existing('alice');
            const withBob = await directConversationId('alice', 'bob');
            const [kept, fresh] = [crypto.randomUUID(), crypto.randomUUID()];
            await store.writeAll([await local.write({
                messageId: kept, conversationId: withBob, sender: 'bob', text: 'what bob said',
                sentAt: 1000, serverTs: 1001, verified: true, refusal: null, reason: null,
                status: 'received', envelopeText: '{}', file: null,
            })]);
            const row = (message_id, sent_at, text) => ({
                message_id, conversation_id: withBob, sender: 'bob', peer: 'bob',
                sent_at, server_ts: sent_at, text,
            });
            const imported = await local.importWrites([
                row(kept, 5000, 'bob never said this'),
                row(kept, 1000, 'what bob said'),
                row(fresh, 6000, 'new here'),
                row(fresh, 7000, 'the same id again'),
            ]);
            await store.writeAll(imported.writes);
            const ids = [];
            for (const key of await store.keys('v2', ['alice', 'msg'], ['alice', 'msg', []])) ids.push(key[4]);
            return {
                added: imported.added.map(({ item }) => item.text),
                present: imported.present,
                differing: imported.differing,
                keptCopies: ids.filter((id) => id === kept).length,
                freshCopies: ids.filter((id) => id === fresh).length,
            };
        }"""
    )
    assert found["added"] == ["new here"]
    assert (found["present"], found["differing"]) == (2, 1)
    assert (found["keptCopies"], found["freshCopies"]) == (1, 1)
