// The account key sealed under the password, as a hostile server or a lost race serves it
// (PROTOCOL.md 15.11): a seal of a retired key made under the same password opens, but the
// browser holds it only if its own pin is that key or a signed chain leads there from the
// pin; an old seal served again never replaces the key the page holds.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { SealNotCurrent, heldAccountKey, loadAccountKey } from "../../src/securechat/web/app/rotation.js";
import { ED25519_SPKI_PREFIX } from "../../src/securechat/web/protocol/primitives.js";
import { openAccountKey, sealAccountKey } from "../../src/securechat/web/protocol/v2/accountseal.js";
import { IdentityTransition, cryptoKeySigner, transitionBytes } from "../../src/securechat/web/protocol/v2/index.js";
import { privateIdentity } from "./support.mjs";

const WRAP = new Uint8Array(32).fill(7);
const iv = () => crypto.getRandomValues(new Uint8Array(12));

/** A new account key: its seal under WRAP and the key as opened from it. */
async function newKey() {
  const seal = await sealAccountKey(WRAP, "alice", crypto.getRandomValues(new Uint8Array(32)), iv());
  return { seal, key: await openAccountKey(WRAP, "alice", seal) };
}

/** @param {{publicKey: Uint8Array, privateKey: CryptoKey}} from @param {{publicKey: Uint8Array, privateKey: CryptoKey}} to */
async function transition(from, to, at) {
  const signed = transitionBytes("alice", from.publicKey, to.publicKey, at);
  return new IdentityTransition({
    username: "alice",
    oldKey: from.publicKey,
    newKey: to.publicKey,
    at,
    oldSignature: await cryptoKeySigner(from.publicKey, from.privateKey).sign(signed),
    newSignature: await cryptoKeySigner(to.publicKey, to.privateKey).sign(signed),
  }).toWire();
}

/** A server that serves `seal` and `chain` (the transitions from any key). */
function server(seal, chain) {
  return {
    request: async (/** @type {string} */ _method, /** @type {string} */ path) =>
      path === "/account/identity-key-seal" ? { account_key_seal: seal } : { transitions: chain },
  };
}

describe("the browser holds an opened account key only if it is the current one", () => {
  test("a fresh page follows the signed chain from v1's key; a replayed old seal is refused", async () => {
    const alice = await privateIdentity("alice");
    const v1 = { publicKey: alice.public.signingKey.slice(ED25519_SPKI_PREFIX.length), privateKey: alice.signingPrivate };
    const k2 = await newKey();
    const k3 = await newKey();
    const chain = [await transition(v1, k2.key, 10), await transition(k2.key, k3.key, 20)];
    const noPin = { get: async () => null };
    // The server's whole chain ends at K3: K2's seal (left by a race, or served again) is refused.
    await assert.rejects(loadAccountKey(server(k2.seal, chain), alice, WRAP, noPin), SealNotCurrent);
    assert.equal(heldAccountKey("alice"), null);
    await loadAccountKey(server(k3.seal, chain), alice, WRAP, noPin);
    assert.deepEqual(heldAccountKey("alice")?.publicKey, k3.key.publicKey);

    // This page follows its own rotation (pin K3); an old seal served again, even with the
    // old chain that ended at K2, does not replace the key it holds.
    const pinned = { get: async () => ({ username: "alice", key: k3.key.publicKey, since: 20, verified: false }) };
    await assert.rejects(loadAccountKey(server(k2.seal, chain.slice(0, 1)), alice, WRAP, pinned), SealNotCurrent);
    await assert.rejects(loadAccountKey(server(k2.seal, []), alice, WRAP, pinned), /not your account's current identity key/);
    assert.deepEqual(heldAccountKey("alice")?.publicKey, k3.key.publicKey);
  });
});
