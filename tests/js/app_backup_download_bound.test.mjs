// A browser restore reads the server's answer with a bound (PROTOCOL.md 15.10.1): no
// backup is larger than 256 MiB sealed, so an answer longer than that in base64 (and its
// few other members) is refused as backup_too_large as it streams, or before a byte of
// it is read when its length is declared, not after a malicious server made the page
// take in all of it.

import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import { ApiError } from "../../src/securechat/web/app/api.js";
import { BackupFailed, HistoryBackups, MAX_ANSWER_BYTES } from "../../src/securechat/web/app/history-backup.js";
import { MAX_SEALED_BACKUP_BYTES } from "../../src/securechat/web/protocol/v2/backup.js";

const CHUNK = 64 * 1024;
const BOUND = 256 * 1024;
const realFetch = globalThis.fetch;

afterEach(() => {
  globalThis.fetch = realFetch;
});

function backups() {
  const api = { accessToken: "token", ensureToken: async () => {} };
  return new HistoryBackups({ api: /** @type {any} */ (api), me: "alice", show: async () => {} });
}

/** A body the server never stops sending; `sent` counts the chunks it was asked for. */
function endless(headers = {}) {
  const state = { sent: 0, asked: /** @type {RequestInit | undefined} */ (undefined) };
  globalThis.fetch = async (_url, init) => {
    state.asked = init;
    const body = new ReadableStream({
      pull(controller) {
        state.sent += CHUNK;
        controller.enqueue(new Uint8Array(CHUNK).fill(55));
      },
    });
    return new Response(body, { status: 200, headers });
  };
  return state;
}

describe("the answer to GET is read with a bound", () => {
  test("the bound holds the largest backup in base64", () => {
    const largest = 4 * Math.ceil(MAX_SEALED_BACKUP_BYTES / 3);
    assert.ok(largest < MAX_ANSWER_BYTES && MAX_ANSWER_BYTES < largest + 64 * 1024);
  });

  test("an endless answer is cut off as it streams", async () => {
    const state = endless();
    await assert.rejects(backups().fetchAnswer(BOUND), (error) => error instanceof BackupFailed && error.reason === "backup_too_large");
    assert.ok(state.sent <= BOUND + 2 * CHUNK, `${state.sent} bytes read`);
    assert.equal(/** @type {any} */ (state.asked?.headers).Authorization, "Bearer token");
  });

  test("a declared length past the bound is refused before reading", async () => {
    const state = endless({ "content-length": String(BOUND + 1) });
    await assert.rejects(backups().fetchAnswer(BOUND), (error) => error instanceof BackupFailed && error.reason === "backup_too_large");
    assert.ok(state.sent <= CHUNK, `${state.sent} bytes read`);
  });

  test("an answer within the bound is the JSON; an error answer is the server's", async () => {
    globalThis.fetch = async () => Response.json({ version: 3, sealed: "AAAA" });
    assert.deepEqual(await backups().fetchAnswer(BOUND), { version: 3, sealed: "AAAA" });
    globalThis.fetch = async () => Response.json({ error: { code: "no_history_backup", message: "none" } }, { status: 404 });
    await assert.rejects(backups().fetchAnswer(BOUND), (error) => error instanceof ApiError && error.status === 404 && error.code === "no_history_backup");
  });
});
