/**
 * Which device a session is, and whether this client offers to revoke it (PROTOCOL.md
 * 15.16, "the session's device"). Pure, as `securechat/client/core/v2/session_devices.py`,
 * step for step.
 *
 * `GET /sessions` names the device that last proved itself in each session: the server's
 * word, a hint for the interface only, trusted only as far as the account's device list
 * this client verified (15.3) and its own device record go. Kinds: `none` (no device, or
 * one the verified list does not have), `this_device` (this client's own), `hidden`
 * (another device named on the session this client uses: not offered, so that a lie
 * cannot make this client revoke from its own row), `revocable` (a listed device other
 * than this one, on another session).
 *
 * @module
 */

/** @typedef {"none" | "this_device" | "hidden" | "revocable"} SessionDeviceKind */

/**
 * @typedef {object} SessionDevice
 * @property {SessionDeviceKind} kind
 * @property {string | null} deviceId the listed device the session names (null for `none`)
 */

/**
 * @param {unknown} namedDevice the session's `device_id` as the server sent it
 * @param {boolean} currentSession
 * @param {Iterable<string>} listedDevices the ids of the account's verified list
 * @param {string | null} ownDevice
 * @returns {SessionDevice}
 */
export function sessionDevice(namedDevice, currentSession, listedDevices, ownDevice) {
  if (typeof namedDevice !== "string" || !new Set(listedDevices).has(namedDevice)) return { kind: "none", deviceId: null };
  if (ownDevice !== null && namedDevice === ownDevice) return { kind: "this_device", deviceId: namedDevice };
  if (currentSession) return { kind: "hidden", deviceId: namedDevice };
  return { kind: "revocable", deviceId: namedDevice };
}
