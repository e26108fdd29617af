/**
 * The inbox WebSocket (PROTOCOL.md 9.2): authenticate in the first frame, resume after
 * the last processed sequence, reconnect with backoff, pipeline sends and match their
 * answers by `ref`.
 *
 * Coming back fast (issue 13, item 6): the first attempt after a drop goes at once, later
 * ones after a random delay in [0, min(2 s, 0.25 s × 2^(n-1))] ("full jitter", so that
 * the pages of a restarted server do not return in lockstep); the count starts again
 * after a connection that delivered something or stayed up 10 s. A send made while
 * offline, or whose socket closed before the answer, goes out again on the next socket,
 * the same envelope under the same `ref` (its message id): the server stores a message
 * id once and answers a repeat with the first answer.
 *
 * Events (on this EventTarget): `entry` (detail: a message, receipt, group or
 * session_started frame: every inbox entry), `state`
 * (detail: "connecting" | "online" | "offline"), `ended` (detail: the close reason,
 * when the session is over and reconnecting cannot help).
 *
 * @module
 */

const PING_INTERVAL_MS = 25_000;
const SEND_TIMEOUT_MS = 60_000;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 2_000;
const STABLE_AFTER_MS = 10_000;

/**
 * The wait before connection attempt `attempt` (0 after a good connection).
 *
 * @param {number} attempt
 * @param {() => number} [random] in [0, 1)
 * @returns {number} milliseconds
 */
export function reconnectDelay(attempt, random = Math.random) {
  if (attempt <= 0) return 0;
  return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(attempt - 1, 32)) * random();
}

export class InboxSocket extends EventTarget {
  /**
   * @param {import("./api.js").Api} api
   * @param {() => number} lastSeq the last sequence this client has processed
   */
  constructor(api, lastSeq) {
    super();
    this.api = api;
    this.lastSeq = lastSeq;
    /** @type {WebSocket | null} */
    this.socket = null;
    this.ready = false;
    this.stopped = false;
    this.attempt = 0;
    /**
     * Sends not yet answered, by message id, in the order they were made; `sentOn` is
     * the socket each last went out on.
     *
     * @type {Map<string, {envelope: object, sentOn: WebSocket | null, resolve: (frame: any) => void, reject: (error: Error) => void, timer: number}>}
     */
    this.pending = new Map();
    // Whether the current connection was a good one (delivered something), and when it opened.
    this.delivered = false;
    this.openedAt = 0;
    /** @type {number | undefined} */
    this.pingTimer = undefined;
    /** @type {number | undefined} */
    this.retryTimer = undefined;
    // The browser says the network is back: no reason to sit out the backoff.
    this.onOnline = () => this.nudge();
  }

  start() {
    this.stopped = false;
    globalThis.addEventListener("online", this.onOnline);
    void this.connect();
  }

  stop() {
    this.stopped = true;
    globalThis.removeEventListener("online", this.onOnline);
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.socket?.close(1000, "bye");
    this.socket = null;
    this.failPending(new Error("The connection was closed."));
  }

  /** Connect now if offline and waiting (the browser says the network is back). */
  nudge() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    void this.connect();
  }

  async connect() {
    if (this.stopped) return;
    this.emitState("connecting");
    try {
      await this.api.ensureToken();
    } catch (error) {
      if (/** @type {any} */ (error).status === 401) {
        this.end("session_expired");
        return;
      }
      this.scheduleReconnect();
      return;
    }
    const url = new URL("/api/v1/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: "auth", token: this.api.accessToken, since: this.lastSeq() }));
    };
    socket.onmessage = (event) => this.onFrame(socket, event.data);
    socket.onclose = (event) => this.onClose(socket, event);
  }

  /**
   * @param {WebSocket} socket the socket the frame came on
   * @param {string} data the frame's text (the server sends only text frames)
   */
  onFrame(socket, data) {
    if (socket !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "ready":
        this.ready = true;
        this.delivered = false;
        this.openedAt = Date.now();
        this.emitState("online");
        // An acknowledgement in flight when the last socket closed may have been lost.
        if (this.lastSeq() > 0) this.ack(this.lastSeq());
        // Sends made offline, or lost with the last socket, in the order they were made.
        for (const waiter of this.pending.values()) {
          if (waiter.sentOn !== socket) {
            waiter.sentOn = socket;
            this.sendFrame({ type: "send", ref: /** @type {any} */ (waiter.envelope).message_id, envelope: waiter.envelope });
          }
        }
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.sendFrame({ type: "ping" }), PING_INTERVAL_MS);
        break;
      case "message":
      case "receipt":
      case "group":
      case "session_started":
        this.delivered = true;
        this.dispatchEvent(new CustomEvent("entry", { detail: frame }));
        break;
      case "device_inbox":
        // Protocol v2 (15.16): a new entry in one of this account's device inboxes; a
        // hint to read it (references only), not an entry of this inbox.
        this.dispatchEvent(new CustomEvent("device_inbox", { detail: frame }));
        break;
      case "typing":
        // Not an inbox entry (no seq): a hint that another member is typing.
        this.dispatchEvent(new CustomEvent("typing", { detail: frame }));
        break;
      case "sent":
      case "error": {
        const waiter = frame.ref ? this.pending.get(frame.ref) : undefined;
        if (waiter) {
          this.pending.delete(frame.ref);
          clearTimeout(waiter.timer);
          this.delivered = true;
          waiter.resolve(frame);
        } else if (frame.type === "error" && frame.code === "session_revoked") {
          this.end("session_revoked");
        }
        break;
      }
      default:
        break;
    }
  }

  /**
   * @param {WebSocket} socket
   * @param {CloseEvent} event
   */
  onClose(socket, event) {
    if (socket !== this.socket) return;
    const wasReady = this.ready;
    this.socket = null;
    this.ready = false;
    clearInterval(this.pingTimer);
    // Sends waiting for an answer stay pending: they go again on the next socket.
    if (this.stopped) return;
    // A connection that delivered something or stayed up was a good one: the next
    // attempt goes at once.
    if (wasReady && (this.delivered || Date.now() - this.openedAt >= STABLE_AFTER_MS)) this.attempt = 0;
    if (event.code === 4401) {
      // A bad token can be an expired one: refresh once; a revoked session cannot.
      this.api.forget();
    }
    this.emitState("offline");
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const delay = reconnectDelay(this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  /** @param {string} reason why the session is over, e.g. "session_revoked" */
  end(reason) {
    this.stop();
    this.dispatchEvent(new CustomEvent("ended", { detail: reason }));
  }

  /** @param {"connecting" | "online" | "offline"} state */
  emitState(state) {
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  /** @param {Error} error */
  failPending(error) {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.pending.clear();
  }

  /**
   * Send a frame if the socket is open and authenticated.
   *
   * @param {object} frame
   * @returns {boolean} whether it was sent
   */
  sendFrame(frame) {
    if (!this.socket || !this.ready) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Every entry up to `seq` is processed. This client signs its own receipts
   * (PROTOCOL.md 9.3): the acknowledgement says so.
   *
   * @param {number} seq
   * @returns {boolean} whether it was sent
   */
  ack(seq) {
    return this.sendFrame({ type: "ack", seq, signed_receipts: true });
  }

  /**
   * Send an envelope; resolves with the `sent` or `error` frame. Offline, it waits for
   * the next connection; if the socket closes unanswered, it goes again on the next one
   * (same message id). Rejects after SEND_TIMEOUT_MS without an answer (it may have been
   * stored: the same envelope can be sent again safely).
   *
   * @param {{message_id: string}} envelope wire form
   * @returns {Promise<any>}
   */
  send(envelope) {
    return new Promise((resolve, reject) => {
      const ref = envelope.message_id;
      if (this.pending.has(ref)) {
        reject(new Error("This message is already being sent."));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new Error("The server did not answer in time."));
      }, SEND_TIMEOUT_MS);
      const sentOn = this.socket && this.ready ? this.socket : null;
      this.pending.set(ref, { envelope, sentOn, resolve, reject, timer });
      if (sentOn) this.sendFrame({ type: "send", ref, envelope });
    });
  }
}
