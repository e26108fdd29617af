// The browser app's reconnect delays (app/inbox.js, issue 13 item 6): the first attempt
// after a good connection goes at once, later ones wait a random time over a window that
// doubles from 250 ms to a 2 s cap ("full jitter").

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { reconnectDelay } from "../../src/securechat/web/app/inbox.js";

describe("reconnectDelay", () => {
  test("at once, then a window doubling from 250 ms to a 2 s cap", () => {
    const top = () => 0.999999;
    const windows = [0, 1, 2, 3, 4, 5, 6, 40, 5000].map((attempt) => Math.round(reconnectDelay(attempt, top)));
    assert.deepEqual(windows, [0, 250, 500, 1000, 2000, 2000, 2000, 2000, 2000]);
  });

  test("full jitter: anywhere in the window, down to zero", () => {
    assert.equal(reconnectDelay(3, () => 0), 0);
    assert.equal(reconnectDelay(3, () => 0.5), 500);
  });
});
