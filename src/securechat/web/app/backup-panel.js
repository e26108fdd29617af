/**
 * The history backup section of the account dialog (PROTOCOL.md 15.10.1): turning
 * backups on (the recovery key shown once, kept only after "I wrote it down"), "Back up
 * now", turning them off here, deleting the backup on the server, and restoring on this
 * device from a typed recovery key. The work is
 * history-backup.js's; this view only asks and says what happened. DOM only.
 *
 * @module
 */

import { byId, el, explain, show } from "./dom.js";
import { restoredText } from "./history-backup.js";

/** @import { HistoryBackups } from "./history-backup.js" */

export class BackupPanel {
  /** @param {HistoryBackups} backups */
  constructor(backups) {
    this.backups = backups;
    /** The key shown and not yet confirmed. @type {Uint8Array | null} */
    this.proposed = null;
    const button = (/** @type {string} */ id, /** @type {string} */ text, className = "secondary") =>
      /** @type {HTMLButtonElement} */ (el("button", { className, text, attrs: { id, type: "button" } }));
    this.state = el("p", { className: "hint", attrs: { id: "backup-state", "aria-live": "polite" } });
    this.enableButton = button("backup-enable", "Turn on backups");
    this.keyText = el("code", { className: "recovery-key", attrs: { id: "backup-key" } });
    this.written = /** @type {HTMLInputElement} */ (el("input", { attrs: { id: "backup-written", type: "checkbox" } }));
    this.confirmButton = button("backup-confirm", "Turn on and back up");
    this.reveal = el("div", { attrs: { id: "backup-reveal", hidden: "" } }, [
      el("p", {
        className: "hint",
        text: "Your recovery key, shown only now. Write it down and keep it safe: it is the only way to open your backups, and this app cannot show it again.",
      }),
      this.keyText,
      el("label", { className: "check" }, [this.written, document.createTextNode(" I wrote it down")]),
      this.confirmButton,
    ]);
    this.nowButton = button("backup-now", "Back up now");
    this.offButton = button("backup-off", "Turn off backups on this device");
    this.deleteButton = button("backup-delete", "Delete the backup on the server");
    this.restoreInput = /** @type {HTMLInputElement} */ (
      el("input", { attrs: { id: "backup-restore-key", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "64 characters, in groups of 4" } })
    );
    this.restoreButton = button("backup-restore", "Restore");
    this.result = el("p", { className: "hint", attrs: { id: "backup-result", role: "status", "aria-live": "polite" } });
    this.nodes = [
      el("h3", { text: "History backup" }),
      el("p", {
        className: "hint",
        text: "An end-to-end encrypted copy of the messages this device keeps, stored on the server under a recovery key that only you hold. Neither your password nor the server can open it.",
      }),
      this.state,
      this.enableButton,
      this.reveal,
      this.nowButton,
      this.offButton,
      this.deleteButton,
      el("label", { text: "Restore on this device: type your recovery key", attrs: { for: "backup-restore-key" } }),
      this.restoreInput,
      this.restoreButton,
      this.result,
    ];
    this.listeners = /** @type {[EventTarget, string, EventListener][]} */ ([
      [this.enableButton, "click", () => void this.propose()],
      [this.written, "change", () => (this.confirmButton.disabled = !this.written.checked)],
      [this.confirmButton, "click", () => void this.confirm()],
      [this.nowButton, "click", () => void this.now()],
      [this.offButton, "click", () => void this.off()],
      [this.deleteButton, "click", () => void this.deleteBackup()],
      [this.restoreButton, "click", () => void this.restore()],
    ]);
    for (const [target, type, handler] of this.listeners) target.addEventListener(type, handler);
    // Before "Change password", apart from the sections other panels add.
    const passwordHeading = byId("password-form").previousElementSibling;
    if (passwordHeading) passwordHeading.before(...this.nodes);
    else byId("password-form").before(...this.nodes);
  }

  destroy() {
    for (const [target, type, handler] of this.listeners) target.removeEventListener(type, handler);
    for (const node of this.nodes) node.remove();
    this.forget();
    this.backups.stop();
  }

  /** Drop a key shown and not confirmed: it is kept nowhere, so backups stay off. */
  forget() {
    this.proposed?.fill(0);
    this.proposed = null;
    this.keyText.textContent = "";
    this.written.checked = false;
    show(this.reveal, false);
  }

  async render() {
    this.forget();
    this.result.textContent = "";
    const on = await this.backups.enabled();
    const highest = await this.backups.highestSeen();
    this.state.textContent = on
      ? `Backups are on for this device${highest ? `; the latest version it uploaded or restored is ${highest}` : ""}. New messages are backed up on their own.`
      : "Backups are off on this device.";
    show(this.enableButton, !on);
    show(this.nowButton, on);
    show(this.offButton, on);
  }

  /**
   * Forget the recovery key here (after losing another device that held it, turning
   * backups on again makes a new key: the next upload replaces the server's copy).
   */
  async off() {
    if (!confirm("Turn off backups on this device? This device forgets the recovery key. The backup on the server stays and still opens with the key you wrote down.")) return;
    await this.backups.disable();
    await this.render();
    this.result.textContent = "Backups are off on this device.";
  }

  /**
   * Delete the server's copy and forget the key here: turning backups on again makes a
   * new key and starts from version 1. Other devices backing up under the old key stop
   * and say so (history-backup.js BackupBehind).
   */
  async deleteBackup() {
    if (
      !confirm(
        "Delete the history backup on the server? It cannot be opened afterwards, not even with your recovery key, and this device forgets that key. Turning backups on again makes a new key.",
      )
    ) {
      return;
    }
    this.deleteButton.disabled = true;
    this.result.textContent = "Deleting…";
    try {
      const deleted = await this.backups.deleteBackup();
      await this.render();
      this.result.textContent = `${deleted ? "The backup on the server was deleted." : "There was no backup on the server."} Backups are off on this device; turning them on makes a new recovery key.`;
    } catch (error) {
      this.result.textContent = explain(error);
    } finally {
      this.deleteButton.disabled = false;
    }
  }

  async propose() {
    const { key, shown } = await this.backups.propose();
    this.proposed = key;
    this.keyText.textContent = shown;
    this.written.checked = false;
    this.confirmButton.disabled = true;
    show(this.reveal, true);
    show(this.enableButton, false);
  }

  async confirm() {
    const key = this.proposed;
    if (!key || !this.written.checked) return;
    this.confirmButton.disabled = true;
    this.result.textContent = "Backing up…";
    try {
      const uploaded = await this.backups.confirm(key);
      await this.render();
      this.result.textContent = `Backups are on. Version ${uploaded.version} uploaded: ${uploaded.messages} messages.`;
    } catch (error) {
      await this.render();
      this.result.textContent = `Backups are on, but the first upload failed: ${explain(error)}`;
    }
  }

  async now() {
    this.nowButton.disabled = true;
    this.result.textContent = "Backing up…";
    try {
      const uploaded = await this.backups.upload();
      await this.render();
      this.result.textContent = `Version ${uploaded.version} uploaded: ${uploaded.messages} messages.`;
    } catch (error) {
      this.result.textContent = explain(error);
    } finally {
      this.nowButton.disabled = false;
    }
  }

  async restore() {
    const typed = this.restoreInput.value;
    if (!typed.trim()) return;
    this.restoreButton.disabled = true;
    this.result.textContent = "Restoring…";
    try {
      const restored = await this.backups.restore(typed);
      this.restoreInput.value = "";
      await this.render();
      this.result.textContent = restoredText(restored);
    } catch (error) {
      this.result.textContent = explain(error);
    } finally {
      this.restoreButton.disabled = false;
    }
  }
}
