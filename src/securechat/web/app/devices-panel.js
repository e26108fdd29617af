/**
 * The devices section of the account dialog (protocol v2, PROTOCOL.md 15.3): this
 * account's devices as accepted on this device, this one marked, and a Revoke button on
 * each other one, which signs and publishes a list without it (the messenger does the
 * signing; this view only asks). DOM only.
 *
 * @module
 */

import { byId, el, explain, fullTime } from "./dom.js";

export class DevicesPanel {
  /** @param {Pick<import("./messenger.js").Messenger, "ownDevices" | "revokeDevice" | "v2Off" | "sendsV2" | "setSendsV2" | "addEventListener" | "removeEventListener">} messenger */
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
  }

  destroy() {
    this.messenger.removeEventListener("devices", this.onDevices);
    this.toggle.removeEventListener("change", this.onToggle);
  }

  async render() {
    const list = byId("device-list");
    const off = this.messenger.v2Off();
    byId("devices-state").textContent = off ? `Protocol v2 is off on this device: ${off}` : "";
    this.toggle.checked = this.messenger.sendsV2();
    try {
      const devices = await this.messenger.ownDevices();
      list.replaceChildren(
        ...devices.map((device, index) => {
          const item = el("li", { className: device.current ? "current" : "" }, [
            el("span", { className: "device-name", text: `Device ${index + 1}` }),
            el("code", { className: "device-id", text: device.deviceId.slice(0, 16) }),
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
   * @param {string} deviceId
   * @param {HTMLButtonElement} button
   */
  async revoke(deviceId, button) {
    const result = byId("devices-result");
    if (!confirm("Revoke this device? It will receive no new messages. Messages it has already received stay on it.")) return;
    button.disabled = true;
    try {
      await this.messenger.revokeDevice(deviceId);
      result.textContent = "The device was revoked: it receives no new messages.";
    } catch (error) {
      result.textContent = explain(error);
    }
    await this.render();
  }
}
