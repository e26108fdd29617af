/**
 * The admin console: message log (metadata and ciphertext only), file records (uploader,
 * recipients, size and times; the server knows no file names), users, blocks and the
 * audit log. The server decides who is an administrator; this view only asks it.
 *
 * @module
 */

import { byId, el, explain, fullTime, humanSize, setMessage, show } from "./dom.js";

const SECTIONS = ["messages", "files", "users", "blocks", "audit"];

// The members of the admin API's answers that this view reads (server JSON, shown only
// through textContent).
/**
 * @typedef {{server_ts: number, sender: string, recipients: string[], size: number, ciphertext_preview: string,
 *   protocol: number, sender_device?: string, devices?: number, body_deleted_at?: number | null}} MessageRow
 */
/** @typedef {{file_id: string, sender: string, recipients: string[], size: number, created_at: number, completed_at: number | null}} FileRow */
/** @typedef {{username: string, created_at: number, sessions: number, disabled: boolean, is_admin: boolean, stored_bytes: number}} UserRow */
/** @typedef {{address: string, reason: string, since: number, until: number}} BlockRow */
/** @typedef {{at: number, username: string, session_id: string, ip: string}} TokenReuseRow */
/** @typedef {{at: number, admin: string, action: string, target: string}} AuditRow */

export class AdminView {
  /** @param {import("./api.js").Api} api */
  constructor(api) {
    this.api = api;
    this.dialog = byId("admin-dialog");
    /** @type {number | null} */
    this.before = null;
    /** @type {number | null} */
    this.filesBefore = null;
    this.listeners = [
      [byId("admin-close"), "click", () => this.dialog.close()],
      [byId("admin-filter"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.loadMessages(true);
      }],
      [byId("admin-protocol"), "change", () => void this.loadMessages(true)],
      [byId("admin-more"), "click", () => void this.loadMessages(false)],
      [byId("admin-export"), "click", () => void this.exportMessages()],
      [byId("admin-file-filter"), "submit", (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        void this.loadFiles(true);
      }],
      [byId("admin-files-more"), "click", () => void this.loadFiles(false)],
      ...SECTIONS.map((name) => [byId(`admin-tab-${name}`), "click", () => void this.select(name)]),
    ];
    for (const [target, type, handler] of this.listeners) target.addEventListener(type, handler);
  }

  destroy() {
    for (const [target, type, handler] of this.listeners) target.removeEventListener(type, handler);
    if (this.dialog.open) this.dialog.close();
  }

  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    await this.select("messages");
  }

  /** @param {string} name one of SECTIONS */
  async select(name) {
    for (const section of SECTIONS) {
      byId(`admin-tab-${section}`).setAttribute("aria-selected", String(section === name));
      show(byId(`admin-${section}`), section === name);
    }
    setMessage(byId("admin-error"), null);
    try {
      if (name === "messages") await this.loadMessages(true);
      if (name === "files") await this.loadFiles(true);
      if (name === "users") await this.loadUsers();
      if (name === "blocks") await this.loadBlocks();
      if (name === "audit") await this.loadAudit();
    } catch (error) {
      setMessage(byId("admin-error"), explain(error));
    }
  }

  /**
   * The query of a filter form: `prefix` is "admin" (message log) or "admin-file".
   *
   * @param {string} [prefix]
   */
  filters(prefix = "admin") {
    const params = new URLSearchParams();
    const sender = byId(`${prefix}-sender`).value.trim();
    const recipient = byId(`${prefix}-recipient`).value.trim();
    // v1 and v2 messages are two logs (PROTOCOL.md 15.8 keeps v2 apart, ids and all).
    if (prefix === "admin") params.set("protocol", /** @type {HTMLSelectElement} */ (byId("admin-protocol")).value);
    if (sender) params.set("sender", sender);
    if (recipient) params.set("recipient", recipient);
    for (const name of ["since", "until"]) {
      const value = byId(`${prefix}-${name}`).value;
      if (value) params.set(name, String(new Date(value).getTime()));
    }
    return params;
  }

  /** @param {boolean} fresh start again from the newest, or else load the next page */
  async loadMessages(fresh) {
    const params = this.filters();
    params.set("limit", "50");
    if (!fresh && this.before) params.set("before", String(this.before));
    const rows = byId("admin-message-rows");
    try {
      /** @type {{messages: MessageRow[], next_before: number | null}} */
      const page = await this.api.request("GET", `/admin/messages?${params}`);
      const items = page.messages.map((m) =>
        el("tr", {}, [
          el("td", { text: fullTime(m.server_ts) }),
          el("td", { text: m.sender }),
          el("td", { text: m.recipients.join(", ") }),
          el("td", { text: String(m.size) }),
          el("td", { className: "cipher", text: m.body_deleted_at ? "(deleted once every device had it)" : m.ciphertext_preview }),
          el("td", {
            className: "cipher",
            text: m.sender_device ? `${m.sender_device.slice(0, 8)}… to ${m.devices} device(s)` : "—",
            attrs: m.sender_device ? { title: m.sender_device } : {},
          }),
        ]),
      );
      if (fresh) rows.replaceChildren(...items);
      else rows.append(...items);
      this.before = page.next_before;
      show(byId("admin-more"), page.next_before !== null);
      byId("admin-messages-status").textContent = `${rows.children.length} message(s) shown`;
    } catch (error) {
      setMessage(byId("admin-error"), explain(error));
    }
  }

  /** @param {boolean} fresh start again from the newest, or else load the next page */
  async loadFiles(fresh) {
    const params = this.filters("admin-file");
    params.set("limit", "50");
    if (!fresh && this.filesBefore) params.set("before", String(this.filesBefore));
    const rows = byId("admin-file-rows");
    try {
      /** @type {{files: FileRow[], next_before: number | null}} */
      const page = await this.api.request("GET", `/admin/files?${params}`);
      const items = page.files.map((f) =>
        el("tr", { attrs: { "data-file": f.file_id } }, [
          el("td", { text: fullTime(f.created_at) }),
          el("td", { text: f.sender }),
          el("td", { text: f.recipients.join(", ") }),
          el("td", { text: humanSize(f.size), attrs: { title: `${f.size} bytes` } }),
          el("td", { text: f.completed_at ? fullTime(f.completed_at) : "Incomplete" }),
          el("td", { className: "cipher", text: f.file_id }),
        ]),
      );
      if (fresh) rows.replaceChildren(...items);
      else rows.append(...items);
      this.filesBefore = page.next_before;
      show(byId("admin-files-more"), page.next_before !== null);
      byId("admin-files-status").textContent = `${rows.children.length} file(s) shown`;
    } catch (error) {
      setMessage(byId("admin-error"), explain(error));
    }
  }

  async exportMessages() {
    // The export needs the bearer token, so it is fetched and handed over as a file.
    await this.api.ensureToken();
    const response = await fetch(`/api/v1/admin/messages/export?${this.filters()}`, {
      headers: { Authorization: `Bearer ${this.api.accessToken}` },
    });
    if (!response.ok) {
      setMessage(byId("admin-error"), `The export failed (${response.status}).`);
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { attrs: { href: url, download: "securechat-messages.jsonl" } });
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  async loadUsers() {
    /** @type {{users: UserRow[], quota_bytes: number}} */
    const page = await this.api.request("GET", "/admin/users");
    byId("admin-users-stored").textContent = `Stored (of ${humanSize(page.quota_bytes)})`;
    byId("admin-user-rows").replaceChildren(
      ...page.users.map((user) => {
        const action = el("button", {
          className: user.disabled ? "secondary" : "danger",
          text: user.disabled ? "Enable" : "Disable",
          attrs: { type: "button", "aria-label": `${user.disabled ? "Enable" : "Disable"} ${user.username}` },
        });
        action.addEventListener("click", async () => {
          try {
            await this.api.request("POST", `/admin/users/${encodeURIComponent(user.username)}/${user.disabled ? "enable" : "disable"}`);
            await this.loadUsers();
          } catch (error) {
            setMessage(byId("admin-error"), explain(error));
          }
        });
        return el("tr", { attrs: { "data-user": user.username } }, [
          el("td", { text: user.username + (user.is_admin ? " (admin)" : "") }),
          el("td", { text: fullTime(user.created_at) }),
          el("td", { text: String(user.sessions) }),
          el("td", { text: user.disabled ? "Disabled" : "Active" }),
          el("td", { text: humanSize(user.stored_bytes), attrs: { title: `${user.stored_bytes} bytes` } }),
          el("td", {}, [action]),
        ]);
      }),
    );
  }

  async loadBlocks() {
    /** @type {{blocks: BlockRow[], recent_attempts: unknown[], token_reuse?: TokenReuseRow[]}} */
    const view = await this.api.request("GET", "/admin/intrusion");
    byId("admin-block-rows").replaceChildren(
      ...view.blocks.map((block) => {
        const lift = el("button", { className: "secondary", text: "Unblock", attrs: { type: "button", "aria-label": `Unblock ${block.address}` } });
        lift.addEventListener("click", async () => {
          await this.api.request("POST", "/admin/intrusion/unblock", { body: { address: block.address } });
          await this.loadBlocks();
        });
        return el("tr", {}, [
          el("td", { text: block.address }),
          el("td", { text: block.reason }),
          el("td", { text: fullTime(block.since) }),
          el("td", { text: fullTime(block.until) }),
          el("td", {}, [lift]),
        ]);
      }),
    );
    byId("admin-attempts").textContent = `${view.recent_attempts.length} failed or pending login(s) in the current window.`;
    // A spent refresh token that came back ended its session: a sign of token theft.
    const reuses = view.token_reuse ?? [];
    const latest = reuses[0];
    byId("admin-token-reuse").textContent =
      `${reuses.length} session(s) ended by refresh-token reuse in the last day` +
      (latest ? ` (latest: ${latest.username}, from ${latest.ip}, ${fullTime(latest.at)}; see the audit log).` : ".");
  }

  async loadAudit() {
    /** @type {{entries: AuditRow[]}} */
    const page = await this.api.request("GET", "/admin/audit");
    byId("admin-audit-rows").replaceChildren(
      ...page.entries.map((entry) =>
        el("tr", {}, [
          el("td", { text: fullTime(entry.at) }),
          el("td", { text: entry.admin }),
          el("td", { text: entry.action }),
          el("td", { text: entry.target }),
        ]),
      ),
    );
  }
}
