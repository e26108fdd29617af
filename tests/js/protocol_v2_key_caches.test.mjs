// The browser protocol v2 modules keep imported keys and computed hashes between calls
// (ratchet private keys by their bytes, Ed25519 verify keys, an envelope's binding). These
// tests hold that a cached value is only ever the value of the same input: no key answers
// for another (also past the caches' sizes), a refused key is refused again, an array the
// caller changes afterwards is looked up by its new bytes, and a returned array the caller
// writes to does not change what the next call returns.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { b64encode } from "../../src/securechat/web/protocol/index.js";
import {
  EnvelopeV2,
  HeaderV2,
  MalformedInput,
  RATCHET_KEY_CACHE_SIZE,
  Target,
  VerificationFailed,
  bodyBinding,
  ed25519RawPublic,
  ed25519SignRaw,
  ed25519VerifyKey,
  ed25519VerifyRaw,
  forgetX25519Ratchet,
  randomX25519Private,
  x25519,
  x25519Public,
  x25519Ratchet,
  x25519RatchetPublic,
} from "../../src/securechat/web/protocol/v2/index.js";
import { fromHex, toHex } from "../../src/securechat/web/protocol/encoding.js";

const random32 = () => crypto.getRandomValues(new Uint8Array(32));
const hex = (bytes) => toHex(bytes);
const SMALL_ORDER_X25519 = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
].map((text) => fromHex(text));

describe("ratchet private keys", () => {
  test("each scalar derives its own output, also after the cache has dropped it", async () => {
    const peers = [await x25519Public(await randomX25519Private()), await x25519Public(await randomX25519Private())];
    const scalars = [];
    for (let index = 0; index < RATCHET_KEY_CACHE_SIZE + 5; index += 1) scalars.push(await randomX25519Private());
    // Twice through, the second time in reverse, so that both hits and evicted keys are asked.
    for (const order of [scalars, [...scalars].reverse()]) {
      for (const scalar of order) {
        for (const peer of peers) {
          assert.equal(hex(await x25519Ratchet(scalar, peer)), hex(await x25519(scalar, peer)));
        }
        assert.equal(hex(await x25519RatchetPublic(scalar)), hex(await x25519Public(scalar)));
      }
    }
  });

  test("an array whose bytes change is looked up by its new bytes", async () => {
    const peer = await x25519Public(await randomX25519Private());
    const scalar = await randomX25519Private();
    const first = await x25519Ratchet(scalar, peer);
    const firstPublic = await x25519RatchetPublic(scalar);
    scalar.set(await randomX25519Private());
    assert.equal(hex(await x25519Ratchet(scalar, peer)), hex(await x25519(scalar, peer)));
    assert.notEqual(hex(await x25519Ratchet(scalar, peer)), hex(first));
    assert.equal(hex(await x25519RatchetPublic(scalar)), hex(await x25519Public(scalar)));
    assert.notEqual(hex(await x25519RatchetPublic(scalar)), hex(firstPublic));
  });

  test("a returned public key written to does not change the next answer", async () => {
    const scalar = await randomX25519Private();
    const publicKey = await x25519RatchetPublic(scalar);
    const expected = hex(publicKey);
    publicKey.fill(0);
    assert.equal(hex(await x25519RatchetPublic(scalar)), expected);
  });

  test("small-order peer keys give no output and wrong sizes are malformed, as x25519", async () => {
    const scalar = await randomX25519Private();
    await x25519Ratchet(scalar, await x25519Public(await randomX25519Private()));
    for (const peer of SMALL_ORDER_X25519) {
      assert.equal(await x25519(scalar, peer), null);
      assert.equal(await x25519Ratchet(scalar, peer), null);
    }
    await assert.rejects(x25519Ratchet(scalar.subarray(1), SMALL_ORDER_X25519[0]), MalformedInput);
    await assert.rejects(x25519Ratchet(scalar, new Uint8Array(31)), MalformedInput);
    await assert.rejects(x25519RatchetPublic(new Uint8Array(33)), MalformedInput);
  });
});

describe("Ed25519 verify keys", () => {
  test("each key verifies its own signatures only, also past the cache's size", async () => {
    const message = random32();
    const signers = [];
    for (let index = 0; index < 70; index += 1) {
      const seed = random32();
      signers.push({ publicKey: await ed25519RawPublic(seed), signature: await ed25519SignRaw(seed, message) });
    }
    for (const order of [signers, [...signers].reverse()]) {
      for (const [index, signer] of order.entries()) {
        await ed25519VerifyRaw(signer.publicKey, signer.signature, message);
        const other = order[(index + 1) % order.length];
        await assert.rejects(ed25519VerifyRaw(other.publicKey, signer.signature, message), VerificationFailed);
      }
    }
  });

  test("a key of small order is malformed and a key that verifies nothing fails every time", async () => {
    const seed = random32();
    const message = random32();
    const signature = await ed25519SignRaw(seed, message);
    const smallOrder = fromHex("0100000000000000000000000000000000000000000000000000000000000000");
    for (let round = 0; round < 2; round += 1) {
      await assert.rejects(ed25519VerifyKey(smallOrder), MalformedInput);
      await assert.rejects(ed25519VerifyRaw(new Uint8Array(31), signature, message), MalformedInput);
      const altered = await ed25519RawPublic(seed);
      altered[0] ^= 1;
      await assert.rejects(ed25519VerifyRaw(altered, signature, message), VerificationFailed);
    }
  });

  test("an array whose bytes change is looked up by its new bytes", async () => {
    const [seedA, seedB] = [random32(), random32()];
    const message = random32();
    const key = await ed25519RawPublic(seedA);
    await ed25519VerifyRaw(key, await ed25519SignRaw(seedA, message), message);
    key.set(await ed25519RawPublic(seedB));
    await ed25519VerifyRaw(key, await ed25519SignRaw(seedB, message), message);
    await assert.rejects(ed25519VerifyRaw(key, await ed25519SignRaw(seedA, message), message), VerificationFailed);
  });
});

describe("an envelope's binding", () => {
  test("is the binding of its header, IV and body, and a written copy changes nothing", async () => {
    const header = new HeaderV2({
      messageId: "0".repeat(32),
      conversationId: "1".repeat(64),
      sender: "alice",
      senderDevice: "a".repeat(32),
      sentAt: 1_700_000_000_000,
      targets: [new Target("bob", 1, ["b".repeat(32)])],
    });
    const envelope = new EnvelopeV2({ header, iv: random32().subarray(0, 12), body: random32(), slots: [], signature: new Uint8Array(64) });
    const expected = b64encode(await bodyBinding(header.toBytes(), envelope.iv, envelope.body));
    const first = await envelope.binding();
    assert.equal(b64encode(first), expected);
    first.fill(0);
    assert.equal(b64encode(await envelope.binding()), expected);
    const other = new EnvelopeV2({ header, iv: envelope.iv, body: random32(), slots: [], signature: new Uint8Array(64) });
    assert.notEqual(b64encode(await other.binding()), expected);
    assert.equal(b64encode(await other.binding()), b64encode(await bodyBinding(header.toBytes(), other.iv, other.body)));
  });
});

describe("a forgotten ratchet key", () => {
  test("is imported again and still derives its output; the caller's array is left alone", async () => {
    const peer = await x25519Public(await randomX25519Private());
    const scalar = await randomX25519Private();
    const expected = hex(await x25519(scalar, peer));
    assert.equal(hex(await x25519Ratchet(scalar, peer)), expected);
    const before = hex(scalar);
    forgetX25519Ratchet(scalar);
    assert.equal(hex(scalar), before);
    assert.equal(hex(await x25519Ratchet(scalar, peer)), expected);
    assert.equal(hex(await x25519RatchetPublic(scalar)), hex(await x25519Public(scalar)));
  });
});
