/**
 * Linking a device to this profile's history (PROTOCOL.md 15.10.2), in the browser.
 *
 * The old side (`link`): the typed link code is checked against the account's list as
 * fetched and accepted now (web/core/v2 `chooseLinkTarget`); only then is the history
 * this profile keeps (v2-history.js: verified v2 messages with a text) sealed as a file
 * (12.2) in the account's conversation with itself, and its key sent in a v2
 * `history_link` message to that one device. Nothing is uploaded or sent for a code that
 * names no other listed device.
 *
 * The new side (`receive`): an accepted `history_link` message is decided by the core
 * (`acceptHistoryLink`); a refusal is kept and shown as an unverifiable item with its
 * reason; an acceptance is downloaded (each chunk's tag, the size and SHA-256 against the
 * message), read as this account's archive, its rows checked by the core (each a direct
 * message of this account, else the whole archive is refused) and merged into the kept
 * history, message ids already kept skipped; the same writes forget the wait the shown
 * code opened, so one shown code takes one hand-over. No DOM.
 *
 * @module
 */

import { acceptHistoryLink, checkArchiveRows, chooseLinkTarget, HISTORY_LINK_TYPE, rowFits } from "../core/v2/link.js";
import { withActive } from "../core/v2/index.js";
import { b64encode } from "../protocol/encoding.js";
import { encodePayload } from "../protocol/envelope.js";
import { fileDescriptorToPayload } from "../protocol/files.js";
import { directConversationId } from "../protocol/identifiers.js";
import { EnvelopeV2, HeaderV2, Target, randomX25519Private, sealEnvelope, targetKey } from "../protocol/v2/index.js";
import { LINK_ARCHIVE_VERSION, encodeLinkArchive, linkCode, openLinkArchive } from "../protocol/v2/link.js";
import { ApiError } from "./api.js";
import * as store from "./store.js";
import { FileCorrupt, downloadFile, uploadFile } from "./transfers.js";
import { exclusive } from "./v2-sessions.js";

/** @import { AcceptedV2 } from "../core/v2/index.js" */
/** @import { LinkReason } from "../core/v2/link.js" */
/** @import { BackupMessage } from "../protocol/v2/backup.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage } from "./conversations.js" */
/** @import { DeviceKeys } from "./device-keys.js" */
/** @import { DeviceBook } from "./devices.js" */
/** @import { SessionBook, StoredSessions } from "./v2-sessions.js" */
/** @import { LocalHistory } from "./v2-history.js" */
/** @import { V2Sender } from "./v2-send.js" */

const ARCHIVE_NAME = "history-archive";
/** Showing the link code opens a wait: a hand-over is accepted only until it ends. */
const LINK_WAIT_MS = 3_600_000;

/** @type {Record<LinkReason, string>} */
export const LINK_REFUSALS = {
  link_code_malformed: "That is not a link code: 24 characters, in 6 groups of 4.",
  link_code_checksum: "That link code has a typo (its checksum does not match).",
  link_device_unknown: "No device in your account's device list shows that code. Nothing was sent.",
  link_self: "That is this device's own code: type the code shown on the new device.",
  link_foreign: "it is not from a device of your account to itself",
  link_not_for_me: "it is not addressed to this device alone",
  link_unexpected: "this device was not waiting for a hand-over (open its link code first)",
  link_malformed: "it is not a history hand-over",
  link_too_large: "the history archive is too large",
  link_archive_corrupt: "the history archive is missing or fails its checks",
  link_archive_malformed: "the history archive is not your account's",
};

/** A link the old side refused: nothing was uploaded or sent. */
export class LinkFailed extends Error {
  /** @param {LinkReason} reason */
  constructor(reason) {
    super(LINK_REFUSALS[reason]);
    this.reason = reason;
  }
}

/**
 * @param {Record<string, unknown>} payload
 * @returns {boolean}
 */
export function isHistoryLink(payload) {
  return payload.type === HISTORY_LINK_TYPE;
}

/**
 * @typedef {object} LinkHost
 * @property {Api} api
 * @property {DeviceKeys} keys
 * @property {DeviceBook} book
 * @property {SessionBook} sessions
 * @property {V2Sender} sender
 * @property {LocalHistory} local
 * @property {(item: ChatMessage, peer: string | null) => Promise<void>} show
 * @property {(text: string) => void} lineAll a notice line in every direct conversation
 */

export class Linker {
  /** @param {LinkHost} host */
  constructor(host) {
    this.host = host;
    this.me = host.keys.username;
  }

  /**
   * This device's link code, to show so an old device can hand over its history; showing
   * it opens an hour in which a hand-over is accepted here (15.10.2).
   */
  async ownCode() {
    await store.put("v2", this.expectedPath, Date.now() + LINK_WAIT_MS);
    return linkCode(this.me, this.host.keys.device);
  }

  get expectedPath() {
    return [this.me, "link-expected", this.host.keys.deviceId];
  }

  /**
   * Hand this profile's history to the device whose code was typed.
   *
   * @param {string} typed
   * @returns {Promise<{deviceId: string, messages: number}>}
   * @throws {LinkFailed}
   */
  async link(typed) {
    const { api, book, keys } = this.host;
    const list = await book.refresh(this.me);
    const decision = await chooseLinkTarget(typed, this.me, list?.devices ?? [], keys.deviceId);
    if (decision.outcome === "refused") throw new LinkFailed(decision.reason);
    const target = decision.device.deviceId;
    const messages = await this.keptMessages();
    const padded = encodeLinkArchive({ username: this.me, version: LINK_ARCHIVE_VERSION, created_at: Date.now(), messages });
    await api.openDirect(this.me);
    const conversationId = await directConversationId(this.me, this.me);
    const file = new File([/** @type {Uint8Array<ArrayBuffer>} */ (padded)], ARCHIVE_NAME, { type: "application/octet-stream" });
    const descriptor = await uploadFile(api, conversationId, file, () => {});
    const payload = { type: HISTORY_LINK_TYPE, device_id: target, archive: fileDescriptorToPayload(descriptor).file };
    const header = { messageId: crypto.randomUUID(), sentAt: Date.now() };
    for (let attempt = 0; ; attempt += 1) {
      const envelope = await exclusive(this.me, () => this.seal(conversationId, target, payload, header));
      try {
        await this.host.sender.post(envelope);
        return { deviceId: target, messages: messages.length };
      } catch (error) {
        if (attempt > 0 || !(error instanceof ApiError && error.code === "device_list_stale")) throw error;
        await book.refresh(this.me);
      }
    }
  }

  /**
   * The verified v2 messages with a text this profile keeps, as 15.10.1's archive has them.
   *
   * @returns {Promise<BackupMessage[]>}
   */
  async keptMessages() {
    const { local } = this.host;
    const prefix = [this.me, "msg"];
    const found = await store.entries("v2", prefix, [...prefix, []], { reverse: false, limit: 1_000_000 });
    /** @type {BackupMessage[]} */
    const messages = [];
    for (const { key, value } of found) {
      const item = /** @type {ChatMessage | null} */ (await local.sealer.open(key, value));
      if (!item || !item.verified || item.kind || typeof item.text !== "string" || item.text === "" || item.file) continue;
      if (item.status === "sending" || item.status === "failed") continue;
      messages.push({
        message_id: item.messageId,
        conversation_id: item.conversationId,
        sender: item.sender,
        peer: item.sender === this.me ? this.peerOf(item) : item.sender,
        sent_at: item.sentAt ?? 0,
        server_ts: item.serverTs ?? 0,
        text: item.text,
      });
    }
    // An own message kept without its envelope (imported by an earlier hand-over) has
    // no peer of its own: the other sender of its conversation, if one wrote there.
    /** @type {Map<string, string>} */
    const others = new Map();
    for (const m of messages) if (m.sender !== this.me) others.set(m.conversation_id, m.sender);
    for (const m of messages) if (m.peer === this.me) m.peer = others.get(m.conversation_id) ?? this.me;
    // Only rows the new device accepts (15.10.2): the rest stay behind rather than refuse it all.
    /** @type {BackupMessage[]} */
    const fitting = [];
    for (const m of messages) if (await rowFits(this.me, m)) fitting.push(m);
    return fitting;
  }

  /**
   * The other account of an own message, from the envelope it was sent in.
   *
   * @param {ChatMessage} item
   */
  peerOf(item) {
    try {
      const header = EnvelopeV2.fromWire(JSON.parse(item.envelopeText ?? "null")).header;
      return header.targets.find((target) => target.username !== this.me)?.username ?? this.me;
    } catch {
      return this.me;
    }
  }

  /**
   * A 15.8 envelope in the account's conversation with itself, to one device; its new
   * session state and seen record stored before it leaves.
   *
   * @param {string} conversationId
   * @param {string} target
   * @param {import("../protocol/index.js").Payload} payload
   * @param {{messageId: string, sentAt: number}} header
   */
  async seal(conversationId, target, payload, { messageId, sentAt }) {
    const { book, keys, sessions, sender } = this.host;
    const list = await book.accepted(this.me);
    if (!list || !list.devices.some((device) => device.deviceId === target)) throw new LinkFailed("link_device_unknown");
    const key = targetKey(this.me, target);
    /** @type {Map<string, StoredSessions>} */
    const sets = new Map([[key, await sessions.get(this.me, target)]]);
    const before = /** @type {StoredSessions} */ (sets.get(key));
    if (before.sessions.active === null || before.repair) await sender.setUp(this.me, list, [target], sets, sentAt);
    const stored = /** @type {StoredSessions} */ (sets.get(key));
    const states = new Map(stored.sessions.active ? [[key, stored.sessions.active]] : []);
    const headerV2 = new HeaderV2({
      messageId,
      conversationId,
      sender: this.me,
      senderDevice: keys.deviceId,
      sentAt,
      targets: [new Target(this.me, list.version, [target])],
    });
    const sealed = await sealEnvelope(
      headerV2,
      encodePayload(payload),
      crypto.getRandomValues(new Uint8Array(32)),
      crypto.getRandomValues(new Uint8Array(12)),
      states,
      keys.signingSeed,
      randomX25519Private,
    );
    const state = sealed.states.get(key);
    if (!state) throw new Error("The hand-over could not be sealed.");
    await store.writeAll([
      { store: "seen", key: [this.me, `seen:${messageId}`], value: { signature: b64encode(sealed.envelope.signature), seq: null } },
      await sessions.write(this.me, target, { sessions: withActive(stored.sessions, state), repair: false }),
    ]);
    return sealed.envelope;
  }

  /**
   * An accepted `history_link` message (its sessions, seen record and position already
   * kept by the receiver): refused with a reason, or imported.
   *
   * @param {AcceptedV2} decision
   * @param {HeaderV2} header
   * @param {string} envelopeText
   */
  async receive(decision, header, envelopeText) {
    const verdict = await acceptHistoryLink({
      username: this.me,
      deviceId: this.host.keys.deviceId,
      sender: decision.sender,
      senderDevice: decision.senderDevice,
      conversationId: decision.conversationId,
      targetDevices: header.targets.flatMap((target) => target.devices.map((id) => /** @type {[string, string]} */ ([target.username, id]))),
      payload: decision.payload,
      expectedUntil: await this.expectedUntil(),
      now: Date.now(),
    });
    if (verdict.outcome === "refused") return this.refused(decision, verdict.reason, envelopeText);
    /** @type {Uint8Array} */
    let plaintext;
    try {
      plaintext = new Uint8Array(await (await downloadFile(this.host.api, verdict.archive, () => {})).arrayBuffer());
    } catch (error) {
      if (error instanceof FileCorrupt) return this.refused(decision, "link_archive_corrupt", envelopeText);
      // Not the archive's fault (the network, the server): nothing imported, and said so.
      const why = error instanceof Error ? error.message : "download failed";
      this.host.lineAll(`The history hand-over from device ${verdict.senderDevice} could not be downloaded (${why}). Link again from that device.`);
      return;
    }
    /** @type {BackupMessage[]} */
    let messages;
    try {
      messages = openLinkArchive(plaintext, this.me).messages;
    } catch {
      return this.refused(decision, "link_archive_malformed", envelopeText);
    }
    // One planted row (another conversation, another sender, no 3.2 id) and the archive is
    // not trusted at all; the wait stays open for the genuine hand-over.
    const rows = await checkArchiveRows(this.me, messages);
    if (rows) return this.refused(decision, rows.reason, envelopeText);
    // Closed meanwhile by another hand-over's import (the download took a while).
    if ((await this.expectedUntil()) === null) return this.refused(decision, "link_unexpected", envelopeText);
    const { local } = this.host;
    const imported = await local.importWrites(messages);
    const added = imported.added;
    // One hand-over per shown code: the import forgets the wait in the same transaction,
    // so a second one (a forged one pushed after the genuine) is link_unexpected.
    /** @type {import("./store.js").Write[]} */
    const writes = [{ store: "v2", key: this.expectedPath }, ...imported.writes];
    await store.writeAll(writes);
    for (const { item, peer } of added) await this.host.show(item, peer);
    this.host.lineAll(`History from device ${verdict.senderDevice} imported: ${added.length} messages`);
  }

  /** @returns {Promise<number | null>} when the wait opened by showing the code ends */
  async expectedUntil() {
    const until = await store.get("v2", this.expectedPath);
    return typeof until === "number" ? until : null;
  }

  /**
   * @param {AcceptedV2} decision
   * @param {LinkReason} reason
   * @param {string} envelopeText
   */
  async refused(decision, reason, envelopeText) {
    /** @type {ChatMessage} */
    const item = {
      messageId: decision.messageId,
      conversationId: decision.conversationId,
      sender: decision.sender,
      text: null,
      sentAt: decision.sentAt,
      serverTs: null,
      verified: false,
      refusal: /** @type {any} */ (reason),
      reason: null,
      status: "received",
      envelopeText,
    };
    await this.host.local.put(item);
    await this.host.show(item, decision.sender === this.me ? null : decision.sender);
  }
}
