/**
 * The identity-key section of the account dialog (PROTOCOL.md 15.11): the password, and a
 * button that replaces the account's identity key from this browser. The messenger does
 * the work (rotation.js); this view only asks and says what happened. DOM only.
 *
 * @module
 */

import { byId, el, explain } from "./dom.js";

export class RotationPanel {
  /** @param {Pick<import("./messenger.js").Messenger, "rotateIdentity">} messenger */
  constructor(messenger) {
    this.messenger = messenger;
    this.heading = el("h3", { text: "Identity key" });
    this.hint = el("p", {
      className: "hint",
      text: "Replace your account's identity key (protocol v2), for example after a device was lost. Your old key signs the hand-over; contacts see a notice and must compare the safety number with you again. Your other devices load the new key at their next login.",
    });
    this.password = /** @type {HTMLInputElement} */ (
      el("input", { attrs: { id: "rotate-password", type: "password", autocomplete: "current-password" } })
    );
    this.label = el("label", { text: "Password", attrs: { for: "rotate-password" } });
    this.button = /** @type {HTMLButtonElement} */ (
      el("button", { className: "secondary", text: "Rotate identity key", attrs: { id: "rotate-identity", type: "button" } })
    );
    this.result = el("p", { className: "hint", attrs: { id: "rotate-result", role: "status", "aria-live": "polite" } });
    this.onClick = () => void this.rotate();
    this.button.addEventListener("click", this.onClick);
    byId("password-form").after(this.heading, this.hint, this.label, this.password, this.button, this.result);
  }

  destroy() {
    this.button.removeEventListener("click", this.onClick);
    for (const node of [this.heading, this.hint, this.label, this.password, this.button, this.result]) node.remove();
  }

  async rotate() {
    const password = this.password.value;
    if (!password) {
      this.result.textContent = "Enter your password.";
      return;
    }
    this.button.disabled = true;
    this.result.textContent = "Rotating the identity key…";
    try {
      const done = await this.messenger.rotateIdentity(password);
      this.result.textContent = `Identity key replaced: ${done.devices} device(s) certified again under the new key.`;
      this.password.value = "";
    } catch (error) {
      this.result.textContent = explain(error);
    } finally {
      this.button.disabled = false;
    }
  }
}
