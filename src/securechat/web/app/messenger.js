/**
 * The messenger: the I/O loop around the client core (PROTOCOL.md 14), and the one
 * surface the views use. It wires the parts, each with one job and a narrow view of the
 * others, and decides nothing itself:
 *
 * - trust.js: pinned keys; seen.js: seen records (14.2); receipts.js: signed receipts (14.7);
 * - groups.js, group-actions.js: verified membership chains (13, 14.3-14.5);
 * - receive.js: the core's decision on each envelope; incoming.js: the inbox in order;
 *   history.js: pages of history; send.js: sealing and sending;
 * - conversations.js: what is on screen, a direct chat's contact derived from its id.
 *
 * Views see only the methods below, the events, `username` and `presence`.
 *
 * Events (on this EventTarget): `conversations` (the list changed), `messages` (detail:
 * conversation id), `trust` (detail: username), `group` (detail: group id), `status`
 * (detail: "connecting" | "online" | "offline"), `incoming` (detail: `{conversation,
 * message}`, a new verified message), `ended` (detail: reason), `session` (a login notice),
 * `devices` (this account's device list, or v2's state on this device, changed).
 *
 * Direct conversations go in protocol v2 (v2.js) once both accounts have device lists.
 *
 * @module
 */

import { directConversationId, parseUsername } from "../protocol/index.js";
import { Conversations, alreadyShown, applyReceipt, conversationTitle } from "./conversations.js";
import { changeGroup, createGroup, joinGroup, makeGroupInvite } from "./group-actions.js";
import { checkGroup, compareServerList, membersForSending } from "./group-membership.js";
import { GroupBook } from "./groups.js";
import { History, changeLine } from "./history.js";
import { InboxSocket } from "./inbox.js";
import { Incoming } from "./incoming.js";
import { Presence } from "./presence.js";
import { receiptBook } from "./receipts.js";
import { Receiver } from "./receive.js";
import { SeenBook } from "./seen.js";
import { Sender } from "./send.js";
import * as store from "./store.js";
import { KeyChanged, Trust } from "./trust.js";
import { V2 } from "./v2.js";
import { sendFileV2 } from "./v2-files.js";
import { LocalHistory } from "./v2-history.js";

/** @import { PrivateIdentity } from "../protocol/index.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage, Conversation } from "./conversations.js" */
/** @import { GroupRecord } from "./groups.js" */

export { conversationTitle, KeyChanged };

export class Messenger extends EventTarget {
  /** @type {Api} */
  #api;
  /** @type {Conversations} */
  #conversations;
  /** @type {Trust} */
  #trust;
  /** @type {GroupBook} */
  #groups;
  /** @type {Sender} */
  #sender;
  /** @type {History} */
  #history;
  /** @type {InboxSocket} */
  #socket;
  /** @type {Incoming} */
  #incoming;
  /** @type {V2} */
  #v2;

  /**
   * @param {Api} api
   * @param {PrivateIdentity} me
   */
  constructor(api, me) {
    super();
    this.#api = api;
    /** @readonly */
    this.username = me.username;
    /** @type {string | null} the conversation open on screen */
    this.activeId = null;
    const conversations = (this.#conversations = new Conversations(me.username));
    const trust = (this.#trust = new Trust(api, me, (name) => this.#emit("trust", name)));
    const seen = new SeenBook({
      get: (id) => store.get("seen", [me.username, `seen:${id}`]),
      put: (id, record) => store.put("seen", [me.username, `seen:${id}`], record),
    });
    const pins = (/** @type {Iterable<string>} */ names) => trust.corePins(names);
    const groups = (this.#groups = new GroupBook({
      me,
      api,
      pins,
      checkContact: (name) => trust.trustedIdentity(name),
      adopted: (record, changes) => {
        if (conversations.addLines(record, changes.map((change) => changeLine(record.id, change)))) {
          this.#emit("messages", record.id);
        }
        this.#groupChanged(record);
      },
      changed: (record) => this.#groupChanged(record),
      listStale: (id) => void checkGroup(groups, id),
    }));
    const noteName = groups.noteName.bind(groups);
    const receiver = new Receiver({ me, seen, pins, groupState: (id, options) => groups.verifiedState(id, options), noteName });
    const socket = (this.#socket = new InboxSocket(api, () => this.#incoming.lastSeq));
    const receipts = receiptBook({ me, api, socket, trust });
    this.#sender = new Sender({
      me,
      api,
      socket,
      trust,
      seen,
      noteSent: (id, messageId, names) => receipts.noteSent(id, messageId, names),
      checkGroup: (id) => membersForSending(groups, id),
      noteName,
      changed: (id) => this.#emit("messages", id),
      shown: (conversation, message) => this.#show(conversation, message),
    });
    this.#history = new History({
      api,
      me: me.username,
      receiver,
      receipts,
      conversations,
      changed: (id) => this.#emit("messages", id),
      listChanged: () => this.#emit("conversations"),
      // The v2 messages this profile keeps, readable before v2 has started on the page.
      local: async () => this.#v2?.local ?? (await LocalHistory.existing(me.username)),
      setUnread: (id, count) => this.setUnread(id, count),
      tellName: (id) => {
        const name = groups.nameOwed(id);
        return name === null ? undefined : this.sendGroupInfo(id, name).catch(() => {});
      },
    });
    this.presence = new Presence(socket, me.username, (id, ids) => receipts.read(id, conversations.get(id)?.messages ?? [], ids));
    this.#incoming = new Incoming(
      {
        me: me.username,
        receiver,
        receipts,
        groups,
        conversations,
        presence: this.presence,
        pinnedNames: () => trust.pinnedNames(),
        show: (conversation, item) => this.#show(conversation, item),
        setUnread: (id, count) => this.setUnread(id, count),
        onScreen: (id) => this.activeId === id && document.visibilityState === "visible",
        emit: (type, detail) => this.#emit(type, detail),
        sendGroupInfo: (id, name) => this.sendGroupInfo(id, name),
        ack: (seq) => socket.ack(seq),
        processed: async (seq) => void (await store.put("state", [me.username, "lastSeq"], seq)),
      },
      0,
    );
    this.#v2 = new V2({
      api,
      identity: me,
      trust,
      show: (item, peer) => this.#showV2(item, peer),
      line: (id, peer, text) => this.#line(id, peer, text),
      devicesChanged: () => this.#emit("devices"),
      receipts,
      shownIn: (id) => this.#conversations.get(id)?.messages ?? [],
      receiptApplied: (decision) => {
        const conversation = this.#conversations.get(decision.conversationId);
        if (!conversation) return;
        const receipt = { me: this.username, ids: new Set(decision.messageIds), reader: decision.reader };
        // Whoever has read a message has it (as incoming.js does for v1's receipts).
        const changed = applyReceipt([conversation], { ...receipt, status: "delivered" });
        if (decision.status === "read") changed.push(...applyReceipt([conversation], { ...receipt, status: "read" }));
        if (changed.length) this.#emit("messages", conversation.id);
      },
      lineAll: (text) => {
        for (const conversation of this.#conversations.sorted()) {
          if (conversation.kind === "direct" && conversation.peer && conversation.peer !== this.username) {
            this.#line(conversation.id, conversation.peer, text);
          }
        }
      },
    });
    socket.addEventListener("entry", (event) => this.#incoming.enqueue(/** @type {CustomEvent} */ (event).detail));
    // The server announces each new device-inbox entry (15.16); it is read on every
    // (re)connection too, since an announcement can be lost.
    socket.addEventListener("device_inbox", (event) => {
      if (/** @type {CustomEvent} */ (event).detail?.device_id === this.#v2.deviceId) void this.#v2.poll();
    });
    socket.addEventListener("state", (event) => {
      const state = /** @type {CustomEvent} */ (event).detail;
      if (state === "online") void this.#v2.poll();
      this.#emit("status", state);
    });
    socket.addEventListener("ended", (event) => this.#emit("ended", /** @type {CustomEvent} */ (event).detail));
  }

  /** @param {string} type @param {unknown} [detail] */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Show an item in a conversation. @param {Conversation} conversation @param {ChatMessage} message */
  #show(conversation, message) {
    conversation.messages.push(message);
    conversation.lastActivity = Math.max(conversation.lastActivity, message.serverTs ?? Date.now());
    this.#emit("messages", conversation.id);
    this.#emit("conversations");
  }

  /**
   * A v2 item from the device inbox, in its conversation (a refused one under what it
   * claims, as in v1); a duplicate of one shown is not shown again.
   *
   * @param {ChatMessage} item
   * @param {string | null} peer the derived contact of an accepted message
   */
  async #showV2(item, peer) {
    if (!item.conversationId.startsWith("dm-")) {
      // Nothing parsed to say where it belongs (15.8 `malformed`): reported, not shown.
      console.warn("an unreadable v2 inbox entry", item.refusal);
      return;
    }
    const conversation = await this.#incoming.place(item, peer);
    if (alreadyShown(conversation.messages, item)) return;
    this.#show(conversation, item);
    if (item.sender === this.username) return;
    if (!(this.activeId === conversation.id && document.visibilityState === "visible")) {
      await this.setUnread(conversation.id, conversation.unread + 1);
    }
    if (item.verified) this.#emit("incoming", { conversation, message: item });
  }

  /**
   * A notice line in a direct conversation ("alice added a new device").
   *
   * @param {string} conversationId
   * @param {string} peer
   * @param {string} text
   */
  #line(conversationId, peer, text) {
    const conversation = this.#conversations.get(conversationId) ?? this.#conversations.direct(conversationId, peer);
    this.#show(conversation, {
      messageId: `notice:${crypto.randomUUID()}`,
      conversationId,
      kind: "info",
      sender: "",
      text,
      sentAt: Date.now(),
      serverTs: null,
      verified: true,
      refusal: null,
      reason: null,
      status: "received",
      envelopeText: null,
    });
  }

  /** @param {GroupRecord} record */
  #groupChanged(record) {
    this.#conversations.group(record);
    this.#emit("group", record.id);
    this.#emit("conversations");
  }

  /** @param {string} conversationId @returns {Conversation} */
  #required(conversationId) {
    const conversation = this.#conversations.get(conversationId);
    if (!conversation) throw new Error("no such conversation");
    return conversation;
  }

  // Start and stop -----------------------------------------------------------------
  async start() {
    await this.presence.load();
    await this.#trust.load();
    const saved = await store.get("state", [this.username, "lastSeq"]);
    const fresh = typeof saved !== "number";
    if (!fresh) {
      this.#incoming.lastSeq = saved;
    } else {
      // A new device: history comes from the server; the inbox starts at its head.
      this.#incoming.lastSeq = (await this.#api.inbox(0, 1)).head;
      await store.put("state", [this.username, "lastSeq"], this.#incoming.lastSeq);
    }
    await this.#groups.load();
    await this.refreshConversations();
    // Before the socket's first acknowledgement, which covers the inbox up to its head.
    if (fresh) await this.#history.fetchNewest();
    this.#socket.start();
    void (fresh ? this.#history.loadNew() : this.#history.loadPreviews());
    void this.#v2.init();
  }

  stop() {
    this.#v2.stop();
    this.#incoming.stop();
    this.presence.stop();
    this.#socket.stop();
  }

  // Conversations ------------------------------------------------------------------
  /**
   * The server's list of conversations: each direct one's contact derived from its id
   * (conversations.js); the groups' chains brought up to date and compared with the
   * server's lists in the background (a group the inbox has not told about is fetched).
   */
  async refreshConversations() {
    const answer = await this.#api.conversations();
    const stored = await store.allFor("state", this.username);
    const unread = new Map(stored.filter((value) => value?.unreadOf).map((value) => [value.unreadOf, value.count]));
    const groups = await this.#conversations.applyListing(answer, {
      known: this.#trust.pinnedNames(),
      unread,
      group: (id) => this.#groups.record(id),
    });
    this.#emit("conversations");
    void Promise.all(groups.map(([id, members]) => compareServerList(this.#groups, id, members).catch(() => {})));
  }

  /**
   * Start (or find) the direct conversation with `peer`; pins the peer's keys. Its id is
   * computed here: an answer from the server for another conversation is refused.
   *
   * @param {string} peerName
   * @returns {Promise<Conversation>}
   */
  async startConversation(peerName) {
    const peer = parseUsername(peerName);
    await this.#trust.trustedIdentity(peer).catch((error) => {
      if (!(error instanceof KeyChanged)) throw error;
    });
    const id = await directConversationId(this.username, peer);
    const answer = await this.#api.openDirect(peer);
    if (answer?.id !== id) {
      throw new Error(`The server answered with another conversation than yours with ${peer}. Nothing was opened.`);
    }
    const conversation = this.#conversations.direct(id, peer);
    conversation.lastActivity ||= Date.now();
    this.#emit("conversations");
    return conversation;
  }

  /** @param {string} id */
  conversation(id) {
    return this.#conversations.get(id);
  }

  /** Conversations, most recent activity first. */
  sortedConversations() {
    return this.#conversations.sorted();
  }

  /** @returns {number} unread items over all conversations */
  unreadTotal() {
    return this.#conversations.unreadTotal();
  }

  /** @param {string | null} conversationId the conversation on screen, or none */
  async setActive(conversationId) {
    this.activeId = conversationId;
    const conversation = conversationId === null ? undefined : this.#conversations.get(conversationId);
    if (!conversation) return;
    if (conversation.unread) await this.setUnread(conversation.id, 0);
    if (conversation.kind === "group") {
      // Opening a group re-checks its chain, the server's list and the members' keys.
      void checkGroup(this.#groups, conversation.id).then(() => {
        for (const name of conversation.group?.state?.members ?? []) {
          if (name !== this.username) this.#trust.trustedIdentity(name).catch(() => {});
        }
      });
    } else if (conversation.peer) {
      // Opening a conversation re-checks the contact's keys, so a change shows at once,
      // and its device list, so a new or removed device shows too.
      this.#trust.trustedIdentity(conversation.peer).catch(() => {});
      void this.#v2.refreshPeer(conversation.peer);
    }
    if (!conversation.historyLoaded) await this.#history.loadOlder(conversation);
  }

  /** @param {string} conversationId @param {number} count */
  async setUnread(conversationId, count) {
    const conversation = this.#conversations.get(conversationId);
    if (!conversation) return;
    conversation.unread = count;
    await store.put("state", [this.username, `unread:${conversationId}`], { unreadOf: conversationId, count });
    this.#emit("conversations");
  }

  /** The next page of older messages; false when there are no more. @param {string} conversationId */
  async loadOlder(conversationId) {
    const conversation = this.#conversations.get(conversationId);
    return conversation ? this.#history.loadOlder(conversation) : false;
  }

  /** A member whose keys changed, not accepted yet. @param {Conversation} conversation @returns {string | null} */
  changedMember(conversation) {
    const names = conversation.kind === "group" ? conversation.group?.state?.members ?? [] : [conversation.peer];
    return this.#trust.changedAmong(names.filter(Boolean));
  }

  // Sending ------------------------------------------------------------------------
  /**
   * A text: in v2 when the conversation is direct and both accounts have device lists
   * (15.12), else v1. A contact whose keys changed stops it either way.
   *
   * @param {string} conversationId
   * @param {string} text
   */
  async sendText(conversationId, text) {
    const conversation = this.#required(conversationId);
    const peer = conversation.kind === "direct" ? conversation.peer : "";
    if (peer && peer !== this.username && (await this.#v2.available(peer))) {
      const changed = this.#trust.changedAmong([peer]);
      if (changed) throw new KeyChanged(changed);
      await this.#trust.trustedIdentity(peer);
      return this.#v2.sendText(
        conversation,
        text,
        (message) => this.#show(conversation, message),
        (id) => this.#emit("messages", id),
      );
    }
    return this.#sender.sendText(conversation, text);
  }

  /**
   * A file: shared in v2 under the same rule as a text (15.18), else v1.
   *
   * @param {string} conversationId
   * @param {File} file
   * @param {string} [caption]
   */
  async sendFile(conversationId, file, caption = "") {
    const conversation = this.#required(conversationId);
    const peer = conversation.kind === "direct" ? conversation.peer : "";
    if (peer && peer !== this.username && (await this.#v2.available(peer))) {
      const changed = this.#trust.changedAmong([peer]);
      if (changed) throw new KeyChanged(changed);
      await this.#trust.trustedIdentity(peer);
      return sendFileV2(
        this.#v2,
        conversation,
        file,
        caption,
        (message) => this.#show(conversation, message),
        (id) => this.#emit("messages", id),
      );
    }
    return this.#sender.sendFile(conversation, file, caption);
  }

  /** @param {ChatMessage} message */
  fetchFile(message) {
    return this.#sender.fetchFile(message);
  }

  /** @param {string} conversationId @param {string} messageId a failed own message */
  async retry(conversationId, messageId) {
    const conversation = this.#required(conversationId);
    const failed = conversation.messages.find((m) => m.messageId === messageId && m.status === "failed");
    if (failed?.envelopeText && JSON.parse(failed.envelopeText)?.v === 2) {
      await this.#v2.retry(failed, (id) => this.#emit("messages", id));
      return;
    }
    await this.#sender.retry(conversation, messageId);
  }

  // Devices (protocol v2) ---------------------------------------------------------------
  /** This account's devices as accepted here, this one marked. */
  ownDevices() {
    return this.#v2.ownDevices();
  }

  /** Whether this browser has a v2 device for the account (logout asks about it). */
  hasV2Device() {
    return this.#v2.deviceId !== null;
  }

  /** Log this device out of v2 for good (v2.js `forgetDevice`). */
  forgetV2Device() {
    return this.#v2.forgetDevice();
  }

  /** Whether direct messages are sent in v2 from this browser (the draft is opt-in). */
  sendsV2() {
    return this.#v2.sendEnabled;
  }

  /** @param {boolean} enabled */
  setSendsV2(enabled) {
    return this.#v2.setSendEnabled(enabled);
  }

  /** Why v2 is off on this device, or null when it runs. */
  v2Off() {
    return this.#v2.off;
  }

  /** @param {string} deviceId another device of this account: a new list without it */
  revokeDevice(deviceId) {
    return this.#v2.revoke(deviceId);
  }

  /**
   * Replace this account's identity key from this browser (PROTOCOL.md 15.11).
   *
   * @param {string} password
   */
  rotateIdentity(password) {
    return this.#v2.rotateIdentity(password);
  }

  /** This device's link code (15.10.2), or null while v2 does not run here. */
  linkCode() {
    return this.#v2.linkCode();
  }

  /** @param {string} code the new device's link code: hand it this profile's history */
  linkDevice(code) {
    return this.#v2.linkDevice(code);
  }

  /**
   * Show a message this profile now keeps (restored from a history backup, 15.10.1).
   *
   * @param {ChatMessage} item
   * @param {string | null} peer
   */
  showKept(item, peer) {
    return this.#showV2(item, peer);
  }

  // Groups ---------------------------------------------------------------------------
  /** @param {string} groupId @returns {Readonly<GroupRecord> | undefined} */
  groupRecord(groupId) {
    return this.#groups.records.get(groupId);
  }

  /** @param {string} groupId fetch its chain and the server's list again, compare; never throws */
  checkGroup(groupId) {
    return checkGroup(this.#groups, groupId);
  }

  /** Tell the group its name (admins only; 13.5). @param {string} groupId @param {string} name */
  sendGroupInfo(groupId, name) {
    return this.#sender.sendGroupInfo(this.#required(groupId), name);
  }

  /**
   * Create a group, named, with these members; the name follows as a group_info message.
   *
   * @param {string} name
   * @param {string[]} members
   */
  async createGroup(name, members) {
    const id = await createGroup(this.#groups, name, members);
    const conversation = this.#conversations.group(this.#groups.record(id));
    conversation.lastActivity = Date.now();
    this.#emit("conversations");
    await this.sendGroupInfo(id, name);
    return conversation;
  }

  /**
   * Add, remove, promote (admins) or leave; an add is followed by the group's name, so
   * the new members learn it.
   *
   * @param {string} groupId
   * @param {"add" | "remove" | "promote" | "leave"} action
   * @param {string[]} [members]
   */
  async changeGroup(groupId, action, members = []) {
    const change = await changeGroup(this.#groups, groupId, action, members);
    const name = this.#groups.record(groupId).name?.name;
    if (action === "add" && name) await this.sendGroupInfo(groupId, name);
    return change;
  }

  /** An invite and its code (14.5). @param {string} groupId @param {{hours: number, uses: number}} options */
  makeInvite(groupId, options) {
    return makeGroupInvite(this.#groups, groupId, options);
  }

  /** @param {string} code an invite code, as typed */
  async joinGroup(code) {
    const id = await joinGroup(this.#groups, code);
    const conversation = this.#conversations.group(this.#groups.record(id));
    conversation.lastActivity = Date.now();
    this.#emit("conversations");
    return conversation;
  }

  // Trust ----------------------------------------------------------------------------
  /** @param {string} name what this device has pinned for a contact */
  pin(name) {
    return this.#trust.pin(name);
  }

  /** @param {string} name */
  acceptKeyChange(name) {
    return this.#trust.acceptKeyChange(name);
  }

  /** @param {string} name @param {boolean} verified */
  setVerified(name, verified) {
    return this.#trust.setVerified(name, verified);
  }

  /** @param {string} name */
  trustInfo(name) {
    return this.#trust.trustInfo(name);
  }

  ownFingerprints() {
    return this.#trust.ownFingerprints();
  }
}
