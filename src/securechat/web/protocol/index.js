/**
 * Protocol v1 for the browser client: every public name of the protocol modules.
 * Pure: no DOM, no I/O; only Web Crypto (`globalThis.crypto.subtle`) and standard JS.
 *
 * @module
 */

export * from "./errors.js";
export * from "./labels.js";
export * from "./encoding.js";
export * from "./identifiers.js";
export * from "./primitives.js";
export * from "./kdf.js";
export * from "./keys.js";
export * from "./envelope.js";
export * from "./files.js";
export * from "./groups.js";
export * from "./receipts.js";
