/**
 * Sending a direct message in protocol v2 (PROTOCOL.md 15.5, 15.8, 15.16): sessions are
 * set up only with devices that have none (or whose last message could not be opened,
 * 15.9), from bundles the core accepts; the payload is sealed once for every device of
 * the peer and every other device of this account; the new session states and the seen
 * record are stored in one transaction before the envelope leaves. On 409
 * `device_list_stale` the lists are fetched again and the message sealed again, once.
 * No DOM.
 *
 * @module
 */

import { acceptBundle, startSession, withActive } from "../core/v2/index.js";
import { b64encode } from "../protocol/encoding.js";
import { encodePayload } from "../protocol/envelope.js";
import { fileDescriptorFromPayload } from "../protocol/files.js";
import { HeaderV2, Party, Target, initiateSession, randomX25519Private, sealEnvelope, targetKey } from "../protocol/v2/index.js";
import { ApiError } from "./api.js";
import { reasonText } from "./reasons.js";
import * as store from "./store.js";
import { exclusive } from "./v2-sessions.js";

/** @import { Payload } from "../protocol/index.js" */
/** @import { DeviceList, EnvelopeV2, SessionState } from "../protocol/v2/index.js" */
/** @import { Api } from "./api.js" */
/** @import { DeviceKeys } from "./device-keys.js" */
/** @import { DeviceBook } from "./devices.js" */
/** @import { SessionBook, StoredSessions } from "./v2-sessions.js" */
/** @import { LocalHistory } from "./v2-history.js" */

/** A message that cannot go in v2 now (no session can be set up with a device). */
export class CannotSeal extends Error {}

/**
 * @typedef {object} V2SendHost
 * @property {Api} api
 * @property {DeviceKeys} keys
 * @property {DeviceBook} book
 * @property {SessionBook} sessions
 * @property {LocalHistory} local the messages this device keeps
 * @property {(peer: string, text: string) => void} notice a line in the conversation with `peer`
 * @property {(conversationId: string, messageId: string, peer: string, sentAt: number) => Promise<unknown>} [noteSent]
 *   who a kept message was sealed for, for its receipts (15.17)
 */

export class V2Sender {
  /** @param {V2SendHost} host */
  constructor(host) {
    this.host = host;
    this.me = host.keys.username;
  }

  /**
   * Both accounts' accepted lists, this device in its own: v2 may be used (15.12).
   *
   * @param {string} peer
   * @returns {Promise<{mine: DeviceList, theirs: DeviceList} | null>}
   */
  async lists(peer) {
    if (peer === this.me || !peer) return null;
    const { book, keys } = this.host;
    const mine = await book.accepted(this.me);
    if (!mine || !mine.devices.some((device) => device.deviceId === keys.deviceId)) return null;
    let theirs = await book.accepted(peer);
    if (!theirs) theirs = await book.refresh(peer).catch(() => null);
    return theirs ? { mine, theirs } : null;
  }

  /**
   * Seal `payload` for the conversation with `peer`; the new states are stored with the
   * seen record before the envelope is returned.
   *
   * @param {string} peer
   * @param {string} conversationId
   * @param {Payload} payload
   * @param {{messageId: string, sentAt: number}} header
   * @param {{keep?: boolean}} [options] `keep: false` for a receipt (15.17): no kept item
   * @returns {Promise<EnvelopeV2>}
   */
  seal(peer, conversationId, payload, header, options = {}) {
    return exclusive(this.me, () => this.sealNow(peer, conversationId, payload, header, options));
  }

  /**
   * @param {string} peer
   * @param {string} conversationId
   * @param {Payload} payload
   * @param {{messageId: string, sentAt: number}} header
   * @param {{keep?: boolean}} [options]
   * @returns {Promise<EnvelopeV2>}
   */
  async sealNow(peer, conversationId, payload, { messageId, sentAt }, { keep = true } = {}) {
    const { keys, sessions } = this.host;
    const lists = await this.lists(peer);
    if (!lists) throw new CannotSeal("Protocol v2 is not available with this contact now.");
    const byName = new Map([
      [this.me, lists.mine],
      [peer, lists.theirs],
    ]);
    const targets = [...byName.keys()].sort().map((name) => {
      const list = /** @type {DeviceList} */ (byName.get(name));
      const ids = list.devices.map((device) => device.deviceId).filter((id) => !(name === this.me && id === keys.deviceId));
      return new Target(name, list.version, ids);
    });
    /** @type {Map<string, StoredSessions>} */
    const sets = new Map();
    /** @type {Map<string, string[]>} */
    const needed = new Map();
    for (const target of targets) {
      for (const id of target.devices) {
        const stored = await sessions.get(target.username, id);
        sets.set(targetKey(target.username, id), stored);
        if (stored.sessions.active === null || stored.repair) needed.set(target.username, [...(needed.get(target.username) ?? []), id]);
      }
    }
    for (const [name, ids] of needed) {
      await this.setUp(name, /** @type {DeviceList} */ (byName.get(name)), ids, sets, sentAt);
    }
    /** @type {Map<string, SessionState>} */
    const states = new Map();
    for (const [key, stored] of sets) {
      if (stored.sessions.active) states.set(key, stored.sessions.active);
    }
    const header = new HeaderV2({ messageId, conversationId, sender: this.me, senderDevice: keys.deviceId, sentAt, targets });
    const sealed = await sealEnvelope(
      header,
      encodePayload(payload),
      crypto.getRandomValues(new Uint8Array(32)),
      crypto.getRandomValues(new Uint8Array(12)),
      states,
      keys.signingSeed,
      randomX25519Private,
    );
    /** @type {import("./store.js").Write[]} */
    const writes = [
      { store: "seen", key: [this.me, `seen:${messageId}`], value: { signature: b64encode(sealed.envelope.signature), seq: null } },
      // Kept as "sending" with the states that sealed it; the answer sets it sent or failed.
      await this.host.local.write({
        messageId,
        conversationId,
        sender: this.me,
        text: typeof payload.text === "string" ? payload.text : "",
        sentAt,
        serverTs: null,
        verified: true,
        refusal: null,
        reason: null,
        status: "sending",
        envelopeText: JSON.stringify(sealed.envelope.toWire()),
        // A file's descriptor (key included) is kept sealed with it (15.18).
        file: payload.type === "file" ? fileDescriptorFromPayload(payload) : null,
      }),
    ];
    for (const target of targets) {
      for (const id of target.devices) {
        const key = targetKey(target.username, id);
        const state = /** @type {SessionState} */ (sealed.states.get(key));
        const stored = /** @type {StoredSessions} */ (sets.get(key));
        const next = { sessions: withActive(stored.sessions, state), repair: false };
        writes.push(await sessions.write(target.username, id, next));
      }
    }
    // A receipt is no message of this device's history (15.17): only its states and seen record.
    await store.writeAll(keep ? writes : writes.filter((write) => !(write.store === "v2" && Array.isArray(write.key) && write.key[1] === "msg")));
    if (keep) await this.host.noteSent?.(conversationId, messageId, peer, sentAt);
    return sealed.envelope;
  }

  /**
   * New sessions (15.5) with these devices of `name`, from bundles the core accepts.
   *
   * @param {string} name
   * @param {DeviceList} list
   * @param {string[]} ids
   * @param {Map<string, StoredSessions>} sets updated in place
   * @param {number} now
   */
  async setUp(name, list, ids, sets, now) {
    const { api, keys } = this.host;
    const answer = await api.request("POST", `/users/${encodeURIComponent(name)}/bundles`, { body: { device_ids: ids } });
    /** @type {any[]} */
    const bundles = Array.isArray(answer?.bundles) ? answer.bundles : [];
    const me = new Party(this.me, keys.accountKey, keys.device);
    const dhPrivate = keys.me().dhPrivate;
    for (const id of ids) {
      const bundle = bundles.find((candidate) => candidate?.device_id === id);
      if (!bundle) throw new CannotSeal(`A device of ${name} has no prekeys published yet, so no secure session can be started with it. Nothing was sent.`);
      const decision = await acceptBundle(bundle, list, now);
      if (decision.outcome !== "accepted") {
        throw new CannotSeal(`A device of ${name} offers prekeys that fail a security check (${reasonText(decision.reason)}). Nothing was sent.`);
      }
      const state = await initiateSession(
        me,
        dhPrivate,
        new Party(name, list.accountKey, decision.device),
        decision.signedPrekey,
        decision.oneTimePrekey,
        await randomX25519Private(),
      );
      const key = targetKey(name, id);
      const before = /** @type {StoredSessions} */ (sets.get(key));
      if (before.repair) this.host.notice(name === this.me ? "" : name, "A new secure session was started with a device whose message could not be opened.");
      sets.set(key, { sessions: startSession(before.sessions, state), repair: false });
    }
  }

  /**
   * POST /v2/messages; a 409 `device_list_stale` is the caller's to handle (fetch the
   * lists, seal again).
   *
   * @param {EnvelopeV2} envelope
   */
  post(envelope) {
    return this.host.api.request("POST", "/v2/messages", { body: { envelope: envelope.toWire() } });
  }

  /** The same envelope again (a retry: the server answers a repeat with the first answer). @param {unknown} wire */
  resend(wire) {
    return this.host.api.request("POST", "/v2/messages", { body: { envelope: wire } });
  }
}
