/**
 * Is this an account's current device list, and what changed (PROTOCOL.md 15.3), as
 * `securechat/client/core/v2/device_lists.py`.
 *
 * @module
 */

import { bytesEqual } from "../../protocol/encoding.js";
import { KnownList, ProtocolError, Refusal, UnsupportedVersion, checkDeviceList } from "../../protocol/v2/index.js";
import { refused } from "../reasons.js";

/** @import { Device, DeviceList } from "../../protocol/v2/index.js" */
/** @import { Refused } from "../reasons.js" */

/**
 * A newer list: store it. `added` and `removed` are device ids since the list accepted
 * before (both empty for an account's first list), for the notices ("alice added a new
 * device"). `dropSessions`: the devices whose session sets the caller deletes — the
 * removed ones, and any whose keys the new list certifies differently.
 *
 * @typedef {object} ListAccepted
 * @property {"accepted"} outcome
 * @property {DeviceList} deviceList
 * @property {readonly string[]} added
 * @property {readonly string[]} removed
 * @property {readonly string[]} dropSessions
 */

/**
 * The list accepted before, again (same version and hash): nothing to do.
 *
 * @typedef {object} ListUnchanged
 * @property {"unchanged"} outcome
 */

/** @typedef {ListAccepted | ListUnchanged | Refused} ListDecision */

/**
 * @param {Device} first
 * @param {Device} second
 * @returns {boolean}
 */
function sameDevice(first, second) {
  return (
    first.deviceId === second.deviceId &&
    bytesEqual(first.signingKey, second.signingKey) &&
    bytesEqual(first.dhKey, second.dhKey) &&
    first.createdAt === second.createdAt &&
    bytesEqual(first.certificate, second.certificate)
  );
}

/**
 * @param {readonly string[]} values
 * @returns {readonly string[]}
 */
function sorted(values) {
  return Object.freeze([...values].sort());
}

/**
 * 15.3's checks of a fetched list for `username` against the pinned account key and the
 * list accepted before (null: none yet).
 *
 * @param {unknown} document the list as fetched (parsed JSON)
 * @param {string} username
 * @param {Uint8Array} pinnedAccountKey
 * @param {DeviceList | null} accepted
 * @returns {Promise<ListDecision>}
 */
export async function acceptDeviceList(document, username, pinnedAccountKey, accepted) {
  const known = accepted === null ? null : new KnownList(accepted.version, await accepted.listHash());
  let deviceList;
  try {
    deviceList = await checkDeviceList(document, username, pinnedAccountKey, known);
  } catch (error) {
    if (error instanceof Refusal) return refused(error.reason);
    if (error instanceof UnsupportedVersion) return refused("unsupported_version");
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
  if (accepted === null || known === null) {
    return Object.freeze({ outcome: /** @type {const} */ ("accepted"), deviceList, added: [], removed: [], dropSessions: [] });
  }
  if (bytesEqual(await deviceList.listHash(), known.listHash)) {
    return Object.freeze({ outcome: /** @type {const} */ ("unchanged") });
  }
  const before = new Map(accepted.devices.map((device) => [device.deviceId, device]));
  const after = new Map(deviceList.devices.map((device) => [device.deviceId, device]));
  const added = [...after.keys()].filter((id) => !before.has(id));
  const removed = [...before.keys()].filter((id) => !after.has(id));
  const changed = [...before.keys()].filter((id) => {
    const now = after.get(id);
    return now !== undefined && !sameDevice(/** @type {Device} */ (before.get(id)), now);
  });
  return Object.freeze({
    outcome: /** @type {const} */ ("accepted"),
    deviceList,
    added: sorted(added),
    removed: sorted(removed),
    dropSessions: sorted([...new Set([...removed, ...changed])]),
  });
}
