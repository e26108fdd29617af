// tests/data/decisions_v2_vectors.json against the browser's v2 client core
// (src/securechat/web/core/v2/): every case its own test with the ids of
// tests/client/core/test_v2_decisions.py, built from the JSON inputs alone and compared
// in the file's JSON form, so Python and JavaScript decide alike case by case (outcome,
// reason, repair_needed, the new session set byte for byte, notices).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { REASONS } from "../../src/securechat/web/core/index.js";
import {
  acceptBundle,
  acceptDeviceList,
  bundleDecisionToWire,
  deviceListsFromWire,
  listDecisionToWire,
  meFromWire,
  receiveDecisionToWire,
  receiveDirectV2,
  seenFromWire,
  sessionSetFromWire,
  sessionsFromWire,
} from "../../src/securechat/web/core/v2/index.js";
import { b64decode } from "../../src/securechat/web/protocol/encoding.js";
import { V2_REASONS, parseDeviceList } from "../../src/securechat/web/protocol/v2/index.js";
import { loadJson } from "./support.mjs";

const VECTORS = loadJson("decisions_v2_vectors.json");

/** @param {any} inputs */
async function receive(inputs) {
  return receiveDecisionToWire(
    await receiveDirectV2(inputs.entry, {
      me: meFromWire(inputs.me),
      deliveredIn: inputs.delivered_in,
      deviceLists: deviceListsFromWire(inputs.device_lists),
      seen: seenFromWire(inputs.seen),
      inboxSeq: inputs.inbox_seq,
      sessions: sessionsFromWire(inputs.sessions),
      now: inputs.now,
    }),
  );
}

describe("file", () => {
  test("has the sections this suite checks", () => {
    assert.deepEqual(Object.keys(VECTORS).sort(), ["bundles", "device_lists", "identity_transition_signing", "identity_transitions", "note", "receipts", "receive"]);
  });
  test("every v2 reason code has a case, and every reason is one of 14's", () => {
    const found = new Set(
      ["device_lists", "bundles", "receive"].flatMap((section) => VECTORS[section].map((c) => c.expected.reason)),
    );
    assert.deepEqual(V2_REASONS.filter((reason) => !found.has(reason)), []);
    found.delete(undefined);
    assert.deepEqual([...found].filter((reason) => !REASONS.includes(reason)), []);
  });
});

describe("receive", () => {
  for (const c of VECTORS.receive) {
    test(c.name, async () => {
      assert.deepEqual(await receive(c.input), c.expected, c.note);
    });
  }
});

describe("device_list", () => {
  for (const c of VECTORS.device_lists) {
    test(c.name, async () => {
      const inputs = c.input;
      const accepted = inputs.accepted === null ? null : parseDeviceList(inputs.accepted);
      const decision = await acceptDeviceList(inputs.document, inputs.username, b64decode(inputs.pinned_account_key), accepted);
      assert.deepEqual(await listDecisionToWire(decision), c.expected, c.note);
    });
  }
});

describe("bundle", () => {
  for (const c of VECTORS.bundles) {
    test(c.name, async () => {
      const decision = await acceptBundle(c.input.bundle, parseDeviceList(c.input.device_list), c.input.now);
      assert.deepEqual(bundleDecisionToWire(decision), c.expected, c.note);
    });
  }
});

/** @param {string} name */
function byName(name) {
  const found = VECTORS.receive.find((c) => c.name === name);
  assert.ok(found, name);
  return found;
}

describe("properties", () => {
  test("simultaneous initiation converges on the lower session id", () => {
    const bob = sessionSetFromWire(byName("simultaneous_initiation_bob_side").expected.sessions);
    const phone = sessionSetFromWire(byName("simultaneous_initiation_phone_side").expected.sessions);
    assert.ok(bob.activeId !== null && phone.activeId !== null);
    assert.deepEqual(bob.activeId, phone.activeId);
    assert.deepEqual(bob.previous[0].sessionId, phone.previous[0].sessionId);
  });
  test("refusals carry repair_needed only for session_unknown and ratchet_failed", () => {
    for (const c of VECTORS.receive) {
      if (c.expected.outcome === "refused") {
        assert.equal(c.expected.repair_needed, ["session_unknown", "ratchet_failed"].includes(c.expected.reason), c.name);
      }
    }
  });
  test("a refused receive returns no state: the input sessions are left as they were", async () => {
    for (const c of VECTORS.receive.filter((k) => k.expected.outcome === "refused")) {
      const sessions = sessionsFromWire(c.input.sessions);
      const before = [...sessions.values()].map((set) => (set.active === null ? null : set.active.toBytes()));
      await receiveDirectV2(c.input.entry, {
        me: meFromWire(c.input.me),
        deliveredIn: c.input.delivered_in,
        deviceLists: deviceListsFromWire(c.input.device_lists),
        seen: seenFromWire(c.input.seen),
        inboxSeq: c.input.inbox_seq,
        sessions,
        now: c.input.now,
      });
      const after = [...sessions.values()].map((set) => (set.active === null ? null : set.active.toBytes()));
      assert.deepEqual(after, before, c.name);
    }
  });
});
