/**
 * Pages of history (PROTOCOL.md 9.1): fetched newest first, each envelope decided by
 * the core as one delivered in that conversation (receive.js), merged before what is on
 * screen with nothing shown twice; a group's membership changes placed among them; the
 * newest message of recent conversations fetched for the list. No DOM.
 *
 * @module
 */

import { GroupChange } from "../protocol/index.js";
import { ApiError } from "./api.js";
import { derivePeer, insertByTime, isConversationId, itemTimeOf, mergeOlder } from "./conversations.js";
import { describeChange } from "./group-text.js";
import { showStatus } from "./receipts.js";
import { historyOrder, itemTime } from "./v2-history.js";

/** @import { Api } from "./api.js" */
/** @import { ChatMessage, Conversation, Conversations } from "./conversations.js" */
/** @import { ReceiptBook } from "./receipts.js" */
/** @import { Receiver } from "./receive.js" */
/** @import { LocalHistory } from "./v2-history.js" */

const HISTORY_PAGE = 50;
/** How far back (in pages) a new device looks for a group's name. */
const NAME_PAGES = 10;

/**
 * A membership change as a conversation item.
 *
 * @param {string} groupId
 * @param {GroupChange} change
 * @returns {ChatMessage & {sentAt: number}}
 */
export function changeLine(groupId, change) {
  return {
    messageId: `change:${groupId}:${change.seq}`,
    conversationId: groupId,
    kind: "system",
    sender: change.actor,
    text: describeChange(change),
    sentAt: change.at,
    serverTs: null,
    verified: true,
    refusal: null,
    reason: null,
    status: "received",
    envelopeText: null,
  };
}

/**
 * Put the lines of a group's verified changes among its loaded messages, by time, those
 * older than the oldest loaded message only once the history is complete. Lines shown
 * before (the chain verified before a page of older messages came) are placed again: a
 * page is merged before everything shown, and a change line is not older than that.
 *
 * @param {Conversation} conversation
 */
export function mergeChangeLines(conversation) {
  const record = conversation.group;
  if (!record?.state) return;
  const own = new Set(record.chain.map((_, seq) => `change:${record.id}:${seq}`));
  const messages = conversation.messages.filter((m) => !(m.kind === "system" && m.verified && own.has(m.messageId)));
  const firstMessage = messages.find((m) => m.kind !== "system");
  const from = conversation.historyComplete || !firstMessage ? -Infinity : itemTimeOf(firstMessage);
  const previous = new Map(conversation.messages.map((m) => [m.messageId, m]));
  record.chain.forEach((wire, seq) => {
    if (wire.at < from) return;
    // The same object where there was one: the view keeps what it drew for it.
    let line = previous.get(`change:${record.id}:${seq}`);
    if (!line?.verified) {
      try {
        line = changeLine(record.id, GroupChange.fromWire(wire));
      } catch {
        return;
      }
    }
    insertByTime(messages, line);
  });
  conversation.messages = messages;
}

/**
 * @typedef {object} HistoryHost
 * @property {Pick<Api, "history">} api
 * @property {string} me
 * @property {Receiver} receiver
 * @property {Pick<ReceiptBook, "noteSent">} receipts
 * @property {Conversations} conversations
 * @property {(conversationId: string) => void} changed
 * @property {() => void} listChanged
 * @property {() => Promise<LocalHistory | null>} [local] this profile's v2 messages, if it keeps any
 * @property {(groupId: string) => Promise<unknown> | undefined} [tellName] an admin's device
 *   sends the group's name again if someone joined since it was sent (groups.js nameOwed)
 */

export class History {
  /** @param {HistoryHost} host */
  constructor(host) {
    this.host = host;
    /** @type {Map<string, Promise<boolean>>} the page being loaded, by conversation */
    this.loading = new Map();
  }

  /**
   * An item of a page; an own message with the status its signed receipts gave it.
   *
   * @param {string} conversationId
   * @param {Record<string, unknown>} entry
   * @param {{remember?: boolean}} [options] see {@link Receiver#historyItem}
   * @returns {Promise<ChatMessage>}
   */
  async item(conversationId, entry, options) {
    const message = await this.host.receiver.historyItem(conversationId, entry, options);
    if (message.verified && message.sender === this.host.me) {
      // Its status is what signed receipts said (14.7), never the server's `delivered_to`.
      const me = this.host.me;
      showStatus(message, await this.host.receipts.noteSent(conversationId, message.messageId, [me, ...(message.awaiting ?? [])]), me);
    }
    return message;
  }

  /**
   * Mark the history as complete where there is none to fetch.
   *
   * @param {Conversation} conversation
   */
  finish(conversation) {
    Object.assign(conversation, { historyLoaded: true, historyComplete: true });
    if (conversation.kind === "group") mergeChangeLines(conversation);
    this.host.changed(conversation.id);
  }

  /**
   * Load the next page of older messages; false when there are no more. One page at a
   * time per conversation: asked again while one loads, the answer is that load's.
   *
   * @param {Conversation} conversation
   * @returns {Promise<boolean>}
   */
  loadOlder(conversation) {
    const running = this.loading.get(conversation.id);
    if (running) return running;
    const load = this.loadPage(conversation).finally(() => this.loading.delete(conversation.id));
    this.loading.set(conversation.id, load);
    return load;
  }

  /**
   * @param {Conversation} conversation
   * @returns {Promise<boolean>}
   */
  async loadPage(conversation) {
    if (conversation.historyComplete) return false;
    if (!isConversationId(conversation.id)) {
      // Only a misbehaving server names a conversation like this: nothing to page through.
      this.finish(conversation);
      return false;
    }
    if (conversation.group?.status === "removed" && conversation.group.state) {
      // No history for a former member; what it has are the membership changes.
      this.finish(conversation);
      return false;
    }
    /** @type {ChatMessage[]} */
    const older = [];
    if (!conversation.v1Done) {
      const done = await this.loadV1Page(conversation, older);
      if (done === null) return false;
    }
    // The v2 messages this profile keeps (the server cannot serve them again), merged
    // by sent_at: those down to the v1 page's oldest while v1 pages remain, then pages
    // of their own once the server's history is complete.
    const local = conversation.kind === "direct" && this.host.local ? await this.host.local() : null;
    let localDone = true;
    if (local && !conversation.localDone) {
      const from = conversation.v1Done ? null : Math.min(...older.map(itemTime));
      const page = await local.page(conversation.id, { from, before: conversation.localBefore ?? null, limit: HISTORY_PAGE });
      older.push(...page.items);
      if (from === null) {
        conversation.localBefore = page.oldest ?? conversation.localBefore ?? null;
        localDone = !page.full;
      } else {
        conversation.localBefore = [from];
        localDone = false;
      }
      conversation.localDone = localDone;
    }
    older.sort(historyOrder);
    if (conversation.kind === "direct" && !conversation.peer) await this.learnContact(conversation, older);
    conversation.messages = mergeOlder(conversation.messages, older);
    conversation.historyLoaded = true;
    conversation.historyComplete = Boolean(conversation.v1Done) && localDone;
    if (conversation.kind === "group") mergeChangeLines(conversation);
    this.host.changed(conversation.id);
    return older.length > 0 || !conversation.historyComplete;
  }

  /**
   * The server's next page (v1) into `older`; null when the conversation was finished
   * instead (nothing to fetch for this user).
   *
   * @param {Conversation} conversation
   * @param {ChatMessage[]} older
   * @returns {Promise<boolean | null>}
   */
  async loadV1Page(conversation, older) {
    let page;
    try {
      page = await this.host.api.history(conversation.id, { before: conversation.before, limit: HISTORY_PAGE });
    } catch (error) {
      if (!(conversation.kind === "group" && error instanceof ApiError && error.status === 404)) throw error;
      // The server does not (or no longer) count this device's user as a member.
      this.finish(conversation);
      return null;
    }
    const entries = Array.isArray(page?.messages) ? page.messages : [];
    for (const entry of entries) older.push(await this.item(conversation.id, entry));
    conversation.before = typeof page.next_before === "number" ? page.next_before : null;
    conversation.v1Done = conversation.before === null;
    return conversation.v1Done;
  }

  /**
   * A direct conversation whose contact did not derive from the server's list takes the
   * one an accepted message of it derives from the id (14.1), as the inbox does.
   *
   * @param {Conversation} conversation
   * @param {readonly ChatMessage[]} items
   */
  async learnContact(conversation, items) {
    for (const item of items) {
      if (!item.verified) continue;
      const peer = await derivePeer(this.host.me, conversation.id, [item.sender, ...(item.awaiting ?? [])]);
      if (peer === null) continue;
      this.host.conversations.direct(conversation.id, peer);
      this.host.listChanged();
      return;
    }
  }

  /**
   * The newest message of the most recent conversations, for the list: one message
   * each, so a fresh page shows what each conversation is about without opening it. A
   * conversation with only membership lines (a group whose chain was verified before
   * its history was read) still gets one.
   */
  async loadPreviews(count = 20) {
    for (const conversation of this.host.conversations.sorted().slice(0, count)) {
      if (conversation.messages.some((m) => m.kind !== "system") || conversation.preview || !isConversationId(conversation.id)) continue;
      if (conversation.group && conversation.group.status === "removed") continue;
      try {
        const page = await this.host.api.history(conversation.id, { limit: 1 });
        const entry = page.messages[0];
        if (!entry) continue;
        conversation.preview = await this.item(conversation.id, entry, { remember: false });
        this.host.listChanged();
      } catch {
        // A preview is a convenience: the conversation still opens normally.
      }
    }
  }

  // A new device -------------------------------------------------------------------------
  /**
   * What a new device (nothing of this account kept here yet) reads as it starts: each
   * group back until its name is found (from an admin's signed group_info only, 14.4),
   * then the newest message of the others for the list.
   */
  async loadNew() {
    for (const conversation of this.host.conversations.sorted()) {
      if (conversation.kind === "group") await this.findName(conversation);
    }
    await this.loadPreviews();
  }

  /**
   * Read a group's history back until its name is known (at most NAME_PAGES pages); an
   * admin's device then tells the group again if someone joined since (groups.js).
   *
   * @param {Conversation} conversation
   */
  async findName(conversation) {
    const record = conversation.group;
    try {
      for (let pages = 0; record && !record.name && !conversation.historyComplete && pages < NAME_PAGES; pages += 1) {
        await this.loadOlder(conversation);
      }
    } catch {
      // Unreachable for now: the group shows who is in it until its name comes.
    }
    // What was read changes the list's line for it (a page alone only redraws the chat).
    if (conversation.historyLoaded) this.host.listChanged();
    if (record?.name) await this.host.tellName?.(conversation.id);
  }
}
