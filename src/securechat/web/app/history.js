/**
 * Pages of history (PROTOCOL.md 9.1): fetched newest first, each envelope decided by
 * the core as one delivered in that conversation (receive.js), merged before what is on
 * screen with nothing shown twice; a group's membership changes placed among them; the
 * newest message of recent conversations fetched for the list. No DOM.
 *
 * @module
 */

import { GroupChange, isPlainObject } from "../protocol/index.js";
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
/** Conversations whose newest message is fetched for the list. */
const PREVIEWS = 20;
/** How far back (in pages) a new device looks for a group's name. */
const NAME_PAGES = 10;
/** How many conversations a new device reads for unread messages as it starts. */
const FIRST_PAGES = 50;

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
 * @property {Pick<ReceiptBook, "noteSent" | "delivered" | "sendDelivered">} receipts
 * @property {Conversations} conversations
 * @property {(conversationId: string) => void} changed
 * @property {() => void} listChanged
 * @property {() => Promise<LocalHistory | null>} [local] this profile's v2 messages, if it keeps any
 * @property {(conversationId: string, count: number) => Promise<void>} [setUnread]
 * @property {(groupId: string) => Promise<unknown> | undefined} [tellName] an admin's device
 *   sends the group's name again if someone joined since it was sent (groups.js nameOwed)
 */

/**
 * A page of history as the server answered it: its entries, or none.
 *
 * @param {unknown} page
 * @returns {Record<string, unknown>[]}
 */
function entriesOf(page) {
  const entries = isPlainObject(page) && Array.isArray(page.messages) ? page.messages : [];
  return entries.filter((entry) => isPlainObject(entry));
}

export class History {
  /** @param {HistoryHost} host */
  constructor(host) {
    this.host = host;
    /** @type {Map<string, Promise<unknown>>} a new device's first pages, by conversation ({@link fetchNewest}) */
    this.newest = new Map();
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
    // A new device's first page was fetched before its inbox socket connected.
    let page = conversation.before === null ? await this.takeNewest(conversation.id) : null;
    try {
      page ??= await this.host.api.history(conversation.id, { before: conversation.before, limit: HISTORY_PAGE });
    } catch (error) {
      if (!(conversation.kind === "group" && error instanceof ApiError && error.status === 404)) throw error;
      // The server does not (or no longer) count this device's user as a member.
      this.finish(conversation);
      return null;
    }
    for (const entry of entriesOf(page)) older.push(await this.item(conversation.id, entry));
    const next = isPlainObject(page) ? page.next_before : null;
    conversation.before = typeof next === "number" ? next : null;
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
  async loadPreviews(count = PREVIEWS) {
    for (const conversation of this.host.conversations.sorted().slice(0, count)) {
      if (conversation.messages.some((m) => m.kind !== "system") || conversation.preview || !isConversationId(conversation.id)) continue;
      if (conversation.group && conversation.group.status === "removed") continue;
      try {
        const page = (await this.takeNewest(conversation.id)) ?? (await this.host.api.history(conversation.id, { limit: 1 }));
        const entry = entriesOf(page)[0];
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
   * A new device (nothing of this account kept here yet): fetch the newest page of the
   * most recent conversations at once. Call it before the inbox socket connects. A new
   * device starts reading the inbox at its head and its first acknowledgement covers all
   * of it, after which the server counts every message as delivered to this account;
   * read before, the pages still say which messages no device of the account has
   * received ({@link loadNew}).
   *
   * @param {number} [count]
   */
  async fetchNewest(count = FIRST_PAGES) {
    const listed = this.host.conversations.sorted().filter((conversation) => isConversationId(conversation.id));
    for (const conversation of listed.slice(0, count)) {
      const page = this.host.api.history(conversation.id, { limit: HISTORY_PAGE }).catch(() => null);
      this.newest.set(conversation.id, page);
    }
    await Promise.all(this.newest.values());
  }

  /**
   * A page {@link fetchNewest} fetched, once; null if there is none (or it failed).
   *
   * @param {string} conversationId
   * @returns {Promise<unknown>}
   */
  async takeNewest(conversationId) {
    const page = this.newest.get(conversationId);
    this.newest.delete(conversationId);
    return (await page) ?? null;
  }

  /**
   * What a new device makes of the pages {@link fetchNewest} fetched: the messages of
   * others that no device of this account had received count as unread (the server's
   * `delivered_to` is only a hint for a count: a message shows as it is decided, like
   * any) and are receipted as delivered, since this device has them now; each group is
   * read back until its name is found (from an admin's signed group_info only, 14.4);
   * the rest get their newest message for the list.
   */
  async loadNew() {
    for (const [id, pending] of [...this.newest]) {
      const conversation = this.host.conversations.get(id);
      if (conversation) await this.countUnread(conversation, entriesOf(await pending));
    }
    await this.host.receipts.sendDelivered();
    for (const conversation of this.host.conversations.sorted()) {
      if (conversation.kind === "group") await this.findName(conversation);
    }
    await this.loadPreviews();
  }

  /**
   * Count as unread the messages of others among `entries` that no device of this
   * account received (the inbox counts those it shows itself).
   *
   * @param {Conversation} conversation
   * @param {Record<string, unknown>[]} entries a page, newest first
   */
  async countUnread(conversation, entries) {
    const me = this.host.me;
    let count = 0;
    for (const entry of entries) {
      const deliveredTo = Array.isArray(entry.delivered_to) ? entry.delivered_to : [];
      if (entry.sender === me || deliveredTo.includes(me)) continue;
      const item = await this.item(conversation.id, entry, { remember: false });
      // A group's name is a line, not a message to read, as in the inbox.
      if (item.kind || item.sender === me) continue;
      if (conversation.messages.some((m) => m.messageId === item.messageId)) continue;
      count += 1;
      if (item.verified) this.host.receipts.delivered(conversation.id, item.sender, item.messageId);
    }
    if (count && this.host.setUnread) await this.host.setUnread(conversation.id, conversation.unread + count);
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
