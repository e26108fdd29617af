/**
 * The JSON forms of the v2 core's inputs and decisions (PROTOCOL.md 10, decision
 * vectors), as `securechat/client/core/v2/wire.py`: what
 * `tests/data/decisions_v2_vectors.json` uses, so both implementations read the same
 * inputs and write the same decisions. Byte strings are strict base64 (2.4): session
 * states as their 15.7.6 bytes, session ids, private keys.
 *
 * @module
 */

import { b64decode, b64encode, isPlainObject } from "../../protocol/encoding.js";
import { parseUsername } from "../../protocol/identifiers.js";
import {
  Device,
  MalformedInput,
  SessionState,
  integer,
  members,
  parseDeviceList,
  targetKey,
} from "../../protocol/v2/index.js";
import { SessionSet } from "./sessions.js";

/** @import { DeviceList } from "../../protocol/v2/index.js" */
/** @import { SeenRecord } from "../messages.js" */
/** @import { BundleDecision } from "./bundles.js" */
/** @import { ListDecision } from "./device_lists.js" */
/** @import { MeV2, ReceiveDecision } from "./receive.js" */

/**
 * @param {unknown} value
 * @returns {Uint8Array}
 */
function bytes(value) {
  if (typeof value !== "string") throw new MalformedInput("expected base64");
  return b64decode(value);
}

/**
 * @param {unknown} value
 * @param {string} what
 * @returns {Record<string, unknown>}
 */
function object(value, what) {
  if (!isPlainObject(value)) throw new MalformedInput(what);
  return value;
}

/**
 * @param {unknown} value
 * @param {string} what
 * @returns {unknown[]}
 */
function list(value, what) {
  if (!Array.isArray(value)) throw new MalformedInput(what);
  return value;
}

/**
 * @param {SessionSet} sessions
 * @returns {Record<string, unknown>}
 */
export function sessionSetToWire(sessions) {
  return {
    active: sessions.active === null ? null : b64encode(sessions.active.toBytes()),
    previous: sessions.previous.map((state) => b64encode(state.toBytes())),
    evicted: sessions.evicted.map((id) => b64encode(id)),
    last_sent_at: sessions.lastSentAt,
  };
}

/**
 * @param {unknown} data
 * @returns {SessionSet}
 */
export function sessionSetFromWire(data) {
  const obj = members(data, ["active", "previous", "evicted", "last_sent_at"]);
  return new SessionSet({
    active: obj.active === null ? null : SessionState.fromBytes(bytes(obj.active)),
    previous: list(obj.previous, "session set").map((state) => SessionState.fromBytes(bytes(state))),
    evicted: list(obj.evicted, "session set").map(bytes),
    lastSentAt: obj.last_sent_at === null ? null : integer(obj.last_sent_at),
  });
}

/**
 * `[{"username", "device_id", "sessions": <set>}, …]` keyed by `targetKey(username, device id)`.
 *
 * @param {unknown} data
 * @returns {Map<string, SessionSet>}
 */
export function sessionsFromWire(data) {
  /** @type {Map<string, SessionSet>} */
  const out = new Map();
  for (const raw of list(data, "sessions")) {
    const item = members(raw, ["username", "device_id", "sessions"]);
    out.set(targetKey(String(item.username), String(item.device_id)), sessionSetFromWire(item.sessions));
  }
  return out;
}

/**
 * @param {unknown} data
 * @returns {Map<number, Uint8Array>}
 */
function prekeys(data) {
  return new Map(
    Object.entries(object(data, "prekeys")).map(([key, value]) => {
      if (!/^[0-9]+$/.test(key)) throw new MalformedInput("prekey id");
      return [Number(key), bytes(value)];
    }),
  );
}

/**
 * `{"username", "account_key", "device": <15.3 device entry>, "dh_private",
 * "signed_prekeys": {id: private}, "one_time_prekeys": {id: private}}`.
 *
 * @param {unknown} data
 * @returns {MeV2}
 */
export function meFromWire(data) {
  const obj = members(data, ["username", "account_key", "device", "dh_private", "signed_prekeys", "one_time_prekeys"]);
  const device = members(obj.device, ["device_id", "signing_key", "dh_key", "created_at", "certificate"]);
  return Object.freeze({
    username: parseUsername(obj.username),
    accountKey: bytes(obj.account_key),
    device: new Device({
      deviceId: String(device.device_id),
      signingKey: bytes(device.signing_key),
      dhKey: bytes(device.dh_key),
      createdAt: integer(device.created_at),
      certificate: bytes(device.certificate),
    }),
    dhPrivate: bytes(obj.dh_private),
    signedPrekeys: prekeys(obj.signed_prekeys),
    oneTimePrekeys: prekeys(obj.one_time_prekeys),
  });
}

/**
 * Username → accepted list, from the lists' own wire form (15.3).
 *
 * @param {unknown} data
 * @returns {Map<string, DeviceList>}
 */
export function deviceListsFromWire(data) {
  return new Map(Object.entries(object(data, "device lists")).map(([name, document]) => [name, parseDeviceList(document)]));
}

/**
 * @param {unknown} data
 * @returns {Map<string, SeenRecord>}
 */
export function seenFromWire(data) {
  return new Map(
    Object.entries(object(data, "seen")).map(([key, value]) => {
      const record = members(value, ["signature", "seq"]);
      if (typeof record.signature !== "string") throw new MalformedInput("seen signature");
      return [key, Object.freeze({ signature: record.signature, seq: record.seq === null ? null : integer(record.seq) })];
    }),
  );
}

/**
 * @param {ReceiveDecision} decision
 * @returns {Record<string, unknown>}
 */
export function receiveDecisionToWire(decision) {
  if (decision.outcome === "duplicate") {
    return { outcome: "duplicate", seen: { signature: decision.seen.signature, seq: decision.seen.seq } };
  }
  if (decision.outcome === "accepted") {
    return {
      outcome: "accepted",
      message_id: decision.messageId,
      conversation_id: decision.conversationId,
      peer: decision.peer,
      sender: decision.sender,
      sender_device: decision.senderDevice,
      sent_at: decision.sentAt,
      payload: decision.payload,
      seen: { signature: decision.seen.signature, seq: decision.seen.seq },
      sessions: sessionSetToWire(decision.sessions),
      one_time_prekey_used: decision.oneTimePrekeyUsed,
      notices: [...decision.notices],
    };
  }
  return { outcome: "refused", reason: decision.reason, repair_needed: decision.repairNeeded };
}

/**
 * @param {ListDecision} decision
 * @returns {Promise<Record<string, unknown>>}
 */
export async function listDecisionToWire(decision) {
  if (decision.outcome === "accepted") {
    return {
      outcome: "accepted",
      version: decision.deviceList.version,
      list_hash: b64encode(await decision.deviceList.listHash()),
      added: [...decision.added],
      removed: [...decision.removed],
      drop_sessions: [...decision.dropSessions],
    };
  }
  if (decision.outcome === "refused") {
    return { outcome: "refused", reason: decision.reason };
  }
  return { outcome: decision.outcome };
}

/**
 * @param {BundleDecision} decision
 * @returns {Record<string, unknown>}
 */
export function bundleDecisionToWire(decision) {
  if (decision.outcome === "refused") {
    return { outcome: "refused", reason: decision.reason };
  }
  return {
    outcome: "accepted",
    device_id: decision.device.deviceId,
    signed_prekey_id: decision.signedPrekey.prekeyId,
    one_time_prekey_id: decision.oneTimePrekey === null ? null : decision.oneTimePrekey.prekeyId,
  };
}
