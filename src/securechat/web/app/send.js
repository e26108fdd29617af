/**
 * Sending (PROTOCOL.md 7.8, 12, 13.5): seal for the conversation's members (a direct
 * chat's derived contact, a group's verified members once the server's list agrees),
 * with every member's pinned keys, a key change stopping the message; show it at once,
 * send it over the socket or HTTP, and remember it as seen (14.2, no inbox position) and
 * who it was sealed for (the receipts it may get, 14.7). No DOM.
 *
 * @module
 */

import { checkGroupName, fileDescriptorToPayload, sealMessage } from "../protocol/index.js";
import { ApiError } from "./api.js";
import { KeyChanged } from "./trust.js";
import { downloadFile, previewable, uploadFile } from "./transfers.js";

/** @import { Envelope, EnvelopeWire, FileDescriptor, GroupState, Payload, PrivateIdentity, PublicIdentity } from "../protocol/index.js" */
/** @import { NameDecision } from "../core/groups.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage, Conversation, FileTransfer } from "./conversations.js" */
/** @import { InboxSocket } from "./inbox.js" */
/** @import { SeenBook } from "./seen.js" */
/** @import { Trust } from "./trust.js" */

/**
 * What sending needs of the rest of the app.
 *
 * @typedef {object} SendHost
 * @property {PrivateIdentity} me
 * @property {Api} api
 * @property {Pick<InboxSocket, "send">} socket
 * @property {Trust} trust
 * @property {SeenBook} seen
 * @property {(conversationId: string, messageId: string, recipients: readonly string[]) => Promise<unknown>} noteSent
 *   who a message was sealed for: a receipt for it must come from one of them (14.7)
 * @property {(groupId: string) => Promise<GroupState>} checkGroup the verified members, once
 *   the chain is current and the server's list agrees (throws otherwise)
 * @property {(groupId: string, message: {sender: string, name: string, sentAt: number, messageId: string})
 *   => Promise<NameDecision | "unverified">} noteName
 * @property {(conversationId: string) => void} changed a message of this conversation changed
 * @property {(conversation: Conversation, message: ChatMessage) => void} shown a message was added
 */

/** Sending to a direct conversation whose contact did not derive from its id is refused. */
export class UnknownContact extends Error {
  constructor() {
    super("This conversation's contact is not known: the server's list does not match the conversation. Nothing is sent.");
  }
}

export class Sender {
  /** @param {SendHost} host */
  constructor(host) {
    this.host = host;
  }

  get me() {
    return this.host.me.username;
  }

  /**
   * Every member's pinned identity, the sender's included: for a group, the verified
   * members once the chain is up to date and the server's list agrees (13.5); a member
   * whose keys changed stops the message (8.3).
   *
   * @param {Conversation} conversation
   * @returns {Promise<Map<string, PublicIdentity>>}
   */
  async recipients(conversation) {
    if (conversation.kind === "direct" && !conversation.peer) throw new UnknownContact();
    const names =
      conversation.kind === "group"
        ? [...(await this.host.checkGroup(conversation.id)).members]
        : [this.me, conversation.peer];
    const changed = this.host.trust.changedAmong(names);
    if (changed) throw new KeyChanged(changed);
    const entries = await Promise.all(names.map(async (name) => [name, await this.host.trust.pinnedOrFetch(name)]));
    return new Map(/** @type {[string, PublicIdentity][]} */ (entries));
  }

  /**
   * Seal a payload for the conversation's members, checking the directory on the way: a
   * changed key stops the message before it leaves.
   *
   * @param {Conversation} conversation
   * @param {Payload} payload
   * @returns {Promise<Envelope>}
   */
  async seal(conversation, payload) {
    const recipients = await this.recipients(conversation);
    const others = [...recipients.keys()].filter((name) => name !== this.me);
    const [envelope] = await Promise.all([
      sealMessage(this.host.me, conversation.id, recipients, payload),
      ...others.map((name) => this.host.trust.trustedIdentity(name)),
    ]);
    return envelope;
  }

  /**
   * Encrypt and send a text; the message appears at once as "sending".
   *
   * @param {Conversation} conversation
   * @param {string} text
   */
  async sendText(conversation, text) {
    const envelope = await this.seal(conversation, { type: "text", text });
    const message = this.ownMessage(conversation, envelope, text, null);
    await this.post(conversation, message, envelope);
    return message;
  }

  /**
   * Tell the group its name (a group_info message, PROTOCOL.md 13.5); once the server
   * has it, the core decides whether it names the group here too (14.4).
   *
   * @param {Conversation} conversation a group's
   * @param {string} name
   */
  async sendGroupInfo(conversation, name) {
    checkGroupName(name);
    const state = conversation.group?.state;
    if (state && !state.admins.includes(this.me)) throw new Error("Only the group's admins can name it.");
    const envelope = await this.seal(conversation, { type: "group_info", name });
    const message = this.ownMessage(conversation, envelope, `named the group “${name}”`, null);
    message.kind = "info";
    message.infoName = name;
    await this.post(conversation, message, envelope);
    if (message.status !== "failed") {
      const header = envelope.header;
      await this.host.noteName(conversation.id, { sender: this.me, name, sentAt: header.sentAt, messageId: header.messageId });
    }
    return message;
  }

  /**
   * Encrypt and upload a file, then share it in a message. The message shows at once,
   * with the upload's progress; a failed upload leaves it as "Not sent".
   *
   * @param {Conversation} conversation
   * @param {File} file
   * @param {string} [caption]
   */
  async sendFile(conversation, file, caption = "") {
    // Checked before anything is uploaded: keys, and for a group its membership.
    await this.recipients(conversation);
    /** @type {ChatMessage & {transfer: FileTransfer}} */
    const message = {
      messageId: `upload:${crypto.randomUUID()}`,
      conversationId: conversation.id,
      sender: this.me,
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
    this.host.shown(conversation, message);
    try {
      const descriptor = await uploadFile(this.host.api, conversation.id, file, (done, total) => {
        message.transfer = { ...message.transfer, done, total };
        this.host.changed(conversation.id);
      });
      const envelope = await this.seal(conversation, { ...fileDescriptorToPayload(descriptor, caption) });
      Object.assign(message, {
        messageId: envelope.header.messageId,
        sentAt: envelope.header.sentAt,
        file: descriptor,
        envelopeText: JSON.stringify(envelope.toWire()),
        status: "sending",
        awaiting: envelope.recipients.filter((name) => name !== this.me),
      });
      message.transfer = { state: "ready", done: file.size, total: file.size, url: null, error: null };
      if (previewable(descriptor)) message.transfer.url = URL.createObjectURL(file);
      await this.remember(envelope);
      await this.transmit(message, envelope.toWire());
    } catch (error) {
      message.status = "failed";
      message.transfer = { ...message.transfer, state: "failed", error: error instanceof Error ? error.message : "upload failed" };
      message.reason = message.transfer.error;
      this.host.changed(conversation.id);
      throw error;
    }
    return message;
  }

  /**
   * Download and check a received file; afterwards `message.transfer.url` is an object
   * URL of the decrypted contents. Failures are recorded on the message, not thrown.
   *
   * @param {ChatMessage} message
   */
  async fetchFile(message) {
    if (!message.file || message.transfer?.state === "downloading" || message.transfer?.state === "ready") return;
    const total = message.file.size;
    message.transfer = { state: "downloading", done: 0, total, url: null, error: null };
    this.host.changed(message.conversationId);
    try {
      const blob = await downloadFile(this.host.api, message.file, (done) => {
        message.transfer = { .../** @type {FileTransfer} */ (message.transfer), done };
        this.host.changed(message.conversationId);
      });
      message.transfer = { state: "ready", done: total, total, url: URL.createObjectURL(blob), type: blob.type, error: null };
    } catch (error) {
      message.transfer = { state: "failed", done: 0, total, url: null, error: error instanceof Error ? error.message : "download failed" };
    }
    this.host.changed(message.conversationId);
  }

  /**
   * A message of ours, shown as "sending" until the server has it.
   *
   * @param {Conversation} conversation
   * @param {Envelope} envelope
   * @param {string} text
   * @param {FileDescriptor | null} file
   * @returns {ChatMessage}
   */
  ownMessage(conversation, envelope, text, file) {
    return {
      messageId: envelope.header.messageId,
      conversationId: conversation.id,
      sender: this.me,
      text,
      sentAt: envelope.header.sentAt,
      serverTs: null,
      verified: true,
      refusal: null,
      reason: null,
      status: "sending",
      envelopeText: JSON.stringify(envelope.toWire()),
      file,
      awaiting: envelope.recipients.filter((name) => name !== this.me),
    };
  }

  /**
   * A message sent from here is seen (14.2): with no inbox position, so its own inbox
   * entry (or a page of history) is a duplicate, and a second copy a replay. Who it was
   * sealed for is kept for its receipts.
   *
   * @param {Envelope} envelope
   */
  async remember(envelope) {
    const wire = envelope.toWire();
    const { conversationId, messageId } = envelope.header;
    await this.host.seen.put(messageId, { signature: wire.signature, seq: null });
    await this.host.noteSent(conversationId, messageId, envelope.recipients);
  }

  /**
   * Show an own message and send it.
   *
   * @param {Conversation} conversation
   * @param {ChatMessage} message
   * @param {Envelope} envelope
   */
  async post(conversation, message, envelope) {
    await this.remember(envelope);
    this.host.shown(conversation, message);
    await this.transmit(message, envelope.toWire());
  }

  /**
   * Send an envelope over the socket, or over HTTP if that fails; failures are recorded
   * on the message, not thrown.
   *
   * @param {ChatMessage} message
   * @param {EnvelopeWire} wire
   */
  async transmit(message, wire) {
    try {
      let answer;
      try {
        answer = await this.host.socket.send(wire);
      } catch {
        // Offline or the socket dropped: the same envelope over HTTP (idempotent by id).
        answer = await this.host.api.request("POST", "/messages", { body: { envelope: wire } });
      }
      if (answer.type === "error") throw new ApiError(400, answer.code, answer.message);
      if (message.status === "sending") message.status = "sent";
      message.serverTs = answer.server_ts ?? message.serverTs;
    } catch (error) {
      message.status = "failed";
      message.reason = error instanceof Error ? error.message : "sending failed";
    }
    this.host.changed(message.conversationId);
  }

  /**
   * Send a failed message again, the same envelope (so it cannot arrive twice).
   *
   * @param {Conversation} conversation
   * @param {string} messageId
   */
  async retry(conversation, messageId) {
    const message = conversation.messages.find((m) => m.messageId === messageId && m.status === "failed");
    if (!message || !message.envelopeText) return;
    message.status = "sending";
    message.reason = null;
    this.host.changed(conversation.id);
    await this.transmit(message, JSON.parse(message.envelopeText));
  }
}
