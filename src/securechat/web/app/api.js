/**
 * The server's HTTP API (PROTOCOL.md 9.1) as the browser uses it.
 *
 * The access token lives only in this object's memory. The refresh token is an
 * HttpOnly cookie that page scripts cannot read, shared by every tab of the profile.
 * Two tabs spending the same refresh token would look like token theft to the server
 * and end the session, so refreshing is coordinated: within a tab, callers share one
 * refresh in flight; across tabs, the Web Locks API lets one tab refresh at a time,
 * and a tab that waited sends the cookie the tab before it just received (the
 * browser's cookie jar is the shared state), never the token already spent. Where
 * Web Locks are missing (pages served over plain http from a non-local address are
 * not a secure context), the server's short reuse grace answers two tabs that spent
 * the same token at once with the same new pair.
 *
 * @module
 */

import { DeviceCredentials } from "./device-auth.js";

/** @import { DeviceSigner } from "./device-auth.js" */

const REFRESH_HEADER = { "X-SecureChat-Refresh": "cookie" };
const REFRESH_MARGIN_MS = 60_000;
const REFRESH_LOCK = "securechat-refresh";

/** An error answer from the server, with its stable code. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {Record<string, unknown>} [details] the error object's other members
   */
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * @typedef {object} StorageUsage the account's stored files, as `GET /account/usage` reports them
 * @property {number} stored_bytes encrypted bytes of its files, and reserved by its unfinished uploads
 * @property {number} quota_bytes the most it may store
 * @property {number} files complete files
 * @property {number} pending_uploads unfinished uploads (each counts in full from its start)
 */

/**
 * @typedef {object} SessionInfo one of the account's sessions, as `GET /sessions` lists it
 * @property {string} id
 * @property {number} created_at ms
 * @property {number | null} last_seen_at ms
 * @property {string | null} user_agent
 * @property {boolean} current whether it is the session asking
 * @property {string | null} [device_id] the device that proved itself in it (15.16): the server's word, a hint
 */

export class Api {
  constructor() {
    /** @type {string | null} */
    this.accessToken = null;
    /** @type {number} epoch ms */
    this.accessExpires = 0;
    /** @type {string | null} the session the tokens belong to */
    this.sessionId = null;
    /** @type {Promise<void> | null} the refresh in flight in this tab, which callers share */
    this.refreshing = null;
    /** The credentials of this tab's v2 device for its per-device calls (15.16). */
    this.devices = new DeviceCredentials((method, path, options) => this.request(method, path, options));
  }

  /**
   * A per-device call (the device inbox and its acknowledgement): with the device's
   * credential, got and renewed as needed by signing the server's challenge.
   *
   * @param {DeviceSigner} device
   * @param {string} method
   * @param {string} path under /api/v1
   * @param {{body?: unknown}} [options]
   * @returns {Promise<any>}
   */
  deviceRequest(device, method, path, options = {}) {
    return this.devices.call(device, method, path, options);
  }

  /**
   * @param {string} method
   * @param {string} path under /api/v1
   * @param {{body?: unknown, bytes?: Uint8Array<ArrayBuffer>, binary?: boolean, auth?: boolean, headers?: Record<string, string>}} [options]
   *   `bytes`: a raw body (application/octet-stream); `binary`: answer with the body's bytes
   * @returns {Promise<any>}
   */
  async request(method, path, { body, bytes, binary = false, auth = true, headers = {} } = {}) {
    if (auth) await this.ensureToken();
    /** @type {RequestInit & {headers: Record<string, string>}} */
    const init = {
      method,
      headers: { ...headers },
      credentials: /** @type {RequestCredentials} */ ("same-origin"),
      cache: /** @type {RequestCache} */ ("no-store"),
    };
    if (auth && this.accessToken) init.headers.Authorization = `Bearer ${this.accessToken}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    } else if (bytes !== undefined) {
      init.headers["Content-Type"] = "application/octet-stream";
      init.body = bytes;
    }
    let response;
    try {
      response = await fetch(`/api/v1${path}`, init);
    } catch {
      throw new ApiError(0, "network_error", "The server cannot be reached. Check your connection.");
    }
    if (response.status === 204) return null;
    if (binary && response.ok) {
      try {
        return new Uint8Array(await response.arrayBuffer());
      } catch {
        throw new ApiError(0, "network_error", "The download was interrupted. Check your connection.");
      }
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = data && typeof data === "object" ? data.error ?? {} : {};
      throw new ApiError(
        response.status,
        String(error.code ?? "error"),
        String(error.message ?? response.statusText),
        error,
      );
    }
    return data;
  }

  /** @param {{access_token: string, expires_in: number, session_id?: string}} answer */
  setTokens(answer) {
    this.accessToken = answer.access_token;
    this.accessExpires = Date.now() + answer.expires_in * 1000;
    // This page's session, so that the notice of its own login is not shown to it.
    if (typeof answer.session_id === "string") this.sessionId = answer.session_id;
  }

  forget() {
    this.accessToken = null;
    this.accessExpires = 0;
  }

  /** A valid access token in memory, refreshed through the cookie when near expiry. */
  async ensureToken() {
    if (this.accessToken && this.accessExpires - REFRESH_MARGIN_MS > Date.now()) return;
    await this.refresh();
  }

  /**
   * Rotate the refresh cookie and get a new access token: callers in this tab share the
   * refresh in flight, and tabs take turns (Web Locks).
   *
   * @returns {Promise<void>}
   */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.refreshInTurn().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async refreshInTurn() {
    const run = async () => {
      // Sent only once this tab holds the lock, so the cookie it carries is the one the
      // previous holder received, not a token that was spent while this tab waited.
      const answer = await this.request("POST", "/auth/refresh", { body: {}, auth: false, headers: REFRESH_HEADER });
      this.setTokens(answer);
    };
    if (globalThis.navigator?.locks) {
      await navigator.locks.request(REFRESH_LOCK, run);
    } else {
      await run();
    }
  }

  /** @param {string} username */
  prelogin(username) {
    return this.request("POST", "/auth/prelogin", { body: { username }, auth: false });
  }

  /** @param {object} body the `register` request (PROTOCOL.md 9.1) */
  async register(body) {
    const answer = await this.request("POST", "/auth/register", { body, auth: false, headers: REFRESH_HEADER });
    this.setTokens(answer);
    return answer;
  }

  /**
   * @param {string} username
   * @param {string} authKey base64
   */
  async login(username, authKey) {
    const answer = await this.request("POST", "/auth/login", {
      body: { username, auth_key: authKey },
      auth: false,
      headers: REFRESH_HEADER,
    });
    this.setTokens(answer);
    return answer;
  }

  async logout() {
    try {
      await this.request("POST", "/auth/logout");
    } finally {
      this.forget();
    }
  }

  account() {
    return this.request("GET", "/account");
  }

  keyBundle() {
    return this.request("GET", "/account/key-bundle");
  }

  /** @param {object} body the `password` request (PROTOCOL.md 9.1) */
  changePassword(body) {
    return this.request("POST", "/account/password", { body });
  }

  /** @returns {Promise<StorageUsage>} */
  usage() {
    return this.request("GET", "/account/usage");
  }

  /** @returns {Promise<{sessions: SessionInfo[]}>} */
  sessions() {
    return this.request("GET", "/sessions");
  }

  /** @param {string} sessionId one of the account's sessions: end it */
  revokeSession(sessionId) {
    return this.request("DELETE", `/sessions/${encodeURIComponent(sessionId)}`);
  }

  revokeOtherSessions() {
    return this.request("POST", "/sessions/revoke-others");
  }

  /** @param {string} username */
  publicKeys(username) {
    return this.request("GET", `/users/${encodeURIComponent(username)}/keys`);
  }

  conversations() {
    return this.request("GET", "/conversations");
  }

  /** @param {string} peer a username */
  openDirect(peer) {
    return this.request("POST", "/conversations/direct", { body: { peer } });
  }

  /**
   * @param {string} conversationId
   * @param {{before?: number | null, limit?: number}} [options] `before`: the cursor from the previous page
   */
  history(conversationId, { before, limit = 50 } = {}) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (before) query.set("before", String(before));
    return this.request("GET", `/conversations/${encodeURIComponent(conversationId)}/messages?${query}`);
  }

  /**
   * @param {string} fileId
   * @param {string} conversationId
   * @param {number} size in bytes, of the plaintext
   */
  createUpload(fileId, conversationId, size) {
    return this.request("POST", "/files", { body: { file_id: fileId, conversation_id: conversationId, size } });
  }

  /**
   * @param {string} fileId
   * @param {number} index
   * @param {Uint8Array<ArrayBuffer>} bytes the encrypted chunk
   */
  putChunk(fileId, index, bytes) {
    return this.request("PUT", `/files/${encodeURIComponent(fileId)}/chunks/${index}`, { bytes });
  }

  /** @param {string} fileId */
  completeUpload(fileId) {
    return this.request("POST", `/files/${encodeURIComponent(fileId)}/complete`);
  }

  /**
   * @param {string} fileId
   * @param {number} index
   * @returns {Promise<Uint8Array>}
   */
  getChunk(fileId, index) {
    return this.request("GET", `/files/${encodeURIComponent(fileId)}/chunks/${index}`, { binary: true });
  }

  // Groups (PROTOCOL.md 13.6) ------------------------------------------------------
  /** @param {import("../protocol/groups.js").GroupChangeWire} change the group's first change */
  createGroup(change) {
    return this.request("POST", "/groups", { body: { change } });
  }

  /**
   * @param {string} groupId
   * @param {number} [after] the last change number already held
   */
  groupChanges(groupId, after = -1) {
    return this.request("GET", `/groups/${encodeURIComponent(groupId)}/changes?after=${after}`);
  }

  /**
   * @param {string} groupId
   * @param {import("../protocol/groups.js").GroupChangeWire} change
   */
  addGroupChange(groupId, change) {
    return this.request("POST", `/groups/${encodeURIComponent(groupId)}/changes`, { body: { change } });
  }

  /**
   * @param {string} groupId
   * @param {import("../protocol/groups.js").InviteWire} invite
   */
  createInvite(groupId, invite) {
    return this.request("POST", `/groups/${encodeURIComponent(groupId)}/invites`, { body: { invite } });
  }

  /** @param {string} code */
  getInvite(code) {
    return this.request("GET", `/invites/${encodeURIComponent(code)}`);
  }

  /**
   * @param {number} since the last sequence already processed
   * @param {number} [limit]
   */
  inbox(since, limit = 1) {
    return this.request("GET", `/inbox?since=${since}&limit=${limit}`);
  }
}
