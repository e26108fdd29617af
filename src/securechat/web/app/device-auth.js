/**
 * This device's credential for its per-device calls (PROTOCOL.md 15.16): the server's
 * nonce, signed with the device's own Ed25519 key, buys a short-lived credential sent
 * beside the session's access token (`X-Device-Token`). Got when first needed, renewed
 * before it expires and whenever the server refuses it (401 `device_auth_required`:
 * another session, a new listing), so callers never see it. Kept in memory only. No DOM.
 *
 * @module
 */

import { b64decode, b64encode, canonical } from "../protocol/encoding.js";
import { DEVICE_AUTH } from "../protocol/v2/labels.js";
import { ed25519SignRaw } from "../protocol/v2/primitives.js";

export const DEVICE_TOKEN_HEADER = "X-Device-Token";
/** Renewed this long before the server would refuse it, so a call never races expiry. */
const RENEW_MARGIN_MS = 30_000;

/**
 * @typedef {object} DeviceSigner what a device credential needs of the device
 * @property {string} username the account
 * @property {string} deviceId
 * @property {Uint8Array} signingSeed its Ed25519 seed
 */

/**
 * @typedef {(method: string, path: string, options?: {body?: unknown, headers?: Record<string, string>}) => Promise<any>} Requester
 *   the account's authenticated request (Api.request)
 */

/**
 * The bytes a device signs (15.16): canonical(DEVICE_AUTH, username, device_id, nonce).
 *
 * @param {string} username
 * @param {string} deviceId
 * @param {Uint8Array} nonce 32 bytes
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function deviceAuthBytes(username, deviceId, nonce) {
  return canonical(DEVICE_AUTH, [username, deviceId, nonce]);
}

export class DeviceCredentials {
  /**
   * @param {Requester} request
   * @param {() => number} [clock] epoch ms
   */
  constructor(request, clock = () => Date.now()) {
    this.request = request;
    this.clock = clock;
    /** @type {Map<string, {token: string, renewAt: number}>} */
    this.tokens = new Map();
    /** @type {Map<string, Promise<string>>} one fetch per device at a time */
    this.fetching = new Map();
  }

  /** @param {string} deviceId */
  forget(deviceId) {
    this.tokens.delete(deviceId);
  }

  /**
   * @param {DeviceSigner} device
   * @returns {Promise<string>}
   */
  fetch(device) {
    let running = this.fetching.get(device.deviceId);
    if (!running) {
      running = this.fetchNow(device).finally(() => this.fetching.delete(device.deviceId));
      this.fetching.set(device.deviceId, running);
    }
    return running;
  }

  /**
   * @param {DeviceSigner} device
   * @returns {Promise<string>}
   */
  async fetchNow(device) {
    const base = `/devices/${device.deviceId}`;
    const asked = await this.request("POST", `${base}/challenge`);
    const nonce = b64decode(String(asked?.nonce ?? ""));
    const signature = await ed25519SignRaw(device.signingSeed, deviceAuthBytes(device.username, device.deviceId, nonce));
    const answer = await this.request("POST", `${base}/token`, { body: { nonce: b64encode(nonce), signature: b64encode(signature) } });
    const token = answer?.device_token;
    const ttl = answer?.expires_in;
    if (typeof token !== "string" || !Number.isSafeInteger(ttl)) throw new Error("the server's device credential is not one");
    this.tokens.set(device.deviceId, { token, renewAt: this.clock() + ttl * 1000 - RENEW_MARGIN_MS });
    return token;
  }

  /**
   * @param {DeviceSigner} device
   * @returns {Promise<string>}
   */
  async token(device) {
    const held = this.tokens.get(device.deviceId);
    if (held && held.renewAt > this.clock()) return held.token;
    return this.fetch(device);
  }

  /**
   * `request` with the device's credential; once more with a new one if the server
   * refuses the one it had.
   *
   * @param {DeviceSigner} device
   * @param {string} method
   * @param {string} path under /api/v1
   * @param {{body?: unknown}} [options]
   * @returns {Promise<any>}
   */
  async call(device, method, path, options = {}) {
    const send = (/** @type {string} */ token) => this.request(method, path, { ...options, headers: { [DEVICE_TOKEN_HEADER]: token } });
    try {
      return await send(await this.token(device));
    } catch (error) {
      const refused = /** @type {{status?: number, code?: string}} */ (error);
      if (refused?.status !== 401 || refused.code !== "device_auth_required") throw error;
      this.forget(device.deviceId);
      return send(await this.fetch(device));
    }
  }
}
