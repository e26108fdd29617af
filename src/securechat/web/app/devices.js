/**
 * Device lists (PROTOCOL.md 15.3, 15.16): every account's list as this device accepted it
 * through the core (web/core/v2 `acceptDeviceList`, against the pinned account key), and
 * this account's own list, which this device extends with itself or shortens by a
 * revoked device, signed with the account key. The lists are public; they are kept in
 * IndexedDB so a rollback is refused across reloads too. No DOM.
 *
 * @module
 */

import { acceptDeviceList } from "../core/v2/index.js";
import { checkDeviceList, cryptoKeySigner, signDeviceListWith } from "../protocol/v2/index.js";
import { ApiError } from "./api.js";
import { rawAccountKey } from "./device-keys.js";
import * as store from "./store.js";

/** @import { Device, DeviceList } from "../protocol/v2/index.js" */
/** @import { Api } from "./api.js" */
/** @import { DeviceKeys } from "./device-keys.js" */
/** @import { Trust } from "./trust.js" */

/**
 * A list that changed since the one accepted before.
 *
 * @typedef {object} ListChange
 * @property {string} username
 * @property {readonly string[]} added
 * @property {readonly string[]} removed
 * @property {readonly string[]} dropSessions
 * @property {boolean} first the account's first list accepted here
 */

/** The server offered a list the core refused: nothing is sent in v2 to that account. */
export class ListRefused extends Error {
  /**
   * @param {string} username
   * @param {string} reason
   */
  constructor(username, reason) {
    super(`${username}'s device list was refused (${reason}).`);
    this.username = username;
    this.reason = reason;
  }
}

export class DeviceBook {
  /**
   * @param {{api: Api, keys: DeviceKeys, trust: Pick<Trust, "pinnedOrFetch">,
   *   changed: (change: ListChange) => void | Promise<void>,
   *   refused: (username: string, reason: string) => void}} host
   *   changed: a list was accepted with devices added or removed (the caller drops those
   *   sessions and shows the notices); refused: the core refused the list the server gave
   */
  constructor(host) {
    this.host = host;
    this.me = host.keys.username;
    /** @type {Map<string, DeviceList>} */
    this.lists = new Map();
    /** @type {Map<string, Promise<DeviceList | null>>} fetches in flight, shared */
    this.inFlight = new Map();
  }

  /** @param {string} username */
  path(username) {
    return [this.me, "list", username];
  }

  /**
   * The list accepted here for `username` (from memory or IndexedDB), or null.
   *
   * @param {string} username
   * @returns {Promise<DeviceList | null>}
   */
  async accepted(username) {
    const known = this.lists.get(username);
    if (known) return known;
    const wire = await store.get("v2", this.path(username));
    if (!wire) return null;
    try {
      // Checked again as it is read back: storage is not trusted more than the server.
      const list = await checkDeviceList(wire, username, await this.accountKey(username), null);
      this.lists.set(username, list);
      return list;
    } catch {
      return null;
    }
  }

  /** @param {string} username @returns {Promise<Uint8Array>} the pinned account key */
  async accountKey(username) {
    if (username === this.me) return this.host.keys.accountKey;
    return rawAccountKey(await this.host.trust.pinnedOrFetch(username));
  }

  /**
   * Fetch `username`'s current list and decide on it. Returns the accepted list (the
   * new one, or the one before when unchanged), or null if the account has none.
   *
   * @param {string} username
   * @returns {Promise<DeviceList | null>}
   * @throws {ListRefused}
   */
  refresh(username) {
    const running = this.inFlight.get(username);
    if (running) return running;
    const run = this.fetchAndAccept(username).finally(() => this.inFlight.delete(username));
    this.inFlight.set(username, run);
    return run;
  }

  /** @param {string} username */
  async fetchAndAccept(username) {
    let document;
    try {
      document = await this.host.api.request("GET", `/users/${encodeURIComponent(username)}/devices`);
    } catch (error) {
      if (error instanceof ApiError && error.code === "no_devices") return this.accepted(username);
      throw error;
    }
    const before = await this.accepted(username);
    const decision = await acceptDeviceList(document, username, await this.accountKey(username), before);
    if (decision.outcome === "refused") {
      this.host.refused(username, decision.reason);
      throw new ListRefused(username, decision.reason);
    }
    if (decision.outcome === "unchanged") return before;
    await store.put("v2", this.path(username), decision.deviceList.toWire());
    this.lists.set(username, decision.deviceList);
    await this.host.changed({
      username,
      added: decision.added,
      removed: decision.removed,
      dropSessions: decision.dropSessions,
      first: before === null,
    });
    return decision.deviceList;
  }

  /**
   * Sign and publish a new list of this account's devices (version + 1), checked first
   * the way every client will check it. On 409 `device_list_stale` the current list is
   * fetched and the change made on it once more.
   *
   * @param {(devices: readonly Device[]) => Device[]} change from the current devices to the new ones
   * @param {number} now
   * @returns {Promise<DeviceList>}
   */
  async publishOwn(change, now) {
    for (let attempt = 0; ; attempt += 1) {
      const current = await this.refresh(this.me);
      const devices = change(current?.devices ?? []).sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
      const version = (current?.version ?? 0) + 1;
      const keys = this.host.keys;
      const list = await signDeviceListWith(cryptoKeySigner(keys.accountKey, keys.identity.signingPrivate), this.me, version, now, devices);
      await checkDeviceList(list.toWire(), this.me, keys.accountKey, null);
      try {
        await this.host.api.request("PUT", "/devices", { body: list.toWire() });
      } catch (error) {
        if (attempt === 0 && error instanceof ApiError && error.code === "device_list_stale") continue;
        throw error;
      }
      const accepted = await this.refresh(this.me);
      if (!accepted) throw new Error("The server did not keep the device list.");
      return accepted;
    }
  }

  /**
   * This device in the account's list: published if missing (a first device makes a list
   * of one; a new one keeps the others).
   *
   * @param {number} now
   * @param {string | null} [replacing] a device this profile wiped at logout while it was
   *   the account's only one (a list has at least one device): taken out in the same list
   * @returns {Promise<DeviceList>}
   */
  async ensureListed(now, replacing = null) {
    const keys = this.host.keys;
    const current = await this.refresh(this.me);
    const stale = replacing !== null && current?.devices.some((device) => device.deviceId === replacing);
    if (!stale && current?.devices.some((device) => device.deviceId === keys.deviceId)) return current;
    return this.publishOwn(
      (devices) => [...devices.filter((device) => device.deviceId !== keys.deviceId && device.deviceId !== replacing), keys.device],
      now,
    );
  }

  /**
   * Take this device out of the account's list (logging out of it for good): a new list
   * without it, when it is not the only one (a list has 1 to 32 devices, 15.3).
   *
   * @param {number} now
   * @returns {Promise<boolean>} whether it was taken out
   */
  async removeThis(now) {
    const here = this.host.keys.deviceId;
    const current = await this.refresh(this.me);
    const others = current?.devices.filter((device) => device.deviceId !== here) ?? [];
    if (!current || others.length === current.devices.length || others.length === 0) return false;
    await this.publishOwn((devices) => devices.filter((device) => device.deviceId !== here), now);
    return true;
  }

  /**
   * Revoke another device of this account: a new list without it.
   *
   * @param {string} deviceId
   * @param {number} now
   */
  revoke(deviceId, now) {
    if (deviceId === this.host.keys.deviceId) throw new Error("This device cannot revoke itself here.");
    return this.publishOwn((devices) => devices.filter((device) => device.deviceId !== deviceId), now);
  }
}
