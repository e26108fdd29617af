// History backups in the browser's protocol v2 code (src/securechat/web/protocol/v2/backup.js)
// against the shared vectors (tests/data/backup_v2_vectors.json, written by
// scripts/make_v2_backup_vectors.py from the Python code): recovery-key text forms (a typo
// caught by the checksum), seal byte for byte, and every opening refusal.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { fromHex, toHex } from "../../src/securechat/web/protocol/index.js";
import {
  BackupRefused,
  RECOVERY_ALPHABET,
  backupAad,
  backupKey,
  encodeArchive,
  formatRecoveryKey,
  openBackup,
  paddedLength,
  parseRecoveryKey,
  sealBackup,
} from "../../src/securechat/web/protocol/v2/index.js";

const VECTORS = JSON.parse(readFileSync(new URL("../data/backup_v2_vectors.json", import.meta.url), "utf8"))
  .history_backup;

/**
 * @param {() => Promise<unknown>} work
 * @returns {Promise<string>}
 */
async function outcome(work) {
  try {
    await work();
  } catch (error) {
    if (error instanceof BackupRefused) {
      return error.reason;
    }
    throw error;
  }
  return "ok";
}

describe("recovery keys", () => {
  const entry = VECTORS.recovery_keys[0];
  test("the shown form", async () => {
    assert.equal(await formatRecoveryKey(fromHex(entry.key_hex)), entry.shown);
  });
  for (const c of entry.cases) {
    test(c.name, async () => {
      assert.equal(await outcome(() => parseRecoveryKey(c.text)), c.expected);
      if (c.expected === "ok") {
        assert.equal(toHex(await parseRecoveryKey(c.text)), c.key_hex);
      }
    });
  }
  test("every single-character typo is caught by the checksum", async () => {
    const compact = entry.shown.replaceAll(" ", "");
    for (let i = 0; i < compact.length; i += 8) {
      for (const char of RECOVERY_ALPHABET) {
        if (char === compact[i]) continue;
        const typed = compact.slice(0, i) + char + compact.slice(i + 1);
        assert.equal(await outcome(() => parseRecoveryKey(typed)), "recovery_key_checksum");
      }
    }
  });
});

describe("sealing", () => {
  for (const c of VECTORS.seals) {
    test(`version ${c.archive.version}`, async () => {
      const key = fromHex(c.recovery_key_hex);
      const { username, version } = c.archive;
      assert.equal(toHex(await backupKey(key, username, version)), c.backup_key_hex);
      assert.equal(toHex(backupAad(username, version)), c.aad_hex);
      assert.equal(toHex(encodeArchive(c.archive)), c.plaintext_hex);
      const sealed = await sealBackup(key, c.archive, fromHex(c.iv_hex));
      assert.equal(toHex(sealed), c.sealed_hex);
      assert.deepEqual(await openBackup(key, username, version, sealed), c.archive);
    });
  }
  for (const c of VECTORS.padding) {
    test(`padding of ${c.length}`, () => {
      assert.equal(paddedLength(c.length), c.padded);
    });
  }
});

describe("opening", () => {
  for (const c of VECTORS.openings) {
    test(c.name, async () => {
      const got = await outcome(() =>
        openBackup(fromHex(c.recovery_key_hex), c.username, c.version, fromHex(c.sealed_hex), {
          highestSeen: c.highest_seen,
        }),
      );
      assert.equal(got, c.expected);
    });
  }
});
