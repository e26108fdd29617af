/**
 * This device's v2 inbox (PROTOCOL.md 15.8, 15.16): entries read in position order over
 * HTTP, each decided by the core (web/core/v2 `receiveDirectV2`) after fetching a sender
 * list that may be newer; an accepted message's session set, seen record, the position
 * (and a spent one-time prekey's removal) stored in one IndexedDB transaction, then
 * shown; a refused one shown as unverifiable with its reason, never dropped; then
 * acknowledged. No DOM.
 *
 * @module
 */

import { isReceiptPayload, receiveDirectV2 } from "../core/v2/index.js";
import { fileDescriptorFromPayload } from "../protocol/files.js";
import { EnvelopeV2, targetKey } from "../protocol/v2/index.js";
import { ApiError } from "./api.js";
import { refusedItem, safeInteger } from "./receive.js";
import * as store from "./store.js";
import { exclusive } from "./v2-sessions.js";

/** @import { SeenRecord } from "../core/messages.js" */
/** @import { DeviceList, HeaderV2 } from "../protocol/v2/index.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage } from "./conversations.js" */
/** @import { DeviceKeys } from "./device-keys.js" */
/** @import { DeviceBook } from "./devices.js" */
/** @import { SessionBook } from "./v2-sessions.js" */
/** @import { LocalHistory } from "./v2-history.js" */
/** @import { V2Receipts } from "./v2-receipts.js" */
/** @import { AcceptedV2 } from "../core/v2/index.js" */

const PAGE = 100;

/**
 * @typedef {object} V2ReceiveHost
 * @property {Api} api
 * @property {DeviceKeys} keys
 * @property {DeviceBook} book
 * @property {SessionBook} sessions
 * @property {LocalHistory} local the messages this device keeps
 * @property {(item: ChatMessage, peer: string | null) => Promise<void>} show
 * @property {(peer: string, text: string) => void} notice
 * @property {() => void} revoked this device is no longer in the account's list
 * @property {(decision: import("../core/v2/index.js").AcceptedV2, header: HeaderV2, envelopeText: string) => Promise<void>} [historyLink]
 *   an accepted history hand-over (15.10.2, link.js)
 * @property {V2Receipts | null} [receipts] receipts to make and check (15.17)
 */

/**
 * The contact of a direct conversation as an own message's header names it.
 *
 * @param {HeaderV2 | null} header
 * @param {string} me
 * @returns {string | null}
 */
function peerOf(header, me) {
  return header?.targets.find((target) => target.username !== me)?.username ?? null;
}

export class V2Receiver {
  /** @param {V2ReceiveHost} host */
  constructor(host) {
    this.host = host;
    this.me = host.keys.username;
    this.lastSeq = 0;
    /** @type {Promise<void>} */
    this.queue = Promise.resolve();
    this.again = false;
    this.running = false;
    this.stopped = false;
    /** A setup spent one of this device's one-time prekeys since the last upload check. */
    this.usedPrekey = false;
    // Another tab of this profile may open (and acknowledge, so delete) an entry before
    // this one fetches it: what one tab opens and keeps is announced to the others, which
    // show the kept copy (and an accepted receipt's effect, 15.17).
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(`securechat-v2-opened:${this.me}`) : null;
    if (this.channel) this.channel.onmessage = (event) => void this.openedElsewhere(event.data);
  }

  /**
   * An item another tab opened and kept, or a receipt it accepted.
   *
   * @param {any} news
   */
  async openedElsewhere(news) {
    if (this.stopped || news === null || typeof news !== "object") return;
    if (news.kind === "receipt" && typeof news.conversationId === "string" && Array.isArray(news.messageIds)) {
      this.host.receipts?.host.applied(news);
      return;
    }
    if (typeof news.conversationId !== "string" || typeof news.messageId !== "string" || typeof news.sentAt !== "number") return;
    const kept = await this.host.local.find(news.conversationId, news.sentAt, news.messageId);
    if (kept) await this.host.show(kept, typeof news.peer === "string" ? news.peer : null);
  }

  /** @param {Record<string, unknown>} news */
  announce(news) {
    try {
      this.channel?.postMessage(news);
    } catch {
      // A closed channel (the page is going): the other tabs read the store on reload.
    }
  }

  get seqPath() {
    return [this.me, "v2seq", this.host.keys.deviceId];
  }

  async load() {
    const saved = await store.get("v2", this.seqPath);
    this.lastSeq = typeof saved === "number" ? saved : 0;
  }

  /** Read the inbox now (coalesced: one read at a time, one more if asked meanwhile). */
  poll() {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.queue;
    }
    this.running = true;
    this.queue = (async () => {
      try {
        do {
          this.again = false;
          await this.readAll();
        } while (this.again && !this.stopped);
      } catch (error) {
        if (error instanceof ApiError && error.code === "device_not_listed") {
          this.stopped = true;
          this.host.revoked();
        } else if (!(error instanceof ApiError && error.status === 401)) {
          // (A session that ended meanwhile is told on its own; the next read is on login.)
          console.error(error);
        }
      } finally {
        this.running = false;
      }
    })();
    return this.queue;
  }

  async readAll() {
    const base = `/devices/${this.host.keys.deviceId}/inbox`;
    for (;;) {
      // The inbox is this device's own: the calls carry its credential (15.16).
      const answer = await this.host.api.deviceRequest(this.host.keys, "GET", `${base}?since=${this.lastSeq}&limit=${PAGE}`);
      const entries = Array.isArray(answer?.entries) ? answer.entries : [];
      const before = this.lastSeq;
      for (const entry of entries) await this.process(entry);
      if (this.lastSeq > before) await this.host.api.deviceRequest(this.host.keys, "POST", `${base}/ack`, { body: { seq: this.lastSeq } });
      // "delivered" receipts once the entries are acknowledged (15.17).
      await this.host.receipts?.sendDelivered();
      // A page is cut by bytes too: `more` says entries wait beyond it.
      if ((entries.length < PAGE && answer?.more !== true) || this.lastSeq === before) return;
    }
  }

  /**
   * Lists that may be newer than the accepted ones are fetched before deciding (15.8):
   * the sender's if its device is not in it, and any the envelope names a newer
   * version of; only the conversation's two accounts, whatever the envelope names.
   *
   * @param {HeaderV2 | null} header
   */
  async freshLists(header) {
    if (header === null) return;
    const names = new Set([header.sender, this.me]);
    if (header.sender === this.me) {
      const other = header.targets.find((target) => target.username !== this.me);
      if (other) names.add(other.username);
    }
    for (const name of names) {
      const list = await this.host.book.accepted(name);
      const target = header.targets.find((candidate) => candidate.username === name);
      const stale =
        list === null ||
        (name === header.sender && !list.devices.some((device) => device.deviceId === header.senderDevice)) ||
        (target !== undefined && target.deviceListVersion > list.version);
      if (stale) await this.host.book.refresh(name).catch(() => null);
    }
  }

  /**
   * A receipt message (15.17): its sessions, seen record and position are kept as any
   * message's, but it is no chat item, is never receipted itself, and moves own messages
   * forward only as the core decides (v2-receipts.js).
   *
   * @param {AcceptedV2} decision
   * @param {import("./store.js").Write} position
   */
  async receipt(decision, position) {
    const { keys, sessions } = this.host;
    /** @type {import("./store.js").Write[]} */
    const writes = [
      position,
      { store: "seen", key: [this.me, `seen:${decision.messageId}`], value: decision.seen },
      await sessions.write(decision.sender, decision.senderDevice, { sessions: decision.sessions, repair: false }),
    ];
    if (decision.oneTimePrekeyUsed !== null) {
      writes.push(await keys.forgetOneTime(decision.oneTimePrekeyUsed));
      this.usedPrekey = true;
    }
    await store.writeAll(writes);
    this.lastSeq = /** @type {number} */ (position.value);
    const receipt = await this.host.receipts?.decide(decision);
    if (receipt?.outcome === "accepted" && !receipt.own) this.announce({ kind: "receipt", ...receipt });
  }

  /**
   * What accepting a message that is no chat item changed: its sessions, seen record,
   * position and spent one-time prekey.
   *
   * @param {import("../core/v2/index.js").AcceptedV2} decision
   * @param {import("./store.js").Write} position
   */
  async keepAccepted(decision, position) {
    const { keys, sessions } = this.host;
    /** @type {import("./store.js").Write[]} */
    const writes = [
      position,
      { store: "seen", key: [this.me, `seen:${decision.messageId}`], value: decision.seen },
      await sessions.write(decision.sender, decision.senderDevice, { sessions: decision.sessions, repair: false }),
    ];
    if (decision.oneTimePrekeyUsed !== null) {
      writes.push(await keys.forgetOneTime(decision.oneTimePrekeyUsed));
      this.usedPrekey = true;
    }
    await store.writeAll(writes);
    this.lastSeq = /** @type {number} */ (position.value);
  }

  /**
   * One entry, with no other tab of this profile sealing or opening meanwhile.
   *
   * @param {Record<string, unknown>} entry
   */
  process(entry) {
    return exclusive(this.me, () => this.processNow(entry));
  }

  /** @param {Record<string, unknown>} entry */
  async processNow(entry) {
    const seq = safeInteger(entry?.seq);
    if (seq === null || seq <= this.lastSeq) return;
    const wire = entry.envelope;
    /** @type {HeaderV2 | null} */
    let header = null;
    try {
      header = EnvelopeV2.fromWire(wire).header;
    } catch {
      header = null;
    }
    await this.freshLists(header);
    const { book, keys, sessions } = this.host;
    // Another tab may have spent a one-time prekey since this one read the record.
    await keys.reload();
    /** @type {Map<string, DeviceList>} */
    const deviceLists = new Map();
    // The conversation's two accounts only, whatever else the envelope names.
    const names = new Set([this.me]);
    if (header) {
      names.add(header.sender);
      const other = header.targets.find((target) => target.username !== this.me);
      if (other) names.add(other.username);
    }
    for (const name of names) {
      const list = await book.accepted(name);
      if (list) deviceLists.set(name, list);
    }
    const current = header ? await sessions.get(header.sender, header.senderDevice) : null;
    const sessionMap = new Map(header && current ? [[targetKey(header.sender, header.senderDevice), current.sessions]] : []);
    /** @type {Map<string, SeenRecord>} */
    const seen = new Map();
    if (header) {
      const record = await store.get("seen", [this.me, `seen:${header.messageId}`]);
      if (record) seen.set(header.messageId, /** @type {SeenRecord} */ (record));
    }
    const decision = await receiveDirectV2(wire, {
      me: keys.me(),
      deliveredIn: null,
      deviceLists,
      seen,
      inboxSeq: seq,
      sessions: sessionMap,
      now: Date.now(),
    });
    /** @type {import("./store.js").Write} */
    const position = { store: "v2", key: this.seqPath, value: seq };
    const envelopeText = JSON.stringify(wire ?? null);
    const serverTs = safeInteger(entry.server_ts);
    if (decision.outcome === "accepted" && isReceiptPayload(decision.payload)) {
      await this.receipt(decision, position);
      return;
    }
    // A history hand-over (15.10.2): kept as any message's, then decided and imported.
    if (decision.outcome === "accepted" && header && this.host.historyLink && decision.payload.type === "history_link") {
      await this.keepAccepted(decision, position);
      await this.host.historyLink(decision, header, envelopeText);
      return;
    }
    if (decision.outcome === "accepted") {
      const next = { sessions: decision.sessions, repair: false };
      const payload = decision.payload;
      const mine = decision.sender === this.me;
      /** @type {ChatMessage} */
      const item = {
        messageId: decision.messageId,
        conversationId: decision.conversationId,
        sender: decision.sender,
        text: typeof payload.text === "string" ? payload.text : "",
        sentAt: decision.sentAt,
        serverTs,
        verified: true,
        refusal: null,
        reason: null,
        status: mine ? "sent" : "received",
        envelopeText,
        // The core checked the descriptor with the payload (12.3; bad_payload otherwise).
        file: payload.type === "file" ? fileDescriptorFromPayload(payload) : null,
      };
      // The message is kept with what accepting it changed, or neither is (15.10: the
      // server cannot serve it again once its message key is gone).
      /** @type {import("./store.js").Write[]} */
      const writes = [
        position,
        { store: "seen", key: [this.me, `seen:${decision.messageId}`], value: decision.seen },
        await sessions.write(decision.sender, decision.senderDevice, next),
        await this.host.local.write(item),
      ];
      if (decision.oneTimePrekeyUsed !== null) {
        writes.push(await keys.forgetOneTime(decision.oneTimePrekeyUsed));
        this.usedPrekey = true;
      }
      await store.writeAll(writes);
      this.lastSeq = seq;
      if (decision.notices.includes("session_repaired")) {
        this.host.notice(decision.peer, `A new secure session was started with a device of ${decision.sender}.`);
      }
      await this.host.show(item, decision.peer);
      this.announce({ conversationId: item.conversationId, sentAt: item.sentAt, messageId: item.messageId, peer: decision.peer });
      if (mine) {
        // Sent from another device: who it was sealed for, for its receipts (15.17).
        await this.host.receipts?.noteSent(decision.conversationId, decision.messageId, decision.peer, decision.sentAt);
      } else {
        this.host.receipts?.delivered(decision.sender, decision.messageId);
      }
      return;
    }
    if (decision.outcome === "duplicate") {
      await store.writeAll([position, { store: "seen", key: [this.me, `seen:${decision.messageId}`], value: decision.seen }]);
      this.lastSeq = seq;
      // Another tab of this profile opened it first (or this one did before a reload):
      // shown from what that one kept, not silently dropped.
      const kept = header ? await this.host.local.find(header.conversationId, header.sentAt, header.messageId) : null;
      if (kept) await this.host.show(kept, kept.sender === this.me ? peerOf(header, this.me) : kept.sender);
      return;
    }
    /** @type {import("./store.js").Write[]} */
    const writes = [position];
    const repair = decision.repairNeeded && header !== null && current !== null;
    if (repair && header && current) writes.push(await sessions.write(header.sender, header.senderDevice, { ...current, repair: true }));
    const delivery = {
      messageId: header?.messageId ?? `v2:${seq}`,
      conversationId: header?.conversationId ?? "",
      sender: header?.sender ?? "?",
      serverTs,
    };
    const claimed = refusedItem(decision, { delivery, envelopeText });
    // Kept and shown under an id of its own (this inbox position's): a refused envelope
    // that claims the id and time of a message this device has must never replace it.
    const refused = { ...claimed, messageId: `v2-refused:${seq}:${claimed.messageId}` };
    // Kept too (with its reason and what it claims), so a reload still shows that
    // something arrived and could not be opened; one that names no conversation is not.
    if (refused.conversationId.startsWith("dm-")) writes.push(await this.host.local.write({ ...refused, sentAt: header?.sentAt ?? refused.sentAt }));
    await store.writeAll(writes);
    this.lastSeq = seq;
    await this.host.show(refused, null);
    if (refused.conversationId.startsWith("dm-")) {
      this.announce({ conversationId: refused.conversationId, sentAt: header?.sentAt ?? refused.sentAt, messageId: refused.messageId, peer: null });
    }
    if (repair && header) {
      this.host.notice(
        header.sender === this.me ? "" : header.sender,
        `Messages from a device of ${header.sender} could not be opened; the next message sent to it starts a new secure session.`,
      );
    }
  }
}
