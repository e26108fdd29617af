/**
 * The messenger: conversations (direct and group), sending and receiving, trust
 * (PROTOCOL.md 7-9, 13). No DOM.
 *
 * State changes are announced as events on this EventTarget: `conversations` (the list
 * changed), `messages` (detail: conversation id), `trust` (detail: username), `group`
 * (detail: group id: its name, membership, status or server check changed), `status`
 * (detail: "connecting" | "online" | "offline"), `incoming` (detail: a received message),
 * `ended` (detail: reason).
 *
 * @module
 */

import {
  Envelope,
  GroupChange,
  checkGroupName,
  ProtocolError,
  PublicIdentity,
  directConversationId,
  fileDescriptorFromPayload,
  fileDescriptorToPayload,
  fingerprint,
  formatSafetyNumber,
  openMessage,
  parseConversationId,
  parseNormalisedUsername,
  parseUsername,
  safetyNumber,
  sealMessage,
} from "../protocol/index.js";
import { ApiError } from "./api.js";
import { GroupBook, RECIPIENTS_DIFFER, describeChange } from "./groups.js";
import { InboxSocket } from "./inbox.js";
import { Presence } from "./presence.js";
import * as store from "./store.js";
import { downloadFile, previewable, uploadFile } from "./transfers.js";

/** @import { PublicIdentityWire } from "../protocol/keys.js" */

const HISTORY_PAGE = 50;
const ACK_DELAY_MS = 50;

/**
 * Conversation ids come from the server too: only well-formed ones go into a request.
 *
 * @param {unknown} value
 * @returns {boolean}
 */
function isConversationId(value) {
  try {
    parseConversationId(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * What a conversation is called: the contact, or the group's name.
 *
 * @param {Conversation} conversation
 * @returns {string}
 */
export function conversationTitle(conversation) {
  if (conversation.kind === "group") return conversation.group?.name ?? "Unnamed group";
  return conversation.peer;
}

/** Sending to a contact whose keys changed is refused until the user accepts the change. */
export class KeyChanged extends Error {
  /** @param {string} username whose keys changed */
  constructor(username) {
    super(`${username}'s keys have changed. Compare the safety number, then accept the new keys to send again.`);
    this.username = username;
  }
}

/**
 * @typedef {object} ChatMessage
 * @property {string} messageId (`change:<group>:<seq>` for a membership change)
 * @property {string} conversationId
 * @property {string} sender
 * @property {"system" | "info"} [kind] a membership change (not a message), or a group_info
 *   message; both shown as a line in the conversation; plain messages have no kind
 * @property {string} [infoName] the name a group_info message gives
 * @property {string[]} [awaiting] own messages: the other recipients, for "Delivered"
 * @property {Set<string>} [deliveredTo] own messages: who acknowledged it so far
 * @property {string | null} text null when unverifiable
 * @property {number | null} sentAt the sender's clock (signed), ms
 * @property {number | null} serverTs the server's clock, ms
 * @property {boolean} verified
 * @property {string | null} reason why it is unverifiable
 * @property {"uploading" | "sending" | "sent" | "delivered" | "read" | "received" | "failed"} status
 * @property {string | null} envelopeText the envelope as received, to recognise copies
 * @property {import("../protocol/files.js").FileDescriptor | null} [file] a shared file (key included)
 * @property {FileTransfer} [transfer] upload or download progress of that file
 * @property {{name: string, size: number, mediaType: string}} [upload] own file being
 *   uploaded: what to show until the message (and its descriptor) exists
 * @property {Set<string>} [readBy] own messages: who has said they read it
 * @property {boolean} [replayed] a copy of a message id already received: shown as unverifiable
 */

/**
 * @typedef {object} FileTransfer
 * @property {"uploading" | "downloading" | "ready" | "failed"} state
 * @property {number} done bytes
 * @property {number} total bytes
 * @property {string | null} url an object URL of the decrypted file, once ready
 * @property {string} [type] that object's media type (opaque unless a raster image)
 * @property {string | null} error
 */

/**
 * @typedef {object} Conversation
 * @property {string} id
 * @property {"direct" | "group"} kind
 * @property {string[]} members (a direct conversation)
 * @property {string} peer the other member (a direct conversation; "" for a group)
 * @property {import("./groups.js").GroupRecord} [group] a group's verified state
 * @property {number} lastActivity ms
 * @property {number} unread
 * @property {ChatMessage[]} messages oldest first
 * @property {number | null} before history cursor for older messages
 * @property {boolean} historyLoaded
 * @property {boolean} historyComplete
 * @property {ChatMessage} [preview] the newest message, before the history is loaded
 */

/**
 * @typedef {object} Pin a contact's keys as pinned on this device (PROTOCOL.md 8)
 * @property {string} username
 * @property {PublicIdentityWire} identity the keys trusted for the contact
 * @property {boolean} verified the user compared the safety number
 * @property {PublicIdentityWire | null} pending keys the directory has published since, not
 *   accepted yet: sending stops until they are
 */

/**
 * An inbox entry (`message`, `receipt` or `group`) as the socket parsed it from JSON:
 * an object, nothing more is known; every member is checked where it is read.
 *
 * @typedef {Record<string, unknown>} InboxEntry
 */

export class Messenger extends EventTarget {
  /**
   * @param {import("./api.js").Api} api
   * @param {import("../protocol/keys.js").PrivateIdentity} me
   */
  constructor(api, me) {
    super();
    this.api = api;
    this.me = me;
    this.username = me.username;
    /** @type {Map<string, Conversation>} */
    this.conversations = new Map();
    /** @type {Map<string, Pin>} */
    this.pins = new Map();
    this.lastSeq = 0;
    /** @type {string | null} */
    this.activeId = null;
    this.entryQueue = Promise.resolve();
    /** @type {number | undefined} */
    this.ackTimer = undefined;
    this.groups = new GroupBook(this);
    this.socket = new InboxSocket(api, () => this.lastSeq);
    this.socket.addEventListener("entry", (event) => this.enqueue(/** @type {CustomEvent} */ (event).detail));
    this.socket.addEventListener("state", (event) => this.emit("status", /** @type {CustomEvent} */ (event).detail));
    this.socket.addEventListener("ended", (event) => this.emit("ended", /** @type {CustomEvent} */ (event).detail));
    this.presence = new Presence(this.socket, this.username);
  }

  /**
   * @param {string} type
   * @param {unknown} [detail]
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * A store key of this account's.
   *
   * @param {string} name
   * @returns {[string, string]}
   */
  key(name) {
    return [this.username, name];
  }

  // Start and stop -----------------------------------------------------------------
  async start() {
    await this.presence.load();
    for (const pin of await store.allFor("pins", this.username)) this.pins.set(pin.username, pin);
    const myPin = this.pins.get(this.username);
    const myWire = this.me.public.toWire();
    if (!myPin || myPin.identity.signing_key !== myWire.signing_key) {
      await this.savePin({ username: this.username, identity: myWire, verified: true, pending: null });
    }
    const saved = await store.get("state", this.key("lastSeq"));
    if (typeof saved === "number") {
      this.lastSeq = saved;
    } else {
      // A new device: history comes from the server; the inbox starts at its head.
      this.lastSeq = (await this.api.inbox(0, 1)).head;
      await store.put("state", this.key("lastSeq"), this.lastSeq);
    }
    await this.groups.load();
    await this.refreshConversations();
    this.socket.start();
    void this.loadPreviews();
  }

  /**
   * The newest message of the most recent conversations, for the list: one message
   * each, so a fresh page shows what each conversation is about without opening it.
   */
  async loadPreviews(count = 20) {
    for (const conversation of this.sortedConversations().slice(0, count)) {
      if (conversation.messages.length || conversation.preview || !isConversationId(conversation.id)) continue;
      if (conversation.group && conversation.group.status === "removed") continue;
      try {
        const page = await this.api.history(conversation.id, { limit: 1 });
        const item = page.messages[0];
        if (!item) continue;
        conversation.preview = await this.openEnvelope(item.envelope, {
          conversationId: conversation.id,
          serverTs: item.server_ts,
          fallbackSender: item.sender,
          fallbackId: item.message_id,
        });
        this.emit("conversations");
      } catch {
        // A preview is a convenience: the conversation still opens normally.
      }
    }
  }

  stop() {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.presence.stop();
    this.socket.stop();
  }

  // Conversations ------------------------------------------------------------------
  async refreshConversations() {
    const answer = await this.api.conversations();
    const unread = new Map((await store.allFor("state", this.username)).filter((v) => v?.unreadOf).map((v) => [v.unreadOf, v.count]));
    /** @type {[string, string[]][]} the group ids and the server's member lists */
    const groups = [];
    for (const item of answer.conversations) {
      let conversation;
      if (item.kind === "direct") {
        conversation = this.ensureConversation(item.id, item.members);
      } else if (item.kind === "group" && typeof item.id === "string" && item.id.startsWith("grp-") && isConversationId(item.id)) {
        conversation = this.ensureGroupConversation(this.groups.record(item.id));
        groups.push([item.id, Array.isArray(item.members) ? item.members.map((/** @type {unknown} */ name) => String(name)) : []]);
      } else {
        continue;
      }
      conversation.lastActivity = Math.max(conversation.lastActivity, item.last_message_at ?? item.created_at ?? 0);
      conversation.unread = unread.get(item.id) ?? conversation.unread;
    }
    for (const conversation of this.conversations.values()) {
      if (conversation.kind === "group") conversation.unread = unread.get(conversation.id) ?? conversation.unread;
    }
    this.emit("conversations");
    // The chains are brought up to date and compared with the server's lists in the
    // background: a group the inbox has not told this device about is fetched here.
    void Promise.all(groups.map(([id, members]) => this.groups.compareServerList(id, members).catch(() => {})));
  }

  /**
   * The conversation of a group (made for its record by the group book).
   *
   * @param {import("./groups.js").GroupRecord} record
   * @returns {Conversation}
   */
  ensureGroupConversation(record) {
    let conversation = this.conversations.get(record.id);
    if (!conversation) {
      conversation = {
        id: record.id,
        kind: "group",
        members: [],
        peer: "",
        group: record,
        lastActivity: record.chain.at(-1)?.at ?? 0,
        unread: 0,
        messages: [],
        before: null,
        historyLoaded: false,
        historyComplete: false,
      };
      this.conversations.set(record.id, conversation);
      this.emit("conversations");
    }
    return conversation;
  }

  /**
   * Called by the group book when a group's record changed.
   *
   * @param {import("./groups.js").GroupRecord} record
   */
  groupChanged(record) {
    this.emit("group", record.id);
    this.emit("conversations");
  }

  /**
   * Called by the group book for changes newly verified: each becomes a line in the
   * conversation; an admin tells a newcomer the group's name (PROTOCOL.md 13.5).
   *
   * @param {import("./groups.js").GroupRecord} record
   * @param {import("../protocol/groups.js").GroupChange[]} changes
   */
  groupAdopted(record, changes) {
    const conversation = this.ensureGroupConversation(record);
    for (const change of changes) {
      const line = this.changeLine(record.id, change);
      if (conversation.messages.some((m) => m.messageId === line.messageId)) continue;
      conversation.messages.push(line);
      conversation.lastActivity = Math.max(conversation.lastActivity, change.at);
    }
    if (changes.length) this.emit("messages", record.id);
    this.groupChanged(record);
  }

  /**
   * A membership change as a conversation item.
   *
   * @param {string} groupId
   * @param {import("../protocol/groups.js").GroupChange} change
   * @returns {ChatMessage & {sentAt: number}}
   */
  changeLine(groupId, change) {
    return {
      messageId: `change:${groupId}:${change.seq}`,
      conversationId: groupId,
      kind: /** @type {const} */ ("system"),
      sender: change.actor,
      text: describeChange(change),
      sentAt: change.at,
      serverTs: null,
      verified: true,
      reason: null,
      status: /** @type {const} */ ("received"),
      envelopeText: null,
    };
  }

  /**
   * Put the lines of a group's verified changes among its loaded messages, by time,
   * those older than the oldest loaded message only once the history is complete.
   *
   * @param {Conversation} conversation
   */
  mergeChangeLines(conversation) {
    const record = conversation.group;
    if (!record?.state) return;
    const shown = new Set(conversation.messages.map((m) => m.messageId));
    const time = (/** @type {ChatMessage} */ m) => m.sentAt ?? m.serverTs ?? 0;
    const firstMessage = conversation.messages.find((m) => m.kind !== "system");
    const from = conversation.historyComplete || !firstMessage ? -Infinity : time(firstMessage);
    const messages = [...conversation.messages];
    record.chain.forEach((wire, seq) => {
      const id = `change:${record.id}:${seq}`;
      if (shown.has(id) || wire.at < from) return;
      let change;
      try {
        change = GroupChange.fromWire(wire);
      } catch {
        return;
      }
      const line = this.changeLine(record.id, change);
      const index = messages.findIndex((m) => time(m) > line.sentAt);
      messages.splice(index === -1 ? messages.length : index, 0, line);
    });
    conversation.messages = messages;
  }

  /**
   * The direct conversation with this id, made if new.
   *
   * @param {string} id
   * @param {string[]} members
   * @returns {Conversation}
   */
  ensureConversation(id, members) {
    let conversation = this.conversations.get(id);
    if (!conversation) {
      const peer = members.find((name) => name !== this.username) ?? this.username;
      conversation = {
        id,
        kind: "direct",
        members: [...members].sort(),
        peer,
        lastActivity: 0,
        unread: 0,
        messages: [],
        before: null,
        historyLoaded: false,
        historyComplete: false,
      };
      this.conversations.set(id, conversation);
    }
    return conversation;
  }

  /** Conversations, most recent activity first. */
  sortedConversations() {
    return [...this.conversations.values()].sort(
      (a, b) => b.lastActivity - a.lastActivity || conversationTitle(a).localeCompare(conversationTitle(b)),
    );
  }

  /**
   * Start (or find) the direct conversation with `peer`; pins the peer's keys.
   *
   * @param {string} peerName
   * @returns {Promise<Conversation>}
   */
  async startConversation(peerName) {
    const peer = parseUsername(peerName);
    await this.trustedIdentity(peer).catch((error) => {
      if (!(error instanceof KeyChanged)) throw error;
    });
    const answer = await this.api.openDirect(peer);
    const conversation = this.ensureConversation(answer.id, answer.members);
    conversation.lastActivity ||= Date.now();
    this.emit("conversations");
    return conversation;
  }

  /** @param {string} conversationId the conversation on screen */
  async setActive(conversationId) {
    this.activeId = conversationId;
    const conversation = this.conversations.get(conversationId);
    if (!conversation) return;
    if (conversation.unread) await this.setUnread(conversation, 0);
    if (conversation.kind === "group") {
      // Opening a group re-checks its chain, the server's list and the members' keys.
      void this.groups.check(conversationId).then(() => {
        for (const name of conversation.group?.state?.members ?? []) {
          if (name !== this.username) this.trustedIdentity(name).catch(() => {});
        }
      });
    } else {
      // Opening a conversation re-checks the contact's keys, so a change shows at once.
      this.trustedIdentity(conversation.peer).catch(() => {});
    }
    if (!conversation.historyLoaded) await this.loadOlder(conversationId);
  }

  /**
   * @param {Conversation} conversation
   * @param {number} count
   */
  async setUnread(conversation, count) {
    conversation.unread = count;
    await store.put("state", this.key(`unread:${conversation.id}`), { unreadOf: conversation.id, count });
    this.emit("conversations");
  }

  /**
   * Load the next page of older messages; false when there are no more.
   *
   * @param {string} conversationId
   * @returns {Promise<boolean>}
   */
  async loadOlder(conversationId) {
    const conversation = this.conversations.get(conversationId);
    if (!conversation || conversation.historyComplete) return false;
    if (!isConversationId(conversationId)) {
      // Only a misbehaving server names a conversation like this: nothing to page through.
      Object.assign(conversation, { historyLoaded: true, historyComplete: true });
      return false;
    }
    if (conversation.group?.status === "removed" && conversation.group.state) {
      // No history for a former member; what it has are the membership changes.
      Object.assign(conversation, { historyLoaded: true, historyComplete: true });
      this.mergeChangeLines(conversation);
      this.emit("messages", conversationId);
      return false;
    }
    let page;
    try {
      page = await this.api.history(conversationId, { before: conversation.before, limit: HISTORY_PAGE });
    } catch (error) {
      if (!(conversation.kind === "group" && error instanceof ApiError && error.status === 404)) throw error;
      // The server does not (or no longer) count this device's user as a member.
      Object.assign(conversation, { historyLoaded: true, historyComplete: true });
      this.mergeChangeLines(conversation);
      this.emit("messages", conversationId);
      return false;
    }
    const older = [];
    for (const item of page.messages) {
      const message = await this.openEnvelope(item.envelope, {
        conversationId,
        serverTs: item.server_ts,
        fallbackSender: item.sender,
        fallbackId: item.message_id,
      });
      if (message.verified && message.sender === this.username) {
        const deliveredTo = Array.isArray(item.delivered_to) ? item.delivered_to : [];
        message.deliveredTo = new Set(deliveredTo);
        message.status = (message.awaiting ?? []).every((name) => deliveredTo.includes(name)) ? "delivered" : "sent";
      }
      older.push(message);
    }
    older.reverse();
    // A page can overlap what the inbox already showed: the same stored message is not
    // shown twice, but a replay flagged by the inbox does not hide the original.
    const shown = (/** @type {ChatMessage} */ candidate) =>
      conversation.messages.some(
        (m) =>
          m.messageId === candidate.messageId &&
          (m.verified || (m.envelopeText === candidate.envelopeText && !m.replayed)),
      );
    /** @type {Set<string>} */
    const seenInPage = new Set();
    for (const message of older) {
      if (seenInPage.has(message.messageId)) this.markUnverifiable(message, "the same message id appears twice");
      seenInPage.add(message.messageId);
    }
    conversation.messages = [...older.filter((m) => !shown(m)), ...conversation.messages];
    conversation.before = page.next_before;
    conversation.historyLoaded = true;
    conversation.historyComplete = page.next_before === null;
    if (conversation.kind === "group") this.mergeChangeLines(conversation);
    this.emit("messages", conversationId);
    return older.length > 0;
  }

  /**
   * @param {ChatMessage} message
   * @param {string} reason
   */
  markUnverifiable(message, reason) {
    message.verified = false;
    message.reason = reason;
    message.text = null;
    message.status = "received";
  }

  // Receiving ----------------------------------------------------------------------
  /** @param {InboxEntry} frame */
  enqueue(frame) {
    this.entryQueue = this.entryQueue.then(() => this.processEntry(frame)).catch((error) => console.error(error));
  }

  /** @param {InboxEntry} frame */
  async processEntry(frame) {
    const seq = frame.seq;
    if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq <= this.lastSeq) return;
    if (frame.type === "receipt" && frame.status === "read") {
      this.markRead(frame);
    } else if (frame.type === "receipt") {
      const ids = new Set(Array.isArray(frame.message_ids) ? frame.message_ids : []);
      const recipient = String(frame.recipient ?? "");
      for (const conversation of this.conversations.values()) {
        let changed = false;
        for (const message of conversation.messages) {
          const settled = message.status === "delivered" || message.status === "read";
          if (ids.has(message.messageId) && message.sender === this.username && !settled) {
            // Delivered once every other recipient has it (in a direct chat: the contact).
            message.deliveredTo ??= new Set();
            message.deliveredTo.add(recipient);
            const awaiting = message.awaiting ?? [];
            if (awaiting.length === 0 || awaiting.every((name) => message.deliveredTo?.has(name))) {
              message.status = "delivered";
              changed = true;
            }
          }
        }
        if (changed) this.emit("messages", conversation.id);
      }
    } else if (frame.type === "message") {
      await this.receiveMessage(frame);
    } else if (frame.type === "group") {
      await this.receiveGroupChange(frame);
    }
    this.lastSeq = seq;
    await store.put("state", this.key("lastSeq"), this.lastSeq);
    // Only messages need acknowledging: their senders wait for the receipt (PROTOCOL.md 9.2).
    if (frame.type === "message") this.scheduleAck();
  }

  /**
   * A read receipt: "Read" once every other recipient has read (in a direct chat: the contact).
   *
   * @param {InboxEntry} frame
   */
  markRead(frame) {
    const ids = new Set(Array.isArray(frame.message_ids) ? frame.message_ids : []);
    const reader = String(frame.recipient ?? "");
    for (const conversation of this.conversations.values()) {
      let changed = false;
      for (const message of conversation.messages) {
        if (!ids.has(message.messageId) || message.sender !== this.username || message.status === "read") continue;
        message.readBy ??= new Set();
        message.readBy.add(reader);
        const awaiting = message.awaiting ?? [];
        if (awaiting.length === 0 || awaiting.every((name) => message.readBy?.has(name))) {
          message.status = "read";
          changed = true;
        }
      }
      if (changed) this.emit("messages", conversation.id);
    }
  }

  /** One ack at most ACK_DELAY_MS after the first entry it covers, however many follow. */
  scheduleAck() {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      this.socket.ack(this.lastSeq);
    }, ACK_DELAY_MS);
  }

  /**
   * A membership change from the inbox: verified into the chain, or shown as unverifiable.
   *
   * @param {InboxEntry} frame
   */
  async receiveGroupChange(frame) {
    const { groupId, change, known, problem } = await this.groups.onFrame(frame);
    if (!groupId) return;
    const record = this.groups.record(groupId);
    const conversation = this.ensureGroupConversation(record);
    if (problem !== null) {
      conversation.messages.push({
        messageId: `change:${groupId}:unverifiable:${frame.seq}`,
        conversationId: groupId,
        kind: "system",
        sender: change?.actor ?? "",
        text: null,
        sentAt: change?.at ?? null,
        serverTs: null,
        verified: false,
        reason: problem,
        status: "received",
        envelopeText: null,
      });
      this.emit("messages", groupId);
      this.emit("conversations");
      return;
    }
    if (!change || known) return;
    if (
      change.action === "join" &&
      change.actor !== this.username &&
      record.state?.admins.includes(this.username) &&
      record.name
    ) {
      // The joiner cannot know the group's name: an admin tells it (PROTOCOL.md 13.5).
      const name = record.name;
      void this.sendGroupInfo(groupId, name).catch(() => {});
    }
  }

  /** @param {InboxEntry} frame */
  async receiveMessage(frame) {
    const envelopeText = JSON.stringify(frame.envelope ?? null);
    const message = await this.openEnvelope(frame.envelope, {
      conversationId: null,
      serverTs: typeof frame.server_ts === "number" && Number.isSafeInteger(frame.server_ts) ? frame.server_ts : null,
      fallbackSender: String(frame.sender ?? "?"),
      fallbackId: String(frame.message_id ?? "?"),
    });
    const conversationId = message.conversationId || String(frame.conversation_id ?? "");
    let conversation = this.conversations.get(conversationId);
    if (!conversation && conversationId.startsWith("grp-") && isConversationId(conversationId)) {
      conversation = this.ensureGroupConversation(this.groups.record(conversationId));
    }
    if (!conversation) {
      if (!message.verified && !message.peer) {
        // Not placeable in a verified conversation: shown under the server's claim.
        conversation = this.ensureConversation(conversationId, [this.username, message.sender]);
      } else {
        conversation = this.ensureConversation(conversationId, [this.username, message.peer ?? message.sender]);
      }
    }
    const seenKey = this.key(`seen:${message.messageId}`);
    const existing = conversation.messages.find((m) => m.messageId === message.messageId && m.verified);
    if (message.verified) {
      // The seq it was first accepted at: the same entry delivered again (the page closed
      // before its acknowledgement) is not a replay; the same id at another seq is.
      const seenAt = await store.get("seen", seenKey);
      if (seenAt !== undefined && seenAt !== frame.seq) {
        // Our own messages come back on resume; they show from history at their place.
        if (message.sender === this.username) return;
        this.markUnverifiable(message, "replayed: this message id was received before");
        message.replayed = true;
      } else {
        if (seenAt === undefined) await store.put("seen", seenKey, frame.seq);
        if (existing && existing.envelopeText === envelopeText) {
          existing.serverTs ??= message.serverTs;
          this.emit("messages", conversation.id);
          return;
        }
        if (existing && existing.sender === this.username) return;
        if (existing) this.markUnverifiable(message, "a different message with an id already shown");
      }
    }
    if (message.verified && message.sender === this.username) message.status = "sent";
    conversation.messages.push(message);
    conversation.lastActivity = Math.max(conversation.lastActivity, message.serverTs ?? Date.now());
    if (message.sender !== this.username && message.kind !== "info") {
      this.presence.stoppedTyping(conversation.id, message.sender);
      const visible = this.activeId === conversation.id && document.visibilityState === "visible";
      if (!visible) await this.setUnread(conversation, conversation.unread + 1);
      this.emit("incoming", { conversation, message });
    }
    this.emit("conversations");
    this.emit("messages", conversation.id);
  }

  /**
   * Verify and decrypt one envelope. Never throws: a message that fails any check comes
   * back with `verified: false` and the reason.
   *
   * @param {unknown} wire the envelope as parsed from JSON
   * @param {{conversationId: string | null, serverTs: number | null, fallbackSender: string, fallbackId: string}} context
   *   conversationId: the conversation it was delivered into, if known; the rest is the
   *   server's word, shown if the envelope cannot be read
   * @returns {Promise<ChatMessage & {peer?: string}>}
   */
  async openEnvelope(wire, { conversationId, serverTs, fallbackSender, fallbackId }) {
    /** @type {ChatMessage & {peer?: string}} */
    const message = {
      messageId: fallbackId,
      conversationId: conversationId ?? "",
      sender: fallbackSender,
      text: null,
      sentAt: null,
      serverTs,
      verified: false,
      reason: null,
      status: "received",
      envelopeText: JSON.stringify(wire ?? null),
    };
    let envelope;
    try {
      envelope = Envelope.fromWire(wire);
    } catch (error) {
      message.reason = `malformed envelope (${error instanceof ProtocolError ? error.message : "unreadable"})`;
      return message;
    }
    const header = envelope.header;
    Object.assign(message, { messageId: header.messageId, sender: header.sender, sentAt: header.sentAt });
    message.conversationId = header.conversationId;
    if (conversationId && conversationId !== header.conversationId) {
      message.reason = "delivered into another conversation";
      return message;
    }
    const group = header.conversationId.startsWith("grp-");
    /** @type {string[] | null} */
    let members = null;
    if (group) {
      // 13.5: the recipients must be a verified membership from my join on.
      members = await this.groups.recipientsFor(envelope);
      if (members === null) {
        message.reason = RECIPIENTS_DIFFER;
        return message;
      }
      if (!members.includes(this.username)) {
        // Sent while this user was not a member (after a removal): no key for us in it.
        message.reason = "it was not encrypted for you (you were not a member when it was sent)";
        return message;
      }
    } else {
      let peer = null;
      for (const name of envelope.recipients) {
        if (name !== this.username && (await directConversationId(this.username, name)) === header.conversationId) {
          peer = name;
        }
      }
      if (peer === null) {
        message.reason = "the conversation does not match its members";
        return message;
      }
      message.peer = peer;
      members = [this.username, peer];
    }
    const senderIdentity = await this.senderIdentity(header.sender);
    if (!senderIdentity) {
      message.reason = "the sender's keys are unknown or have changed";
      return message;
    }
    try {
      const opened = await openMessage(envelope, {
        me: this.me,
        senderIdentity,
        conversationId: header.conversationId,
        members,
      });
      const text = opened.payload.text;
      message.text = typeof text === "string" ? text : "";
      message.file = opened.payload.type === "file" ? fileDescriptorFromPayload(opened.payload) : null;
      message.verified = true;
      if (header.sender === this.username) message.awaiting = envelope.recipients.filter((name) => name !== this.username);
      if (opened.payload.type === "group_info") {
        const name = String(opened.payload.name);
        message.kind = "info";
        message.infoName = name;
        if (!group) {
          message.text = `sent a group name (“${name}”) in a direct chat; it is ignored`;
        } else if (await this.groups.noteInfo(header.conversationId, header.sender, name, header.sentAt)) {
          message.text = `named the group “${name}”`;
        } else {
          message.text = `sent a group name (“${name}”), ignored: only the group's admins name it`;
        }
      }
    } catch {
      message.reason = "signature, key or ciphertext check failed";
    }
    return message;
  }

  /**
   * The sender's pinned keys, or the directory's if none are pinned; null if neither.
   *
   * @param {string} name
   * @returns {Promise<PublicIdentity | null>}
   */
  async senderIdentity(name) {
    const pin = this.pins.get(name);
    if (pin) return PublicIdentity.fromWire(name, pin.identity);
    try {
      return await this.trustedIdentity(name);
    } catch {
      return null;
    }
  }

  // Sending ------------------------------------------------------------------------
  /**
   * Seal a payload for the conversation's members, checking the directory on the way: a
   * changed key stops the message before it leaves.
   *
   * @param {Conversation} conversation
   * @param {import("../protocol/envelope.js").Payload} payload
   * @returns {Promise<Envelope>}
   */
  async seal(conversation, payload) {
    const recipients = await this.recipients(conversation);
    const others = [...recipients.keys()].filter((name) => name !== this.username);
    const [envelope] = await Promise.all([
      sealMessage(this.me, conversation.id, recipients, payload),
      ...others.map((name) => this.trustedIdentity(name)),
    ]);
    return envelope;
  }

  /**
   * Every member's pinned identity, the sender's included: for a group, the verified
   * members once the chain is up to date and the server's list agrees (PROTOCOL.md
   * 13.5); a member whose keys changed stops the message (8.3).
   *
   * @param {Conversation} conversation
   * @returns {Promise<Map<string, PublicIdentity>>}
   */
  async recipients(conversation) {
    const names =
      conversation.kind === "group"
        ? [...(await this.groups.checkForSending(conversation.id)).members]
        : [this.username, conversation.peer];
    const changed = names.find((name) => name !== this.username && this.pins.get(name)?.pending);
    if (changed) throw new KeyChanged(changed);
    const entries = await Promise.all(
      names.map(async (name) => [name, name === this.username ? this.me.public : await this.pinnedOrFetch(name)]),
    );
    return new Map(/** @type {[string, PublicIdentity][]} */ (entries));
  }

  /**
   * The member of a conversation whose keys changed and are not accepted yet, if any.
   *
   * @param {Conversation} conversation
   * @returns {string | null}
   */
  changedMember(conversation) {
    const names = conversation.kind === "group" ? conversation.group?.state?.members ?? [] : [conversation.peer];
    return names.find((name) => name !== this.username && this.pins.get(name)?.pending) ?? null;
  }

  /**
   * @param {string} conversationId
   * @returns {Conversation}
   */
  conversationFor(conversationId) {
    const conversation = this.conversations.get(conversationId);
    if (!conversation) throw new Error("no such conversation");
    return conversation;
  }

  /**
   * Encrypt and send a text; the message appears at once as "sending".
   *
   * @param {string} conversationId
   * @param {string} text
   */
  async sendText(conversationId, text) {
    const conversation = this.conversationFor(conversationId);
    const envelope = await this.seal(conversation, { type: "text", text });
    const message = this.ownMessage(conversation, envelope, text, null);
    await this.post(conversation, message, envelope);
    return message;
  }

  /**
   * Tell the group its name (a group_info message, PROTOCOL.md 13.5): after creating
   * it, after adding members, and when someone joins.
   *
   * @param {string} groupId
   * @param {string} name
   */
  async sendGroupInfo(groupId, name) {
    checkGroupName(name);
    const conversation = this.conversationFor(groupId);
    const state = conversation.group?.state;
    if (state && !state.admins.includes(this.username)) throw new Error("Only the group's admins can name it.");
    const envelope = await this.seal(conversation, { type: "group_info", name });
    const message = this.ownMessage(conversation, envelope, `named the group “${name}”`, null);
    message.kind = "info";
    message.infoName = name;
    await this.post(conversation, message, envelope);
    if (message.status !== "failed") await this.groups.noteInfo(groupId, this.username, name, envelope.header.sentAt);
    return message;
  }

  // Groups ---------------------------------------------------------------------------
  /**
   * Create a group, named, with these members (usernames); the name follows as a
   * group_info message.
   *
   * @param {string} name
   * @param {string[]} members
   * @returns {Promise<Conversation>}
   */
  async createGroup(name, members) {
    const id = await this.groups.create(name, members);
    const conversation = this.conversationFor(id);
    conversation.lastActivity = Date.now();
    this.emit("conversations");
    await this.sendGroupInfo(id, name);
    return conversation;
  }

  /**
   * Add, remove, promote (admins) or leave; an add is followed by the group's name, so
   * the new members learn it.
   *
   * @param {string} groupId
   * @param {"add" | "remove" | "promote" | "leave"} action
   * @param {string[]} [members]
   */
  async changeGroup(groupId, action, members = []) {
    const change = await this.groups.change(groupId, action, members);
    const record = this.groups.record(groupId);
    if (action === "add" && record.name) await this.sendGroupInfo(groupId, record.name);
    return change;
  }

  /**
   * @param {string} groupId
   * @param {{hours: number, uses: number}} options
   * @returns {Promise<import("../protocol/groups.js").Invite>}
   */
  makeInvite(groupId, options) {
    return this.groups.makeInvite(groupId, options);
  }

  /**
   * Join a group with an invite code.
   *
   * @param {string} code
   * @returns {Promise<Conversation>}
   */
  async joinGroup(code) {
    const id = await this.groups.join(code);
    const conversation = this.conversationFor(id);
    conversation.lastActivity = Date.now();
    this.emit("conversations");
    return conversation;
  }

  /**
   * Encrypt and upload a file, then share it in a message. The message shows at once,
   * with the upload's progress; a failed upload leaves it as "Not sent".
   *
   * @param {string} conversationId
   * @param {File} file
   * @param {string} [caption]
   */
  async sendFile(conversationId, file, caption = "") {
    const conversation = this.conversationFor(conversationId);
    // Checked before anything is uploaded: keys, and for a group its membership.
    await this.recipients(conversation);
    /** @type {ChatMessage & {transfer: FileTransfer}} */
    const message = {
      messageId: `upload:${crypto.randomUUID()}`,
      conversationId,
      sender: this.username,
      text: caption,
      sentAt: Date.now(),
      serverTs: null,
      verified: true,
      reason: null,
      status: "uploading",
      envelopeText: null,
      file: null,
      transfer: { state: "uploading", done: 0, total: file.size, url: null, error: null },
      upload: { name: file.name || "file", size: file.size, mediaType: file.type || "application/octet-stream" },
    };
    conversation.messages.push(message);
    conversation.lastActivity = Date.now();
    this.emit("messages", conversationId);
    this.emit("conversations");
    try {
      const descriptor = await uploadFile(this.api, conversationId, file, (done, total) => {
        message.transfer = { ...message.transfer, done, total };
        this.emit("messages", conversationId);
      });
      const envelope = await this.seal(conversation, { ...fileDescriptorToPayload(descriptor, caption) });
      Object.assign(message, {
        messageId: envelope.header.messageId,
        sentAt: envelope.header.sentAt,
        file: descriptor,
        envelopeText: JSON.stringify(envelope.toWire()),
        status: "sending",
        awaiting: envelope.recipients.filter((name) => name !== this.username),
      });
      message.transfer = { state: "ready", done: file.size, total: file.size, url: null, error: null };
      if (previewable(descriptor)) message.transfer.url = URL.createObjectURL(file);
      await store.put("seen", this.key(`seen:${message.messageId}`), 0);
      await this.transmit(message, envelope.toWire());
    } catch (error) {
      message.status = "failed";
      message.transfer = { ...message.transfer, state: "failed", error: error instanceof Error ? error.message : "upload failed" };
      message.reason = message.transfer.error;
      this.emit("messages", conversationId);
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
    this.emit("messages", message.conversationId);
    try {
      const blob = await downloadFile(this.api, message.file, (done) => {
        message.transfer = { .../** @type {FileTransfer} */ (message.transfer), done };
        this.emit("messages", message.conversationId);
      });
      message.transfer = { state: "ready", done: total, total, url: URL.createObjectURL(blob), type: blob.type, error: null };
    } catch (error) {
      message.transfer = { state: "failed", done: 0, total, url: null, error: error instanceof Error ? error.message : "download failed" };
    }
    this.emit("messages", message.conversationId);
  }

  /**
   * A message of ours, shown as "sending" until the server has it.
   *
   * @param {Conversation} conversation
   * @param {Envelope} envelope
   * @param {string} text
   * @param {import("../protocol/files.js").FileDescriptor | null} file
   * @returns {ChatMessage}
   */
  ownMessage(conversation, envelope, text, file) {
    return {
      messageId: envelope.header.messageId,
      conversationId: conversation.id,
      sender: this.username,
      text,
      sentAt: envelope.header.sentAt,
      serverTs: null,
      verified: true,
      reason: null,
      status: "sending",
      envelopeText: JSON.stringify(envelope.toWire()),
      file,
      awaiting: envelope.recipients.filter((name) => name !== this.username),
    };
  }

  /**
   * Show an own message and send it.
   *
   * @param {Conversation} conversation
   * @param {ChatMessage} message
   * @param {Envelope} envelope
   */
  async post(conversation, message, envelope) {
    await store.put("seen", this.key(`seen:${message.messageId}`), 0);
    conversation.messages.push(message);
    conversation.lastActivity = Date.now();
    this.emit("messages", conversation.id);
    this.emit("conversations");
    await this.transmit(message, envelope.toWire());
  }

  /**
   * Send an envelope over the socket, or over HTTP if that fails; failures are recorded
   * on the message, not thrown.
   *
   * @param {ChatMessage} message
   * @param {import("../protocol/envelope.js").EnvelopeWire} wire
   */
  async transmit(message, wire) {
    try {
      let answer;
      try {
        answer = await this.socket.send(wire);
      } catch {
        // Offline or the socket dropped: the same envelope over HTTP (idempotent by id).
        answer = await this.api.request("POST", "/messages", { body: { envelope: wire } });
      }
      if (answer.type === "error") throw new ApiError(400, answer.code, answer.message);
      if (message.status === "sending") message.status = "sent";
      message.serverTs = answer.server_ts ?? message.serverTs;
    } catch (error) {
      message.status = "failed";
      message.reason = error instanceof Error ? error.message : "sending failed";
    }
    this.emit("messages", message.conversationId);
  }

  /**
   * Send a failed message again, the same envelope (so it cannot arrive twice).
   *
   * @param {string} conversationId
   * @param {string} messageId
   */
  async retry(conversationId, messageId) {
    const conversation = this.conversations.get(conversationId);
    const message = conversation?.messages.find((m) => m.messageId === messageId && m.status === "failed");
    if (!message || !message.envelopeText) return;
    message.status = "sending";
    message.reason = null;
    this.emit("messages", conversationId);
    await this.transmit(message, JSON.parse(message.envelopeText));
  }

  // Trust --------------------------------------------------------------------------
  /** @param {Pin} pin */
  async savePin(pin) {
    this.pins.set(pin.username, pin);
    await store.put("pins", this.key(pin.username), pin);
    this.emit("trust", pin.username);
  }

  /**
   * @param {string} name
   * @returns {Promise<PublicIdentity>}
   */
  async pinnedOrFetch(name) {
    const pin = this.pins.get(name);
    if (pin) return PublicIdentity.fromWire(name, pin.identity);
    return this.trustedIdentity(name);
  }

  /**
   * The contact's current keys from the directory, checked; pinned on first use. A
   * difference from the pin is recorded as pending and raised as KeyChanged.
   *
   * @param {string} name
   * @returns {Promise<PublicIdentity>}
   */
  async trustedIdentity(name) {
    // Names come from the server too: an invalid one is refused before any request.
    parseNormalisedUsername(name);
    const data = await this.api.publicKeys(name);
    const identity = await PublicIdentity.fromWire(name, data).verified();
    const wire = identity.toWire();
    const pin = this.pins.get(name);
    if (!pin) {
      await this.savePin({ username: name, identity: wire, verified: false, pending: null });
      return identity;
    }
    /** @type {(a: PublicIdentityWire, b: PublicIdentityWire) => boolean} */
    const same = (a, b) =>
      a.signing_key === b.signing_key &&
      a.encryption_key === b.encryption_key &&
      a.encryption_key_signature === b.encryption_key_signature;
    if (!same(pin.identity, wire)) {
      if (!pin.pending || !same(pin.pending, wire)) await this.savePin({ ...pin, pending: wire });
      throw new KeyChanged(name);
    }
    if (pin.pending) await this.savePin({ ...pin, pending: null });
    return identity;
  }

  /**
   * Replace the pin with the new keys; the verified mark is cleared.
   *
   * @param {string} name
   */
  async acceptKeyChange(name) {
    const pin = this.pins.get(name);
    if (!pin?.pending) return;
    await this.savePin({ username: name, identity: pin.pending, verified: false, pending: null });
  }

  /**
   * @param {string} name
   * @param {boolean} verified
   */
  async setVerified(name, verified) {
    const pin = this.pins.get(name);
    if (!pin || pin.pending) return;
    await this.savePin({ ...pin, verified });
  }

  /**
   * What the contact panel shows.
   *
   * @param {string} name
   */
  async trustInfo(name) {
    const pin = this.pins.get(name);
    if (!pin) return null;
    const identity = PublicIdentity.fromWire(name, pin.identity);
    const pending = pin.pending ? PublicIdentity.fromWire(name, pin.pending) : null;
    return {
      verified: pin.verified,
      keyChanged: pending !== null,
      signingFingerprint: await fingerprint(identity.signingKey),
      encryptionFingerprint: await fingerprint(identity.encryptionKey),
      safetyNumber: formatSafetyNumber(await safetyNumber(this.me.public, identity)),
      pendingSafetyNumber: pending ? formatSafetyNumber(await safetyNumber(this.me.public, pending)) : null,
    };
  }

  async ownFingerprints() {
    return {
      signing: await fingerprint(this.me.public.signingKey),
      encryption: await fingerprint(this.me.public.encryptionKey),
    };
  }
}
