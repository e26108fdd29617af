/**
 * DOM helpers. User-controlled text is only ever set with `textContent`; nothing in the
 * app assigns HTML strings (the server's CSP enforces that with Trusted Types).
 *
 * @module
 */

/**
 * @param {string} id
 * @returns {any}
 */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node;
}

/**
 * @param {string} tag
 * @param {{className?: string, text?: string, attrs?: Record<string, string>}} [options]
 * @param {Node[]} [children]
 * @returns {HTMLElement}
 */
export function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

/** @param {HTMLElement} node @param {boolean} visible */
export function show(node, visible = true) {
  node.hidden = !visible;
}

/** @param {HTMLElement} node @param {string | null} message */
export function setMessage(node, message) {
  node.textContent = message ?? "";
  node.hidden = !message;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/** @param {number | null} ms */
export function shortTime(ms) {
  if (!ms) return "";
  const date = new Date(ms);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeFormat.format(date) : dayFormat.format(date);
}

/** @param {number | null} ms */
export function fullTime(ms) {
  return ms ? fullFormat.format(new Date(ms)) : "unknown";
}

/**
 * A human sentence for an error from the server or the protocol layer.
 *
 * @param {unknown} error
 * @returns {string}
 */
export function explain(error) {
  const code = /** @type {any} */ (error)?.code;
  /** @type {Record<string, string>} */
  const messages = {
    username_taken: "That username is already taken. Try another.",
    invalid_credentials: "The username or password is not right.",
    not_found: "There is no user with that name.",
    network_error: "The server cannot be reached. Check your connection and try again.",
    too_large: "That is too large to send.",
    quota_exceeded: "Your files on the server have reached your storage quota: this one does not fit. Your account settings show what you use.",
    unauthorized: "Your session has ended. Please log in again.",
    server_busy: "The server is busy right now. Please try again in a moment.",
  };
  if (code === "access_blocked" || code === "rate_limited") {
    const waitMs = Number(/** @type {any} */ (error).details?.retry_after_ms) || 0;
    const minutes = Math.max(1, Math.ceil(waitMs / 60_000));
    return code === "access_blocked"
      ? `Too many failed attempts from this network: access is blocked for about ${minutes} minute(s).`
      : `Too many attempts from here in a short time (logins, uploads or other requests). Please wait about ${minutes} minute(s) and try again.`;
  }
  if (code && code in messages) return messages[code];
  const kind = /** @type {any} */ (error)?.kind;
  if (kind === "malformed") return `Please check your input: the ${/** @type {Error} */ (error).message}.`;
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong. Please try again.";
}

/**
 * A size as people read it: bytes below 1 KiB, else KiB, MiB or GiB with one decimal.
 *
 * @param {number} size
 */
export function humanSize(size) {
  let value = size;
  for (const unit of ["B", "KiB", "MiB"]) {
    if (value < 1024) return unit === "B" ? `${value} B` : `${value.toFixed(1)} ${unit}`;
    value /= 1024;
  }
  return `${value.toFixed(1)} GiB`;
}
