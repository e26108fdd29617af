/**
 * The chat screen: conversation list, message list, composer, the key-change banner and,
 * in a group, sender names, membership lines and the group's warning banner.
 *
 * @module
 */

import { byId, el, explain, fullTime, humanSize, setMessage, shortTime, show } from "./dom.js";
import { mismatchText } from "./groups.js";
import { conversationTitle } from "./messenger.js";
import { previewable } from "./transfers.js";

/** @import { ChatMessage, Conversation } from "./messenger.js" */

/** Images up to this size are fetched and previewed without a click. */
const AUTO_PREVIEW_BYTES = 10 * 1024 * 1024;

/**
 * Why sending to a group is paused, or null.
 *
 * @param {import("./groups.js").GroupRecord | undefined} record
 * @returns {string | null}
 */
export function groupWarning(record) {
  if (!record) return null;
  if (record.problem) return `This group’s membership cannot be verified: ${record.problem}. Sending is disabled.`;
  if (record.status === "removed" && record.state) return "You are no longer a member of this group.";
  if (record.mismatch) return mismatchText(record.mismatch);
  return null;
}

/**
 * The list's one-line summary of a conversation's newest item.
 *
 * @param {Conversation} conversation
 * @returns {string}
 */
function previewText(conversation) {
  const last = conversation.messages.at(-1) ?? conversation.preview;
  if (!last) return "";
  if (!last.verified) return last.kind === "system" ? "Unverifiable membership change" : "Unverifiable message";
  if (last.kind) return `${last.sender} ${last.text ?? ""}`;
  const fileName = last.file?.name ?? last.upload?.name;
  const text = fileName ? `📎 ${fileName}` : last.text ?? "";
  return conversation.kind === "group" ? `${last.sender}: ${text}` : text;
}

/** @type {Record<string, string>} */
const STATUS_LABELS = {
  uploading: "Encrypting and uploading…",
  sending: "Sending…",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Not sent",
};

export class ChatView {
  /**
   * @param {import("./messenger.js").Messenger} messenger
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

    this.onConversations = () => this.renderConversations();
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
    this.onGroup = (event) => {
      if (/** @type {CustomEvent} */ (event).detail === this.openId) {
        this.renderHeader();
        this.renderTrust();
      }
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
    messenger.addEventListener("group", this.onGroup);
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
      [this.messages, "scroll", () => void this.maybeLoadOlder()],
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
        if (document.visibilityState === "visible" && conversation?.unread) void messenger.setUnread(conversation, 0);
        if (conversation) this.receiptRead(conversation);
      }],
    ];
    for (const [target, type, handler] of this.listeners) target.addEventListener(type, handler);
  }

  destroy() {
    for (const [target, type, handler] of this.listeners) target.removeEventListener(type, handler);
    this.messenger.removeEventListener("conversations", this.onConversations);
    this.messenger.removeEventListener("messages", this.onMessages);
    this.messenger.removeEventListener("trust", this.onTrust);
    this.messenger.removeEventListener("group", this.onGroup);
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
    return this.openId ? this.messenger.conversations.get(this.openId) ?? null : null;
  }

  renderConversations() {
    const items = this.messenger.sortedConversations().map((conversation) => {
      const title = conversationTitle(conversation);
      const group = conversation.kind === "group";
      const warning = group && groupWarning(conversation.group);
      const avatar = [...title][0]?.toUpperCase() ?? "?";
      const button = el("button", { className: "conversation-item", attrs: { type: "button" } }, [
        el("span", { className: group ? "avatar group" : "avatar", text: avatar, attrs: { "aria-hidden": "true" } }),
        el("span", { className: "conversation-text" }, [
          el("span", { className: "conversation-name" }, [
            ...(group ? [el("span", { className: "visually-hidden", text: "Group: " })] : []),
            el("span", { className: "conversation-title", text: title }),
            ...(warning
              ? [
                  el("span", { className: "conversation-warning", text: " ⚠", attrs: { title: warning, "aria-hidden": "true" } }),
                  el("span", { className: "visually-hidden", text: " (sending paused)" }),
                ]
              : []),
          ]),
          el("span", { className: "conversation-preview", text: previewText(conversation) }),
        ]),
        el("span", { className: "conversation-meta" }, [
          el("time", { className: "conversation-time", text: shortTime(conversation.lastActivity) }),
          ...(conversation.unread
            ? [el("span", { className: "unread", text: String(conversation.unread), attrs: { "aria-label": `${conversation.unread} unread` } })]
            : []),
        ]),
      ]);
      if (group) {
        button.dataset.group = conversation.id;
      } else {
        button.dataset.peer = conversation.peer;
      }
      if (conversation.id === this.openId) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => void this.open(conversation.id));
      return el("li", {}, [button]);
    });
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
    this.messenger.activeId = null;
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
    byId("conversation-title").textContent = conversationTitle(conversation);
    const members = conversation.group?.state?.members;
    const subtitle = byId("conversation-subtitle");
    subtitle.textContent = group && members ? `${members.length} member${members.length === 1 ? "" : "s"}` : "";
    show(subtitle, Boolean(subtitle.textContent));
    show(byId("open-contact"), !group);
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
    const pin = group ? null : this.messenger.pins.get(conversation.peer);
    show(byId("conversation-verified"), Boolean(pin?.verified) && !changed);
    const warning = group ? groupWarning(conversation.group) : null;
    setMessage(byId("group-banner-text"), warning);
    show(byId("group-banner"), Boolean(warning));
    show(byId("group-banner-check"), Boolean(warning) && conversation.group?.status !== "removed");
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
    await this.messenger.groups.check(conversation.id);
    this.renderTrust();
  }

  renderMessages() {
    const conversation = this.current();
    if (!conversation) return;
    const list = this.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
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
      const transfer = message.transfer;
      const signature = `${message.verified}|${message.status}|${message.serverTs}|${message.text}|${message.reason}|${transfer?.state}|${transfer?.done}`;
      if (message.verified && message.file && !transfer && previewable(message.file) && message.file.size <= AUTO_PREVIEW_BYTES) {
        void this.messenger.fetchFile(message);
      }
      const cached = this.rendered.get(message);
      if (cached && cached.signature === signature) return cached.element;
      const element = this.renderMessage(conversation, message);
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

  /**
   * A membership change, or a group's name: one centred line, not a bubble.
   *
   * @param {Conversation} conversation
   * @param {ChatMessage} message
   * @returns {HTMLElement}
   */
  renderLine(conversation, message) {
    const item = el("li", { className: "system-line" });
    item.dataset.messageId = message.messageId;
    item.dataset.kind = message.kind ?? "";
    item.dataset.verified = String(message.verified);
    if (!message.verified) {
      item.classList.add("unverifiable");
      const what = message.kind === "system" ? "A membership change" : "A message";
      item.append(
        el("p", { className: "line-text", text: `⚠ ${what} failed a security check and is not applied (${message.reason ?? "unknown reason"}).` }),
      );
      return item;
    }
    const time = el("time", { className: "line-time", text: shortTime(message.sentAt ?? message.serverTs) });
    time.title = `${fullTime(message.sentAt)} (the signer’s clock)`;
    item.append(
      el("p", { className: "line-text" }, [
        el("span", { className: "line-actor", text: message.sender }),
        document.createTextNode(` ${message.text ?? ""} `),
        time,
      ]),
    );
    if (message.sender === this.messenger.username && message.status === "failed" && message.envelopeText) {
      const retry = el("button", { className: "link", text: "Not sent: retry", attrs: { type: "button" } });
      retry.addEventListener("click", () => void this.messenger.retry(conversation.id, message.messageId));
      item.append(retry);
    }
    return item;
  }

  /**
   * @param {Conversation} conversation
   * @param {ChatMessage} message
   * @returns {HTMLElement}
   */
  renderMessage(conversation, message) {
    if (message.kind) return this.renderLine(conversation, message);
    const mine = message.sender === this.messenger.username;
    const group = conversation.kind === "group";
    const item = el("li", { className: `message ${mine ? "mine" : "theirs"}` });
    item.dataset.messageId = message.messageId;
    item.dataset.verified = String(message.verified);
    if (group && !mine) {
      item.dataset.sender = message.sender;
      const label = message.verified ? message.sender : `${message.sender} (claimed, not verified)`;
      item.append(el("p", { className: "message-sender", text: label }));
    }
    if (!message.verified) {
      item.classList.add("unverifiable");
      item.append(
        el("p", { className: "message-text", text: "⚠ Unverifiable message" }),
        el("p", { className: "message-reason", text: `This message failed a security check and is not shown (${message.reason ?? "unknown reason"}). It may have been altered or forged.` }),
      );
    } else {
      if (message.file || message.upload) item.append(this.renderFile(message));
      if (message.text || !(message.file || message.upload)) {
        item.append(el("p", { className: "message-text", text: message.text ?? "" }));
      }
    }
    const meta = el("p", { className: "message-meta" });
    const time = el("time", { text: shortTime(message.sentAt ?? message.serverTs) });
    time.title = `Sent ${fullTime(message.sentAt)} (sender’s clock) · Server ${fullTime(message.serverTs)}`;
    if (message.sentAt) time.setAttribute("datetime", new Date(message.sentAt).toISOString());
    meta.append(time);
    meta.append(el("span", { className: "server-time", text: message.serverTs ? ` · server ${shortTime(message.serverTs)}` : "" }));
    if (mine && message.verified) {
      const status = el("span", { className: `status status-${message.status}`, text: ` · ${STATUS_LABELS[message.status] ?? ""}` });
      meta.append(status);
      if (message.status === "failed" && message.envelopeText) {
        const retry = el("button", { className: "link", text: "Retry", attrs: { type: "button" } });
        retry.addEventListener("click", () => void this.messenger.retry(conversation.id, message.messageId));
        meta.append(" ", retry);
      }
    }
    item.append(meta);
    return item;
  }

  /**
   * A shared file: name and size, progress, then a preview (images) and a save link.
   *
   * @param {ChatMessage} message
   * @returns {HTMLElement}
   */
  renderFile(message) {
    const file = message.file ?? null;
    const name = file?.name ?? message.upload?.name ?? "file";
    const size = file?.size ?? message.upload?.size ?? 0;
    const mediaType = file?.mediaType ?? message.upload?.mediaType ?? "";
    const card = el("div", { className: "file-card" }, [
      el("span", { className: "file-icon", text: "📄", attrs: { "aria-hidden": "true" } }),
      el("span", { className: "file-name", text: name }),
      el("span", { className: "file-details muted small", text: `${humanSize(size)} · ${mediaType}` }),
    ]);
    const transfer = message.transfer;
    if (transfer && (transfer.state === "uploading" || transfer.state === "downloading")) {
      const verb = transfer.state === "uploading" ? "Uploading" : "Downloading";
      const percent = transfer.total ? Math.floor((100 * transfer.done) / transfer.total) : 100;
      card.append(
        el("progress", {
          className: "file-progress",
          attrs: { max: "100", value: String(percent), "aria-label": `${verb} ${name}` },
        }),
        el("span", { className: "file-percent small", text: `${verb} ${percent}%` }),
      );
    }
    if (transfer?.state === "ready" && transfer.url) {
      if (file && previewable(file)) {
        card.append(el("img", { className: "file-preview", attrs: { src: transfer.url, alt: `Preview of ${name}` } }));
      }
      /** @type {Record<string, string>} */
      const attrs = { href: transfer.url, download: name };
      if (transfer.type) attrs.type = transfer.type;
      card.append(el("a", { className: "file-save", text: `Save ${name}`, attrs }));
    }
    if (transfer?.state === "failed") {
      card.append(el("p", { className: "file-error error small", text: transfer.error ?? "The transfer failed." }));
    }
    const mayFetch = file && message.status !== "uploading" && (!transfer || transfer.state === "failed");
    if (mayFetch) {
      const label = transfer?.state === "failed" ? "Try again" : "Download";
      const button = el("button", { className: "secondary file-download", text: label, attrs: { type: "button", "aria-label": `${label}: ${name}` } });
      button.addEventListener("click", () => void this.messenger.fetchFile(message));
      card.append(button);
    }
    return card;
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
