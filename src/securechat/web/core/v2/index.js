/**
 * The client core's decisions for protocol v2 (PROTOCOL.md 15.3, 15.4, 15.8, 15.9.1), as
 * `securechat.client.core.v2`: pure like the rest of the core, state and `now` in,
 * decision and new state out. The `tests/data/decisions_v2_vectors.json` cases are what
 * both implementations must decide alike.
 *
 * @module
 */

export * from "./sessions.js";
export * from "./device_lists.js";
export * from "./bundles.js";
export * from "./receive.js";
export * from "./wire.js";
export * from "./transitions.js";
export * from "./receipts.js";
export * from "./session_devices.js";
