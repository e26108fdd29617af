/**
 * The inbox, entry by entry in sequence order (PROTOCOL.md 9.2): a message goes to the
 * receiver (the core's decision) and, unless it is a duplicate, to the conversation it
 * belongs to; a membership change to the group book (14.3); a receipt to the core's
 * decision (14.7), and only an accepted one to the messages it covers; a new login to the
 * account to the views, which tell the user (the server's word). Each entry is
 * done before the next, and its position stored after it. No DOM.
 *
 * @module
 */

import { alreadyShown, applyReceipt, derivePeer, isConversationId } from "./conversations.js";

/** @import { ChatMessage, Conversation, Conversations } from "./conversations.js" */
/** @import { GroupBook } from "./groups.js" */
/** @import { Presence } from "./presence.js" */
/** @import { ReceiptBook } from "./receipts.js" */
/** @import { Receiver } from "./receive.js" */

const ACK_DELAY_MS = 50;

/**
 * An inbox entry (`message`, `receipt` or `group`) as the socket parsed it from JSON:
 * an object, nothing more is known; every member is checked where it is read.
 *
 * @typedef {Record<string, unknown>} InboxEntry
 */

/**
 * What the inbox loop needs of the rest of the app.
 *
 * @typedef {object} IncomingHost
 * @property {string} me this device's username
 * @property {Receiver} receiver
 * @property {ReceiptBook} receipts
 * @property {GroupBook} groups
 * @property {Conversations} conversations
 * @property {Presence} presence
 * @property {() => string[]} pinnedNames the contacts pinned here (candidates for a contact)
 * @property {(conversation: Conversation, item: ChatMessage) => void} show
 * @property {(conversationId: string, count: number) => Promise<void>} setUnread
 * @property {(conversationId: string) => boolean} onScreen the conversation is open in a visible page
 * @property {(type: string, detail?: unknown) => void} emit
 * @property {(groupId: string, name: string) => Promise<unknown>} sendGroupInfo
 * @property {(seq: number) => void} ack
 * @property {(seq: number) => Promise<void>} processed store the position after an entry
 */

export class Incoming {
  /**
   * @param {IncomingHost} host
   * @param {number} lastSeq the last position processed on this device
   */
  constructor(host, lastSeq) {
    this.host = host;
    this.lastSeq = lastSeq;
    this.queue = Promise.resolve();
    /** @type {number | undefined} */
    this.ackTimer = undefined;
  }

  /** @param {InboxEntry} frame */
  enqueue(frame) {
    this.queue = this.queue.then(() => this.process(frame)).catch((error) => console.error(error));
  }

  stop() {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
  }

  /** @param {InboxEntry} frame */
  async process(frame) {
    const seq = frame.seq;
    if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq <= this.lastSeq) return;
    if (frame.type === "receipt") {
      await this.receipt(frame);
    } else if (frame.type === "message") {
      await this.message(frame, seq);
    } else if (frame.type === "group") {
      await this.groupChange(frame, seq);
    } else if (frame.type === "session_started") {
      // Another session of the account began (the server's word): the views tell the user.
      this.host.emit("session", frame);
    }
    this.lastSeq = seq;
    await this.host.processed(seq);
    // Only messages need acknowledging: their senders wait for the receipt (PROTOCOL.md 9.2).
    if (frame.type === "message") this.scheduleAck();
  }

  /** One ack at most ACK_DELAY_MS after the first entry it covers, however many follow. */
  scheduleAck() {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      this.host.ack(this.lastSeq);
      // Signed by this device, right after the acknowledgement (PROTOCOL.md 9.3).
      void this.host.receipts.sendDelivered();
    }, ACK_DELAY_MS);
  }

  /**
   * A receipt moves my messages forward only if the core accepts it (14.7): signed by
   * its reader with the key pinned here, about messages sealed for that reader. The
   * server's own claims (unsigned) and refused ones move nothing.
   *
   * @param {InboxEntry} frame
   */
  async receipt(frame) {
    const decision = await this.host.receipts.decide(frame);
    if (decision.outcome !== "accepted") return;
    const conversation = this.host.conversations.get(decision.conversationId);
    if (!conversation) return;
    const receipt = { me: this.host.me, ids: new Set(decision.messageIds), reader: decision.reader };
    // Whoever has read a message has it.
    const changed = applyReceipt([conversation], { ...receipt, status: "delivered" });
    if (decision.status === "read") changed.push(...applyReceipt([conversation], { ...receipt, status: "read" }));
    if (changed.length) this.host.emit("messages", conversation.id);
  }

  /**
   * A message, as the core decided it: shown in the conversation it belongs to (a direct
   * one under its derived contact), or as unverifiable under its claimed conversation;
   * a duplicate is not shown again.
   *
   * @param {InboxEntry} frame
   * @param {number} seq
   */
  async message(frame, seq) {
    const result = await this.host.receiver.inboxMessage(frame, seq);
    if (result === null) return;
    const { item, peer } = result;
    if (item.verified && item.sender !== this.host.me) {
      this.host.receipts.delivered(item.conversationId, item.sender, item.messageId);
    } else if (item.verified) {
      // Sent from another device: who it was sealed for, for its receipts (14.7).
      await this.host.receipts.noteSent(item.conversationId, item.messageId, [this.host.me, ...(item.awaiting ?? [])]);
    }
    const conversation = await this.place(item, peer);
    // A page of history may have shown it already (the same message, or the same refused envelope).
    if (alreadyShown(conversation.messages, item)) return;
    this.host.show(conversation, item);
    if (item.sender === this.host.me || item.kind === "info") return;
    if (!this.host.onScreen(conversation.id)) await this.host.setUnread(conversation.id, conversation.unread + 1);
    if (item.verified) {
      this.host.presence.stoppedTyping(conversation.id, item.sender);
      this.host.emit("incoming", { conversation, message: item });
    }
  }

  /**
   * Where an item shows (14.1): an accepted message's conversation; a refused one's
   * claimed conversation, under a contact only if one derives from its id.
   *
   * @param {ChatMessage} item
   * @param {string | null} peer the derived contact of an accepted direct message
   * @returns {Promise<Conversation>}
   */
  async place(item, peer) {
    const { conversations, groups } = this.host;
    const id = item.conversationId;
    const known = conversations.get(id);
    if (known && (known.kind === "group" || known.peer || !item.verified)) return known;
    if (id.startsWith("grp-") && isConversationId(id)) return conversations.group(groups.record(id));
    if (item.verified) return conversations.direct(id, peer);
    return conversations.direct(id, await derivePeer(this.host.me, id, [item.sender], this.host.pinnedNames()));
  }

  /**
   * A membership change (14.3): new changes are shown through the group book's notice,
   * a known one not again, a refused one as an unverifiable line.
   *
   * @param {InboxEntry} frame
   * @param {number} seq
   */
  async groupChange(frame, seq) {
    const { groupId, refusal, change, known } = await this.host.groups.onFrame(frame);
    if (groupId === null) return;
    const record = this.host.groups.record(groupId);
    const conversation = this.host.conversations.group(record);
    if (refusal !== null) {
      this.host.show(conversation, {
        messageId: `change:${groupId}:unverifiable:${seq}`,
        conversationId: groupId,
        kind: "system",
        sender: change?.actor ?? "",
        text: null,
        sentAt: change?.at ?? null,
        serverTs: null,
        verified: false,
        refusal,
        reason: null,
        status: "received",
        envelopeText: null,
      });
      return;
    }
    if (!change || known) return;
    const name = record.name?.name;
    if (change.action === "join" && change.actor !== this.host.me && record.state?.admins.includes(this.host.me) && name) {
      // The joiner cannot know the group's name: an admin tells it (PROTOCOL.md 13.5).
      void this.host.sendGroupInfo(groupId, name).catch(() => {});
    }
  }
}
