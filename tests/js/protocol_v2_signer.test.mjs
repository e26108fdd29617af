// The `Signer` variant of device certificates and device lists (PROTOCOL.md 15.3) in
// web/protocol/v2/devices.js: a browser whose account key is a non-extractable Web Crypto
// key signs through `cryptoKeySigner` and gets byte for byte what `certifyDevice` /
// `signDeviceList` give from the raw seed (Ed25519 is deterministic), so the signed bytes
// are assembled in the protocol layer only.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  certifyDevice,
  certifyDeviceWith,
  checkDeviceList,
  cryptoKeySigner,
  ed25519RawPublic,
  signDeviceList,
  signDeviceListWith,
  x25519Public,
  VerificationFailed,
  Refusal,
} from "../../src/securechat/web/protocol/v2/index.js";

const PKCS8_ED25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/** @param {number} n */
const seed = (n) => new Uint8Array(32).fill(n);

/** A non-extractable Ed25519 key for `accountSeed`, as the browser keeps the account key. */
async function cryptoKey(accountSeed) {
  const pkcs8 = new Uint8Array([...PKCS8_ED25519_PREFIX, ...accountSeed]);
  return crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
}

test("a CryptoKey signer certifies devices and signs lists exactly as the seed does", async () => {
  const account = seed(7);
  const signer = cryptoKeySigner(await ed25519RawPublic(account), await cryptoKey(account));
  const devices = [];
  for (const n of [3, 2]) {
    const signingKey = await ed25519RawPublic(seed(n));
    const dhKey = await x25519Public(seed(n + 10));
    const fromSeed = await certifyDevice(account, "alice", signingKey, dhKey, 1000 + n);
    const fromKey = await certifyDeviceWith(signer, "alice", signingKey, dhKey, 1000 + n);
    assert.deepEqual(fromKey.toWire(), fromSeed.toWire());
    devices.push(fromKey);
  }
  const fromSeed = await signDeviceList(account, "alice", 4, 5000, devices);
  const fromKey = await signDeviceListWith(signer, "alice", 4, 5000, devices);
  assert.deepEqual(fromKey.toWire(), fromSeed.toWire());
  const checked = await checkDeviceList(fromKey.toWire(), "alice", signer.accountKey, null);
  assert.deepEqual(checked.devices.map((d) => d.deviceId), fromSeed.devices.map((d) => d.deviceId));
});

test("a signer whose public key is not its private key's makes lists that are refused", async () => {
  const signer = cryptoKeySigner(await ed25519RawPublic(seed(7)), await cryptoKey(seed(8)));
  const device = await certifyDeviceWith(signer, "alice", await ed25519RawPublic(seed(2)), await x25519Public(seed(12)), 1);
  const list = await signDeviceListWith(signer, "alice", 1, 2, [device]);
  await assert.rejects(checkDeviceList(list.toWire(), "alice", signer.accountKey, null), (error) => error instanceof VerificationFailed || error instanceof Refusal);
});
