// What the account dialog says after a restore (app/history-backup.js `restoredText`,
// PROTOCOL.md 15.10.1): the rows added out of the backup's, then each kind left out,
// and nothing about a kind that did not occur.

import assert from "node:assert/strict";
import { test } from "node:test";

import { restoredText } from "../../src/securechat/web/app/history-backup.js";

const NONE = { version: 3, messages: 5, added: 5, present: 0, differing: 0, group: 0, unfit: 0, repeated: 0 };

test("a backup whose rows all fit says only how many were new", () => {
  assert.equal(restoredText(NONE), "Backup version 3 restored: 5 of its 5 messages were new here.");
  assert.equal(restoredText({ ...NONE, added: 2, present: 3 }), "Backup version 3 restored: 2 of its 5 messages were new here.");
});

test("each kind of row left out is counted", () => {
  const text = restoredText({ ...NONE, messages: 9, added: 1, present: 2, differing: 1, group: 1, unfit: 3, repeated: 2 });
  assert.equal(
    text,
    "Backup version 3 restored: 1 of its 9 messages were new here." +
      " 1 message already here, with other content than in the backup: the copy here was kept." +
      " 1 group message was not restored: a backup restores direct messages only." +
      " 3 messages were not restored: not direct messages of this account (an id, conversation, sender or text none of your messages can have)." +
      " 2 messages were not restored: their message ids came earlier in the backup.",
  );
  const one = restoredText({ ...NONE, messages: 4, added: 1, group: 2, unfit: 1, repeated: 1 });
  assert.match(one, / 2 group messages were not restored: /);
  assert.match(one, / 1 message was not restored: not a direct message of this account /);
  assert.match(one, / 1 message was not restored: its message id came earlier in the backup\.$/);
});
