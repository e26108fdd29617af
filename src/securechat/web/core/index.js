/**
 * The client core for the browser (PROTOCOL.md 14): every trust decision as a pure
 * function, state in, decision out. As `securechat.client.core` in Python; the
 * `decisions` cases of the shared vector file are what both must decide alike.
 *
 * Nothing here touches the DOM, the network, storage or the clock: the messenger gathers
 * the state, calls a decision, and stores and shows what it returns. It imports only the
 * protocol modules (`../protocol/`).
 *
 * @module
 */

export { REASONS, refused } from "./reasons.js";
export * from "./messages.js";
export * from "./groups.js";
export * from "./keys.js";
export * from "./receipts.js";
