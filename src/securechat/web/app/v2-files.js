/**
 * Files in protocol v2 (PROTOCOL.md 15.18): the chunks and the upload are section 12's,
 * unchanged (transfers.js); only the message that shares the file key is a v2 one, so
 * the key has v2's forward secrecy. The uploader opens the direct conversation first
 * (`POST /conversations/direct`, idempotent): v2 messages make none on the server, and
 * an upload needs its uploader to be a member (12.4). Also the form a descriptor is kept
 * in by the profile's sealed v2 history (v2-history.js). No DOM.
 *
 * @module
 */

import { fileDescriptorFromPayload, fileDescriptorToPayload } from "../protocol/index.js";
import { ApiError } from "./api.js";
import { previewable, uploadFile } from "./transfers.js";

/** @import { FileDescriptor } from "../protocol/index.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage, Conversation, FileTransfer } from "./conversations.js" */
/** @import { DeviceBook } from "./devices.js" */
/** @import { V2Sender } from "./v2-send.js" */

/**
 * What sending a file in v2 needs of v2.js's `V2`.
 *
 * @typedef {object} V2FileHost
 * @property {{api: Api}} host
 * @property {V2Sender | null} sender
 * @property {DeviceBook | null} book
 * @property {(message: ChatMessage) => Promise<void>} keep store an own message's status
 */

/**
 * Upload `file` for the direct conversation and share it in a v2 message. The message
 * shows at once with the upload's progress; a failed upload or send leaves it "Not
 * sent" (an upload failure is thrown too, as v1's `sendFile` does). On 409
 * `device_list_stale` the lists are fetched and the message sealed again once (the
 * same id and time: the refused envelope was not stored).
 *
 * @param {V2FileHost} v2
 * @param {Conversation} conversation a direct one whose peer has an accepted list
 * @param {File} file
 * @param {string} caption
 * @param {(message: ChatMessage) => void} shown
 * @param {(conversationId: string) => void} changed
 * @returns {Promise<ChatMessage>}
 */
export async function sendFileV2(v2, conversation, file, caption, shown, changed) {
  const { sender, book } = v2;
  if (!sender || !book) throw new Error("Protocol v2 is not running on this device.");
  const api = v2.host.api;
  const peer = conversation.peer;
  /** @type {ChatMessage & {transfer: FileTransfer}} */
  const message = {
    messageId: `upload:${crypto.randomUUID()}`,
    conversationId: conversation.id,
    sender: sender.me,
    text: caption,
    sentAt: Date.now(),
    serverTs: null,
    verified: true,
    refusal: null,
    reason: null,
    status: "uploading",
    envelopeText: null,
    file: null,
    transfer: { state: "uploading", done: 0, total: file.size, url: null, error: null },
    upload: { name: file.name || "file", size: file.size, mediaType: file.type || "application/octet-stream" },
  };
  shown(message);
  /** @type {FileDescriptor} */
  let descriptor;
  try {
    const opened = await api.openDirect(peer);
    if (opened?.id !== conversation.id) {
      throw new Error(`The server answered with another conversation than yours with ${peer}. Nothing was sent.`);
    }
    descriptor = await uploadFile(api, conversation.id, file, (done, total) => {
      message.transfer = { ...message.transfer, done, total };
      changed(conversation.id);
    });
  } catch (error) {
    message.status = "failed";
    message.transfer = { ...message.transfer, state: "failed", error: error instanceof Error ? error.message : "upload failed" };
    message.reason = message.transfer.error;
    changed(conversation.id);
    throw error;
  }
  const header = { messageId: crypto.randomUUID(), sentAt: Date.now() };
  const payload = fileDescriptorToPayload(descriptor, caption);
  try {
    let envelope = await sender.seal(peer, conversation.id, payload, header);
    Object.assign(message, {
      messageId: header.messageId,
      sentAt: header.sentAt,
      file: descriptor,
      envelopeText: JSON.stringify(envelope.toWire()),
      status: "sending",
    });
    message.transfer = { state: "ready", done: file.size, total: file.size, url: null, error: null };
    if (previewable(descriptor)) message.transfer.url = URL.createObjectURL(file);
    changed(conversation.id);
    let answer;
    try {
      answer = await sender.post(envelope);
    } catch (error) {
      if (!(error instanceof ApiError && error.code === "device_list_stale")) throw error;
      await Promise.all([book.refresh(sender.me), book.refresh(peer)]);
      envelope = await sender.seal(peer, conversation.id, payload, header);
      message.envelopeText = JSON.stringify(envelope.toWire());
      answer = await sender.post(envelope);
    }
    // A receipt may have moved it on meanwhile (15.17): a status only moves forward.
    if (message.status === "sending") message.status = "sent";
    message.serverTs = typeof answer?.server_ts === "number" ? answer.server_ts : null;
  } catch (error) {
    message.status = "failed";
    message.reason = error instanceof Error ? error.message : "sending failed";
  }
  if (message.envelopeText !== null) await v2.keep(message);
  changed(conversation.id);
  return message;
}

/**
 * A descriptor as the sealed v2 history keeps it: the payload's `file` member (12.3),
 * JSON like the rest of the item (its key is a secret, and sealed with it).
 *
 * @param {FileDescriptor | null | undefined} descriptor
 * @returns {Record<string, unknown> | null}
 */
export function keptFile(descriptor) {
  return descriptor ? { ...fileDescriptorToPayload(descriptor).file } : null;
}

/**
 * A kept descriptor read back (null for none, or one that no longer parses: it was
 * sealed by this profile, so that is damage, not news from a peer).
 *
 * @param {unknown} kept
 * @returns {FileDescriptor | null}
 */
export function restoredFile(kept) {
  if (kept === null || typeof kept !== "object") return null;
  try {
    return fileDescriptorFromPayload({ type: "file", file: kept });
  } catch {
    return null;
  }
}
