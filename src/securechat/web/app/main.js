/**
 * The browser app: start-up, signing in and out, and wiring the views together.
 *
 * @module
 */

import { AdminView } from "./admin-view.js";
import { Api } from "./api.js";
import { AuthView } from "./auth-view.js";
import { ChatView } from "./chat-view.js";
import { explain } from "./dom.js";
import { GroupPanels } from "./group-panels.js";
import { HistoryBackups } from "./history-backup.js";
import { Messenger } from "./messenger.js";
import { Panels } from "./panels.js";
import { SessionNotices } from "./session-notices.js";
import * as session from "./session.js";

const api = new Api();
/** @type {{messenger: Messenger, chat: ChatView, panels: Panels, groupPanels: GroupPanels, admin: AdminView, notices: SessionNotices} | null} */
let current = null;
/** @type {string | null} the account of the current session while it is locked */
let lockedUsername = null;

const auth = new AuthView({
  async login(username, password, remember, progress) {
    const identity = await session.login(api, username, password, progress);
    await enter(identity, remember);
  },
  async register(username, password, remember, progress) {
    const identity = await session.register(api, username, password, progress);
    await enter(identity, remember);
  },
  async unlock(password, remember, progress) {
    if (!lockedUsername) throw new Error("There is no session to unlock. Please log in.");
    const identity = await session.unlock(api, lockedUsername, password, progress);
    await enter(identity, remember);
  },
  async switchAccount() {
    await logout();
  },
});

/**
 * @param {import("../protocol/keys.js").PrivateIdentity} identity
 * @param {boolean} remember
 */
async function enter(identity, remember) {
  if (remember) {
    await session.rememberDevice(identity);
  } else {
    await session.forgetDevice();
  }
  const messenger = new Messenger(api, identity);
  const backups = new HistoryBackups({ api, me: identity.username, show: (item, peer) => messenger.showKept(item, peer) });
  // New messages are backed up on their own once backups are on (debounced, 15.10.1).
  messenger.addEventListener("messages", () => backups.schedule());
  const admin = new AdminView(api);
  const panels = new Panels(messenger, {
    changePassword: (currentPassword, next, progress) =>
      session.changePassword(api, identity.username, currentPassword, next, progress),
    logout,
    openAdmin: () => void admin.open(),
    sessions: () => api.sessions(),
    usage: () => api.usage(),
    revokeOtherSessions: () => api.revokeOtherSessions(),
    revokeSession: (sessionId) => api.revokeSession(sessionId),
    backups,
  });
  // The server decides; this only chooses whether to offer the console.
  panels.isAdmin = Boolean((await api.account()).is_admin);
  /** @type {ChatView | null} */
  let chatView = null;
  const groupPanels = new GroupPanels(messenger, {
    openConversation: (id) => chatView?.open(id),
    openContact: (name) => void panels.openContact(name),
  });
  const chat = new ChatView(messenger, {
    openContact: (name) => void panels.openContact(name),
    openAccount: () => void panels.openAccount(),
    openGroup: (id) => void groupPanels.openGroup(id),
    newGroup: () => groupPanels.newGroup(),
    joinGroup: () => groupPanels.joinGroup(),
  });
  chatView = chat;
  messenger.addEventListener("incoming", (event) => notify(/** @type {CustomEvent} */ (event).detail));
  messenger.addEventListener("conversations", () => updateTitle(messenger));
  messenger.addEventListener("ended", () => {
    teardown();
    auth.showLogin({ error: "Your session has ended (logged out elsewhere or the password changed). Please log in again.", username: identity.username });
  });
  // New logins to the account (another session can unseal the keys): a line in the sidebar.
  const notices = new SessionNotices(messenger, () => api.sessionId, () => void panels.openAccount());
  current = { messenger, chat, panels, groupPanels, admin, notices };
  lockedUsername = null;
  await messenger.start();
  auth.hide();
  chat.showScreen();
  document.body.dataset.user = identity.username;
}

function teardown() {
  if (!current) return;
  current.messenger.stop();
  current.chat.destroy();
  current.panels.destroy();
  current.groupPanels.destroy();
  current.admin.destroy();
  current.notices.destroy();
  current = null;
  delete document.body.dataset.user;
  document.title = "SecureChat";
}

async function logout() {
  if (current) {
    // v2's device (keys, sessions and the messages it keeps) outlives a reload, not a
    // logout that does not remember this device: it leaves the account's list and is
    // deleted here. A remembered one stays unless the user asks (v2.js forgetDevice).
    const messenger = current.messenger;
    const remembered = (await session.rememberedIdentity(messenger.username)) !== null;
    const forget =
      !remembered ||
      (messenger.hasV2Device() &&
        confirm("Also remove this device from your account? Its keys and the messages it keeps here are deleted."));
    if (forget) await messenger.forgetV2Device().catch((error) => console.warn("v2 device not removed:", error));
  }
  try {
    await api.logout();
  } catch {
    // The session may already be over; the keys still go.
  }
  await session.forgetDevice();
  teardown();
  // A fresh page: nothing of the session (keys, tokens, plaintext) stays in memory.
  location.replace("/");
}

/** @param {Messenger} messenger */
function updateTitle(messenger) {
  const unread = messenger.unreadTotal();
  document.title = unread ? `(${unread}) SecureChat` : "SecureChat";
}

/**
 * @param {{conversation: import("./conversations.js").Conversation, message: import("./conversations.js").ChatMessage}} incoming
 *   the detail of the messenger's `incoming` event
 */
function notify({ conversation, message }) {
  if (document.visibilityState !== "hidden" || !("Notification" in globalThis)) return;
  if (Notification.permission !== "granted") return;
  // The sender's name only: message text does not go to the operating system.
  const where = conversation.kind === "group" ? " in a group" : "";
  new Notification("SecureChat", { body: `New message from ${message.sender}${where}`, tag: conversation.id });
}

async function boot() {
  try {
    await api.refresh();
  } catch {
    auth.showLogin();
    return;
  }
  try {
    const account = await api.account();
    const remembered = await session.rememberedIdentity(account.username);
    if (remembered) {
      // The keys remembered here must still be the ones the server publishes (PROTOCOL.md
      // 14.6), as at every login: if not, stop before anything is opened or sent.
      try {
        await session.checkOwnKeys(api, remembered);
      } catch (error) {
        auth.showLogin({ error: explain(error), username: account.username });
        return;
      }
      await enter(remembered, true);
      return;
    }
    lockedUsername = account.username;
    auth.showUnlock(account.username);
  } catch {
    auth.showLogin();
  }
}

void boot();
