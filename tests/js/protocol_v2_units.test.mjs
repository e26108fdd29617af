// Behaviour of the browser protocol v2 modules (src/securechat/web/protocol/v2/) beyond
// what the vector file pins down: hostile input to every parser (wrong sizes,
// non-canonical base64, unsafe integers, extra and missing members, small-order keys)
// gives the refusal PROTOCOL.md 15 specifies; a zero X25519 output refuses the operation
// that needed it; a failed ratchet_decrypt never changes the state it was given; and the
// owning side (certificates, lists, prekeys, fresh ratchet keys) round-trips with keys
// made by Web Crypto on the spot.

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { describe, test } from "node:test";

import { b64encode, canonical, toHex, u64 } from "../../src/securechat/web/protocol/index.js";
import {
  Device,
  EnvelopeV2,
  HeaderV2,
  KnownList,
  MalformedInput,
  MAX_SKIP,
  Party,
  ProtocolError,
  RatchetMessage,
  Refusal,
  SESSION_SETUP,
  SESSION_STATE,
  SessionState,
  SetupMessage,
  Target,
  UnsupportedVersion,
  V2_REASONS,
  VerificationFailed,
  acceptSession,
  certifyDevice,
  checkDeviceList,
  checkEd25519Raw,
  checkOneTimePrekey,
  checkSignedPrekey,
  ed25519RawPublic,
  expireSkippedKeys,
  exactBytes,
  initiateSession,
  initiatorSecrets,
  integer,
  makeOneTimePrekey,
  makeSignedPrekey,
  members,
  openBody,
  openKeySlot,
  parseDeviceList,
  randomX25519Private,
  ratchetDecrypt,
  ratchetEncrypt,
  readU64,
  refusalReason,
  responderSecrets,
  sealEnvelope,
  signDeviceList,
  signedPrekeyPrivateExpired,
  targetKey,
  verifyEnvelope,
  versionTwo,
  x25519,
  x25519Public,
} from "../../src/securechat/web/protocol/v2/index.js";
import { unhex } from "./support.mjs";
import { VECTORS_V2 as VECTORS, device, outcome, party } from "./v2_support.mjs";

const DEVICES = VECTORS.devices;
const RATCHET = VECTORS.ratchet;
const MODULE_DIR = new URL("../../src/securechat/web/protocol/v2/", import.meta.url);
const MODULES = readdirSync(MODULE_DIR).filter((name) => name.endsWith(".js"));
const EXTRA_AD = unhex(RATCHET.extra_ad_hex);
const NOW = 1767225600000;

/** A deep copy of a wire object, changed by `change`. */
function mutated(wire, change) {
  const copy = structuredClone(wire);
  change(copy);
  return copy;
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing case can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The ratchet vector's states: bob's state after he has opened a1 and a2 (step 4), a3 for it. */
function bobAfterStep4() {
  return SessionState.fromBytes(unhex(RATCHET.steps[4].state_after_hex));
}
const A3 = RatchetMessage.fromWire(RATCHET.steps[2].wire);

const SMALL_ORDER_X25519 = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map(unhex);

// A fresh account with one device, its keys made here (the owning side of 15.3 and 15.4).
async function freshDevice(username, createdAt = NOW) {
  const random = () => crypto.getRandomValues(new Uint8Array(32));
  const accountSeed = random();
  const signingSeed = random();
  const dhPrivate = await randomX25519Private();
  const device = await certifyDevice(accountSeed, username, await ed25519RawPublic(signingSeed), await x25519Public(dhPrivate), createdAt);
  const signedPrivate = await randomX25519Private();
  const oneTimePrivate = await randomX25519Private();
  return {
    accountSeed,
    signingSeed,
    dhPrivate,
    device,
    party: new Party(username, await ed25519RawPublic(accountSeed), device),
    signedPrivate,
    oneTimePrivate,
    signedPrekey: await makeSignedPrekey(signingSeed, username, device.deviceId, 7, signedPrivate, createdAt),
    oneTimePrekey: await makeOneTimePrekey(signingSeed, username, device.deviceId, 1001, oneTimePrivate),
  };
}

/** alice's and bob's states after alice's first message has set the session up. */
async function freshSession() {
  const alice = await freshDevice("alice");
  const bob = await freshDevice("bob");
  let aliceState = await initiateSession(alice.party, alice.dhPrivate, bob.party, bob.signedPrekey, bob.oneTimePrekey, await randomX25519Private());
  const first = await ratchetEncrypt(aliceState, new TextEncoder().encode("hello"), EXTRA_AD, randomX25519Private);
  aliceState = first.state;
  const accepted = await acceptSession(
    bob.party,
    bob.dhPrivate,
    alice.party,
    first.message,
    new Map([[7, bob.signedPrivate]]),
    new Map([[1001, bob.oneTimePrivate]]),
    EXTRA_AD,
    NOW,
  );
  assert.equal(new TextDecoder().decode(accepted.plaintext), "hello");
  return { alice, bob, aliceState, bobState: accepted.state };
}

describe("module hygiene", () => {
  test("the v2 modules mirror the Python package", () => {
    const expected = ["accountseal.js", "backup.js", "devices.js", "envelope.js", "errors.js", "index.js", "labels.js", "link.js", "prekeys.js", "primitives.js", "ratchet.js", "setup.js", "transitions.js", "wire.js"];
    assert.deepEqual([...MODULES].sort(), expected);
  });
  test("index.js re-exports every name of every module, none shadowed", async () => {
    const seen = new Map();
    for (const name of MODULES.filter((file) => file !== "index.js")) {
      for (const exported of Object.keys(await import(new URL(name, MODULE_DIR)))) {
        assert.equal(seen.get(exported), undefined, `${exported} exported by ${seen.get(exported)} and ${name}`);
        seen.set(exported, name);
      }
    }
    const index = await import(new URL("index.js", MODULE_DIR));
    assert.deepEqual(Object.keys(index).sort(), [...seen.keys()].sort());
  });
  for (const name of MODULES) {
    test(`${name}: relative imports only, named exports only, no DOM, no Node APIs`, () => {
      const source = readFileSync(new URL(name, MODULE_DIR), "utf8");
      const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
      for (const [, specifier] of code.matchAll(/\bfrom\s+"([^"]+)"/g)) {
        // v2 modules, and v1's protocol modules below them (never v1's index: no cycles).
        assert.match(specifier, /^\.\.?\/[a-z0-9]+\.js$/, `${name} imports ${specifier}`);
        assert.notEqual(specifier, "../index.js");
      }
      assert.doesNotMatch(code, /\bimport\s*\(/, "no dynamic import");
      assert.doesNotMatch(code, /\bexport\s+default\b/);
      assert.doesNotMatch(code, /\b(document|window|localStorage|sessionStorage|innerHTML|navigator)\b/);
      assert.doesNotMatch(code, /\b(require|process|Buffer|atob|btoa)\b/);
      assert.doesNotMatch(code, /\bglobalThis\.[A-Za-z]+\s*=/, "no globals are set");
      assert.doesNotMatch(code, /Math\.random|getRandomValues|randomUUID/, "no randomness of its own");
      assert.doesNotMatch(code, /Date\.now|new Date\(|performance\.now/, "no clock of its own");
    });
  }
});

describe("errors", () => {
  test("a refusal carries one of the reasons of 15.14 and is a ProtocolError", () => {
    assert.equal(V2_REASONS.length, 11);
    for (const reason of V2_REASONS) {
      const refusal = new Refusal(reason);
      assert.ok(refusal instanceof ProtocolError);
      assert.equal(refusal.reason, reason);
      assert.equal(refusalReason(refusal), reason);
    }
  });
  test("an unknown reason is a programming error, not a refusal", () => {
    assert.throws(() => new Refusal(/** @type {any} */ ("bad_signature")), TypeError);
  });
  test("refusalReason names v1 kinds and rethrows anything else", () => {
    assert.equal(refusalReason(new MalformedInput("x")), "malformed");
    assert.equal(refusalReason(new UnsupportedVersion("x")), "unsupported_version");
    assert.equal(refusalReason(new VerificationFailed()), "unverifiable");
    const bug = new TypeError("bug");
    assert.throws(() => refusalReason(bug), (error) => error === bug);
  });
});

describe("wire readers", () => {
  test("members: exactly the required ones plus optional ones", () => {
    assert.deepEqual(members({ a: 1 }, ["a"], ["b"]), { a: 1 });
    assert.deepEqual(members({ a: 1, b: 2 }, ["a"], ["b"]), { a: 1, b: 2 });
    for (const bad of [{}, { a: 1, c: 3 }, null, [], "a", 1, [["a", 1]]]) {
      assert.throws(() => members(bad, ["a"], ["b"]), MalformedInput, JSON.stringify(bad));
    }
    // An inherited member does not count: only own members are the object's.
    assert.throws(() => members(Object.create({ a: 1 }), ["a"]), MalformedInput);
  });
  test("integer: safe integers in range only", () => {
    assert.equal(integer(0), 0);
    assert.ok(Object.is(integer(-0), 0));
    assert.equal(integer(2 ** 53 - 1), 2 ** 53 - 1);
    for (const bad of [2 ** 53, 2 ** 64, -1, 1.5, NaN, Infinity, "1", true, null, 1n]) {
      assert.throws(() => integer(bad), MalformedInput, String(bad));
    }
    assert.throws(() => integer(2 ** 32, { below: 2 ** 32 }), MalformedInput);
    assert.throws(() => integer(0, { minimum: 1 }), MalformedInput);
  });
  test("exactBytes: strict base64 of exactly the size", () => {
    assert.equal(exactBytes(b64encode(new Uint8Array(32)), 32).length, 32);
    const good = b64encode(new Uint8Array(32).fill(7));
    for (const bad of [
      b64encode(new Uint8Array(31)),
      b64encode(new Uint8Array(33)),
      good.slice(0, -1), // no padding
      good.slice(0, -2) + "J=", // non-zero trailing bits: a second spelling of a value
      " " + good.slice(1),
      good.replace("B", "-"),
      1,
      null,
    ]) {
      assert.throws(() => exactBytes(bad, 32), MalformedInput, String(bad));
    }
  });
  test("versionTwo: another integer is unsupported_version, anything else malformed", () => {
    versionTwo(2);
    assert.throws(() => versionTwo(1), UnsupportedVersion);
    assert.throws(() => versionTwo(3), UnsupportedVersion);
    for (const bad of ["2", true, null, 2.5, [2]]) assert.throws(() => versionTwo(bad), MalformedInput);
  });
  test("readU64: 8 bytes below 2^53 (a Number cannot hold more without losing bits)", () => {
    assert.equal(readU64(u64(2 ** 53 - 1)), 2 ** 53 - 1);
    assert.throws(() => readU64(u64(2n ** 53n)), MalformedInput);
    assert.throws(() => readU64(u64(2n ** 64n - 1n)), MalformedInput);
    assert.throws(() => readU64(new Uint8Array(7)), MalformedInput);
  });
});

describe("keys", () => {
  test("X25519 with every small-order peer key gives no output", async () => {
    const own = unhex(DEVICES.alice_laptop.dh_private_hex);
    for (const key of SMALL_ORDER_X25519) {
      assert.equal(await x25519(own, key), null, toHex(key));
    }
    assert.equal((await x25519(own, unhex(DEVICES.bob_phone.dh_key_hex)))?.length, 32);
  });
  test("a platform whose deriveBits gives 32 zero bytes instead of throwing is refused all the same", async () => {
    // Web Crypto throws on an all-zero X25519 output (15.15); the protocol's own zero
    // check must hold where a platform does not.
    const subtle = crypto.subtle;
    const original = subtle.deriveBits;
    /** @type {any} */ (subtle).deriveBits = async (algorithm, key, length) =>
      algorithm.name === "X25519" ? new ArrayBuffer(32) : original.call(subtle, algorithm, key, length);
    try {
      assert.equal(await x25519(unhex(DEVICES.alice_laptop.dh_private_hex), unhex(DEVICES.bob_phone.dh_key_hex)), null);
      assert.equal(await decryptLeavesStateAlone(bobAfterStep4(), new RatchetMessage({ ...A3, dh: new Uint8Array(32).fill(9), n: 0 }), EXTRA_AD, NOW), "ratchet_failed");
    } finally {
      delete (/** @type {any} */ (subtle)).deriveBits;
    }
    assert.equal(subtle.deriveBits, original);
    assert.equal((await x25519(unhex(DEVICES.alice_laptop.dh_private_hex), unhex(DEVICES.bob_phone.dh_key_hex)))?.length, 32);
  });
  test("X25519 keys of the wrong size are malformed", async () => {
    const own = unhex(DEVICES.alice_laptop.dh_private_hex);
    await assert.rejects(x25519(own, new Uint8Array(31)), MalformedInput);
    await assert.rejects(x25519(own.slice(1), unhex(DEVICES.bob_phone.dh_key_hex)), MalformedInput);
    await assert.rejects(x25519Public(new Uint8Array(33)), MalformedInput);
  });
  test("Ed25519 raw keys: 32 bytes, not of small order", () => {
    assert.throws(() => checkEd25519Raw(new Uint8Array(31)), MalformedInput);
    const identity = new Uint8Array(32);
    identity[0] = 1;
    assert.throws(() => checkEd25519Raw(identity), MalformedInput);
    identity[31] = 0x80; // the same point with the sign bit set
    assert.throws(() => checkEd25519Raw(identity), MalformedInput);
  });
  test("randomX25519Private gives fresh 32-byte scalars and refuses other sizes", async () => {
    const [first, second] = [await randomX25519Private(), await randomX25519Private()];
    assert.equal(first.length, 32);
    assert.notEqual(toHex(first), toHex(second));
    assert.equal((await x25519Public(first)).length, 32);
    await assert.rejects(randomX25519Private(16), RangeError);
  });
});

// ---------------------------------------------------------------------------
// Device lists and prekeys.
// ---------------------------------------------------------------------------

const LIST_WIRE = VECTORS.device_lists.find((c) => c.name === "valid_two_devices").wire;
const ALICE_KEY = unhex(DEVICES.alice_laptop.account_key_hex);

describe("device list parsing", () => {
  test("the vector list parses and serialises back to the same wire", () => {
    assert.deepEqual(parseDeviceList(LIST_WIRE).toWire(), LIST_WIRE);
  });
  const cases = {
    "an extra member": (w) => (w.extra = 1),
    "a missing member": (w) => delete w.issued_at,
    "v as a string": (w) => (w.v = "2"),
    "v as true": (w) => (w.v = true),
    "username not normalised": (w) => (w.username = "Alice"),
    "username not a string": (w) => (w.username = 7),
    "account key of 31 bytes": (w) => (w.account_key = b64encode(new Uint8Array(31).fill(1))),
    "account key of small order": (w) => (w.account_key = b64encode(SMALL_ORDER_X25519[1])),
    "account key in non-canonical base64": (w) => (w.account_key = w.account_key.slice(0, -2) + "9="),
    "version 0": (w) => (w.version = 0),
    "version 2^53": (w) => (w.version = 2 ** 53),
    "version 1.5": (w) => (w.version = 1.5),
    "issued_at negative": (w) => (w.issued_at = -1),
    "issued_at unsafe": (w) => (w.issued_at = 2 ** 60),
    "no devices": (w) => (w.devices = []),
    "33 devices": (w) => (w.devices = Array.from({ length: 33 }, () => w.devices[0])),
    "devices not a list": (w) => (w.devices = w.devices[0]),
    "a device with an extra member": (w) => (w.devices[0].extra = 1),
    "a device without dh_key": (w) => delete w.devices[0].dh_key,
    "an upper-case device id": (w) => (w.devices[0].device_id = w.devices[0].device_id.toUpperCase()),
    "a short device id": (w) => (w.devices[0].device_id = w.devices[0].device_id.slice(1)),
    "a signing key of 33 bytes": (w) => (w.devices[0].signing_key = b64encode(new Uint8Array(33).fill(1))),
    "a DH key of 31 bytes": (w) => (w.devices[0].dh_key = b64encode(new Uint8Array(31).fill(1))),
    "created_at unsafe": (w) => (w.devices[0].created_at = 2 ** 53),
    "a certificate of 63 bytes": (w) => (w.devices[0].certificate = b64encode(new Uint8Array(63))),
    "devices in descending order": (w) => w.devices.reverse(),
    "the same device twice": (w) => (w.devices[1] = w.devices[0]),
    "a signature of 65 bytes": (w) => (w.signature = b64encode(new Uint8Array(65))),
    "a signature with whitespace": (w) => (w.signature = w.signature.slice(0, 4) + "\n" + w.signature.slice(4)),
  };
  for (const [name, change] of Object.entries(cases)) {
    test(`${name} is malformed`, async () => {
      const wire = mutated(LIST_WIRE, change);
      assert.equal(await outcome(() => checkDeviceList(wire, "alice", ALICE_KEY, null)), "malformed");
    });
  }
  test("another integer version is unsupported_version, checked before the contents", async () => {
    const wire = mutated(LIST_WIRE, (w) => {
      w.v = 3;
      w.devices = [];
    });
    assert.equal(await outcome(() => checkDeviceList(wire, "alice", ALICE_KEY, null)), "unsupported_version");
  });
});

describe("device list checks", () => {
  test("a list fetched for another account, or under another key, is device_list_invalid", async () => {
    assert.equal(await outcome(() => checkDeviceList(LIST_WIRE, "bob", ALICE_KEY, null)), "device_list_invalid");
    const bobKey = unhex(DEVICES.bob_phone.account_key_hex);
    assert.equal(await outcome(() => checkDeviceList(LIST_WIRE, "alice", bobKey, null)), "device_list_invalid");
  });
  test("a signature with S + L (a second spelling) is device_list_invalid", async () => {
    const signature = Uint8Array.from(atob(LIST_WIRE.signature), (ch) => ch.charCodeAt(0));
    let s = 0n;
    for (let index = 63; index >= 32; index -= 1) s = (s << 8n) | BigInt(signature[index]);
    s += (1n << 252n) + 27742317777372353535851937790883648493n;
    for (let index = 32; index < 64; index += 1) {
      signature[index] = Number(s & 0xffn);
      s >>= 8n;
    }
    const wire = mutated(LIST_WIRE, (w) => (w.signature = b64encode(signature)));
    assert.equal(await outcome(() => checkDeviceList(wire, "alice", ALICE_KEY, null)), "device_list_invalid");
  });
  test("the same list again is accepted; a newer one too; an older one is a rollback", async () => {
    const accepted = await checkDeviceList(LIST_WIRE, "alice", ALICE_KEY, null);
    const known = new KnownList(accepted.version, await accepted.listHash());
    assert.equal(await outcome(() => checkDeviceList(LIST_WIRE, "alice", ALICE_KEY, known)), "ok");
    const newer = new KnownList(accepted.version - 1, new Uint8Array(32));
    assert.equal(await outcome(() => checkDeviceList(LIST_WIRE, "alice", ALICE_KEY, newer)), "ok");
    const older = new KnownList(accepted.version + 1, await accepted.listHash());
    assert.equal(await outcome(() => checkDeviceList(LIST_WIRE, "alice", ALICE_KEY, older)), "device_list_rollback");
  });
  test("lists and certificates made here check, and a device not in the list is device_not_listed", async () => {
    const phone = await freshDevice("carol");
    const laptop = await certifyDevice(phone.accountSeed, "carol", await ed25519RawPublic(crypto.getRandomValues(new Uint8Array(32))), await x25519Public(await randomX25519Private()), NOW);
    const list = await signDeviceList(phone.accountSeed, "carol", 4, NOW, [laptop, phone.device]);
    const checked = await checkDeviceList(list.toWire(), "carol", phone.party.accountKey, null);
    assert.deepEqual(checked.toWire(), list.toWire());
    assert.deepEqual(checked.devices.map((d) => d.deviceId), [laptop.deviceId, phone.device.deviceId].sort());
    assert.equal(checked.device(phone.device.deviceId).deviceId, phone.device.deviceId);
    assert.throws(() => checked.device("0".repeat(32)), (error) => error instanceof Refusal && error.reason === "device_not_listed");
    // A certificate by the wrong account key.
    const stranger = await freshDevice("carol");
    const foreign = await signDeviceList(phone.accountSeed, "carol", 5, NOW, [stranger.device]);
    assert.equal(await outcome(() => checkDeviceList(foreign.toWire(), "carol", phone.party.accountKey, null)), "device_certificate_invalid");
  });
});

describe("prekeys", () => {
  const bob = device("bob_phone");
  const signed = DEVICES.bob_phone.signed_prekey.wire;
  const oneTime = DEVICES.bob_phone.one_time_prekeys[0].wire;
  const signedCases = {
    "an extra member": (w) => (w.extra = 1),
    "no created_at": (w) => delete w.created_at,
    "a prekey id of 2^32": (w) => (w.prekey_id = 2 ** 32),
    "a negative prekey id": (w) => (w.prekey_id = -1),
    "a prekey id as a string": (w) => (w.prekey_id = "7"),
    "a public key of 33 bytes": (w) => (w.public_key = b64encode(new Uint8Array(33))),
    "a signature of 63 bytes": (w) => (w.signature = b64encode(new Uint8Array(63))),
    "created_at unsafe": (w) => (w.created_at = 2 ** 53 + 2),
  };
  for (const [name, change] of Object.entries(signedCases)) {
    test(`signed: ${name} is malformed`, async () => {
      assert.equal(await outcome(() => checkSignedPrekey(mutated(signed, change), "bob", bob, NOW)), "malformed");
    });
  }
  test("one-time: a created_at member is malformed (the set is exact)", async () => {
    assert.equal(await outcome(() => checkOneTimePrekey({ ...oneTime, created_at: NOW }, "bob", bob)), "malformed");
    assert.equal(await outcome(() => checkOneTimePrekey(oneTime, "bob", bob)), "ok");
  });
  test("a prekey under another username or device is prekey_invalid", async () => {
    assert.equal(await outcome(() => checkSignedPrekey(signed, "alice", bob, NOW)), "prekey_invalid");
    assert.equal(await outcome(() => checkOneTimePrekey(oneTime, "bob", device("alice_phone"))), "prekey_invalid");
  });
  test("a signed prekey from the future is not stale; one day past 30 is", async () => {
    assert.equal(await outcome(() => checkSignedPrekey(signed, "bob", bob, signed.created_at - 1)), "ok");
    assert.equal(await outcome(() => checkSignedPrekey(signed, "bob", bob, signed.created_at + 31 * 86_400_000)), "prekey_stale");
  });
  test("a replaced signed prekey's private half goes 30 days after its replacement", () => {
    assert.equal(signedPrekeyPrivateExpired(null, NOW), false);
    assert.equal(signedPrekeyPrivateExpired(NOW, NOW + 30 * 86_400_000 - 1), false);
    assert.equal(signedPrekeyPrivateExpired(NOW, NOW + 30 * 86_400_000), true);
  });
});

// ---------------------------------------------------------------------------
// Setup: zero DH outputs.
// ---------------------------------------------------------------------------

describe("setup with small-order keys", () => {
  const alice = party("alice_laptop");
  const bobParty = party("bob_phone");
  const alicePrivate = unhex(DEVICES.alice_laptop.dh_private_hex);
  const ephemeral = unhex(RATCHET.ephemeral_private_hex);
  for (const key of SMALL_ORDER_X25519) {
    test(`the initiator refuses a signed prekey ${toHex(key).slice(0, 8)}… with prekey_invalid`, async () => {
      const spk = { prekeyId: 7, publicKey: key, createdAt: NOW, signature: new Uint8Array(64) };
      const got = await outcome(() => initiatorSecrets(alice, alicePrivate, bobParty, /** @type {any} */ (spk), null, ephemeral));
      assert.equal(got, "prekey_invalid");
    });
    test(`the responder refuses an ephemeral key ${toHex(key).slice(0, 8)}… with ratchet_failed`, async () => {
      const got = await outcome(() =>
        responderSecrets(bobParty, unhex(DEVICES.bob_phone.dh_private_hex), alice, new SetupMessage(key, 7, null), unhex(DEVICES.bob_phone.signed_prekey.private_hex), null),
      );
      assert.equal(got, "ratchet_failed");
    });
  }
  test("a one-time prekey of small order alone refuses the setup", async () => {
    const checked = await checkSignedPrekey(DEVICES.bob_phone.signed_prekey.wire, "bob", bobParty.device, NOW);
    const opk = { prekeyId: 1001, publicKey: SMALL_ORDER_X25519[0], signature: new Uint8Array(64) };
    const got = await outcome(() => initiatorSecrets(alice, alicePrivate, bobParty, checked, /** @type {any} */ (opk), ephemeral));
    assert.equal(got, "prekey_invalid");
  });
  test("an initiator device whose DH key is of small order makes the responder refuse", async () => {
    const broken = new Party("alice", alice.accountKey, new Device({ ...alice.device, dhKey: SMALL_ORDER_X25519[2] }));
    const setup = SetupMessage.fromWire(VECTORS.setups[0].setup_wire);
    const got = await outcome(() =>
      responderSecrets(bobParty, unhex(DEVICES.bob_phone.dh_private_hex), broken, setup, unhex(DEVICES.bob_phone.signed_prekey.private_hex), unhex(DEVICES.bob_phone.one_time_prekeys[0].private_hex)),
    );
    assert.equal(got, "ratchet_failed");
  });
});

// ---------------------------------------------------------------------------
// Ratchet messages, setups and states: parsing.
// ---------------------------------------------------------------------------

describe("ratchet message parsing", () => {
  const wire = RATCHET.steps[0].wire; // a1, with its setup
  test("the vector message parses and serialises back", () => {
    assert.deepEqual(RatchetMessage.fromWire(wire).toWire(), wire);
  });
  const cases = {
    "an extra member": (w) => (w.extra = 1),
    "no n": (w) => delete w.n,
    "setup: null": (w) => (w.setup = null),
    "n of 2^32": (w) => (w.n = 2 ** 32),
    "pn of -1": (w) => (w.pn = -1),
    "n as 1.5": (w) => (w.n = 1.5),
    "n unsafe": (w) => (w.n = 2 ** 53),
    "dh of 31 bytes": (w) => (w.dh = b64encode(new Uint8Array(31))),
    "dh in the URL-safe alphabet": (w) => (w.dh = w.dh.replaceAll("+", "-").replaceAll("/", "_").replace(/^[^-_]*$/, "_" + w.dh.slice(1))),
    "a ciphertext of 15 bytes": (w) => (w.ciphertext = b64encode(new Uint8Array(15))),
    "a ciphertext of 65553 bytes": (w) => (w.ciphertext = b64encode(new Uint8Array(65553))),
    "a ciphertext that is not a string": (w) => (w.ciphertext = [1, 2]),
    "a setup with an extra member": (w) => (w.setup.extra = 1),
    "a setup without one_time_prekey_id": (w) => delete w.setup.one_time_prekey_id,
    "a setup whose prekey id is 2^32": (w) => (w.setup.signed_prekey_id = 2 ** 32),
    "a setup whose one-time prekey id is a string": (w) => (w.setup.one_time_prekey_id = "1001"),
    "a setup whose ephemeral key is 33 bytes": (w) => (w.setup.ephemeral_key = b64encode(new Uint8Array(33))),
  };
  for (const [name, change] of Object.entries(cases)) {
    test(`${name} is malformed`, async () => {
      assert.equal(await outcome(() => RatchetMessage.fromWire(mutated(wire, change))), "malformed");
    });
  }
  test("a ciphertext of exactly 65552 bytes and one of 16 bytes parse", () => {
    for (const size of [16, 65552]) {
      assert.equal(RatchetMessage.fromWire({ ...wire, ciphertext: b64encode(new Uint8Array(size)) }).ciphertext.length, size);
    }
  });
});

describe("setup bytes and state bytes parsing", () => {
  const setupBytes = unhex(VECTORS.setups[0].setup_bytes_hex);
  const opk = u64(1001);
  const ephemeral = new Uint8Array(32).fill(9);
  test("setup bytes round-trip, with and without a one-time prekey", () => {
    assert.equal(toHex(SetupMessage.fromBytes(setupBytes).toBytes()), toHex(setupBytes));
    const without = canonical(SESSION_SETUP, [u64(2), ephemeral, u64(7), new Uint8Array(0), new Uint8Array(0)]);
    assert.equal(SetupMessage.fromBytes(without).oneTimePrekeyId, null);
  });
  const badSetups = {
    "version 3": canonical(SESSION_SETUP, [u64(3), ephemeral, u64(7), opk, new Uint8Array(0)]),
    "a KEM ciphertext (not in v2.0)": canonical(SESSION_SETUP, [u64(2), ephemeral, u64(7), opk, new Uint8Array(1)]),
    "a one-time prekey id of 4 bytes": canonical(SESSION_SETUP, [u64(2), ephemeral, u64(7), new Uint8Array(4), new Uint8Array(0)]),
    "an ephemeral key of 31 bytes": canonical(SESSION_SETUP, [u64(2), ephemeral.slice(1), u64(7), opk, new Uint8Array(0)]),
    "four fields": canonical(SESSION_SETUP, [u64(2), ephemeral, u64(7), opk]),
    "another label": canonical(SESSION_STATE, [u64(2), ephemeral, u64(7), opk, new Uint8Array(0)]),
    "a truncated field": setupBytes.slice(0, -1),
  };
  for (const [name, bytes] of Object.entries(badSetups)) {
    test(`setup bytes with ${name} are malformed`, async () => {
      assert.equal(await outcome(() => SetupMessage.fromBytes(bytes)), "malformed");
    });
  }

  const stateBytes = unhex(RATCHET.steps.at(-1).state_after_hex);
  const fields = () => {
    const raw = stateBytes;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = [];
    for (let offset = 0; offset < raw.length; ) {
      const size = view.getUint32(offset);
      out.push(raw.slice(offset + 4, offset + 4 + size));
      offset += 4 + size;
    }
    return out.slice(1);
  };
  /** @param {(f: Uint8Array[]) => void} change */
  const changedState = (change) => {
    const f = fields();
    change(f);
    return canonical(SESSION_STATE, f);
  };
  test("every vector state round-trips byte for byte", () => {
    for (const step of RATCHET.steps) {
      if (step.state_after_hex === null) continue;
      assert.equal(toHex(SessionState.fromBytes(unhex(step.state_after_hex)).toBytes()), step.state_after_hex);
    }
  });
  const badStates = {
    "version 1": (f) => (f[0] = u64(1)),
    "a root key of 31 bytes": (f) => (f[3] = f[3].slice(1)),
    "an empty session id": (f) => (f[1] = new Uint8Array(0)),
    "a dhr of 33 bytes": (f) => (f[5] = new Uint8Array(33)),
    "ns of 4 bytes": (f) => (f[8] = new Uint8Array(4)),
    "a skipped count one too high": (f) => (f[12] = u64(readU64(f[12]) + 1)),
    "a skipped count of 2001": (f) => {
      f[12] = u64(2001);
      for (let index = 0; index < 2001; index += 1) f.push(new Uint8Array(32), u64(0), new Uint8Array(32), u64(0));
    },
    "a pending setup that is not setup bytes": (f) => (f[11] = new Uint8Array(99)),
    "a field after the skipped keys": (f) => f.push(new Uint8Array(0)),
    "nr of 2^53 (not a safe integer)": (f) => (f[9] = u64(2n ** 53n)),
  };
  for (const [name, change] of Object.entries(badStates)) {
    test(`a state with ${name} is malformed`, async () => {
      assert.equal(await outcome(() => SessionState.fromBytes(changedState(change))), "malformed");
    });
  }
  test("any one changed byte of a state: malformed, or a state that serialises back to those bytes", () => {
    const random = prng(20261207);
    for (let round = 0; round < 400; round += 1) {
      const bytes = Uint8Array.from(stateBytes);
      bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
      let parsed = null;
      try {
        parsed = SessionState.fromBytes(bytes);
      } catch (error) {
        assert.ok(error instanceof MalformedInput, String(error));
      }
      if (parsed !== null) assert.equal(toHex(parsed.toBytes()), toHex(bytes));
    }
  });
});

// ---------------------------------------------------------------------------
// The ratchet: a failed decryption changes nothing.
// ---------------------------------------------------------------------------

/** Run ratchetDecrypt and check that whatever happens, `state` is as it was. */
async function decryptLeavesStateAlone(state, message, extraAd, now) {
  const before = toHex(state.toBytes());
  const got = await outcome(() => ratchetDecrypt(state, message, extraAd, now));
  assert.equal(toHex(state.toBytes()), before, "the state passed in was changed");
  return got;
}

describe("ratchet refusals", () => {
  test("states and their skipped keys are frozen", () => {
    const state = bobAfterStep4();
    assert.ok(Object.isFrozen(state) && Object.isFrozen(state.skipped));
    assert.throws(() => {
      /** @type {any} */ (state).nr = 0;
    }, TypeError);
  });
  test("a tampered ciphertext, header or extra AD is ratchet_failed and changes nothing", async () => {
    const state = bobAfterStep4();
    const flipped = Uint8Array.from(A3.ciphertext);
    flipped[0] ^= 1;
    const variants = [
      new RatchetMessage({ ...A3, ciphertext: flipped }),
      new RatchetMessage({ ...A3, pn: A3.pn + 1 }),
      new RatchetMessage({ ...A3, ciphertext: A3.ciphertext.slice(0, -1) }),
    ];
    for (const message of variants) {
      assert.equal(await decryptLeavesStateAlone(state, message, EXTRA_AD, NOW), "ratchet_failed");
    }
    assert.equal(await decryptLeavesStateAlone(state, A3, new Uint8Array(16), NOW), "ratchet_failed");
    assert.equal(await decryptLeavesStateAlone(state, A3, EXTRA_AD, NOW), "ok");
  });
  test("a new ratchet key of small order is ratchet_failed and changes nothing", async () => {
    const state = bobAfterStep4();
    for (const key of SMALL_ORDER_X25519) {
      const message = new RatchetMessage({ ...A3, dh: key, n: 0 });
      assert.equal(await decryptLeavesStateAlone(state, message, EXTRA_AD, NOW), "ratchet_failed");
    }
  });
  test("jumps beyond 25,000 are refused before any key is derived", async () => {
    const state = bobAfterStep4();
    const sameChain = new RatchetMessage({ ...A3, n: state.nr + MAX_SKIP + 1 });
    const newChainN = new RatchetMessage({ ...A3, dh: new Uint8Array(32).fill(9), n: MAX_SKIP + 1 });
    const newChainPn = new RatchetMessage({ ...A3, dh: new Uint8Array(32).fill(9), pn: state.nr + MAX_SKIP + 1, n: 0 });
    for (const message of [sameChain, newChainN, newChainPn]) {
      const started = performance.now();
      assert.equal(await decryptLeavesStateAlone(state, message, EXTRA_AD, NOW), "ratchet_too_far");
      assert.ok(performance.now() - started < 1000, "a refused jump derived keys");
    }
  });
  test("a past position is ratchet_duplicate; a message on a gone chain too", async () => {
    const state = bobAfterStep4();
    const a1 = RatchetMessage.fromWire(RATCHET.steps[0].wire);
    assert.equal(await decryptLeavesStateAlone(state, a1, EXTRA_AD, NOW), "ratchet_duplicate");
  });
  test("an initiator whose dhr is still the signed prekey has no receiving chain: ratchet_failed", async () => {
    const alice = SessionState.fromBytes(unhex(RATCHET.steps[2].state_after_hex));
    const forged = new RatchetMessage({ ...A3, dh: alice.dhr, n: 0, pn: 0 });
    assert.equal(await decryptLeavesStateAlone(alice, forged, EXTRA_AD, NOW), "ratchet_failed");
  });
  test("a responder that has opened nothing cannot send: session_unknown", async () => {
    const state = new SessionState({ ...bobAfterStep4(), dhr: new Uint8Array(0), cks: new Uint8Array(0) });
    assert.equal(await outcome(() => ratchetEncrypt(state, new Uint8Array(1), EXTRA_AD, randomX25519Private)), "session_unknown");
  });
  test("a peer ratchet key of small order in the state makes the next send ratchet_failed", async () => {
    const state = new SessionState({ ...bobAfterStep4(), dhr: SMALL_ORDER_X25519[0], cks: new Uint8Array(0) });
    assert.equal(await outcome(() => ratchetEncrypt(state, new Uint8Array(1), EXTRA_AD, randomX25519Private)), "ratchet_failed");
  });
  test("a plaintext over 65,536 bytes is malformed", async () => {
    const state = bobAfterStep4();
    assert.equal(await outcome(() => ratchetEncrypt(state, new Uint8Array(65537), EXTRA_AD, randomX25519Private)), "malformed");
  });
  test("ratchetDecrypt refuses a now that is not a safe integer (a caller's mistake)", async () => {
    await assert.rejects(ratchetDecrypt(bobAfterStep4(), A3, EXTRA_AD, /** @type {any} */ ("now")), TypeError);
  });
});

describe("ratchet round trips with fresh keys", () => {
  test("a conversation with turns, loss and reordering; every message opens once; failures change nothing", async () => {
    let { aliceState, bobState } = await freshSession();
    const random = prng(7);
    const text = (label) => new TextEncoder().encode(label);
    for (let round = 0; round < 4; round += 1) {
      // bob sends three, alice gets them in reverse order and a duplicate.
      const sent = [];
      for (let index = 0; index < 3; index += 1) {
        const out = await ratchetEncrypt(bobState, text(`b${round}.${index}`), EXTRA_AD, randomX25519Private);
        bobState = out.state;
        sent.push(out);
      }
      for (const { message } of [...sent].reverse()) {
        const opened = await ratchetDecrypt(aliceState, message, EXTRA_AD, NOW + round);
        aliceState = opened.state;
      }
      assert.equal(await decryptLeavesStateAlone(aliceState, sent[1].message, EXTRA_AD, NOW), "ratchet_duplicate");
      // alice sends two; the first is lost.
      const lost = await ratchetEncrypt(aliceState, text(`a${round}.0`), EXTRA_AD, randomX25519Private);
      const kept = await ratchetEncrypt(lost.state, text(`a${round}.1`), EXTRA_AD, randomX25519Private);
      aliceState = kept.state;
      const opened = await ratchetDecrypt(bobState, kept.message, EXTRA_AD, NOW);
      assert.equal(new TextDecoder().decode(opened.plaintext), `a${round}.1`);
      bobState = opened.state;
      if (random() < 2) {
        // The lost one arrives late and opens from its skipped key, once.
        const late = await ratchetDecrypt(bobState, lost.message, EXTRA_AD, NOW);
        assert.equal(new TextDecoder().decode(late.plaintext), `a${round}.0`);
        assert.equal(await decryptLeavesStateAlone(late.state, lost.message, EXTRA_AD, NOW), "ratchet_duplicate");
        bobState = late.state;
      }
    }
    assert.equal(aliceState.pendingSetup.length, 0, "alice has heard from bob: no setup any more");
  });
  test("skipped keys expire after 30 days, with expireSkippedKeys or on the next success", async () => {
    let { aliceState, bobState } = await freshSession();
    const first = await ratchetEncrypt(aliceState, new Uint8Array(1), EXTRA_AD, randomX25519Private);
    const second = await ratchetEncrypt(first.state, new Uint8Array(2), EXTRA_AD, randomX25519Private);
    bobState = (await ratchetDecrypt(bobState, second.message, EXTRA_AD, NOW)).state;
    assert.equal(bobState.skipped.length, 1);
    assert.equal(expireSkippedKeys(bobState, NOW + 30 * 86_400_000 - 1).skipped.length, 1);
    assert.equal(expireSkippedKeys(bobState, NOW + 30 * 86_400_000).skipped.length, 0);
    assert.equal(await decryptLeavesStateAlone(bobState, first.message, EXTRA_AD, NOW + 30 * 86_400_000), "ratchet_duplicate");
  });
  test("a setup naming a one-time prekey the responder no longer holds is prekey_unknown", async () => {
    const alice = await freshDevice("alice");
    const bob = await freshDevice("bob");
    const state = await initiateSession(alice.party, alice.dhPrivate, bob.party, bob.signedPrekey, bob.oneTimePrekey, await randomX25519Private());
    const { message } = await ratchetEncrypt(state, new Uint8Array(1), EXTRA_AD, randomX25519Private);
    const accept = (signed, oneTime) => acceptSession(bob.party, bob.dhPrivate, alice.party, message, signed, oneTime, EXTRA_AD, NOW);
    assert.equal(await outcome(() => accept(new Map([[7, bob.signedPrivate]]), new Map())), "prekey_unknown");
    assert.equal(await outcome(() => accept(new Map(), new Map([[1001, bob.oneTimePrivate]]))), "prekey_unknown");
    assert.equal(await outcome(() => accept(new Map([[7, bob.oneTimePrivate]]), new Map([[1001, bob.oneTimePrivate]]))), "ratchet_failed");
    const accepted = await accept(new Map([[7, bob.signedPrivate]]), new Map([[1001, bob.oneTimePrivate]]));
    assert.equal(accepted.usedOneTimePrekeyId, 1001);
  });
});

// ---------------------------------------------------------------------------
// The fan-out envelope.
// ---------------------------------------------------------------------------

const ENVELOPE_WIRE = VECTORS.envelopes.wire;

describe("envelope parsing", () => {
  test("the vector envelope parses and serialises back", () => {
    assert.deepEqual(EnvelopeV2.fromWire(ENVELOPE_WIRE).toWire(), ENVELOPE_WIRE);
  });
  const other = "f".repeat(32);
  const cases = {
    "an extra member": (w) => (w.extra = 1),
    "no signature": (w) => delete w.signature,
    "v as a string": (w) => (w.v = "2"),
    "sent_at unsafe": (w) => (w.sent_at = 2 ** 53),
    "sent_at 1.5": (w) => (w.sent_at = 1.5),
    "an upper-case message id": (w) => (w.message_id = w.message_id.toUpperCase()),
    "a group conversation id with a bad digit": (w) => (w.conversation_id = "grp-" + "g".repeat(32)),
    "a sender not normalised": (w) => (w.sender = "Alice"),
    "a sender device of 31 digits": (w) => (w.sender_device = w.sender_device.slice(1)),
    "no targets": (w) => (w.targets = []),
    "257 targets": (w) => (w.targets = Array.from({ length: 257 }, (_, index) => ({ username: `u${String(index).padStart(3, "0")}`, device_list_version: 1, devices: [] }))),
    "targets out of order": (w) => w.targets.reverse(),
    "a target with an extra member": (w) => (w.targets[0].extra = 1),
    "a target list version of 0": (w) => (w.targets[0].device_list_version = 0),
    "33 target devices": (w) => (w.targets[1].devices = Array.from({ length: 33 }, (_, index) => index.toString(16).padStart(32, "0"))),
    "target devices out of order": (w) => w.targets[1].devices.push("0".repeat(32)),
    "a target device twice": (w) => w.targets[1].devices.push(w.targets[1].devices[0]),
    "the sender device as a target": (w) => (w.targets[0].devices = [w.sender_device, ...w.targets[0].devices].sort()),
    "an IV of 16 bytes": (w) => (w.iv = b64encode(new Uint8Array(16))),
    "a body over 131,088 bytes": (w) => (w.body = b64encode(new Uint8Array(131089))),
    "a body that is not a string": (w) => (w.body = null),
    "no slots": (w) => (w.slots = []),
    "more slots than target devices": (w) => w.slots.push(w.slots[0], w.slots[0]),
    "slots out of order": (w) => w.slots.reverse(),
    "a slot for a device that is no target": (w) => (w.slots[1].device_id = other),
    "a slot with an extra member": (w) => (w.slots[0].extra = 1),
    "a slot whose message has an extra member": (w) => (w.slots[0].message.extra = 1),
    "a signature of 63 bytes": (w) => (w.signature = b64encode(new Uint8Array(63))),
  };
  for (const [name, change] of Object.entries(cases)) {
    test(`${name} is malformed`, async () => {
      assert.equal(await outcome(() => EnvelopeV2.fromWire(mutated(ENVELOPE_WIRE, change))), "malformed");
    });
  }
  test("v 3 is unsupported_version, checked before the rest", async () => {
    const wire = mutated(ENVELOPE_WIRE, (w) => {
      w.v = 3;
      w.slots = [];
    });
    assert.equal(await outcome(() => EnvelopeV2.fromWire(wire)), "unsupported_version");
  });
  test("a target account with no devices is allowed (its list may be empty of other devices)", () => {
    const wire = mutated(ENVELOPE_WIRE, (w) => w.targets.push({ username: "carol", device_list_version: 1, devices: [] }));
    assert.equal(EnvelopeV2.fromWire(wire).header.targets.length, 3);
  });
});

describe("envelope opening", () => {
  test("a signature made for another sender device does not verify", async () => {
    const envelope = EnvelopeV2.fromWire(ENVELOPE_WIRE);
    await assert.rejects(verifyEnvelope(envelope, device("alice_phone")), VerificationFailed);
    await verifyEnvelope(envelope, device("alice_laptop"));
  });
  test("a slot plaintext that is not this envelope's key slot is unverifiable", async () => {
    const envelope = EnvelopeV2.fromWire(ENVELOPE_WIRE);
    const binding = await envelope.binding();
    for (const plaintext of [
      new Uint8Array(0),
      new Uint8Array(70),
      canonical("securechat/v2/key-slot", [new Uint8Array(32), new Uint8Array(32)]),
      canonical("securechat/v2/key-slot", [new Uint8Array(16), binding]),
      canonical("securechat/v2/key-slot", [new Uint8Array(32), binding, new Uint8Array(0)]),
      canonical("securechat/v2/body-binding", [new Uint8Array(32), binding]),
    ]) {
      await assert.rejects(openKeySlot(envelope, plaintext), VerificationFailed);
    }
    const good = await openKeySlot(envelope, canonical("securechat/v2/key-slot", [new Uint8Array(32), binding]));
    assert.equal(good.length, 32);
    await assert.rejects(openBody(envelope, good), VerificationFailed);
  });
  test("sealing refuses a short content key, and a target device without a session", async () => {
    const envelope = EnvelopeV2.fromWire(ENVELOPE_WIRE);
    const seed = unhex(DEVICES.alice_laptop.signing_seed_hex);
    const sealing = (contentKey, sessions) => sealEnvelope(envelope.header, new Uint8Array(5), contentKey, new Uint8Array(12), sessions, seed, randomX25519Private);
    assert.equal(await outcome(() => sealing(new Uint8Array(16), new Map())), "malformed");
    assert.equal(await outcome(() => sealing(new Uint8Array(32), new Map())), "session_unknown");
  });
  test("sealed with fresh sessions, each target device opens its own slot and the body", async () => {
    const { alice, bob, aliceState, bobState } = await freshSession();
    const header = new HeaderV2({
      messageId: crypto.randomUUID(),
      conversationId: "dm-" + "a".repeat(32),
      sender: "alice",
      senderDevice: alice.device.deviceId,
      sentAt: NOW,
      targets: [new Target("alice", 1, []), new Target("bob", 1, [bob.device.deviceId])],
    });
    const payload = new TextEncoder().encode('{"type":"text","text":"hi"}');
    const sessions = new Map([[targetKey("bob", bob.device.deviceId), aliceState]]);
    const { envelope, states } = await sealEnvelope(header, payload, crypto.getRandomValues(new Uint8Array(32)), crypto.getRandomValues(new Uint8Array(12)), sessions, alice.signingSeed, randomX25519Private);
    assert.equal(toHex(sessions.get(targetKey("bob", bob.device.deviceId)).toBytes()), toHex(aliceState.toBytes()), "the given session was changed");
    assert.equal(states.size, 1);
    const received = EnvelopeV2.fromWire(JSON.parse(JSON.stringify(envelope.toWire())));
    await verifyEnvelope(received, alice.device);
    const slot = received.slotFor("bob", bob.device.deviceId);
    assert.ok(slot !== null);
    const opened = await ratchetDecrypt(bobState, slot.message, await received.binding(), NOW);
    const body = await openBody(received, await openKeySlot(received, opened.plaintext));
    assert.deepEqual(body, payload);
    // The same slot with another envelope's binding (a moved slot) does not open.
    const other = mutated(envelope.toWire(), (w) => (w.sent_at += 1));
    const moved = EnvelopeV2.fromWire(other);
    assert.equal(await decryptLeavesStateAlone(bobState, slot.message, await moved.binding(), NOW), "ratchet_failed");
  });
});
