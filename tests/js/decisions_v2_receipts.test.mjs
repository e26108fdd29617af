// The `receipts` cases of tests/data/decisions_v2_vectors.json against the browser's v2
// core (src/securechat/web/core/v2/receipts.js), with the case names of
// tests/client/core/test_v2_receipts.py, built from the JSON inputs alone (PROTOCOL.md 15.17).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  decideReceiptV2,
  isReceiptPayload,
  parseReceiptPayload,
  receiptPayload,
  receiptV2DecisionToWire,
} from "../../src/securechat/web/core/v2/index.js";
import { loadJson } from "./support.mjs";

const VECTORS = loadJson("decisions_v2_vectors.json");

/** @param {any} inputs */
function run(inputs) {
  const { message } = inputs;
  return receiptV2DecisionToWire(
    decideReceiptV2(
      { sender: message.sender, conversationId: message.conversation_id, payload: message.payload },
      { me: inputs.me, sent: inputs.sent, received: inputs.received },
    ),
  );
}

describe("receipts", () => {
  test("the file has receipt cases", () => {
    assert.ok(VECTORS.receipts.length >= 20);
  });
  for (const c of VECTORS.receipts) {
    test(c.name, () => {
      assert.deepEqual(run(c.input), c.expected, c.note);
    });
  }
});

describe("receipt payloads", () => {
  const a = "3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f";
  const b = "0a0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f";
  test("are built sorted and without repeats", () => {
    assert.deepEqual(receiptPayload("read", [a, b, a]), { type: "receipt", status: "read", message_ids: [b, a] });
    assert.deepEqual(parseReceiptPayload(receiptPayload("delivered", [a])), { status: "delivered", messageIds: [a] });
  });
  test("refuse a bad status or no ids", () => {
    assert.throws(() => receiptPayload(/** @type {any} */ ("seen"), [a]));
    assert.throws(() => receiptPayload("read", []));
  });
  test("are recognised by type only", () => {
    assert.equal(isReceiptPayload({ type: "receipt" }), true);
    assert.equal(isReceiptPayload({ type: "text", text: "receipt" }), false);
    assert.equal(isReceiptPayload(null), false);
  });
  test("Maps work as well as plain objects", () => {
    const dm = "dm-e133b69d1b49ebe9efa44d6413c0e900";
    const decision = decideReceiptV2(
      { sender: "bob", conversationId: dm, payload: receiptPayload("read", [a, b]) },
      { me: "alice", sent: new Map([[dm, new Map([[a, new Set(["alice", "bob"])]])]]), received: new Map() },
    );
    assert.deepEqual(receiptV2DecisionToWire(decision), { outcome: "accepted", conversation_id: dm, reader: "bob", status: "read", message_ids: [a], own: false });
  });
});
