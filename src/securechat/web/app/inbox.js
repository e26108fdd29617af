/**
 * The inbox WebSocket (PROTOCOL.md 9.2): authenticate in the first frame, resume after
 * the last processed sequence, reconnect with backoff, pipeline sends and match their
 * answers by `ref`.
 *
 * Events (on this EventTarget): `entry` (detail: a message, receipt, group or
 * session_started frame: every inbox entry), `state`
 * (detail: "connecting" | "online" | "offline"), `ended` (detail: the close reason,
 * when the session is over and reconnecting cannot help).
 *
 * @module
 */

const PING_INTERVAL_MS = 25_000;
const SEND_TIMEOUT_MS = 30_000;
const MAX_BACKOFF_MS = 15_000;

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
    this.nextRef = 1;
    /** @type {Map<string, {resolve: (frame: any) => void, reject: (error: Error) => void, timer: number}>} */
    this.pending = new Map();
    /** @type {number | undefined} */
    this.pingTimer = undefined;
    /** @type {number | undefined} */
    this.retryTimer = undefined;
  }

  start() {
    this.stopped = false;
    void this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.socket?.close(1000, "bye");
    this.socket = null;
    this.failPending(new Error("The connection was closed."));
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
        this.attempt = 0;
        this.emitState("online");
        // An acknowledgement in flight when the last socket closed may have been lost.
        if (this.lastSeq() > 0) this.ack(this.lastSeq());
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.sendFrame({ type: "ping" }), PING_INTERVAL_MS);
        break;
      case "message":
      case "receipt":
      case "group":
      case "session_started":
        this.dispatchEvent(new CustomEvent("entry", { detail: frame }));
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
    this.socket = null;
    this.ready = false;
    clearInterval(this.pingTimer);
    // Requests already sent may still be carried out; only their answers are lost.
    this.failPending(new Error("The connection was lost before the server answered."));
    if (this.stopped) return;
    if (event.code === 4401) {
      // A bad token can be an expired one: refresh once; a revoked session cannot.
      this.api.forget();
    }
    this.emitState("offline");
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
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
   * Send an envelope; resolves with the `sent` or `error` frame.
   *
   * @param {object} envelope wire form
   * @returns {Promise<any>}
   */
  send(envelope) {
    return new Promise((resolve, reject) => {
      const ref = String(this.nextRef++);
      if (!this.sendFrame({ type: "send", ref, envelope })) {
        reject(new Error("offline"));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new Error("The server did not answer in time."));
      }, SEND_TIMEOUT_MS);
      this.pending.set(ref, { resolve, reject, timer });
    });
  }
}
