/**
 * One entry of the conversation list as DOM: avatar, title (a derived contact, a
 * group's name or, while it has none here, who is in it; or "Unknown contact"), a
 * warning mark where sending is paused, the newest item and the unread count. Text
 * only, never HTML.
 *
 * @module
 */

import { contactWarning, conversationTitle } from "./conversations.js";
import { el, shortTime } from "./dom.js";
import { groupTitle, groupWarning } from "./group-text.js";
import { previewText } from "./message-view.js";

/** @import { Conversation } from "./conversations.js" */

/**
 * @param {Conversation} conversation
 * @param {{current: boolean, open: (id: string) => void, me: string}} options current: it is
 *   open; me: this device's user
 * @returns {HTMLElement}
 */
export function renderConversationItem(conversation, { current, open, me }) {
  const title = conversationTitle(conversation, me);
  const group = conversation.kind === "group";
  // A group without a name here is called after its members: not a name, and looks so.
  const unnamed = group && !groupTitle(conversation.group, me).named;
  const warning = group ? groupWarning(conversation.group) : contactWarning(conversation);
  const avatar = [...title][0]?.toUpperCase() ?? "?";
  const button = el("button", { className: "conversation-item", attrs: { type: "button" } }, [
    el("span", { className: group ? "avatar group" : "avatar", text: avatar, attrs: { "aria-hidden": "true" } }),
    el("span", { className: "conversation-text" }, [
      el("span", { className: "conversation-name" }, [
        ...(group ? [el("span", { className: "visually-hidden", text: "Group: " })] : []),
        el("span", { className: unnamed ? "conversation-title unnamed" : "conversation-title", text: title }),
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
  } else if (conversation.peer) {
    // Only a contact derived from the conversation id is named as one.
    button.dataset.peer = conversation.peer;
  }
  if (current) button.setAttribute("aria-current", "true");
  button.addEventListener("click", () => open(conversation.id));
  return el("li", {}, [button]);
}
