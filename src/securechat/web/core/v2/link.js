/**
 * The decisions of linking a device (PROTOCOL.md 15.10.2), pure, as
 * `securechat.client.core.v2.link`: `chooseLinkTarget` on the old device (which listed
 * device a typed code names) and `acceptHistoryLink` on the new one (whether an accepted
 * `history_link` message is a hand-over from its own account meant for it alone), then
 * `checkArchiveRows` on the archive it downloaded (every row a direct message of this
 * account with a 3.2 id, in the conversation of this account and the row's peer, from one
 * of the two, with a well-formed text no longer than a message carries; one row that is
 * not refuses the whole archive). `rowFits` is that check for one row (the old device
 * leaves out rows that fail it; a restored backup, core/v2/backup.js, skips them).
 * Vectors: `tests/data/link_v2_vectors.json`.
 *
 * @module
 */

import { isWellFormed } from "../../protocol/encoding.js";
import { fileDescriptorFromPayload } from "../../protocol/files.js";
import { directConversationId } from "../../protocol/identifiers.js";
import { LinkRefused, MAX_LINK_ARCHIVE_BYTES, linkValue, parseLinkCode } from "../../protocol/v2/link.js";

export const HISTORY_LINK_TYPE = "history_link";
// 3.1 and 3.2, already normal: a row's peer and id are compared as they are, never normalised.
const USERNAME_RE = /^[a-z0-9._-]{3,32}$/;
const MESSAGE_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/**
 * A row's text in UTF-8 bytes at most: what a 15.8 body (131 072 bytes before its tag) can
 * carry, and more than a v1 payload (64 KiB); no text a client accepted is longer.
 */
export const MAX_ROW_TEXT_BYTES = 131_072;

/**
 * @typedef {"link_code_malformed" | "link_code_checksum" | "link_device_unknown" | "link_self"
 *   | "link_foreign" | "link_not_for_me" | "link_unexpected" | "link_malformed" | "link_too_large"
 *   | "link_archive_corrupt" | "link_archive_malformed"} LinkReason
 * @typedef {{outcome: "refused", reason: LinkReason}} LinkRefusal
 * @typedef {import("../../protocol/v2/link.js").LinkableDevice} LinkableDevice
 * @typedef {import("../../protocol/v2/backup.js").BackupMessage} BackupMessage
 */

/**
 * @param {LinkReason} reason
 * @returns {LinkRefusal}
 */
function refusal(reason) {
  return { outcome: "refused", reason };
}

/**
 * The device of the account's accepted list whose link code is `typed`.
 *
 * @template {LinkableDevice} D
 * @param {string} typed
 * @param {string} username
 * @param {readonly D[]} devices the accepted list's devices
 * @param {string} thisDeviceId
 * @returns {Promise<{outcome: "target", device: D} | LinkRefusal>}
 */
export async function chooseLinkTarget(typed, username, devices, thisDeviceId) {
  /** @type {Uint8Array} */
  let value;
  try {
    value = await parseLinkCode(typed);
  } catch (error) {
    if (error instanceof LinkRefused) {
      return refusal(error.reason === "link_code_checksum" ? "link_code_checksum" : "link_code_malformed");
    }
    throw error;
  }
  for (const device of devices) {
    const candidate = await linkValue(username, device);
    if (candidate.every((byte, i) => byte === value[i])) {
      return device.deviceId === thisDeviceId ? refusal("link_self") : { outcome: "target", device };
    }
  }
  return refusal("link_device_unknown");
}

/**
 * 15.10.2's accepting steps for a `history_link` payload of a message 15.8 has accepted.
 *
 * @param {{username: string, deviceId: string, sender: string, senderDevice: string,
 *   conversationId: string, targetDevices: readonly (readonly [string, string])[],
 *   payload: Record<string, unknown>, expectedUntil: number | null, now: number}} input
 *   expectedUntil: when the wait this device's shown link code opened ends (null: none)
 * @returns {Promise<{outcome: "accepted", archive: import("../../protocol/files.js").FileDescriptor,
 *   senderDevice: string} | LinkRefusal>}
 */
export async function acceptHistoryLink({
  username,
  deviceId,
  sender,
  senderDevice,
  conversationId,
  targetDevices,
  payload,
  expectedUntil,
  now,
}) {
  if (sender !== username || conversationId !== (await directConversationId(username, username))) {
    return refusal("link_foreign");
  }
  const onlyMe = targetDevices.length === 1 && targetDevices[0][0] === username && targetDevices[0][1] === deviceId;
  if (!onlyMe || payload.device_id !== deviceId) {
    return refusal("link_not_for_me");
  }
  // Only while the user is linking this device: another listed device of the account
  // (one certified by someone who has the password) cannot push history to it unasked.
  if (expectedUntil === null || now > expectedUntil) {
    return refusal("link_unexpected");
  }
  const keys = Object.keys(payload).sort();
  if (keys.join(",") !== "archive,device_id,type" || payload.type !== HISTORY_LINK_TYPE) {
    return refusal("link_malformed");
  }
  /** @type {import("../../protocol/files.js").FileDescriptor} */
  let archive;
  try {
    archive = fileDescriptorFromPayload({ file: payload.archive });
  } catch {
    return refusal("link_malformed");
  }
  if (archive.size > MAX_LINK_ARCHIVE_BYTES) {
    return refusal("link_too_large");
  }
  return { outcome: "accepted", archive, senderDevice };
}

/**
 * A row this account may hold as verified (15.10.2): a 3.2 message id, a peer that is a
 * normal username, the direct conversation of this account and that peer (3.3), a
 * sender that is one of the two, and a well-formed text no longer than a message can
 * carry (in UTF-8 bytes, as the Python core counts).
 *
 * @param {string} username
 * @param {BackupMessage} message
 * @returns {Promise<boolean>}
 */
export async function rowFits(username, message) {
  return (
    MESSAGE_ID_RE.test(message.message_id) &&
    USERNAME_RE.test(message.peer) &&
    message.conversation_id === (await directConversationId(username, message.peer)) &&
    (message.sender === username || message.sender === message.peer) &&
    isWellFormed(message.text) &&
    new TextEncoder().encode(message.text).length <= MAX_ROW_TEXT_BYTES
  );
}

/**
 * Null if every row fits; else the whole archive is refused (nothing imported).
 *
 * @param {string} username
 * @param {readonly BackupMessage[]} messages
 * @returns {Promise<LinkRefusal | null>}
 */
export async function checkArchiveRows(username, messages) {
  for (const message of messages) {
    if (!(await rowFits(username, message))) return refusal("link_archive_malformed");
  }
  return null;
}
