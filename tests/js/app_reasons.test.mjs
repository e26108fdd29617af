// The browser app's one table from the core's reason codes to words (app/reasons.js):
// every code the core can return has a text, and nothing unknown reads as success.

import assert from "node:assert/strict";
import { test } from "node:test";

import { REASON_TEXTS, reasonText } from "../../src/securechat/web/app/reasons.js";
import { REASONS } from "../../src/securechat/web/core/index.js";

test("every reason code of the core has its own text", () => {
  for (const code of REASONS) {
    assert.ok(Object.hasOwn(REASON_TEXTS, code), `no text for ${code}`);
    assert.equal(typeof REASON_TEXTS[code], "string");
    assert.ok(REASON_TEXTS[code].length > 0);
    assert.equal(reasonText(code), REASON_TEXTS[code]);
  }
  const texts = REASONS.map((code) => REASON_TEXTS[code]);
  assert.equal(new Set(texts).size, texts.length, "two codes read the same");
});

test("the table has no text for a code the core does not have", () => {
  // A code the core gains while this table waits for its text would fail the test above;
  // a text whose code the core dropped would be dead: one extra allowed while the
  // signed-receipts work ("unsigned") lands in the core.
  const extra = Object.keys(REASON_TEXTS).filter((code) => !REASONS.includes(code));
  assert.ok(extra.every((code) => code === "unsigned"), `texts without a code: ${extra}`);
});

test("a code the table does not know still reads as a failed check", () => {
  for (const code of ["", "accepted", "constructor", "__proto__", null, undefined]) {
    assert.equal(reasonText(code), "it failed a security check");
  }
});

test("the texts the pages and their tests rely on", () => {
  assert.match(reasonText("replayed"), /^replayed:/);
  assert.match(reasonText("not_for_me"), /not encrypted for you/);
  assert.match(reasonText("chain_fork"), /does not extend the one verified on this device/);
  assert.match(reasonText("invite_mismatch"), /answered this code with another invite/);
  assert.match(reasonText("own_keys_changed"), /not the ones this device holds/);
});
