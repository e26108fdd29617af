// Linking a device in the browser's code (web/protocol/v2/link.js, web/core/v2/link.js)
// against the shared vectors (tests/data/link_v2_vectors.json, written by
// scripts/make_v2_link_vectors.py from the Python code): codes byte for byte, typed forms,
// the old device's choice, the new device's acceptance and the archive read back.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { b64decode, fromHex, toHex } from "../../src/securechat/web/protocol/index.js";
import {
  LinkRefused,
  encodeLinkArchive,
  formatLinkCode,
  linkCode,
  linkValue,
  openLinkArchive,
  parseLinkCode,
} from "../../src/securechat/web/protocol/v2/link.js";
import { acceptHistoryLink, checkArchiveRows, chooseLinkTarget, rowFits } from "../../src/securechat/web/core/v2/link.js";

const VECTORS = JSON.parse(readFileSync(new URL("../data/link_v2_vectors.json", import.meta.url), "utf8")).link;

/**
 * @param {() => Promise<unknown> | unknown} work
 * @returns {Promise<string>}
 */
async function outcome(work) {
  try {
    await work();
  } catch (error) {
    if (error instanceof LinkRefused) {
      return error.reason;
    }
    throw error;
  }
  return "ok";
}

/** @param {Record<string, any>} wire */
function device(wire) {
  return { deviceId: wire.device_id, signingKey: b64decode(wire.signing_key), dhKey: b64decode(wire.dh_key) };
}

describe("link codes", () => {
  for (const entry of VECTORS.codes.codes) {
    test(`the code of a device of ${entry.username}`, async () => {
      assert.equal(toHex(await linkValue(entry.username, device(entry.device))), entry.value_hex);
      assert.equal(await linkCode(entry.username, device(entry.device)), entry.shown);
    });
  }
  for (const c of VECTORS.codes.texts) {
    test(`typed: ${c.name}`, async () => {
      assert.equal(await outcome(() => parseLinkCode(c.text)), c.expected);
      if (c.expected === "ok") {
        assert.equal(toHex(await parseLinkCode(c.text)), c.value_hex);
      }
    });
  }
});

describe("the old device's choice", () => {
  for (const c of VECTORS.choose) {
    test(c.name, async () => {
      const decision = await chooseLinkTarget(c.typed, c.username, c.devices.map(device), c.this_device);
      assert.equal(decision.outcome === "target" ? decision.device.deviceId : decision.reason, c.expected);
    });
  }
});

describe("the new device's acceptance", () => {
  for (const c of VECTORS.accept) {
    test(c.name, async () => {
      const decision = await acceptHistoryLink({
        username: c.username,
        deviceId: c.device_id,
        sender: c.sender,
        senderDevice: c.sender_device,
        conversationId: c.conversation_id,
        targetDevices: c.target_devices,
        payload: c.payload,
        expectedUntil: c.expected_until,
        now: c.now,
      });
      assert.equal(decision.outcome === "accepted" ? "accepted" : decision.reason, c.expected);
      if (decision.outcome === "accepted") {
        assert.equal(decision.archive.fileId, c.archive_file_id);
      }
    });
  }
});

describe("the hand-over archive", () => {
  for (const c of VECTORS.archives) {
    test(c.name, async () => {
      const data = fromHex(c.plaintext_hex);
      assert.equal(await outcome(() => openLinkArchive(data, c.username)), c.expected);
      if (c.expected === "ok") {
        assert.deepEqual(
          openLinkArchive(data, c.username).messages.map((m) => m.text),
          c.texts,
        );
      }
    });
  }
});

describe("the archive's rows", () => {
  for (const c of VECTORS.rows) {
    test(c.name, async () => {
      const decision = await checkArchiveRows(c.username, c.messages);
      assert.equal(decision === null ? "ok" : decision.reason, c.expected);
      const fits = await Promise.all(c.messages.map((/** @type {any} */ m) => rowFits(c.username, m)));
      assert.equal(fits.every(Boolean), c.expected === "ok");
    });
  }
});

test("only a 13-byte value and a version 0 archive are made", async () => {
  assert.equal(await outcome(() => formatLinkCode(new Uint8Array(12))), "link_code_malformed");
  assert.equal(await outcome(() => encodeLinkArchive({ username: "alice", version: 1, created_at: 0, messages: [] })), "link_archive_malformed");
  assert.equal(await outcome(() => encodeLinkArchive({ username: "alice", version: 0, created_at: 0, messages: [] })), "ok");
});
