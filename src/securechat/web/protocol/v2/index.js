/**
 * Protocol v2 (PROTOCOL.md 15, draft) for the browser client: per-device keys, prekeys,
 * session setup, the double ratchet and the fan-out envelope for direct conversations,
 * mirroring `securechat/protocol/v2/`. Exported here, not from v1's index, so that v1
 * and v2 names (`LABELS`, `PROTOCOL_VERSION`, ...) never clash.
 *
 * Pure like v1: no DOM, no I/O, no clock and no randomness of its own. Every private key,
 * ephemeral key and ratchet key is an argument (or comes from an injected `random`), and
 * `now` is an argument, so the same inputs give the same bytes as the Python code.
 *
 * @module
 */

export * from "./errors.js";
export * from "./labels.js";
export * from "./wire.js";
export * from "./primitives.js";
export * from "./devices.js";
export * from "./prekeys.js";
export * from "./ratchet.js";
export * from "./setup.js";
export * from "./envelope.js";
export * from "./backup.js";
export * from "./link.js";
export * from "./transitions.js";
export * from "./accountseal.js";
