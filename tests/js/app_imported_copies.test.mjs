// A message from an archive (a restored backup or a device's hand-over, PROTOCOL.md
// 15.10.1, 15.10.2) is only as trustworthy as whoever held the recovery key or the own
// device that sent it. One that reuses the message id of a message this browser verifies
// itself (a v1 message the server still serves, or a v2 one it accepted) never replaces or
// hides it: the verified copy is shown, the imported one is not, whichever came first and
// whatever its time.

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
