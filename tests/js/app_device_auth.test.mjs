// The browser app's device credential (app/device-auth.js, PROTOCOL.md 15.16), against a
// scripted server: the nonce signed with the device key (checked with the Python-made
// vector key's public half), the credential reused while fresh, renewed before it
// expires and once on 401 device_auth_required; other refusals reach the caller.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEVICE_TOKEN_HEADER, DeviceCredentials, deviceAuthBytes } from "../../src/securechat/web/app/device-auth.js";
import { b64decode, b64encode } from "../../src/securechat/web/protocol/index.js";
import { ed25519VerifyRaw } from "../../src/securechat/web/protocol/v2/primitives.js";
import { unhex } from "./support.mjs";
import { VECTORS_V2 } from "./v2_support.mjs";

const [NAME] = Object.keys(VECTORS_V2.devices).sort();
const VECTOR = VECTORS_V2.devices[NAME];
const DEVICE = { username: VECTOR.username, deviceId: VECTOR.device_id, signingSeed: unhex(VECTOR.signing_seed_hex) };

class Refusal extends Error {
  /** @param {number} status @param {string} code */
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

/** A server that issues credentials for good signatures and serves the newest one only. */
function server() {
  const state = { issued: /** @type {string[]} */ ([]), calls: /** @type {(string | undefined)[]} */ ([]), refuse: /** @type {Refusal | null} */ (null) };
  /** @type {import("../../src/securechat/web/app/device-auth.js").Requester} */
  const request = async (method, path, options = {}) => {
    if (path.endsWith("/challenge")) return { nonce: b64encode(new Uint8Array(32).fill(state.issued.length)), expires_at: 0 };
    if (path.endsWith("/token")) {
      const body = /** @type {{nonce: string, signature: string}} */ (options.body);
      const signed = deviceAuthBytes(DEVICE.username, DEVICE.deviceId, b64decode(body.nonce));
      await ed25519VerifyRaw(unhex(VECTOR.signing_key_hex), b64decode(body.signature), signed);
      state.issued.push(`credential-${state.issued.length}`);
      return { device_token: state.issued.at(-1), expires_in: 600 };
    }
    const token = options.headers?.[DEVICE_TOKEN_HEADER];
    state.calls.push(token);
    if (state.refuse) throw state.refuse;
    if (token !== state.issued.at(-1)) throw new Refusal(401, "device_auth_required");
    return { entries: [], head: 0, more: false };
  };
  return { state, request };
}

describe("DeviceCredentials", () => {
  test("got once, reused while fresh, renewed before expiry", async () => {
    const { state, request } = server();
    let now = 1_000_000;
    const credentials = new DeviceCredentials(request, () => now);
    await credentials.call(DEVICE, "GET", "/devices/x/inbox");
    await credentials.call(DEVICE, "POST", "/devices/x/inbox/ack", { body: { seq: 0 } });
    now += 600_000 - 29_000;
    await credentials.call(DEVICE, "GET", "/devices/x/inbox");
    assert.deepEqual(state.calls, ["credential-0", "credential-0", "credential-1"]);
  });

  test("a refused credential is renewed once, a revoked device is not retried", async () => {
    const { state, request } = server();
    const credentials = new DeviceCredentials(request);
    await credentials.call(DEVICE, "GET", "/devices/x/inbox");
    state.issued.push("from elsewhere");
    await credentials.call(DEVICE, "GET", "/devices/x/inbox");
    assert.deepEqual(state.calls, ["credential-0", "credential-0", "credential-2"]);
    state.refuse = new Refusal(404, "device_not_listed");
    await assert.rejects(credentials.call(DEVICE, "GET", "/devices/x/inbox"), { code: "device_not_listed" });
    assert.equal(state.calls.length, 4);
  });

  test("the bytes signed are the vector file's", () => {
    for (const c of VECTORS_V2.device_auth) {
      assert.equal(Buffer.from(deviceAuthBytes(c.username, c.device_id, unhex(c.nonce_hex))).toString("hex"), c.signed_bytes_hex);
    }
  });
});
