/**
 * The chat screen: conversation list, message list, composer, the key-change banner and,
 * in a group, sender names, membership lines and the group's warning banner. List items
 * are drawn by conversation-list.js, conversation items by message-view.js; the
 * messenger is used only through its public methods.
 *
 * @module
 */

import { renderConversationItem } from "./conversation-list.js";
import { contactWarning, conversationTitle } from "./conversations.js";
import { byId, el, explain, setMessage, show } from "./dom.js";
import { groupTitle, groupWarning } from "./group-text.js";
import { renderItem, renderSignature } from "./message-view.js";
import { previewable } from "./transfers.js";

/** @import { Conversation } from "./conversations.js" */
/** @import { Messenger } from "./messenger.js" */

/** Images up to this size are fetched and previewed without a click. */
const AUTO_PREVIEW_BYTES = 10 * 1024 * 1024;

export class ChatView {
  /**
   * @param {Messenger} messenger
   * @param {{openContact: (name: string) => void, openAccount: () => void, openGroup: (id: string) => void,
   *   newGroup: () => void, joinGroup: () => void}} panels
   */
  constructor(messenger, panels) {
    this.messenger = messenger;
    this.panels = panels;
    this.screen = byId("chat-screen");
    this.list = byId("conversation-list");
    this.messages = byId("message-list");
    this.composer = byId("composer");
    this.text = byId("composer-text");
    this.fileInput = byId("composer-file");
    this.loadingOlder = false;
    /** @type {string | null} */
    this.openId = null;
    /** @type {WeakMap<object, {signature: string, element: HTMLElement}>} */
    this.rendered = new WeakMap();
    /** @type {HTMLElement | undefined} */
    this.historyMore = undefined;
    // Whether the reader is at the newest item: the list is kept there while items
    // grow after they were drawn (an image preview takes its height when it has loaded).
    this.stuck = true;
    /** The scroll position this view last set at the bottom: its own scroll, not the reader's. */
    this.ownScrollTop = -1;
    /** @type {import("./message-view.js").ItemActions} */
    this.itemActions = {
      me: messenger.username,
      retry: (id, messageId) => void messenger.retry(id, messageId),
      fetchFile: (message) => void messenger.fetchFile(message),
    };

    // The open conversation's title and banners follow the list: its contact may just
    // have been derived (history.js), its group renamed or found unverifiable.
    this.onConversations = () => {
      this.renderConversations();
      this.renderHeader();
      this.renderTrust();
    };
    /** @param {Event} event */
    this.onMessages = (event) => {
      if (/** @type {CustomEvent} */ (event).detail === this.openId) this.renderMessages();
    };
    /** @param {Event} event */
    this.onTrust = (event) => {
      const conversation = this.current();
      if (!conversation) return;
      const members = conversation.kind === "group" ? conversation.group?.state?.members ?? [] : [conversation.peer];
      if (members.includes(/** @type {CustomEvent} */ (event).detail)) this.renderTrust();
    };
    /** @param {Event} event */
    this.onStatus = (event) => {
      /** @type {Record<string, string>} */
      const labels = { connecting: "Connecting…", online: "Online", offline: "Offline: reconnecting" };
      const node = byId("connection");
      node.textContent = labels[/** @type {CustomEvent} */ (event).detail] ?? "";
      node.dataset.state = /** @type {CustomEvent} */ (event).detail;
    };
    messenger.addEventListener("conversations", this.onConversations);
    messenger.addEventListener("messages", this.onMessages);
    messenger.addEventListener("trust", this.onTrust);
    messenger.addEventListener("status", this.onStatus);
    /** @param {Event} event */
    this.onTyping = (event) => {
      if (/** @type {CustomEvent} */ (event).detail === this.openId) this.renderTyping();
    };
    messenger.presence.addEventListener("typing", this.onTyping);

    this.listeners = [
      [byId("new-conversation"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.startConversation();
      }],
      [this.composer, "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.send();
      }],
      [this.text, "keydown", (/** @type {KeyboardEvent} */ event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          void this.send();
        }
      }],
      [this.text, "input", () => {
        this.autosize();
        if (this.openId && this.text.value) this.messenger.presence.typed(this.openId);
      }],
      [this.fileInput, "change", () => void this.sendFiles()],
      [this.messages, "scroll", () => {
        this.noteScroll();
        void this.maybeLoadOlder();
      }],
      // Images do not bubble their load: listened for on the way down.
      [this.messages, "load", () => this.keepAtBottom(), true],
      [byId("back"), "click", () => this.close()],
      [byId("open-contact"), "click", () => this.current() && this.panels.openContact(/** @type {Conversation} */ (this.current()).peer)],
      [byId("open-group"), "click", () => this.current() && this.panels.openGroup(/** @type {Conversation} */ (this.current()).id)],
      [byId("group-banner-details"), "click", () => this.current() && this.panels.openGroup(/** @type {Conversation} */ (this.current()).id)],
      [byId("group-banner-check"), "click", () => void this.checkGroup()],
      [byId("new-group-open"), "click", () => this.panels.newGroup()],
      [byId("join-group-open"), "click", () => this.panels.joinGroup()],
      [byId("key-change-review"), "click", () => {
        const conversation = this.current();
        const name = conversation && this.messenger.changedMember(conversation);
        if (name) this.panels.openContact(name);
      }],
      [byId("key-change-accept"), "click", () => void this.acceptKeyChange()],
      [byId("open-account"), "click", () => this.panels.openAccount()],
      [document, "visibilitychange", () => {
        const conversation = this.current();
        if (document.visibilityState === "visible" && conversation?.unread) void messenger.setUnread(conversation.id, 0);
        if (conversation) this.receiptRead(conversation);
      }],
    ];
    for (const [target, type, handler, capture] of this.listeners) target.addEventListener(type, handler, Boolean(capture));
  }

  destroy() {
    for (const [target, type, handler, capture] of this.listeners) target.removeEventListener(type, handler, Boolean(capture));
    this.messenger.removeEventListener("conversations", this.onConversations);
    this.messenger.removeEventListener("messages", this.onMessages);
    this.messenger.removeEventListener("trust", this.onTrust);
    this.messenger.removeEventListener("status", this.onStatus);
    this.messenger.presence.removeEventListener("typing", this.onTyping);
    this.list.replaceChildren();
    this.messages.replaceChildren();
    show(this.screen, false);
  }

  showScreen() {
    show(this.screen);
    this.renderConversations();
    this.screen.dataset.view = "list";
  }

  current() {
    return this.openId ? this.messenger.conversation(this.openId) ?? null : null;
  }

  renderConversations() {
    const items = this.messenger.sortedConversations().map((conversation) =>
      renderConversationItem(conversation, {
        current: conversation.id === this.openId,
        open: (id) => void this.open(id),
        me: this.messenger.username,
      }),
    );
    this.list.replaceChildren(...items);
    show(byId("no-conversations"), items.length === 0);
  }

  async startConversation() {
    const input = byId("new-peer");
    const errorNode = byId("new-conversation-error");
    const name = input.value.trim();
    if (!name) return;
    setMessage(errorNode, null);
    try {
      if (name.toLowerCase() === this.messenger.username) throw new Error("That is you. Enter someone else’s username.");
      const conversation = await this.messenger.startConversation(name);
      input.value = "";
      await this.open(conversation.id);
    } catch (error) {
      setMessage(errorNode, explain(error));
    }
  }

  /** @param {string} conversationId */
  async open(conversationId) {
    this.openId = conversationId;
    // A conversation opens at its newest item.
    this.stuck = true;
    const conversation = this.current();
    if (!conversation) return;
    show(byId("conversation"));
    show(byId("nothing-open"), false);
    this.screen.dataset.view = "conversation";
    this.renderHeader();
    setMessage(byId("composer-error"), null);
    this.renderTrust();
    this.renderMessages();
    this.renderTyping();
    this.renderConversations();
    this.text.focus();
    try {
      await this.messenger.setActive(conversationId);
    } catch (error) {
      setMessage(byId("composer-error"), explain(error));
    }
    this.scrollToBottom();
  }

  close() {
    this.openId = null;
    void this.messenger.setActive(null);
    this.screen.dataset.view = "list";
    show(byId("conversation"), false);
    show(byId("nothing-open"));
    this.renderConversations();
  }

  /** The title bar: the contact or the group's name (and its member count). */
  renderHeader() {
    const conversation = this.current();
    if (!conversation) return;
    const group = conversation.kind === "group";
    const title = byId("conversation-title");
    title.textContent = conversationTitle(conversation, this.messenger.username);
    title.classList.toggle("unnamed", group && !groupTitle(conversation.group, this.messenger.username).named);
    const members = conversation.group?.state?.members;
    const subtitle = byId("conversation-subtitle");
    subtitle.textContent = group && members ? `${members.length} member${members.length === 1 ? "" : "s"}` : "";
    show(subtitle, Boolean(subtitle.textContent));
    show(byId("open-contact"), !group && Boolean(conversation.peer));
    show(byId("open-group"), group);
  }

  /** Banners and the composer: sending is paused by a key change or a group's problem. */
  renderTrust() {
    const conversation = this.current();
    if (!conversation) return;
    const changedName = this.messenger.changedMember(conversation);
    const changed = changedName !== null;
    show(byId("key-change-banner"), changed);
    byId("key-change-name").textContent = changedName ?? "";
    const group = conversation.kind === "group";
    const pin = group || !conversation.peer ? null : this.messenger.pin(conversation.peer);
    show(byId("conversation-verified"), Boolean(pin?.verified) && !changed);
    const warning = group ? groupWarning(conversation.group) : contactWarning(conversation);
    setMessage(byId("group-banner-text"), warning);
    show(byId("group-banner"), Boolean(warning));
    show(byId("group-banner-details"), group);
    show(byId("group-banner-check"), group && Boolean(warning) && conversation.group?.status !== "removed");
    const paused = changed || Boolean(warning);
    this.text.disabled = paused;
    this.fileInput.disabled = paused;
    byId("composer-send").disabled = paused;
    this.text.placeholder = changed
      ? "Sending is paused until you accept the new keys"
      : warning
        ? "Sending is paused"
        : "Write a message";
  }

  async checkGroup() {
    const conversation = this.current();
    if (!conversation || conversation.kind !== "group") return;
    setMessage(byId("composer-error"), null);
    await this.messenger.checkGroup(conversation.id);
    this.renderTrust();
  }

  renderMessages() {
    const conversation = this.current();
    if (!conversation) return;
    const list = this.messages;
    const atBottom = this.stuck || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const previousHeight = list.scrollHeight;
    const previousTop = list.scrollTop;
    // Keyed by the message object: only new or changed messages are (re)built, so a
    // long conversation does not cost a full re-render per arriving message.
    // A group's name re-sent unchanged (after each join) is shown once.
    /** @type {string | null} */
    let lastName = null;
    const visible = conversation.messages.filter((message) => {
      if (message.kind !== "info" || !message.verified || message.infoName === undefined) return true;
      const repeated = message.infoName === lastName;
      lastName = message.infoName;
      return !repeated || message.status === "failed";
    });
    const wanted = visible.map((message) => {
      const signature = renderSignature(message);
      if (message.verified && message.file && !message.transfer && previewable(message.file) && message.file.size <= AUTO_PREVIEW_BYTES) {
        void this.messenger.fetchFile(message);
      }
      const cached = this.rendered.get(message);
      if (cached && cached.signature === signature) return cached.element;
      const element = renderItem(conversation, message, this.itemActions);
      this.rendered.set(message, { signature, element });
      return element;
    });
    if (!conversation.historyComplete && conversation.historyLoaded) {
      this.historyMore ??= el("li", { className: "history-more muted", text: "Scroll up for older messages" });
      wanted.unshift(this.historyMore);
    }
    this.receiptRead(conversation);
    const keep = new Set(wanted);
    for (const child of [...list.children]) if (!keep.has(child)) child.remove();
    wanted.forEach((element, index) => {
      if (list.children[index] !== element) list.insertBefore(element, list.children[index] ?? null);
    });
    if (atBottom || this.forceBottom) {
      this.scrollToBottom();
    } else if (this.loadingOlder) {
      list.scrollTop = previousTop + (list.scrollHeight - previousHeight);
    }
  }

  async sendFiles() {
    const conversation = this.current();
    const files = [...(this.fileInput.files ?? [])];
    this.fileInput.value = "";
    if (!conversation || files.length === 0) return;
    const errorNode = byId("composer-error");
    setMessage(errorNode, null);
    const caption = this.text.value.trim();
    this.text.value = "";
    this.autosize();
    this.forceBottom = true;
    try {
      for (const [index, file] of files.entries()) {
        await this.messenger.sendFile(conversation.id, file, index === 0 ? caption : "");
      }
    } catch (error) {
      setMessage(errorNode, explain(error));
      this.renderTrust();
    } finally {
      this.forceBottom = false;
    }
  }

  /** "bob is typing…" under the messages of the open conversation. */
  renderTyping() {
    const names = this.openId ? this.messenger.presence.typing(this.openId) : [];
    const text = names.length === 0 ? "" : `${names.join(" and ")} ${names.length === 1 ? "is" : "are"} typing…`;
    byId("typing-indicator").textContent = text;
  }

  /**
   * Messages of others on screen in a visible page are read: tell their senders.
   *
   * @param {Conversation} conversation
   */
  receiptRead(conversation) {
    if (document.visibilityState !== "visible" || conversation.id !== this.openId) return;
    const ids = conversation.messages
      .filter((m) => m.verified && m.sender !== this.messenger.username && m.kind !== "info" && !m.messageId.startsWith("upload:"))
      .map((m) => m.messageId);
    if (ids.length) this.messenger.presence.read(conversation.id, ids);
  }

  scrollToBottom() {
    this.messages.scrollTop = this.messages.scrollHeight;
    this.ownScrollTop = this.messages.scrollTop;
    this.stuck = true;
  }

  /** A scroll: the reader's (at the bottom or not), or this view's own to the bottom. */
  noteScroll() {
    const list = this.messages;
    this.stuck = list.scrollTop === this.ownScrollTop || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }

  /** Something in the list grew (an image loaded): a reader at the newest item stays there. */
  keepAtBottom() {
    if (this.stuck) this.scrollToBottom();
  }

  async maybeLoadOlder() {
    const conversation = this.current();
    if (!conversation || this.loadingOlder || conversation.historyComplete || this.messages.scrollTop > 80) return;
    this.loadingOlder = true;
    try {
      await this.messenger.loadOlder(conversation.id);
    } finally {
      this.loadingOlder = false;
    }
  }

  autosize() {
    this.text.style.height = "auto";
    this.text.style.height = `${Math.min(this.text.scrollHeight, 160)}px`;
  }

  async send() {
    const conversation = this.current();
    const text = this.text.value;
    if (!conversation || !text.trim()) return;
    const errorNode = byId("composer-error");
    setMessage(errorNode, null);
    this.text.value = "";
    this.autosize();
    this.forceBottom = true;
    try {
      this.messenger.presence.sent(conversation.id);
      await this.messenger.sendText(conversation.id, text);
    } catch (error) {
      this.text.value = text;
      setMessage(errorNode, explain(error));
      this.renderTrust();
    } finally {
      this.forceBottom = false;
    }
  }

  async acceptKeyChange() {
    const conversation = this.current();
    const name = conversation && this.messenger.changedMember(conversation);
    if (!name) return;
    await this.messenger.acceptKeyChange(name);
    setMessage(byId("composer-error"), null);
    this.renderTrust();
  }
}
