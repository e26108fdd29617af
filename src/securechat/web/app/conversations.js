/**
 * The conversations on screen and their items: direct chats, whose contact is derived
 * from the conversation id (PROTOCOL.md 14.1), never taken from the server; groups; and
 * how items from the inbox, history and receipts join them, each once. No DOM, no I/O.
 *
 * @module
 */

import { directPeer } from "../core/index.js";
import { isPlainObject, parseConversationId } from "../protocol/index.js";
import { groupTitle, listNames } from "./group-text.js";

/** @import { FileDescriptor } from "../protocol/index.js" */
/** @import { Reason } from "../core/reasons.js" */
/** @import { GroupRecord } from "./groups.js" */

/** What a direct conversation is called while no contact derives from its id. */
export const UNKNOWN_CONTACT = "Unknown contact";

/**
 * @typedef {object} ChatMessage
 * @property {string} messageId (`change:<group>:<seq>` for a membership change)
 * @property {string} conversationId
 * @property {string} sender the verified sender; for an unverifiable item, the claimed one
 * @property {"system" | "info"} [kind] a membership change (not a message), or a group_info
 *   message; both shown as a line in the conversation; plain messages have no kind
 * @property {string} [infoName] the name a group_info message gives
 * @property {string[]} [awaiting] own messages: the other recipients, for "Delivered"
 * @property {Set<string>} [deliveredTo] own messages: who acknowledged it so far
 * @property {string | null} text null when unverifiable
 * @property {number | null} sentAt the sender's clock (signed), ms
 * @property {number | null} serverTs the server's clock, ms
 * @property {boolean} verified
 * @property {Reason | null} refusal the core's reason code when unverifiable
 * @property {string | null} reason why sending failed (own messages)
 * @property {"uploading" | "sending" | "sent" | "delivered" | "read" | "received" | "failed"} status
 * @property {string | null} envelopeText the envelope as received, to recognise copies
 * @property {true} [imported] a row of an archive (a restored backup or a device's
 *   hand-over, PROTOCOL.md 15.10): never shown instead of a message verified here
 * @property {FileDescriptor | null} [file] a shared file (key included)
 * @property {FileTransfer} [transfer] upload or download progress of that file
 * @property {{name: string, size: number, mediaType: string}} [upload] own file being
 *   uploaded: what to show until the message (and its descriptor) exists
 * @property {Set<string>} [readBy] own messages: who has said they read it
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
 * @property {string} peer a direct conversation's contact, derived from its id; "" for a
 *   group, or while no name this device knows derives
 * @property {string[]} listed a direct conversation's members as the server lists them
 *   (shown, never trusted)
 * @property {GroupRecord} [group] a group's verified state
 * @property {number} lastActivity ms
 * @property {number} unread
 * @property {ChatMessage[]} messages oldest first
 * @property {number | null} before history cursor for older messages
 * @property {boolean} historyLoaded
 * @property {boolean} historyComplete
 * @property {boolean} [v1Done] the server's history (v1) is all loaded
 * @property {IDBValidKey[] | null} [localBefore] where the next page of locally kept v2
 *   messages ends (exclusive; v2-history.js)
 * @property {boolean} [localDone] all locally kept v2 messages are loaded
 * @property {ChatMessage} [preview] the newest message, before the history is loaded
 */

/**
 * Conversation ids come from the server too: only well-formed ones go into a request.
 *
 * @param {unknown} value
 * @returns {boolean}
 */
export function isConversationId(value) {
  try {
    parseConversationId(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * What a conversation is called: the derived contact, or the group's name (or, while no
 * name is known here, who is in it: group-text.js groupTitle).
 *
 * @param {Conversation} conversation
 * @param {string} [me] this device's user, left out of a nameless group's members
 * @returns {string}
 */
export function conversationTitle(conversation, me = "") {
  if (conversation.kind === "group") return groupTitle(conversation.group, me).title;
  return conversation.peer || UNKNOWN_CONTACT;
}

/**
 * When an item happened, for placing it among others: the signer's clock, else the server's.
 *
 * @param {ChatMessage} item
 * @returns {number}
 */
export function itemTimeOf(item) {
  return item.sentAt ?? item.serverTs ?? 0;
}

/**
 * Put `line` into `messages` (oldest first) before the first item that is later than it.
 *
 * @param {ChatMessage[]} messages changed in place
 * @param {ChatMessage} line
 */
export function insertByTime(messages, line) {
  const at = itemTimeOf(line);
  const index = messages.findIndex((m) => itemTimeOf(m) > at);
  messages.splice(index === -1 ? messages.length : index, 0, line);
}

/**
 * Why nothing is sent in a direct conversation: its contact did not derive from its id
 * (PROTOCOL.md 14.1), whatever the server lists; null when it did (or for a group).
 *
 * @param {Conversation} conversation
 * @returns {string | null}
 */
export function contactWarning(conversation) {
  if (conversation.kind !== "direct" || conversation.peer) return null;
  const listed = conversation.listed.length ? `The server lists ${listNames(conversation.listed)} in it, but it` : "It";
  return `${listed} is not your conversation with anyone this device knows, so its contact cannot be shown. Nothing is sent to it.`;
}

/**
 * Whose direct conversation this id is (PROTOCOL.md 14.1): the names the server lists
 * and the contacts this device knows are only candidates; the one whose conversation
 * with `me` has this id is the contact, and null if none has.
 *
 * @param {string} me
 * @param {string} id
 * @param {Iterable<unknown>} listed the server's members, or a frame's claims
 * @param {Iterable<string>} [known] contacts pinned on this device
 * @returns {Promise<string | null>}
 */
export function derivePeer(me, id, listed, known = []) {
  const names = new Set();
  for (const name of [...listed, ...known]) if (typeof name === "string" && name.length > 0) names.add(name);
  return directPeer(me, id, names);
}

/**
 * Whether two accepted items are the same message: the same id, in the same conversation,
 * from the same sender. An id alone is not enough: a contact can sign a message of his own
 * under an id he learnt (that of a restored row, or of a v1 message, v1 and v2 ids being
 * kept apart by the server), and that is another message, which must not hide this one.
 *
 * @param {Pick<ChatMessage, "messageId" | "conversationId" | "sender">} a
 * @param {Pick<ChatMessage, "messageId" | "conversationId" | "sender">} b
 * @returns {boolean}
 */
function sameMessage(a, b) {
  return a.messageId === b.messageId && a.conversationId === b.conversationId && a.sender === b.sender;
}

/**
 * What `sameMessage` compares, as one string (unambiguous: a JSON array).
 *
 * @param {Pick<ChatMessage, "messageId" | "conversationId" | "sender">} m
 * @returns {string}
 */
function messageKey(m) {
  return JSON.stringify([m.messageId, m.conversationId, m.sender]);
}

/**
 * Whether an item is already among `shown` (a history page overlapping what the inbox
 * or an earlier page showed): the same message accepted twice, or the same envelope
 * refused twice. A replay the inbox flagged does not hide the original, and an imported
 * copy (15.10.1) does not hide a message this device verifies itself.
 *
 * @param {readonly ChatMessage[]} shown
 * @param {ChatMessage} item
 * @returns {boolean}
 */
export function alreadyShown(shown, item) {
  return shown.some(
    (m) =>
      m.messageId === item.messageId &&
      ((m.verified && item.verified && sameMessage(m, item) && (!m.imported || Boolean(item.imported))) ||
        (!m.verified && !item.verified && m.envelopeText === item.envelopeText && m.refusal !== "replayed")),
  );
}

/**
 * A page of older items (oldest first) put before those shown, each once. An imported
 * copy of a message verified here (among those shown or in the page: a v1 message the
 * server serves again, a v2 one this device accepted) is left out, whatever its time:
 * an archive's row is only as trustworthy as whoever made the archive (15.10.1). Only
 * that message replaces it (`sameMessage`): another conversation's or another sender's
 * message with its id leaves it, and both show.
 *
 * @param {readonly ChatMessage[]} shown
 * @param {readonly ChatMessage[]} older
 * @returns {ChatMessage[]}
 */
export function mergeOlder(shown, older) {
  const verifiedHere = new Set([...shown, ...older].filter((m) => m.verified && !m.imported).map(messageKey));
  const keep = (/** @type {ChatMessage} */ m) => !(m.imported && verifiedHere.has(messageKey(m)));
  const current = shown.filter(keep);
  /** @type {ChatMessage[]} */
  const kept = [];
  for (const item of older) {
    if (keep(item) && !alreadyShown(current, item) && !alreadyShown(kept, item)) kept.push(item);
  }
  return [...kept, ...current];
}

/**
 * A receipt for own messages: "Delivered" (or "Read") once every other recipient has
 * said so (in a direct chat: the contact). The ids of the conversations that changed.
 *
 * @param {Iterable<Conversation>} conversations
 * @param {{me: string, ids: ReadonlySet<unknown>, reader: string, status: "delivered" | "read"}} receipt
 * @returns {string[]}
 */
export function applyReceipt(conversations, { me, ids, reader, status }) {
  /** @type {string[]} */
  const changed = [];
  for (const conversation of conversations) {
    let touched = false;
    for (const message of conversation.messages) {
      if (!ids.has(message.messageId) || message.sender !== me || !message.verified) continue;
      if (message.status === "read" || (status === "delivered" && message.status === "delivered")) continue;
      const who = status === "read" ? (message.readBy ??= new Set()) : (message.deliveredTo ??= new Set());
      who.add(reader);
      const awaiting = message.awaiting ?? [];
      if (awaiting.every((name) => who.has(name))) {
        message.status = status;
        touched = true;
      }
    }
    if (touched) changed.push(conversation.id);
  }
  return changed;
}

/** The conversations of one account, by id. */
export class Conversations {
  /** @param {string} me */
  constructor(me) {
    this.me = me;
    /** @type {Map<string, Conversation>} */
    this.byId = new Map();
  }

  /**
   * @param {string} id
   * @returns {Conversation | undefined}
   */
  get(id) {
    return this.byId.get(id);
  }

  /** @returns {Conversation[]} */
  all() {
    return [...this.byId.values()];
  }

  /** Conversations, most recent activity first. */
  sorted() {
    return this.all().sort(
      (a, b) =>
        b.lastActivity - a.lastActivity || conversationTitle(a, this.me).localeCompare(conversationTitle(b, this.me)),
    );
  }

  /** @returns {number} unread items over all conversations */
  unreadTotal() {
    return this.all().reduce((sum, conversation) => sum + conversation.unread, 0);
  }

  /**
   * @param {string} id
   * @param {"direct" | "group"} kind
   * @returns {Conversation}
   */
  make(id, kind) {
    /** @type {Conversation} */
    const conversation = {
      id,
      kind,
      peer: "",
      listed: [],
      lastActivity: 0,
      unread: 0,
      messages: [],
      before: null,
      historyLoaded: false,
      historyComplete: false,
    };
    this.byId.set(id, conversation);
    return conversation;
  }

  /**
   * The direct conversation with this id, made if new. `peer` must be derived from the
   * id (14.1): {@link derivePeer}, or an accepted message's peer; null if none derives.
   * A conversation whose contact was unknown takes it once one derives.
   *
   * @param {string} id
   * @param {string | null} peer
   * @returns {Conversation}
   */
  direct(id, peer) {
    const conversation = this.byId.get(id) ?? this.make(id, "direct");
    if (conversation.kind === "direct" && !conversation.peer && peer) conversation.peer = peer;
    return conversation;
  }

  /**
   * The server's list of conversations (9.1) taken in: a direct conversation's contact
   * is derived from its id, the listed members and the contacts pinned here being only
   * candidates; one whose contact does not derive keeps none. Unread counts come from
   * this device. The groups listed, with the server's member lists, are returned, for
   * the group book to compare with the verified ones.
   *
   * @param {unknown} answer the server's answer, `{conversations: [...]}`
   * @param {{known: string[], unread: ReadonlyMap<string, number>, group: (id: string) => GroupRecord}} context
   *   known: contacts pinned here; group: the group book's record for an id
   * @returns {Promise<[string, string[]][]>}
   */
  async applyListing(answer, { known, unread, group }) {
    /** @type {[string, string[]][]} */
    const groups = [];
    const items = isPlainObject(answer) && Array.isArray(answer.conversations) ? answer.conversations : [];
    for (const item of items) {
      if (!isPlainObject(item) || typeof item.id !== "string") continue;
      const listed = Array.isArray(item.members) ? item.members.map((/** @type {unknown} */ name) => String(name)) : [];
      let conversation;
      if (item.kind === "direct" && !item.id.startsWith("grp-")) {
        conversation = this.direct(item.id, await derivePeer(this.me, item.id, listed, known));
        conversation.listed = listed.filter((name) => name !== this.me);
      } else if (item.kind === "group" && item.id.startsWith("grp-") && isConversationId(item.id)) {
        conversation = this.group(group(item.id));
        groups.push([item.id, listed]);
      } else {
        continue;
      }
      const last = [item.last_message_at, item.created_at].find((value) => Number.isSafeInteger(value));
      conversation.lastActivity = Math.max(conversation.lastActivity, /** @type {number | undefined} */ (last) ?? 0);
      conversation.unread = unread.get(item.id) ?? conversation.unread;
    }
    for (const conversation of this.byId.values()) {
      if (conversation.kind === "group") conversation.unread = unread.get(conversation.id) ?? conversation.unread;
    }
    return groups;
  }

  /**
   * Lines for a group's newly verified changes, each once and in its place by time (a
   * new device verifies a chain whose changes are older than what it shows); true if
   * any was added.
   *
   * @param {GroupRecord} record
   * @param {readonly ChatMessage[]} lines
   * @returns {boolean}
   */
  addLines(record, lines) {
    const conversation = this.group(record);
    let added = false;
    for (const line of lines) {
      if (conversation.messages.some((m) => m.messageId === line.messageId)) continue;
      insertByTime(conversation.messages, line);
      conversation.lastActivity = Math.max(conversation.lastActivity, line.sentAt ?? 0);
      added = true;
    }
    return added;
  }

  /**
   * The conversation of a group.
   *
   * @param {GroupRecord} record
   * @returns {Conversation}
   */
  group(record) {
    let conversation = this.byId.get(record.id);
    if (!conversation) {
      conversation = this.make(record.id, "group");
      conversation.lastActivity = record.chain.at(-1)?.at ?? 0;
    }
    conversation.group = record;
    return conversation;
  }
}
