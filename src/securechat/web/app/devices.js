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
import { bytesEqual } from "../protocol/encoding.js";
import { ApiError } from "./api.js";
import { rawAccountKey } from "./device-keys.js";
import { RotationPins, StaleAccountKey, checkHolds, followRotation, servedKey } from "./rotation.js";
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
 * @property {Uint8Array} [rotated] the new account key, when this list came with a
 *   signed rotation the core accepted (15.11): the pin moved to it
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
    /** Pins moved by followed rotations (15.11). */
    this.rotations = new RotationPins(this.me);
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
    const rotated = await this.rotations.get(username);
    if (username === this.me) {
      // This account's own rotation, followed here: the key its devices now bind.
      if (rotated) this.host.keys.accountKey = rotated.key;
      return this.host.keys.accountKey;
    }
    if (rotated) return rotated.key;
    return rawAccountKey(await this.host.trust.pinnedOrFetch(username));
  }

  /**
   * The pin to follow a rotation from: the moved one, else v1's (15.11).
   *
   * @param {string} username
   */
  async identityPin(username) {
    const rotated = await this.rotations.get(username);
    if (rotated) return rotated;
    return { username, key: await this.accountKey(username), since: null, verified: false };
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
    const document = await this.host.api.request("GET", `/users/${encodeURIComponent(username)}/devices`);
    // 204 (null): the account has published no list.
    if (document === null) return this.accepted(username);
    const before = await this.accepted(username);
    const pinned = await this.accountKey(username);
    const decision = await acceptDeviceList(document, username, pinned, before);
    const served = servedKey(document);
    if (decision.outcome === "refused" && decision.reason === "device_list_invalid" && served && !bytesEqual(served, pinned)) {
      return this.follow(username, document, served, before);
    }
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
   * A list under another account key: accepted only through a signed chain from the pin
   * (15.11). Accepted: the pin moves, the list is stored, the caller is told (`rotated`).
   *
   * @param {string} username
   * @param {unknown} document
   * @param {Uint8Array} served
   * @param {DeviceList | null} before
   * @returns {Promise<DeviceList | null>}
   */
  async follow(username, document, served, before) {
    const followed = await followRotation(this.host.api, username, document, served, await this.identityPin(username), before);
    if (followed.outcome === "refused") {
      this.host.refused(username, followed.reason);
      throw new ListRefused(username, followed.reason);
    }
    await this.rotations.put(followed.pin);
    await store.put("v2", this.path(username), followed.deviceList.toWire());
    this.lists.set(username, followed.deviceList);
    if (username === this.me) this.host.keys.accountKey = followed.pin.key;
    await this.host.changed({
      username,
      added: followed.added,
      removed: followed.removed,
      dropSessions: followed.dropSessions,
      first: before === null,
      rotated: followed.pin.key,
    });
    return followed.deviceList;
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
      const signer = await this.accountSigner();
      const list = await signDeviceListWith(signer, this.me, version, now, devices);
      await checkDeviceList(list.toWire(), this.me, keys.accountKey, null);
      try {
        await this.host.api.request("PUT", "/devices", { body: list.toWire() });
      } catch (error) {
        if (attempt === 0 && error instanceof ApiError && error.code === "device_list_stale") continue;
        // Signed with a key the account rotated away from: refused, as every client would.
        if (error instanceof ApiError && error.details?.reason === "device_list_invalid") throw new StaleAccountKey();
        throw error;
      }
      const accepted = await this.refresh(this.me);
      if (!accepted) throw new Error("The server did not keep the device list.");
      return accepted;
    }
  }

  /**
   * The account key's signer: v1's signing key until the account rotates, then the key
   * loaded from its sealed copy (`keys.accountPrivate`). Refused if the pin moved past it.
   */
  async accountSigner() {
    const keys = this.host.keys;
    const pinned = await this.accountKey(this.me);
    const own = keys.accountPrivate ?? null;
    const held = own ? own.publicKey : rawAccountKey(keys.identity.public);
    checkHolds(pinned, held);
    return cryptoKeySigner(held, own ? own.privateKey : keys.identity.signingPrivate);
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
