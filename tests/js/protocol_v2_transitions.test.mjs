// Identity transitions (PROTOCOL.md 15.11) in the browser: the protocol module
// (src/securechat/web/protocol/v2/transitions.js) and the core decision
// (web/core/v2/transitions.js) against the `identity_transitions` and
// `identity_transition_signing` cases of tests/data/decisions_v2_vectors.json, with the
// ids of tests/client/core/test_v2_transitions.py, plus strict parsing.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  acceptIdentityTransition,
  currentKeyFromWire,
  pinFromWire,
  rotationDropSessions,
  transitionDecisionToWire,
} from "../../src/securechat/web/core/v2/index.js";
import { b64decode, b64encode, toHex } from "../../src/securechat/web/protocol/encoding.js";
import {
  MAX_TRANSITIONS,
  MalformedInput,
  UnsupportedVersion,
  VerificationFailed,
  certifyDevice,
  ed25519RawPublic,
  ed25519SignRaw,
  makeTransition,
  parseTransition,
  parseTransitionChain,
  signDeviceList,
  verifyTransition,
} from "../../src/securechat/web/protocol/v2/index.js";
import { loadJson } from "./support.mjs";

const VECTORS = loadJson("decisions_v2_vectors.json");

describe("identity transition decisions", () => {
  for (const c of VECTORS.identity_transitions) {
    test(c.name, async () => {
      const decision = await acceptIdentityTransition(
        pinFromWire(c.input.pin),
        currentKeyFromWire(c.input.current_key),
        c.input.transitions,
      );
      assert.deepEqual(transitionDecisionToWire(decision), c.expected, c.note);
    });
  }
  test("the file has the cases Python checks", () => {
    assert.ok(VECTORS.identity_transitions.length >= 21);
  });
});

describe("identity transition signing", () => {
  for (const [index, c] of VECTORS.identity_transition_signing.entries()) {
    test(`signing_${index}`, async () => {
      const made = await makeTransition(b64decode(c.old_seed), b64decode(c.new_seed), c.username, c.at);
      assert.deepEqual(made.toWire(), c.transition);
      assert.equal(toHex(made.signedBytes), c.signed_bytes);
      const parsed = parseTransition(c.transition);
      assert.deepEqual(parsed.toWire(), c.transition);
      await verifyTransition(parsed);
    });
  }
});

const seed = (/** @type {number} */ n) => new Uint8Array(32).fill(n);

// Made once, awaited in each test: a describe callback must register its tests
// synchronously for the Chromium runner to name them as Node does.
const MADE = makeTransition(seed(1), seed(2), "alice", 1000);

describe("identity transition parsing and signatures", () => {

  test("a signature by another key does not verify", async () => {
    const made = await MADE;
    const wire = made.toWire();
    for (const member of ["old_signature", "new_signature"]) {
      const forged = { ...wire, [member]: b64encode(await ed25519SignRaw(seed(3), made.signedBytes)) };
      await assert.rejects(verifyTransition(parseTransition(forged)), VerificationFailed);
    }
  });

  test("a changed field breaks the signatures", async () => {
    const wire = (await MADE).toWire();
    for (const change of [{ username: "bob" }, { at: 1001 }, { new_key: b64encode(await ed25519RawPublic(seed(3))) }]) {
      await assert.rejects(verifyTransition(parseTransition({ ...wire, ...change })), VerificationFailed);
    }
  });

  test("parsing is strict", async () => {
    const wire = (await MADE).toWire();
    const bad = [
      { at: -1 },
      { at: 2 ** 53 },
      { at: true },
      { at: 1.5 },
      { username: "Alice" },
      { username: 7 },
      { old_key: b64encode(new Uint8Array(32)) },
      { new_key: b64encode(Uint8Array.of(1, ...new Uint8Array(31))) },
      { new_key: b64encode(new Uint8Array(31)) },
      { old_signature: b64encode(new Uint8Array(63)) },
      { new_signature: "not base64!" },
      { v: "2" },
      { extra: 1 },
      { new_key: wire.old_key },
    ];
    for (const change of bad) {
      assert.throws(() => parseTransition({ ...wire, ...change }), MalformedInput, JSON.stringify(change));
    }
    for (const member of ["new_signature", "old_signature", "at"]) {
      const partial = { ...wire };
      delete partial[member];
      assert.throws(() => parseTransition(partial), MalformedInput);
    }
    assert.throws(() => parseTransition({ ...wire, v: 1 }), UnsupportedVersion);
  });

  test("a chain is a list of at most 16", async () => {
    const wire = (await MADE).toWire();
    assert.equal(parseTransitionChain([]).length, 0);
    assert.equal(parseTransitionChain(Array(MAX_TRANSITIONS).fill(wire)).length, MAX_TRANSITIONS);
    for (const bad of [Array(MAX_TRANSITIONS + 1).fill(wire), { 0: wire }, null, [wire, 1]]) {
      assert.throws(() => parseTransitionChain(bad), MalformedInput);
    }
  });

  test("an accepted chain applied again to the pin it made is refused", async () => {
    const chain = [];
    for (let i = 1; i <= 3; i += 1) chain.push((await makeTransition(seed(i), seed(i + 1), "alice", 1000 + i)).toWire());
    const keys = await Promise.all([1, 2, 3, 4].map((n) => ed25519RawPublic(seed(n))));
    const first = await acceptIdentityTransition({ username: "alice", key: keys[0], since: null, verified: true }, keys[3], chain);
    assert.equal(first.outcome, "accepted");
    if (first.outcome !== "accepted") return;
    assert.equal(first.pin.verified, false);
    assert.equal(first.pin.since, 1003);
    for (let start = 0; start < 3; start += 1) {
      const again = await acceptIdentityTransition(first.pin, keys[start + 1], chain.slice(start));
      assert.equal(again.outcome, "refused");
    }
    assert.equal((await acceptIdentityTransition(first.pin, keys[3], [])).outcome, "unchanged");
  });

  test("sessions with devices still listed survive a rotation", async () => {
    const device = async (/** @type {Uint8Array} */ account, /** @type {number} */ n, createdAt = 5) =>
      certifyDevice(account, "alice", await ed25519RawPublic(seed(n)), seed(n), createdAt);
    const before = await signDeviceList(seed(1), "alice", 3, 100, [await device(seed(1), 10), await device(seed(1), 11)]);
    const after = await signDeviceList(seed(2), "alice", 4, 200, [
      await device(seed(2), 10),
      await device(seed(2), 11, 6),
      await device(seed(2), 12),
    ]);
    const kept = (await device(seed(1), 10)).deviceId;
    const recreated = (await device(seed(1), 11)).deviceId;
    assert.deepEqual([...rotationDropSessions(before, after)], [recreated]);
    const gone = await signDeviceList(seed(2), "alice", 5, 300, [await device(seed(2), 12)]);
    assert.deepEqual([...rotationDropSessions(before, gone)], [kept, recreated].sort());
  });
});
