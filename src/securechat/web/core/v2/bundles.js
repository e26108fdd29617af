/**
 * May this device start a session from this prekey bundle (PROTOCOL.md 15.4), as
 * `securechat/client/core/v2/bundles.py`.
 *
 * @module
 */

import {
  MalformedInput,
  ProtocolError,
  Refusal,
  checkOneTimePrekey,
  checkSignedPrekey,
  members,
} from "../../protocol/v2/index.js";
import { refused } from "../reasons.js";

/** @import { Device, DeviceList, OneTimePrekey, SignedPrekey } from "../../protocol/v2/index.js" */
/** @import { Refused } from "../reasons.js" */

/**
 * What 15.5's initiator needs: the listed device and its checked prekeys.
 *
 * @typedef {object} BundleAccepted
 * @property {"accepted"} outcome
 * @property {Device} device
 * @property {SignedPrekey} signedPrekey
 * @property {OneTimePrekey | null} oneTimePrekey
 */

/** @typedef {BundleAccepted | Refused} BundleDecision */

const BUNDLE_FIELDS = Object.freeze(["device_id", "signed_prekey", "one_time_prekey"]);

/**
 * A fetched bundle `{device_id, signed_prekey, one_time_prekey | null}` for a device of
 * the account's accepted list: `device_not_listed`, `malformed`, `prekey_invalid` or
 * `prekey_stale`, else the checked prekeys.
 *
 * @param {unknown} bundle
 * @param {DeviceList} deviceList
 * @param {number} now
 * @returns {Promise<BundleDecision>}
 */
export async function acceptBundle(bundle, deviceList, now) {
  try {
    const obj = members(bundle, BUNDLE_FIELDS);
    if (typeof obj.device_id !== "string") {
      throw new MalformedInput("device id");
    }
    const device = deviceList.device(obj.device_id);
    const signedPrekey = await checkSignedPrekey(obj.signed_prekey, deviceList.username, device, now);
    const oneTimePrekey =
      obj.one_time_prekey === null ? null : await checkOneTimePrekey(obj.one_time_prekey, deviceList.username, device);
    return Object.freeze({ outcome: /** @type {const} */ ("accepted"), device, signedPrekey, oneTimePrekey });
  } catch (error) {
    if (error instanceof Refusal) return refused(error.reason);
    if (error instanceof ProtocolError) return refused("malformed");
    throw error;
  }
}
