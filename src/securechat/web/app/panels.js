/**
 * The contact dialog (fingerprints, safety number, verification) and the account dialog
 * (storage usage, sessions, password change, notifications, typing and read-receipt
 * switches, logout).
 *
 * A session names the device that proved itself in it (PROTOCOL.md 15.16). That is the
 * server's word, so the sessions view believes it only for a device of the account's list
 * as this browser verified it: such a row names the device as the devices panel does and
 * offers to revoke it (the devices panel's revoke, then the session ended); this
 * browser's own device is "this device". A device the list does not have is not shown.
 *
 * @module
 */

import { BackupPanel } from "./backup-panel.js";
import { DevicesPanel, deviceName } from "./devices-panel.js";
import { RotationPanel } from "./rotation-panel.js";
import { byId, el, explain, fullTime, humanSize, show } from "./dom.js";
import { passwordProblem } from "./password-policy.js";
import { sessionDevice } from "../core/v2/session_devices.js";

export class Panels {
  /**
   * @param {import("./messenger.js").Messenger} messenger used through its public methods only
   * @param {{changePassword: (current: string, next: string, progress: (s: string) => void) => Promise<number>,
   *   logout: () => Promise<void>, openAdmin: () => void,
   *   sessions: () => Promise<{sessions: import("./api.js").SessionInfo[]}>,
   *   usage: () => Promise<import("./api.js").StorageUsage>,
   *   revokeOtherSessions: () => Promise<{revoked_sessions: number}>,
   *   revokeSession: (sessionId: string) => Promise<void>,
   *   backups: import("./history-backup.js").HistoryBackups}} actions
   */
  constructor(messenger, actions) {
    this.messenger = messenger;
    this.actions = actions;
    this.contactDialog = byId("contact-dialog");
    this.accountDialog = byId("account-dialog");
    /** @type {string | null} */
    this.contact = null;
    /** @type {boolean | undefined} set by main.js from the server's answer */
    this.isAdmin;
    this.listeners = [
      [byId("contact-verify"), "click", () => void this.toggleVerified()],
      [byId("revoke-others"), "click", () => void this.revokeOthers()],
      [byId("enable-notifications"), "click", () => void this.enableNotifications()],
      [byId("setting-typing"), "change", (/** @type {Event} */ event) =>
        void this.messenger.presence.configure({ typing: /** @type {HTMLInputElement} */ (event.target).checked })],
      [byId("setting-read-receipts"), "change", (/** @type {Event} */ event) =>
        void this.messenger.presence.configure({ readReceipts: /** @type {HTMLInputElement} */ (event.target).checked })],
      [byId("logout"), "click", () => void this.actions.logout()],
      [byId("account-close"), "click", () => this.accountDialog.close()],
      [byId("open-admin"), "click", () => {
        this.accountDialog.close();
        this.actions.openAdmin();
      }],
      [byId("password-form"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.changePassword();
      }],
    ];
    for (const [target, type, handler] of this.listeners) target.addEventListener(type, handler);
    /** @param {Event} event */
    this.onTrust = (event) => {
      if (this.contactDialog.open && /** @type {CustomEvent} */ (event).detail === this.contact) void this.renderContact();
    };
    messenger.addEventListener("trust", this.onTrust);
    /** @type {number} the latest sessions render: an older one still in flight is dropped */
    this.sessionsRender = 0;
    // The account's list changed (revoked here or elsewhere): what the rows offer changes.
    this.onDevices = () => {
      if (this.accountDialog.open) void this.renderSessions();
    };
    messenger.addEventListener("devices", this.onDevices);
    this.devices = new DevicesPanel(messenger);
    this.backup = new BackupPanel(actions.backups);
    this.rotation = new RotationPanel(messenger);
  }

  destroy() {
    for (const [target, type, handler] of this.listeners) target.removeEventListener(type, handler);
    this.messenger.removeEventListener("trust", this.onTrust);
    this.messenger.removeEventListener("devices", this.onDevices);
    this.devices.destroy();
    this.backup.destroy();
    this.rotation.destroy();
    if (this.contactDialog.open) this.contactDialog.close();
    if (this.accountDialog.open) this.accountDialog.close();
  }

  /** @param {string} name */
  async openContact(name) {
    this.contact = name;
    await this.renderContact();
    if (!this.contactDialog.open) this.contactDialog.showModal();
  }

  async renderContact() {
    const name = this.contact;
    if (!name) return;
    byId("contact-name").textContent = name;
    byId("contact-name-2").textContent = name;
    const info = await this.messenger.trustInfo(name);
    if (!info) return;
    byId("safety-number").textContent = info.safetyNumber;
    show(byId("pending-safety"), info.keyChanged);
    byId("pending-safety-number").textContent = info.pendingSafetyNumber ?? "";
    byId("contact-signing-fp").textContent = info.signingFingerprint;
    byId("contact-encryption-fp").textContent = info.encryptionFingerprint;
    const status = byId("contact-status");
    status.textContent = info.keyChanged
      ? "Their keys have changed: accept the new keys in the conversation first, then verify again."
      : info.verified
        ? "You have verified this contact."
        : "Not verified yet.";
    status.dataset.state = info.keyChanged ? "changed" : info.verified ? "verified" : "unverified";
    const button = byId("contact-verify");
    button.disabled = info.keyChanged;
    button.textContent = info.verified ? "Clear verification" : "Mark as verified";
  }

  async toggleVerified() {
    const name = this.contact;
    if (!name) return;
    const pin = this.messenger.pin(name);
    await this.messenger.setVerified(name, !pin?.verified);
  }

  async openAccount() {
    byId("account-name").textContent = this.messenger.username;
    byId("password-account").value = this.messenger.username;
    const own = await this.messenger.ownFingerprints();
    byId("own-signing-fp").textContent = own.signing;
    byId("own-encryption-fp").textContent = own.encryption;
    this.renderNotificationState();
    byId("setting-typing").checked = this.messenger.presence.settings.typing;
    byId("setting-read-receipts").checked = this.messenger.presence.settings.readReceipts;
    show(byId("admin-entry"), Boolean(this.isAdmin));
    byId("sessions-result").textContent = "";
    byId("password-result").textContent = "";
    byId("storage-usage").textContent = "";
    byId("devices-result").textContent = "";
    if (!this.accountDialog.open) this.accountDialog.showModal();
    await Promise.all([this.renderUsage(), this.renderSessions(), this.devices.render(), this.backup.render()]);
  }

  async renderUsage() {
    const line = byId("storage-usage");
    try {
      line.textContent = describeUsage(await this.actions.usage());
    } catch (error) {
      line.textContent = explain(error);
    }
  }

  async renderSessions() {
    const list = byId("session-list");
    const render = ++this.sessionsRender;
    try {
      const [{ sessions }, devices] = await Promise.all([
        this.actions.sessions(),
        // The list as this browser verified it (none while v2 does not run here).
        this.messenger.ownDevices().catch(() => []),
      ]);
      if (render !== this.sessionsRender) return;
      list.replaceChildren(...sessions.map((session) => this.sessionItem(session, devices)));
    } catch (error) {
      if (render !== this.sessionsRender) return;
      list.replaceChildren(el("li", { className: "error", text: explain(error) }));
    }
  }

  /**
   * @param {import("./api.js").SessionInfo} session
   * @param {{deviceId: string, current: boolean}[]} devices the account's verified list
   */
  sessionItem(session, devices) {
    const item = el("li", { className: session.current ? "current" : "" }, [
      el("span", { className: "session-agent", text: describeAgent(session.user_agent) }),
      el("span", {
        className: "muted",
        text: `${session.current ? "This session · " : ""}last active ${fullTime(session.last_seen_at ?? session.created_at)}`,
      }),
    ]);
    item.dataset.sessionId = session.id;
    // The server's word, trusted as far as the verified list goes (the core decides).
    const own = devices.find((device) => device.current)?.deviceId ?? null;
    const shown = sessionDevice(session.device_id, session.current, devices.map((device) => device.deviceId), own);
    if (shown.kind === "this_device") item.append(el("span", { className: "session-device", text: "this device" }));
    if (shown.kind !== "revocable") return item;
    const index = devices.findIndex((device) => device.deviceId === shown.deviceId);
    const device = devices[index];
    const named = deviceName(device, index);
    item.append(el("span", { className: "session-device", text: `${named.name} · ${named.id}` }));
    const button = /** @type {HTMLButtonElement} */ (el("button", { className: "danger small", text: "Revoke device", attrs: { type: "button" } }));
    button.addEventListener("click", () => void this.revokeSessionDevice(session.id, device.deviceId, button));
    item.append(button);
    return item;
  }

  /**
   * Revoke the device of a session as the devices panel does (a new signed list without
   * it), then end that session.
   *
   * @param {string} sessionId
   * @param {string} deviceId
   * @param {HTMLButtonElement} button
   */
  async revokeSessionDevice(sessionId, deviceId, button) {
    const result = byId("sessions-result");
    const done = await this.devices.revoke(
      deviceId,
      button,
      "Revoke this device and end its session? It will receive no new messages. Messages it has already received stay on it.",
    );
    if (!done) return;
    if (!done.revoked) {
      result.textContent = done.line;
      return;
    }
    try {
      await this.actions.revokeSession(sessionId);
      result.textContent = "The device was revoked (it receives no new messages) and its session ended.";
    } catch (error) {
      result.textContent = `The device was revoked (it receives no new messages), but its session could not be ended: ${explain(error)}`;
    }
    await this.renderSessions();
  }

  async revokeOthers() {
    try {
      const answer = await this.actions.revokeOtherSessions();
      byId("sessions-result").textContent = `${answer.revoked_sessions} other session(s) logged out.`;
      await this.renderSessions();
    } catch (error) {
      byId("sessions-result").textContent = explain(error);
    }
  }

  async changePassword() {
    const result = byId("password-result");
    const current = byId("password-current").value;
    const next = byId("password-new").value;
    const problem = await passwordProblem(next, this.messenger.username);
    if (!current) {
      result.textContent = "Enter your current password.";
      return;
    }
    if (problem) {
      result.textContent = problem;
      return;
    }
    if (next !== byId("password-repeat").value) {
      result.textContent = "The new passwords are not the same.";
      return;
    }
    const form = byId("password-form");
    for (const control of form.elements) control.disabled = true;
    try {
      const revoked = await this.actions.changePassword(current, next, (step) => {
        result.textContent = step;
      });
      result.textContent = `Password changed. ${revoked} other session(s) were logged out.`;
      form.reset();
      await this.renderSessions();
    } catch (error) {
      result.textContent = explain(error);
    } finally {
      for (const control of form.elements) control.disabled = false;
    }
  }

  renderNotificationState() {
    const node = byId("notification-state");
    const button = byId("enable-notifications");
    if (!("Notification" in globalThis)) {
      node.textContent = "This browser does not support notifications.";
      button.disabled = true;
      return;
    }
    const states = { granted: "Notifications are on.", denied: "Notifications are blocked in the browser settings.", default: "" };
    node.textContent = states[Notification.permission] ?? "";
    button.disabled = Notification.permission !== "default";
  }

  async enableNotifications() {
    if ("Notification" in globalThis) await Notification.requestPermission();
    this.renderNotificationState();
  }
}

/**
 * A short description of a session's browser or client, from its user agent.
 *
 * @param {string | null} agent
 * @returns {string}
 */
export function describeAgent(agent) {
  if (!agent) return "Unknown client";
  if (agent.includes("python-httpx") || agent.startsWith("securechat")) return "Terminal client";
  const browsers = [
    ["Firefox/", "Firefox"],
    ["Edg/", "Edge"],
    ["Chrome/", "Chrome or Chromium"],
    ["Safari/", "Safari"],
  ];
  const found = browsers.find(([marker]) => agent.includes(marker));
  return found ? found[1] : agent.slice(0, 60);
}

/**
 * The account's storage as one line: what its files take of its quota on the server.
 *
 * @param {import("./api.js").StorageUsage} usage
 */
export function describeUsage(usage) {
  const share = usage.quota_bytes > 0 ? ` (${Math.floor((100 * usage.stored_bytes) / usage.quota_bytes)}%)` : "";
  const files = `${usage.files} file${usage.files === 1 ? "" : "s"}`;
  const pending = usage.pending_uploads
    ? `, ${usage.pending_uploads} upload${usage.pending_uploads === 1 ? "" : "s"} in progress`
    : "";
  return `Your files take ${humanSize(usage.stored_bytes)} of your ${humanSize(usage.quota_bytes)} on the server${share}: ${files}${pending}.`;
}
