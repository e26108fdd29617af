// What the browser shows of a session's device and whether it offers to revoke it
// (web/core/v2/session_devices.js, PROTOCOL.md 15.16), against the cases the Python core
// decides alike (tests/data/session_device_vectors.json).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { sessionDevice } from "../../src/securechat/web/core/v2/session_devices.js";

const VECTORS = JSON.parse(readFileSync(new URL("../data/session_device_vectors.json", import.meta.url), "utf8"));

describe("the session's device", () => {
  for (const c of VECTORS.cases) {
    test(c.name, () => {
      const decided = sessionDevice(c.named_device, c.current_session, c.listed_devices, c.own_device);
      assert.deepEqual({ kind: decided.kind, device_id: decided.deviceId }, c.expected);
    });
  }
});
