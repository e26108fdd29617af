/**
 * Protocol v2 for direct conversations (issue 14, PROTOCOL.md 15): this profile's device
 * (device-keys.js), the device lists (devices.js), session sets (v2-sessions.js), sending
 * (v2-send.js) and the device inbox (v2-receive.js), wired together for the messenger.
 * A direct conversation goes in v2 once both accounts have an accepted device list with
 * this device in its own (15.12), files included (v2-files.js, 15.18); otherwise, and for
 * groups, v1 as before.
 *
 * v2 is opt-in per browser while it is a draft: its messages are kept in this profile
 * (v2-history.js) and survive reloads, and its delivered/read receipts are v2 messages
 * (PROTOCOL.md 15.17, v2-receipts.js), so an own v2 message goes Sent, Delivered, Read as
 * a v1 one does. The switch in
 * the devices section of the account dialog sets up this
 * browser's device (listed, so peers send to it in v2) and sends direct messages in v2.
 * Switched off again, the device stays listed and keeps receiving; only sending goes
 * back to v1. Without the switch nothing of v2 runs and peers see no list: v1 only.
 *
 * The device inbox is read on start, whenever the socket (re)connects and on each
 * `device_inbox` frame for this device (15.16). No DOM.
 *
 * @module
 */

import { directConversationId } from "../protocol/index.js";
import { ApiError } from "./api.js";
import { reasonText } from "./reasons.js";
import { rotateAccountKey, rotatedNotice } from "./rotation.js";
import { DeviceKeys } from "./device-keys.js";
import { DeviceBook } from "./devices.js";
import { V2Receipts } from "./v2-receipts.js";
import { V2Receiver } from "./v2-receive.js";
import { V2Sender } from "./v2-send.js";
import { LocalHistory } from "./v2-history.js";
import { Linker } from "./link.js";
import { SessionBook, exclusive } from "./v2-sessions.js";
import * as store from "./store.js";

/** @import { Payload, PrivateIdentity } from "../protocol/index.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage, Conversation } from "./conversations.js" */
/** @import { ListChange } from "./devices.js" */
/** @import { ReceiptBook } from "./receipts.js" */
/** @import { ReceiptV2Accepted } from "../core/v2/index.js" */
/** @import { Trust } from "./trust.js" */

const MAINTAIN_MS = 3_600_000;
/** Where the id of a device wiped at logout but still listed (the only one) is kept. */
const WIPED = "wiped-device";

/**
 * @typedef {object} V2Host
 * @property {Api} api
 * @property {PrivateIdentity} identity
 * @property {Pick<Trust, "pinnedOrFetch"> & Partial<Pick<Trust, "rotated">>} trust
 * @property {(item: ChatMessage, peer: string | null) => Promise<void>} show
 * @property {(conversationId: string, peer: string, text: string) => void} line a notice line in a direct conversation
 * @property {() => void} devicesChanged this account's list changed (the panel redraws)
 * @property {(text: string) => void} lineAll a notice line in every direct conversation
 * @property {ReceiptBook} [receipts] the sent records, shared with v1's receipts (15.17)
 * @property {(conversationId: string) => readonly ChatMessage[]} [shownIn] a conversation's items on screen
 * @property {(decision: ReceiptV2Accepted) => void} [receiptApplied] a receipt moved own messages
 */

/**
 * @typedef {object} OwnDevice
 * @property {string} deviceId
 * @property {number} createdAt
 * @property {boolean} current this browser
 */

export const NEW_DEVICE_HISTORY =
  "This browser is a new device of your account: protocol v2 messages sent before now stay on your other devices. " +
  "To bring them here, show this browser's link code (Account and sessions, Devices) and type it on one of them.";

export class V2 {
  /** @param {V2Host} host */
  constructor(host) {
    this.host = host;
    this.me = host.identity.username;
    /** @type {DeviceKeys | null} */
    this.keys = null;
    /** @type {DeviceBook | null} */
    this.book = null;
    /** @type {V2Sender | null} */
    this.sender = null;
    /** @type {V2Receiver | null} */
    this.receiver = null;
    /** @type {SessionBook | null} */
    this.sessions = null;
    /** @type {LocalHistory | null} */
    this.local = null;
    /** @type {Linker | null} history hand-overs (15.10.2) */
    this.linker = null;
    /** @type {V2Receipts | null} */
    this.receipts = null;
    /** Why v2 is off on this device, if it is. @type {string | null} */
    this.off = "starting";
    this.sendEnabled = false;
    /** @type {Promise<void> | null} */
    this.starting = null;
    this.maintainedAt = 0;
    /** Logging out: this device's own removal is not news to anyone here. */
    this.leaving = false;
    /** @type {Set<string>} lists refused and said so */
    this.refusedLists = new Set();
  }

  /** @returns {string | null} this device's id, once it runs */
  get deviceId() {
    return this.keys?.deviceId ?? null;
  }

  /** @param {boolean} enabled send direct messages in v2 from this browser */
  async setSendEnabled(enabled) {
    this.sendEnabled = enabled;
    await store.put("v2", [this.me, "send-v2"], enabled);
    this.host.devicesChanged();
    if (enabled) await this.start();
  }

  /** Start v2 unless this browser has switched it off and has no device (v2 is the default). */
  async init() {
    this.sendEnabled = (await store.get("v2", [this.me, "send-v2"])) !== false;
    const hasDevice = (await store.get("v2", [this.me, "device"])) !== undefined;
    const wiped = typeof (await store.get("v2", [this.me, WIPED])) === "string";
    if (this.sendEnabled || hasDevice || wiped) {
      await this.start();
    } else {
      this.off = "switched off in this browser";
    }
  }

  /**
   * Set up (or load) the device, make sure it is listed, publish prekeys, read the inbox.
   * A failure leaves v2 off for this page; v1 carries on.
   */
  start() {
    this.starting ??= this.run();
    return this.starting;
  }

  async run() {
    try {
      this.off = "starting";
      const now = Date.now();
      let keys = await DeviceKeys.load(this.host.identity, now);
      let book = this.makeBook(keys);
      const current = await book.refresh(this.me);
      if (keys.record.listed && !current?.devices.some((device) => device.deviceId === keys.deviceId)) {
        // This device was revoked: its keys stay revoked; this login makes a new device.
        keys = await DeviceKeys.load(this.host.identity, now, { fresh: true });
        book = this.makeBook(keys);
      }
      const firstListing = !keys.record.listed;
      const others = current?.devices.filter((device) => device.deviceId !== keys.deviceId).length ?? 0;
      const wiped = await store.get("v2", [this.me, WIPED]);
      await book.ensureListed(now, typeof wiped === "string" && wiped !== keys.deviceId ? wiped : null);
      if (wiped !== undefined) await store.remove("v2", [this.me, WIPED]);
      if (!keys.record.listed) {
        keys.record = { ...keys.record, listed: true };
        await keys.save();
      }
      await exclusive(this.me, async () => {
        await keys.reload();
        await keys.publishPrekeys(this.host.api, now);
      });
      this.maintainedAt = now;
      this.keys = keys;
      this.book = book;
      const sessions = new SessionBook(this.me, keys.sealer);
      const notice = (/** @type {string} */ peer, /** @type {string} */ text) => void this.notice(peer, "", text);
      this.sessions = sessions;
      const local = new LocalHistory(this.me, keys.sealer);
      this.local = local;
      const book1 = this.host.receipts;
      const receipts = book1
        ? new V2Receipts({
            me: this.me,
            book: book1,
            local,
            send: (peer, payload) => this.sendReceipt(peer, payload),
            shownIn: this.host.shownIn ?? (() => []),
            applied: this.host.receiptApplied ?? (() => {}),
            unread: async (ids) => {
              const fresh = [];
              for (const id of ids) if ((await store.get("seen", [this.me, `read-v2:${id}`])) === undefined) fresh.push(id);
              return fresh;
            },
            noteRead: (ids) => store.writeAll(ids.map((id) => ({ store: "seen", key: [this.me, `read-v2:${id}`], value: true }))),
          })
        : null;
      this.receipts = receipts;
      const noteSent = (/** @type {string} */ id, /** @type {string} */ messageId, /** @type {string} */ peer, /** @type {number} */ sentAt) =>
        book1 ? book1.noteSent(id, messageId, [this.me, peer].sort(), sentAt) : Promise.resolve();
      this.sender = new V2Sender({ api: this.host.api, keys, book, sessions, local, notice, noteSent });
      this.linker = new Linker({ api: this.host.api, keys, book, sessions, sender: this.sender, local, show: this.host.show, lineAll: this.host.lineAll });
      this.receiver = new V2Receiver({
        api: this.host.api,
        keys,
        book,
        sessions,
        local,
        show: this.host.show,
        notice,
        revoked: () => this.revokedHere(),
        historyLink: (decision, header, envelopeText) => this.linker?.receive(decision, header, envelopeText) ?? Promise.resolve(),
        receipts,
      });
      // Read receipts for v2 messages go in v2 from now on (15.17).
      if (book1 && receipts) book1.v2Read = (peer, ids) => receipts.read(peer, ids);
      await this.receiver.load();
      this.off = null;
      this.host.devicesChanged();
      // A new device opens v2 messages from its creation on (15.10): say where the rest is.
      if (firstListing && others > 0) this.host.lineAll(NEW_DEVICE_HISTORY);
      await this.receiver.poll();
    } catch (error) {
      this.off = error instanceof Error ? error.message : "v2 could not start";
      this.starting = null;
      // A session that ended meanwhile (logged out elsewhere, revoked) is told on its own.
      if (!(error instanceof ApiError && error.status === 401)) console.warn("protocol v2 is off on this device:", error);
      this.host.devicesChanged();
    }
  }

  /** @param {DeviceKeys} keys */
  makeBook(keys) {
    return new DeviceBook({
      api: this.host.api,
      keys,
      trust: this.host.trust,
      changed: (change) => this.listChanged(change),
      refused: (username, reason) => this.listRefused(username, reason),
    });
  }

  stop() {
    if (this.receiver) this.receiver.stopped = true;
    this.receipts?.stop();
    if (this.host.receipts) this.host.receipts.v2Read = null;
  }

  /**
   * Seal a receipt payload for `peer` and post it (15.17), sealed again once on 409
   * `device_list_stale`; kept nowhere (it is no chat item). Whether this browser sends
   * its texts in v2 does not matter: the peer's v2 messages are receipted in v2.
   *
   * @param {string} peer
   * @param {Payload} payload
   */
  async sendReceipt(peer, payload) {
    const sender = this.sender;
    if (!sender || !this.book) throw new Error("Protocol v2 is not running on this device.");
    const conversationId = await directConversationId(this.me, peer);
    const header = { messageId: crypto.randomUUID(), sentAt: Date.now() };
    let envelope = await sender.seal(peer, conversationId, payload, header, { keep: false });
    try {
      await sender.post(envelope);
    } catch (error) {
      if (!(error instanceof ApiError && error.code === "device_list_stale")) throw error;
      await Promise.all([this.book.refresh(this.me), this.book.refresh(peer)]);
      envelope = await sender.seal(peer, conversationId, payload, header, { keep: false });
      await sender.post(envelope);
    }
  }

  /** Read the inbox, then keep the prekeys stocked (15.4). */
  async poll() {
    const receiver = this.receiver;
    if (!receiver) return;
    await receiver.poll();
    const used = receiver.usedPrekey;
    receiver.usedPrekey = false;
    await this.maintain(used);
  }

  /**
   * 15.4's schedule while the page stays open: after a setup spent a one-time prekey
   * (the server may be low), and at most hourly otherwise (signed prekey rotation).
   *
   * @param {boolean} now check at once
   */
  async maintain(now) {
    const keys = this.keys;
    const at = Date.now();
    if (!keys || this.off !== null || (!now && at - this.maintainedAt < MAINTAIN_MS)) return;
    this.maintainedAt = at;
    try {
      await exclusive(this.me, async () => {
        await keys.reload();
        await keys.publishPrekeys(this.host.api, at);
      });
    } catch (error) {
      console.warn("prekeys could not be published now:", error);
    }
  }

  revokedHere() {
    const already = this.off !== null && this.off.startsWith("This device was removed");
    this.stop();
    this.sender = null;
    this.off = "This device was removed from your account's device list.";
    this.host.devicesChanged();
    if (!already && !this.leaving) {
      this.host.lineAll("This device was removed from your account: it receives no new messages and sends as before (protocol v1).");
    }
  }

  /**
   * @param {string} peer
   * @param {string} actor
   * @param {string} text
   */
  async notice(peer, actor, text) {
    if (!peer) return;
    this.host.line(await directConversationId(this.me, peer), peer, actor ? `${actor} ${text}` : text);
  }

  /**
   * The server gave a list the core refused: said once per account and reason in the
   * conversation (the list accepted before, if any, stays; with none, v1 is used, 15.12).
   *
   * @param {string} username
   * @param {string} reason a reason code
   */
  listRefused(username, reason) {
    const key = `${username}\n${reason}`;
    if (this.refusedLists.has(key)) return;
    this.refusedLists.add(key);
    if (username === this.me) {
      console.warn(`this account's device list was refused: ${reason}`);
      return;
    }
    void this.notice(
      username,
      "",
      `${username}'s device list failed a security check (${reasonText(/** @type {any} */ (reason))}). It is not used: messages to ${username} go as before until a valid one is published.`,
    );
  }

  /** @param {ListChange} change */
  async listChanged(change) {
    for (const id of change.dropSessions) await this.sessions?.drop(change.username, id);
    if (change.rotated) await this.rotated(change.username, change.rotated);
    if (change.username === this.me) {
      const here = this.keys?.deviceId ?? null;
      if (here !== null && change.removed.includes(here)) {
        this.revokedHere();
        return;
      }
      this.host.devicesChanged();
      // Own devices matter as much as a contact's (15.3): another device reads what is
      // sent from now on. Said in every direct conversation, as a contact's change is in
      // theirs; this device's own first listing is not a change to tell about.
      if (change.first) return;
      for (const id of change.added) if (id !== here) this.host.lineAll("You added a new device to your account");
      for (const _ of change.removed) this.host.lineAll("You removed a device from your account");
      return;
    }
    if (change.first) return;
    for (const _ of change.added) await this.notice(change.username, change.username, "added a new device");
    for (const _ of change.removed) await this.notice(change.username, change.username, "removed a device");
  }

  /**
   * A signed rotation of `username`'s identity key was followed (15.11): the verified mark
   * goes, the notice is shown, and this device's unanswered setups with that account
   * (which bound the old key, and so a session id it no longer derives) start again.
   *
   * @param {string} username
   * @param {Uint8Array} key the new account key
   */
  async rotated(username, key) {
    await this.host.trust.rotated?.(username, key);
    const sessions = this.sessions;
    const book = this.book;
    if (sessions && book) {
      // This account's own rotation: every session set (its setups bound our old key);
      // a contact's: the sets with that contact's devices. Called from a list refresh,
      // inside the sender's or receiver's exclusive section (as the drops above are): no
      // second lock here.
      for (const [name, list] of book.lists) {
        if (username !== this.me && name !== username) continue;
        for (const device of list.devices) {
          const stored = await sessions.get(name, device.deviceId);
          if (stored.sessions.active && stored.sessions.active.pendingSetup.length > 0 && !stored.repair) {
            await store.writeAll([await sessions.write(name, device.deviceId, { ...stored, repair: true })]);
          }
        }
      }
    }
    if (username === this.me) {
      this.host.lineAll("Your account's identity key changed; the change is signed by the previous key");
    } else {
      await this.notice(username, "", rotatedNotice(username));
    }
  }

  /**
   * Rotate this account's identity key from this browser (15.11): see rotation.js.
   *
   * @param {string} password
   */
  async rotateIdentity(password) {
    const keys = this.keys;
    const book = this.book;
    if (!keys || !book || this.off !== null) throw new Error("Protocol v2 is not running on this device: switch it on first.");
    const done = await exclusive(this.me, () => rotateAccountKey({ api: this.host.api, book, keys, sessions: this.sessions }, password, Date.now()));
    await this.host.trust.rotated?.(this.me, done.newKey);
    this.host.lineAll("You changed your account's identity key; your contacts are told, and their verified mark for you is cleared");
    this.host.devicesChanged();
    return done;
  }

  /**
   * Whether a message to `peer` goes in v2 now.
   *
   * @param {string} peer
   */
  async available(peer) {
    return this.sendEnabled && this.sender !== null && (await this.sender.lists(peer)) !== null;
  }

  /**
   * Seal a text for `peer`, show it, send it; on 409 `device_list_stale` fetch both lists
   * and seal it again once (the same id and time: the refused envelope was not stored).
   * Failures are recorded on the message, as in v1.
   *
   * @param {Conversation} conversation a direct one whose peer has an accepted list
   * @param {string} text
   * @param {(message: ChatMessage) => void} shown
   * @param {(conversationId: string) => void} changed
   * @returns {Promise<ChatMessage>}
   */
  async sendText(conversation, text, shown, changed) {
    const sender = this.sender;
    if (!sender || !this.book) throw new Error("Protocol v2 is not running on this device.");
    const peer = conversation.peer;
    const header = { messageId: crypto.randomUUID(), sentAt: Date.now() };
    /** @type {Payload} */
    const payload = { type: "text", text };
    let envelope = await sender.seal(peer, conversation.id, payload, header);
    /** @type {ChatMessage} */
    const message = {
      messageId: header.messageId,
      conversationId: conversation.id,
      sender: this.me,
      text,
      sentAt: header.sentAt,
      serverTs: null,
      verified: true,
      refusal: null,
      reason: null,
      status: "sending",
      envelopeText: JSON.stringify(envelope.toWire()),
      file: null,
    };
    shown(message);
    try {
      let answer;
      try {
        answer = await sender.post(envelope);
      } catch (error) {
        if (!(error instanceof ApiError && error.code === "device_list_stale")) throw error;
        await Promise.all([this.book.refresh(this.me), this.book.refresh(peer)]);
        envelope = await sender.seal(peer, conversation.id, payload, header);
        message.envelopeText = JSON.stringify(envelope.toWire());
        answer = await sender.post(envelope);
      }
      // A receipt may have moved it on meanwhile (15.17): a status only moves forward.
      if (message.status === "sending") message.status = "sent";
      message.serverTs = typeof answer?.server_ts === "number" ? answer.server_ts : null;
    } catch (error) {
      message.status = "failed";
      message.reason = error instanceof Error ? error.message : "sending failed";
      // The user's own message was refused for the budget: receipts wait (15.17).
      if (error instanceof ApiError && error.status === 429) this.receipts?.pause(error.details.retry_after_ms);
    }
    await this.keep(message);
    changed(conversation.id);
    return message;
  }

  /**
   * A failed v2 message again, the same envelope (the server answers a repeat with the
   * first answer).
   *
   * @param {ChatMessage} message
   * @param {(conversationId: string) => void} changed
   */
  async retry(message, changed) {
    if (!this.sender || !message.envelopeText) return;
    message.status = "sending";
    message.reason = null;
    changed(message.conversationId);
    try {
      const answer = await this.sender.resend(JSON.parse(message.envelopeText));
      message.status = "sent";
      message.serverTs = typeof answer?.server_ts === "number" ? answer.server_ts : null;
    } catch (error) {
      message.status = "failed";
      message.reason = error instanceof Error ? error.message : "sending failed";
    }
    await this.keep(message);
    changed(message.conversationId);
  }

  /**
   * An own message's status after the server's answer, kept (a failure to store it only
   * costs the status after a reload: the message itself was kept when sealed).
   *
   * @param {ChatMessage} message
   */
  async keep(message) {
    await this.local?.put(message).catch((error) => console.warn("v2 message status not kept:", error));
  }

  /** The contact's list again (a conversation was opened). @param {string} peer */
  async refreshPeer(peer) {
    if (this.book && peer && peer !== this.me) await this.book.refresh(peer).catch(() => null);
  }

  /** This device's link code (15.10.2), or null while v2 does not run here. */
  async linkCode() {
    return this.linker ? this.linker.ownCode() : null;
  }

  /**
   * Hand this profile's history to the device showing `code` (15.10.2).
   *
   * @param {string} code
   */
  async linkDevice(code) {
    if (!this.linker) throw new Error("Protocol v2 is not running on this device.");
    return this.linker.link(code);
  }

  /** @returns {Promise<OwnDevice[]>} this account's devices as accepted here */
  async ownDevices() {
    if (!this.book || !this.keys) return [];
    const list = await this.book.refresh(this.me).catch(() => this.book?.accepted(this.me) ?? null);
    const here = this.keys.deviceId;
    return (list?.devices ?? []).map((device) => ({ deviceId: device.deviceId, createdAt: device.createdAt, current: device.deviceId === here }));
  }

  /**
   * Log this device out for good (logout without "remember this device", or asked to):
   * taken out of the account's list when it is not the only device, then every v2
   * record of the account in this profile deleted, the sealing key included, so the
   * sealed keys, sessions and kept messages left on disk (if any survive deletion) can
   * no longer be opened. The only device of an account cannot be taken out of its list
   * (1 to 32 devices): its id is kept (public) and the next device this profile makes
   * replaces it in the list. Whether to send in v2 is kept too (not secret).
   *
   * @returns {Promise<{removed: boolean}>} whether the device left the account's list
   */
  async forgetDevice() {
    this.leaving = true;
    this.stop();
    this.sender = null;
    let removed = false;
    const keys = this.keys;
    if (this.book && keys) {
      removed = await exclusive(this.me, () => /** @type {DeviceBook} */ (this.book).removeThis(Date.now())).catch((error) => {
        console.warn("this device could not be taken out of the account's list:", error);
        return false;
      });
    }
    const sendV2 = await store.get("v2", [this.me, "send-v2"]);
    await store.removeAllFor("v2", this.me);
    /** @type {import("./store.js").Write[]} */
    const kept = [];
    if (sendV2 !== undefined) kept.push({ store: "v2", key: [this.me, "send-v2"], value: sendV2 });
    if (keys && !removed) kept.push({ store: "v2", key: [this.me, WIPED], value: keys.deviceId });
    await store.writeAll(kept);
    this.keys = null;
    this.local = null;
    this.off = "logged out";
    return { removed };
  }

  /** @param {string} deviceId another device of this account */
  async revoke(deviceId) {
    if (!this.book) throw new Error("Protocol v2 is not running on this device.");
    await this.book.revoke(deviceId, Date.now());
    this.host.devicesChanged();
  }
}
