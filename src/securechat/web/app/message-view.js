/**
 * One item of a conversation as DOM: a message bubble (text, a shared file, delivery
 * status), a line (a membership change, a group's name), or an unverifiable item with
 * the reason the core gave, in words (reasons.js). Text only, never HTML.
 *
 * @module
 */

import { itemTimeOf } from "./conversations.js";
import { el, fullTime, humanSize, shortTime } from "./dom.js";
import { previewable } from "./transfers.js";
import { reasonText } from "./reasons.js";

/** @import { ChatMessage, Conversation } from "./conversations.js" */

/**
 * What an item's controls do, and who is reading.
 *
 * @typedef {object} ItemActions
 * @property {string} me
 * @property {(conversationId: string, messageId: string) => void} retry
 * @property {(message: ChatMessage) => void} fetchFile
 */

/** @type {Record<string, string>} */
const STATUS_LABELS = {
  uploading: "Encrypting and uploading…",
  sending: "Sending…",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Not sent",
};

/**
 * The list's one-line summary of a conversation's newest item.
 *
 * @param {Conversation} conversation
 * @returns {string}
 */
export function previewText(conversation) {
  const shown = conversation.messages.at(-1);
  const preview = conversation.preview;
  // A membership line older than the newest message (a group's chain verified before its
  // history was read) does not stand for the conversation.
  const last = shown && preview && itemTimeOf(preview) > itemTimeOf(shown) ? preview : shown ?? preview;
  if (!last) return "";
  if (!last.verified) return last.kind === "system" ? "Unverifiable membership change" : "Unverifiable message";
  if (last.kind) return `${last.sender} ${last.text ?? ""}`;
  const fileName = last.file?.name ?? last.upload?.name;
  const text = fileName ? `📎 ${fileName}` : last.text ?? "";
  return conversation.kind === "group" ? `${last.sender}: ${text}` : text;
}

/**
 * What tells two renderings of an item apart: it is rebuilt only when this changes.
 *
 * @param {ChatMessage} message
 * @returns {string}
 */
export function renderSignature(message) {
  const transfer = message.transfer;
  return `${message.verified}|${message.status}|${message.serverTs}|${message.text}|${message.refusal}|${message.reason}|${transfer?.state}|${transfer?.done}`;
}

/**
 * A membership change, or a group's name: one centred line, not a bubble.
 *
 * @param {Conversation} conversation
 * @param {ChatMessage} message
 * @param {ItemActions} actions
 * @returns {HTMLElement}
 */
function renderLine(conversation, message, actions) {
  const item = el("li", { className: "system-line" });
  item.dataset.messageId = message.messageId;
  item.dataset.kind = message.kind ?? "";
  item.dataset.verified = String(message.verified);
  if (!message.verified) {
    item.classList.add("unverifiable");
    const what = message.kind === "system" ? "A membership change" : "A message";
    item.dataset.reason = message.refusal ?? "";
    item.append(
      el("p", { className: "line-text", text: `⚠ ${what} failed a security check and is not applied (${reasonText(message.refusal)}).` }),
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
  if (message.sender === actions.me && message.status === "failed" && message.envelopeText) {
    const retry = el("button", { className: "link", text: "Not sent: retry", attrs: { type: "button" } });
    retry.addEventListener("click", () => actions.retry(conversation.id, message.messageId));
    item.append(retry);
  }
  return item;
}

/**
 * @param {Conversation} conversation
 * @param {ChatMessage} message
 * @param {ItemActions} actions
 * @returns {HTMLElement}
 */
export function renderItem(conversation, message, actions) {
  if (message.kind) return renderLine(conversation, message, actions);
  const mine = message.sender === actions.me && message.verified;
  const item = el("li", { className: `message ${mine ? "mine" : "theirs"}` });
  item.dataset.messageId = message.messageId;
  item.dataset.verified = String(message.verified);
  if (!message.verified) {
    // Who it claims to be from, said as a claim: never shown as the sender.
    item.dataset.reason = message.refusal ?? "";
    item.append(el("p", { className: "message-sender", text: `${message.sender} (claimed, not verified)` }));
    item.classList.add("unverifiable");
    item.append(
      el("p", { className: "message-text", text: "⚠ Unverifiable message" }),
      el("p", {
        className: "message-reason",
        text: `This message failed a security check and is not shown (${reasonText(message.refusal)}). It may have been altered or forged.`,
      }),
    );
  } else {
    if (conversation.kind === "group" && !mine) {
      item.dataset.sender = message.sender;
      item.append(el("p", { className: "message-sender", text: message.sender }));
    }
    if (message.file || message.upload) item.append(renderFile(message, actions));
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
  if (mine) {
    const status = el("span", { className: `status status-${message.status}`, text: ` · ${STATUS_LABELS[message.status] ?? ""}` });
    meta.append(status);
    if (message.status === "failed" && message.envelopeText) {
      const retry = el("button", { className: "link", text: "Retry", attrs: { type: "button" } });
      retry.addEventListener("click", () => actions.retry(conversation.id, message.messageId));
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
 * @param {ItemActions} actions
 * @returns {HTMLElement}
 */
function renderFile(message, actions) {
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
    button.addEventListener("click", () => actions.fetchFile(message));
    card.append(button);
  }
  return card;
}
