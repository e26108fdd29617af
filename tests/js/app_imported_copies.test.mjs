// A message from an archive (a restored backup or a device's hand-over, PROTOCOL.md
// 15.10.1, 15.10.2) is only as trustworthy as whoever held the recovery key or the own
// device that sent it. One that reuses the message id of a message this browser verifies
// itself (a v1 message the server still serves, or a v2 one it accepted) never replaces or
// hides it: the verified copy is shown, the imported one is not, whichever came first and
// whatever its time.
//
// But only the same message replaces a copy: same id, same conversation, same sender.
// A contact's message signed under the id of a restored row (one of the user's own words,
// say) is another message: both show, and neither hides the other.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { alreadyShown, mergeOlder } from "../../src/securechat/web/app/conversations.js";

/** @returns {import("../../src/securechat/web/app/conversations.js").ChatMessage} */
function item(fields) {
  return {
    messageId: "m1",
    conversationId: "dm-x",
    sender: "bob",
    text: "what bob said",
    sentAt: 1000,
    serverTs: 1001,
    verified: true,
    refusal: null,
    reason: null,
    status: "received",
    envelopeText: "{\"v\":1}",
    ...fields,
  };
}

/** An archive's row, as the kept history gives it back. */
function imported(fields) {
  return item({ text: "bob never said this", envelopeText: null, imported: true, ...fields });
}

describe("an imported copy never shadows a message verified here", () => {
  test("a history page with the v1 message replaces the imported copy already shown", () => {
    const shown = [imported({ sentAt: 5 }), item({ messageId: "m9", text: "later" })];
    const merged = mergeOlder(shown, [item({})]);
    assert.deepEqual(
      merged.map((m) => [m.messageId, m.text]),
      [
        ["m1", "what bob said"],
        ["m9", "later"],
      ],
    );
  });

  test("in one page, an earlier imported copy does not take the id from the verified one", () => {
    const merged = mergeOlder([], [imported({ sentAt: 5 }), item({})]);
    assert.deepEqual(
      merged.map((m) => m.text),
      ["what bob said"],
    );
  });

  test("a later imported copy in the page is dropped too", () => {
    const merged = mergeOlder([], [item({}), imported({ sentAt: 9_999 })]);
    assert.deepEqual(
      merged.map((m) => m.text),
      ["what bob said"],
    );
  });

  test("the verified message arriving live is not taken for a copy of the imported one", () => {
    assert.ok(!alreadyShown([imported({})], item({})));
  });

  test("an imported copy of a shown verified message is already shown", () => {
    assert.ok(alreadyShown([item({})], imported({})));
  });

  test("imported copies among themselves and verified ones among themselves show once", () => {
    assert.ok(alreadyShown([imported({})], imported({ sentAt: 7 })));
    assert.deepEqual(
      mergeOlder([imported({})], [imported({ sentAt: 7 })]).map((m) => m.sentAt),
      [1000],
    );
    assert.ok(alreadyShown([item({})], item({ envelopeText: "{\"other\":1}" })));
  });

  test("an unverifiable item with the id leaves the imported copy, and shows beside it", () => {
    const refused = item({ verified: false, refusal: "bad_signature", text: null });
    const merged = mergeOlder([imported({})], [refused]);
    assert.deepEqual(
      merged.map((m) => [m.verified, Boolean(m.imported)]),
      [
        [false, false],
        [true, true],
      ],
    );
  });

  test("imported items with other ids stay", () => {
    const merged = mergeOlder([imported({ messageId: "m2" })], [item({})]);
    assert.deepEqual(
      merged.map((m) => m.messageId),
      ["m1", "m2"],
    );
  });
});

describe("a message with a reused id is not the imported copy's message", () => {
  /** Alice's own words, restored from her backup. */
  const own = imported({ sender: "alice", text: "my own words", status: "sent" });
  /** Bob's genuine, verified message, signed under the id of alice's restored one. */
  const bobs = item({ text: "bob's words under alice's id", sentAt: 2000 });

  test("a page with bob's message keeps alice's restored words", () => {
    const merged = mergeOlder([own], [bobs]);
    assert.deepEqual(
      merged.map((m) => [m.sender, m.text]),
      [
        ["bob", "bob's words under alice's id"],
        ["alice", "my own words"],
      ],
    );
  });

  test("a page with alice's restored words, after bob's arrived live, keeps them", () => {
    const merged = mergeOlder([bobs], [own]);
    assert.deepEqual(
      merged.map((m) => [m.sender, m.text]),
      [
        ["alice", "my own words"],
        ["bob", "bob's words under alice's id"],
      ],
    );
  });

  test("in one page, both stay", () => {
    assert.deepEqual(
      mergeOlder([], [own, bobs]).map((m) => m.sender),
      ["alice", "bob"],
    );
  });

  test("neither is taken for a copy of the other", () => {
    assert.ok(!alreadyShown([own], bobs));
    assert.ok(!alreadyShown([bobs], own));
  });

  test("two messages verified here with one id and other senders both show", () => {
    // Alice's v1 message the server serves again, and bob's v2 one under its id.
    const served = item({ sender: "alice", text: "my own words", status: "sent" });
    assert.ok(!alreadyShown([served], bobs));
    assert.ok(!alreadyShown([bobs], served));
    assert.deepEqual(
      mergeOlder([bobs], [served]).map((m) => m.sender),
      ["alice", "bob"],
    );
  });

  test("the sender's message in another conversation leaves the copy", () => {
    const elsewhere = item({ conversationId: "grp-y", text: "in a group" });
    const copy = imported({});
    assert.ok(!alreadyShown([elsewhere], copy));
    assert.deepEqual(
      mergeOlder([copy], [elsewhere]).map((m) => m.conversationId),
      ["grp-y", "dm-x"],
    );
  });
});
