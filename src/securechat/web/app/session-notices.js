/**
 * New logins to the account, as lines at the top of the sidebar (PROTOCOL.md 9.2, the
 * `session_started` entry). A new session can unseal the account's keys, so the owner must
 * learn of it, and can review the sessions (and change the password) from the line.
 *
 * The line is the server's word: the session's time, and the client's description from
 * whatever that client sent as its User-Agent. It reaches the DOM through `textContent`
 * only. This page's own login is not announced to it.
 *
 * @module
 */

import { byId, el, fullTime, show } from "./dom.js";
import { describeAgent } from "./panels.js";

/** Lines kept on screen; older ones go (the account dialog lists every session). */
const MAX_LINES = 3;

export class SessionNotices {
  /**
   * @param {EventTarget} messenger emits `session` (detail: the entry as the socket parsed it)
   * @param {() => string | null} ownSession this page's session id
   * @param {() => void} openAccount opens the account dialog (its session list)
   */
  constructor(messenger, ownSession, openAccount) {
    this.messenger = messenger;
    this.ownSession = ownSession;
    this.openAccount = openAccount;
    this.list = byId("session-notices");
    /** @param {Event} event */
    this.onSession = (event) => this.add(/** @type {CustomEvent} */ (event).detail);
    messenger.addEventListener("session", this.onSession);
  }

  destroy() {
    this.messenger.removeEventListener("session", this.onSession);
    this.list.replaceChildren();
    show(this.list, false);
  }

  /** @param {Record<string, unknown>} notice */
  add(notice) {
    const id = notice?.session_id;
    if (typeof id !== "string" || id === this.ownSession()) return;
    const agent = typeof notice.user_agent === "string" ? notice.user_agent : null;
    const at = typeof notice.at === "number" && Number.isSafeInteger(notice.at) ? notice.at : null;
    const line = el("li", { className: "session-notice", attrs: { "data-session": id.slice(0, 64) } }, [
      el("span", {
        className: "session-notice-text",
        text: `New login to your account: ${describeAgent(agent)}, ${fullTime(at)}. Not you? Change your password.`,
      }),
    ]);
    const review = el("button", { className: "link", text: "Review sessions", attrs: { type: "button" } });
    review.addEventListener("click", () => this.openAccount());
    const dismiss = el("button", { className: "link", text: "Dismiss", attrs: { type: "button" } });
    dismiss.addEventListener("click", () => {
      line.remove();
      show(this.list, this.list.childElementCount > 0);
    });
    line.append(" ", review, " ", dismiss);
    this.list.prepend(line);
    while (this.list.childElementCount > MAX_LINES) this.list.lastElementChild?.remove();
    show(this.list, true);
  }
}
