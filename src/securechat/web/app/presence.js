/**
 * Typing indicators and read receipts (PROTOCOL.md 9.2, 9.3). No DOM.
 *
 * Both are metadata the user chooses to share with the other members of a conversation
 * (the server sees them too), so each has a switch, kept per account on this device:
 * with typing off nothing is sent while typing; with read receipts off nothing is sent
 * when messages are shown. What others send is shown either way (a read receipt only if
 * its reader signed it, receipts.js).
 *
 * Events: `typing` (detail: conversation id) whenever who is typing there changes.
 *
 * @module
 */

import * as store from "./store.js";

const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000;

export class Presence extends EventTarget {
  /**
   * @param {import("./inbox.js").InboxSocket} socket
   * @param {string} username
   * @param {(conversationId: string, messageIds: string[]) => Promise<void>} signRead sign and
   *   send "read" receipts for these messages of others (each once)
   */
  constructor(socket, username, signRead) {
    super();
    this.socket = socket;
    this.username = username;
    this.signRead = signRead;
    this.settings = { typing: true, readReceipts: true };
    /** @type {Map<string, Map<string, number>>} conversation -> name -> shown until (ms) */
    this.typists = new Map();
    /** @type {Map<string, number>} conversation -> when we last said we were typing */
    this.lastTyping = new Map();
    this.timer = undefined;
    /** @param {Event} event */
    this.onTyping = (event) => this.noteTyping(/** @type {CustomEvent} */ (event).detail);
    socket.addEventListener("typing", this.onTyping);
  }

  async load() {
    const saved = await store.get("state", [this.username, "presence"]);
    if (saved && typeof saved === "object") {
      this.settings = { typing: saved.typing !== false, readReceipts: saved.readReceipts !== false };
    }
  }

  /** @param {{typing?: boolean, readReceipts?: boolean}} changes */
  async configure(changes) {
    this.settings = { ...this.settings, ...changes };
    await store.put("state", [this.username, "presence"], { ...this.settings });
  }

  stop() {
    this.socket.removeEventListener("typing", this.onTyping);
    clearTimeout(this.timer);
  }

  /**
   * The user typed in the composer of a conversation.
   *
   * @param {string} conversationId
   */
  typed(conversationId) {
    if (!this.settings.typing) return;
    const now = Date.now();
    if (now - (this.lastTyping.get(conversationId) ?? 0) < TYPING_EVERY_MS) return;
    if (this.socket.sendFrame({ type: "typing", conversation_id: conversationId })) {
      this.lastTyping.set(conversationId, now);
    }
  }

  /**
   * The user sent a message: the next keystroke announces typing again.
   *
   * @param {string} conversationId
   */
  sent(conversationId) {
    this.lastTyping.delete(conversationId);
  }

  /**
   * Messages of others that the user has on screen: tell their senders, in receipts
   * signed here (9.3), unless read receipts are off.
   *
   * @param {string} conversationId
   * @param {string[]} messageIds
   */
  read(conversationId, messageIds) {
    if (!this.settings.readReceipts) return;
    void this.signRead(conversationId, messageIds);
  }

  /**
   * A message from `name` arrived: they stopped typing it.
   *
   * @param {string} conversationId
   * @param {string} name
   */
  stoppedTyping(conversationId, name) {
    const names = this.typists.get(conversationId);
    if (names?.delete(name)) this.dispatchEvent(new CustomEvent("typing", { detail: conversationId }));
  }

  /**
   * @param {string} conversationId
   * @returns {string[]} who is typing in the conversation now
   */
  typing(conversationId) {
    const now = Date.now();
    const names = this.typists.get(conversationId) ?? new Map();
    return [...names].filter(([, until]) => until > now).map(([name]) => name).sort();
  }

  /** @param {any} frame a `typing` frame as parsed from JSON, checked here */
  noteTyping(frame) {
    const conversationId = typeof frame?.conversation_id === "string" ? frame.conversation_id : null;
    const name = typeof frame?.from === "string" ? frame.from : null;
    if (!conversationId || !name || name === this.username) return;
    const names = this.typists.get(conversationId) ?? new Map();
    names.set(name, Date.now() + TYPING_SHOWN_MS);
    this.typists.set(conversationId, names);
    this.dispatchEvent(new CustomEvent("typing", { detail: conversationId }));
    // Expire the indicator when its time is up.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      for (const id of this.typists.keys()) this.dispatchEvent(new CustomEvent("typing", { detail: id }));
    }, TYPING_SHOWN_MS + 50);
  }
}
