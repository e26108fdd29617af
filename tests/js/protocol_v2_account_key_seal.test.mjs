// The account key sealed under the password (PROTOCOL.md 15.11) in the browser
// (src/securechat/web/protocol/v2/accountseal.js) against
// tests/data/account_key_seal_vectors.json, which the Python module passes too
// (tests/protocol/test_v2_account_key_seal.py).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { fromHex } from "../../src/securechat/web/protocol/encoding.js";
import * as errors from "../../src/securechat/web/protocol/v2/errors.js";
import { openAccountKey, sealAccountKey } from "../../src/securechat/web/protocol/v2/accountseal.js";
import { loadJson } from "./support.mjs";

const VECTORS = loadJson("account_key_seal_vectors.json");

describe("account key seal", () => {
  for (const c of VECTORS.cases) {
    test(c.name, async () => {
      const wrap = fromHex(c.wrap_key);
      const sealed = await sealAccountKey(wrap, c.username, fromHex(c.seed), fromHex(c.iv));
      assert.deepEqual(sealed, c.sealed);
      const opened = await openAccountKey(wrap, c.username, c.sealed);
      assert.equal(Buffer.from(opened.publicKey).toString("base64"), c.sealed.account_key);
      assert.equal(opened.privateKey.extractable, false);
    });
  }
  for (const c of VECTORS.invalid) {
    test(c.name, async () => {
      await assert.rejects(openAccountKey(fromHex(c.wrap_key), c.username, c.sealed), errors[c.error]);
    });
  }
});
