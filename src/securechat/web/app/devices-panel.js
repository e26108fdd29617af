/**
 * The devices section of the account dialog (protocol v2, PROTOCOL.md 15.3): this
 * account's devices as accepted on this device, this one marked, and a Revoke button on
 * each other one, which signs and publishes a list without it (the messenger does the
 * signing; this view only asks). Linking (PROTOCOL.md 15.10.2): this device's link code
 * is shown, and typing another device's code here hands it this profile's history,
 * end-to-end encrypted, once the code names a device of the account's list. DOM only.
 *
 * @module
 */

import { byId, el, explain, fullTime } from "./dom.js";

const REVOKE_QUESTION = "Revoke this device? It will receive no new messages. Messages it has already received stay on it.";

/**
 * How the account dialog names a device of the account's list: its place in the list and
 * the start of its id (the devices panel and the sessions view say the same).
 *
 * @param {{deviceId: string}} device
 * @param {number} index its place in the list
 */
export function deviceName(device, index) {
  return { name: `Device ${index + 1}`, id: device.deviceId.slice(0, 16) };
}

export class DevicesPanel {
  /** @param {Pick<import("./messenger.js").Messenger, "ownDevices" | "revokeDevice" | "v2Off" | "sendsV2" | "setSendsV2" | "linkCode" | "linkDevice" | "addEventListener" | "removeEventListener">} messenger */
  constructor(messenger) {
    this.messenger = messenger;
    this.dialog = byId("account-dialog");
    this.toggle = /** @type {HTMLInputElement} */ (byId("setting-v2"));
    this.onToggle = () => void messenger.setSendsV2(this.toggle.checked);
    this.toggle.addEventListener("change", this.onToggle);
    this.onDevices = () => {
      if (this.dialog.open) void this.render();
    };
    messenger.addEventListener("devices", this.onDevices);
    this.code = el("p", { className: "hint", attrs: { id: "link-code" } });
    this.linkInput = /** @type {HTMLInputElement} */ (
      el("input", { attrs: { id: "link-input", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "24 characters, in groups of 4" } })
    );
    this.linkButton = /** @type {HTMLButtonElement} */ (el("button", { className: "small", text: "Link a device", attrs: { id: "link-button", type: "button" } }));
    this.linkResult = el("p", { className: "hint", attrs: { id: "link-result", "aria-live": "polite" } });
    this.onLink = () => void this.link();
    this.linkButton.addEventListener("click", this.onLink);
    byId("devices-result").after(
      this.code,
      el("label", { text: "Link a device: type the code shown on the new device to hand it this device's history", attrs: { for: "link-input" } }),
      this.linkInput,
      this.linkButton,
      this.linkResult,
    );
  }

  destroy() {
    this.messenger.removeEventListener("devices", this.onDevices);
    this.toggle.removeEventListener("change", this.onToggle);
    this.linkButton.removeEventListener("click", this.onLink);
    for (const node of [this.code, this.linkInput, this.linkButton, this.linkResult]) node.remove();
    this.linkInput.labels?.forEach((label) => label.remove());
  }

  /** Hand this device's history to the device whose code was typed (15.10.2). */
  async link() {
    const typed = this.linkInput.value.trim();
    if (!typed) return;
    this.linkButton.disabled = true;
    this.linkResult.textContent = "Linking…";
    try {
      const linked = await this.messenger.linkDevice(typed);
      this.linkResult.textContent = `History handed to device ${linked.deviceId.slice(0, 16)}: ${linked.messages} messages, end-to-end encrypted.`;
      this.linkInput.value = "";
    } catch (error) {
      this.linkResult.textContent = explain(error);
    } finally {
      this.linkButton.disabled = false;
    }
  }

  async render() {
    const list = byId("device-list");
    const off = this.messenger.v2Off();
    byId("devices-state").textContent = off ? `Protocol v2 is off on this device: ${off}` : "";
    this.toggle.checked = this.messenger.sendsV2();
    const code = off ? null : await this.messenger.linkCode().catch(() => null);
    this.code.textContent = code ? `Link code of this device: ${code}` : "";
    try {
      const devices = await this.messenger.ownDevices();
      list.replaceChildren(
        ...devices.map((device, index) => {
          const named = deviceName(device, index);
          const item = el("li", { className: device.current ? "current" : "" }, [
            el("span", { className: "device-name", text: named.name }),
            el("code", { className: "device-id", text: named.id }),
            el("span", { className: "muted", text: `${device.current ? "This device · " : ""}added ${fullTime(device.createdAt)}` }),
          ]);
          item.dataset.deviceId = device.deviceId;
          if (!device.current) {
            const revoke = /** @type {HTMLButtonElement} */ (el("button", { className: "danger small", text: "Revoke", attrs: { type: "button" } }));
            revoke.addEventListener("click", () => void this.revoke(device.deviceId, revoke));
            item.append(revoke);
          }
          return item;
        }),
      );
    } catch (error) {
      list.replaceChildren(el("li", { className: "error", text: explain(error) }));
    }
  }

  /**
   * Ask, then sign and publish a list without the device. The Revoke buttons here and the
   * sessions view's "Revoke device" (panels.js) both come here.
   *
   * @param {string} deviceId
   * @param {HTMLButtonElement} button
   * @param {string} [question] what to ask first
   * @returns {Promise<{revoked: boolean, line: string} | null>} null if the user said no;
   *   else whether the device was revoked and the line shown under the devices
   */
  async revoke(deviceId, button, question = REVOKE_QUESTION) {
    const result = byId("devices-result");
    if (!confirm(question)) return null;
    button.disabled = true;
    let revoked = false;
    try {
      await this.messenger.revokeDevice(deviceId);
      result.textContent = "The device was revoked: it receives no new messages.";
      revoked = true;
    } catch (error) {
      result.textContent = explain(error);
    }
    const line = result.textContent;
    await this.render();
    return { revoked, line };
  }
}
