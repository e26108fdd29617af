// Which rows a restored history backup adds, in the browser's core (web/core/v2/backup.js
// `restoreRows`, PROTOCOL.md 15.10.1) against the shared vectors (tests/data/link_v2_vectors.json,
// section restore_rows, written by scripts/make_v2_link_vectors.py from the Python code):
// the hand-over's row check (`rowFits`) row by row, group rows and rows that fail skipped
// and counted, a repeated message id kept once, an own row's missing peer taken from its
// conversation.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { restoreRows } from "../../src/securechat/web/core/v2/backup.js";
import { MAX_ROW_TEXT_BYTES, rowFits } from "../../src/securechat/web/core/v2/link.js";
import { directConversationId } from "../../src/securechat/web/protocol/identifiers.js";

const VECTORS = JSON.parse(readFileSync(new URL("../data/link_v2_vectors.json", import.meta.url), "utf8")).link;

describe("the rows a restore adds", () => {
  for (const c of VECTORS.restore_rows) {
    test(c.name, async () => {
      const sorted = await restoreRows(c.username, c.messages);
      assert.deepEqual(
        {
          kept: sorted.rows.map((/** @type {any} */ m) => [m.message_id, m.peer]),
          group: sorted.group,
          unfit: sorted.unfit,
          repeated: sorted.repeated,
        },
        c.expected,
      );
      for (const m of sorted.rows) assert.equal(await rowFits(c.username, m), true);
      assert.equal(sorted.rows.length + sorted.group + sorted.unfit + sorted.repeated, c.messages.length);
      // The archive's rows are left as they were (a repaired peer is a copy).
      assert.deepEqual(c.messages, VECTORS.restore_rows.find((/** @type {any} */ v) => v.name === c.name).messages);
    });
  }
});

test("a text is measured in UTF-8 bytes and must be well-formed", async () => {
  const conversationId = await directConversationId("alice", "bob");
  const row = (/** @type {string} */ text) => ({
    message_id: "0b0e6c6e-3f7a-4c1e-9d0a-000000000001",
    conversation_id: conversationId,
    sender: "bob",
    peer: "bob",
    sent_at: 1,
    server_ts: 2,
    text,
  });
  assert.equal(MAX_ROW_TEXT_BYTES, 131_072);
  assert.equal(await rowFits("alice", row("x".repeat(MAX_ROW_TEXT_BYTES))), true);
  assert.equal(await rowFits("alice", row("x".repeat(MAX_ROW_TEXT_BYTES + 1))), false);
  // 4 bytes and 2 UTF-16 code units a character: fewer units than the bound, more bytes.
  assert.equal(await rowFits("alice", row("\u{1f600}".repeat(MAX_ROW_TEXT_BYTES / 4 + 1))), false);
  assert.equal(await rowFits("alice", row("\udfff")), false);
  assert.equal(await rowFits("alice", row("")), true);
});
