/**
 * The group dialogs: create a group, join one with an invite code, and a group's details
 * (its verified members and admins, the server's list compared with them, and for
 * admins: add, remove, promote, invite). Every name is set as text.
 *
 * @module
 */

import { byId, el, explain, fullTime, setMessage, show } from "./dom.js";
import { reasonText } from "./reasons.js";
import { groupTitle, mismatchText } from "./group-text.js";

/**
 * Usernames typed into one field: separated by commas, semicolons or white space.
 *
 * @param {string} text
 * @returns {string[]}
 */
export function splitNames(text) {
  return text
    .split(/[\s,;]+/)
    .map((name) => name.trim().replace(/^@/, ""))
    .filter(Boolean);
}

export class GroupPanels {
  /**
   * @param {import("./messenger.js").Messenger} messenger used through its public methods only
   * @param {{openConversation: (id: string) => Promise<void> | void, openContact: (name: string) => void}} actions
   */
  constructor(messenger, actions) {
    this.messenger = messenger;
    this.actions = actions;
    this.newDialog = byId("new-group-dialog");
    this.joinDialog = byId("join-dialog");
    this.detailsDialog = byId("group-dialog");
    /** @type {string | null} the group whose details are open */
    this.groupId = null;
    this.busy = false;
    this.listeners = [
      [byId("new-group-form"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.create();
      }],
      [byId("new-group-cancel"), "click", () => this.newDialog.close()],
      [byId("join-form"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.join();
      }],
      [byId("join-cancel"), "click", () => this.joinDialog.close()],
      [byId("group-close"), "click", () => this.detailsDialog.close()],
      [byId("group-add-form"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.addMembers();
      }],
      [byId("group-rename-form"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.rename();
      }],
      [byId("group-invite-form"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.makeInvite();
      }],
      [byId("invite-copy"), "click", () => void this.copyCode()],
      [byId("group-leave"), "click", () => {
        show(byId("group-leave-confirm"));
        byId("group-leave-no").focus();
      }],
      [byId("group-leave-no"), "click", () => {
        show(byId("group-leave-confirm"), false);
        byId("group-leave").focus();
      }],
      [byId("group-leave-yes"), "click", () => void this.leave()],
    ];
    for (const [target, type, handler] of this.listeners) target.addEventListener(type, handler);
    /** @param {Event} event */
    this.onGroup = (event) => {
      if (this.detailsDialog.open && /** @type {CustomEvent} */ (event).detail === this.groupId) this.renderDetails();
    };
    /** @param {Event} event */
    this.onTrust = (event) => {
      const members = this.groupId ? this.messenger.groupRecord(this.groupId)?.state?.members ?? [] : [];
      if (this.detailsDialog.open && members.includes(/** @type {CustomEvent} */ (event).detail)) this.renderDetails();
    };
    messenger.addEventListener("group", this.onGroup);
    messenger.addEventListener("trust", this.onTrust);
  }

  destroy() {
    for (const [target, type, handler] of this.listeners) target.removeEventListener(type, handler);
    this.messenger.removeEventListener("group", this.onGroup);
    this.messenger.removeEventListener("trust", this.onTrust);
    for (const dialog of [this.newDialog, this.joinDialog, this.detailsDialog]) if (dialog.open) dialog.close();
  }

  // New group --------------------------------------------------------------------------
  newGroup() {
    byId("new-group-form").reset();
    setMessage(byId("new-group-error"), null);
    if (!this.newDialog.open) this.newDialog.showModal();
    byId("new-group-name").focus();
  }

  async create() {
    const errorNode = byId("new-group-error");
    const name = byId("new-group-name").value.trim();
    const members = splitNames(byId("new-group-members").value);
    setMessage(errorNode, null);
    if (!name) {
      setMessage(errorNode, "Give the group a name.");
      byId("new-group-name").focus();
      return;
    }
    const own = members.filter((member) => member.toLowerCase() === this.messenger.username);
    if (own.length) {
      setMessage(errorNode, "You are in the group anyway: list the others.");
      return;
    }
    await this.whileBusy(byId("new-group-form"), async () => {
      try {
        const conversation = await this.messenger.createGroup(name, members);
        this.newDialog.close();
        await this.actions.openConversation(conversation.id);
      } catch (error) {
        setMessage(errorNode, explain(error));
      }
    });
  }

  // Join -------------------------------------------------------------------------------
  joinGroup() {
    byId("join-form").reset();
    setMessage(byId("join-error"), null);
    if (!this.joinDialog.open) this.joinDialog.showModal();
    byId("join-code").focus();
  }

  async join() {
    const errorNode = byId("join-error");
    const code = byId("join-code").value.trim();
    setMessage(errorNode, null);
    if (!code) {
      setMessage(errorNode, "Enter the invite code.");
      return;
    }
    await this.whileBusy(byId("join-form"), async () => {
      try {
        const conversation = await this.messenger.joinGroup(code);
        this.joinDialog.close();
        await this.actions.openConversation(conversation.id);
      } catch (error) {
        setMessage(errorNode, explain(error));
      }
    });
  }

  // Details ----------------------------------------------------------------------------
  /** @param {string} groupId */
  async openGroup(groupId) {
    this.groupId = groupId;
    setMessage(byId("group-dialog-error"), null);
    byId("group-dialog-result").textContent = "";
    show(byId("invite-result"), false);
    show(byId("group-leave-confirm"), false);
    this.renderDetails();
    if (!this.detailsDialog.open) this.detailsDialog.showModal();
    // Fresh from the server: the chain, and its list to compare.
    await this.messenger.checkGroup(groupId);
    this.renderDetails();
  }

  renderDetails() {
    const record = this.groupId ? this.messenger.groupRecord(this.groupId) : undefined;
    if (!record) return;
    const me = this.messenger.username;
    const state = record.state;
    const { title, named } = groupTitle(record, me);
    const nameNode = byId("group-dialog-name");
    nameNode.textContent = named ? title : `${title} (no name yet)`;
    nameNode.classList.toggle("unnamed", !named);
    byId("group-dialog-id").textContent = record.id;
    const status = byId("group-dialog-status");
    if (record.problem) {
      status.textContent = `The membership cannot be verified: ${reasonText(record.problem)}. Sending is disabled.`;
      status.dataset.state = "changed";
    } else if (!state) {
      status.textContent = "Checking the signed membership…";
      status.dataset.state = "";
    } else if (record.status === "removed") {
      status.textContent = "You are no longer a member of this group.";
      status.dataset.state = "changed";
    } else {
      const count = state.members.length;
      status.textContent = `${count} member${count === 1 ? "" : "s"}, verified from ${state.seq + 1} signed change${state.seq === 0 ? "" : "s"}.`;
      status.dataset.state = record.mismatch ? "" : "verified";
    }
    const warning = byId("group-server-warning");
    warning.textContent = record.mismatch ? mismatchText(record.mismatch) : "";
    show(warning, Boolean(record.mismatch));
    byId("group-server-list").textContent = record.serverMembers
      ? record.serverMembers.length
        ? [...record.serverMembers].sort().join(", ")
        : "(this group is not listed for you)"
      : "not fetched yet";

    const isAdmin = Boolean(state && record.status === "member" && state.admins.includes(me) && !record.problem);
    const members = state?.members ?? [];
    byId("group-members").replaceChildren(
      ...members.map((name) => {
        const admin = state?.admins.includes(name);
        const pin = this.messenger.pin(name);
        const item = el("li", {}, [
          el("span", { className: "member-name", text: name }),
          ...(name === me ? [el("span", { className: "muted small", text: " (you)" })] : []),
          ...(admin ? [el("span", { className: "badge admin-badge", text: "admin" })] : []),
          ...(pin?.pending ? [el("span", { className: "badge warn-badge", text: "keys changed" })] : []),
          ...(pin?.verified && !pin.pending && name !== me ? [el("span", { className: "badge", text: "verified" })] : []),
        ]);
        item.dataset.member = name;
        const tools = el("span", { className: "member-tools" });
        if (name !== me) {
          tools.append(this.button("Safety number", `Safety number with ${name}`, () => this.actions.openContact(name)));
        }
        if (isAdmin && name !== me) {
          if (!admin) tools.append(this.button("Make admin", `Make ${name} an admin`, () => void this.run("promote", [name])));
          tools.append(this.button("Remove", `Remove ${name} from the group`, () => void this.run("remove", [name])));
        }
        item.append(tools);
        return item;
      }),
    );
    show(byId("group-admin-tools"), isAdmin);
    show(byId("group-leave"), record.status === "member" && Boolean(state));
  }

  /**
   * A small secondary button with an accessible name that says whom it is for.
   *
   * @param {string} text
   * @param {string} label
   * @param {() => void} onClick
   * @returns {HTMLElement}
   */
  button(text, label, onClick) {
    const node = el("button", { className: "secondary small-button", text, attrs: { type: "button", "aria-label": label } });
    node.addEventListener("click", onClick);
    return node;
  }

  /**
   * @param {"add" | "remove" | "promote" | "leave"} action
   * @param {string[]} [members]
   */
  async run(action, members = []) {
    const groupId = this.groupId;
    if (!groupId || this.busy) return false;
    const errorNode = byId("group-dialog-error");
    const result = byId("group-dialog-result");
    setMessage(errorNode, null);
    result.textContent = "Signing and sending the change…";
    this.busy = true;
    try {
      await this.messenger.changeGroup(groupId, action, members);
      const done = {
        add: `Added ${members.join(", ")}.`,
        remove: `Removed ${members.join(", ")}.`,
        promote: `${members.join(", ")} can now change the group.`,
        leave: "You left the group.",
      };
      result.textContent = done[action];
      return true;
    } catch (error) {
      result.textContent = "";
      setMessage(errorNode, explain(error));
      return false;
    } finally {
      this.busy = false;
      this.renderDetails();
    }
  }

  async addMembers() {
    const input = byId("group-add-names");
    const names = splitNames(input.value);
    if (names.length === 0) {
      setMessage(byId("group-dialog-error"), "Enter one or more usernames to add.");
      return;
    }
    if (await this.run("add", names)) input.value = "";
  }

  /** A new name goes to the members as a signed group_info (admins only). */
  async rename() {
    const groupId = this.groupId;
    const input = byId("group-rename");
    const name = input.value.trim();
    const errorNode = byId("group-dialog-error");
    setMessage(errorNode, null);
    if (!groupId) return;
    if (!name) {
      setMessage(errorNode, "Enter the new name.");
      return;
    }
    await this.whileBusy(byId("group-rename-form"), async () => {
      try {
        const message = await this.messenger.sendGroupInfo(groupId, name);
        if (message.status === "failed") throw new Error(message.reason ?? "The new name was not sent.");
        input.value = "";
        byId("group-dialog-result").textContent = `Renamed to “${name}”.`;
      } catch (error) {
        setMessage(errorNode, explain(error));
      }
    });
    this.renderDetails();
  }

  async leave() {
    show(byId("group-leave-confirm"), false);
    if (await this.run("leave")) byId("group-close").focus();
  }

  async makeInvite() {
    const groupId = this.groupId;
    if (!groupId) return;
    const errorNode = byId("group-dialog-error");
    setMessage(errorNode, null);
    const hours = Number(byId("invite-hours").value);
    const uses = Number(byId("invite-uses").value);
    await this.whileBusy(byId("group-invite-form"), async () => {
      try {
        const { invite, code } = await this.messenger.makeInvite(groupId, { hours, uses });
        // The code commits to the signed invite (PROTOCOL.md 14.5): the server cannot
        // answer it with another.
        byId("invite-code").textContent = code;
        byId("invite-details").textContent =
          `Valid until ${fullTime(invite.expiresAt)}, for ${invite.maxUses} use${invite.maxUses === 1 ? "" : "s"}. ` +
          "Give it only to the people you mean to invite.";
        show(byId("invite-result"));
        byId("invite-copy").focus();
      } catch (error) {
        setMessage(errorNode, explain(error));
      }
    });
  }

  async copyCode() {
    const code = byId("invite-code");
    const details = byId("invite-details");
    try {
      await navigator.clipboard.writeText(code.textContent ?? "");
      details.textContent = "Copied.";
    } catch {
      // No clipboard permission: select the code so it can be copied by hand.
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = getSelection();
      selection?.removeAllRanges();
      selection?.addRange(range);
      details.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  }

  /**
   * Disable a form's controls while an action runs.
   *
   * @param {HTMLFormElement} form one of the group forms, which hold only inputs and buttons
   * @param {() => Promise<void>} action
   */
  async whileBusy(form, action) {
    if (this.busy) return;
    this.busy = true;
    const controls = /** @type {Iterable<HTMLInputElement | HTMLButtonElement>} */ (form.elements);
    for (const control of controls) control.disabled = true;
    try {
      await action();
    } finally {
      for (const control of controls) control.disabled = false;
      this.busy = false;
    }
  }
}
