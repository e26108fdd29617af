/**
 * Receiving: every envelope, from the inbox or from a page of history, goes to the core
 * (PROTOCOL.md 14.1, decideMessage) with the state it needs gathered first: the sender's
 * pin and any pending key (pinning on first use), the group's verified state (the chain
 * fetched once more if the core finds it unknown or the recipients wrong), and the seen
 * record of the message id (14.2). What the core accepts becomes a message; what it
 * refuses, an unverifiable item with the reason code; a duplicate, nothing new. No rule
 * lives here, no DOM.
 *
 * @module
 */

import { decideMessage } from "../core/index.js";
import { Envelope, fileDescriptorFromPayload } from "../protocol/index.js";
import { nameLine } from "./group-text.js";

/** @import { GroupState, PrivateIdentity } from "../protocol/index.js" */
/** @import { Accepted, MessageDecision, Pins, SeenRecord } from "../core/messages.js" */
/** @import { NameDecision } from "../core/groups.js" */
/** @import { Refused } from "../core/reasons.js" */
/** @import { ChatMessage } from "./conversations.js" */
/** @import { SeenBook } from "./seen.js" */

/**
 * What receiving needs of the rest of the app.
 *
 * @typedef {object} ReceiveHost
 * @property {PrivateIdentity} me
 * @property {SeenBook} seen
 * @property {(names: Iterable<string>) => Promise<Pins>} pins pinning on first use
 * @property {(groupId: string, options: {fresh: boolean}) => Promise<GroupState | null>} groupState
 * @property {(groupId: string, message: {sender: string, name: string, sentAt: number, messageId: string})
 *   => Promise<NameDecision | "unverified">} noteName
 */

/**
 * What the server says beside an envelope (its word only: shown for what cannot be read).
 *
 * @typedef {object} Delivery
 * @property {string} messageId
 * @property {string} conversationId
 * @property {string} sender
 * @property {number | null} serverTs
 */

/**
 * The sender and conversation an envelope claims, if it parses: whose pin and which
 * group's state its decision needs.
 *
 * @param {unknown} wire
 * @returns {{sender: string, conversationId: string} | null}
 */
function claimed(wire) {
  try {
    const header = Envelope.fromWire(wire).header;
    return { sender: header.sender, conversationId: header.conversationId };
  } catch {
    return null;
  }
}

/**
 * @param {unknown} value
 * @returns {number | null}
 */
export function safeInteger(value) {
  return typeof value === "number" && Number.isSafeInteger(value) ? value : null;
}

/**
 * What the server says about an entry (inbox frame or history item), as text.
 *
 * @param {Record<string, unknown>} entry
 * @param {string} [conversationId] the conversation a page of history is for
 * @returns {Delivery}
 */
export function deliveryOf(entry, conversationId) {
  return {
    messageId: String(entry.message_id ?? "?"),
    conversationId: conversationId ?? String(entry.conversation_id ?? ""),
    sender: String(entry.sender ?? "?"),
    serverTs: safeInteger(entry.server_ts),
  };
}

/**
 * An accepted message as an item (a group_info's line text is set by its caller).
 *
 * @param {Accepted} decision
 * @param {{me: string, serverTs: number | null, envelopeText: string}} context
 * @returns {ChatMessage}
 */
export function acceptedItem(decision, { me, serverTs, envelopeText }) {
  const payload = decision.payload;
  const mine = decision.sender === me;
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
    file: payload.type === "file" ? fileDescriptorFromPayload(payload) : null,
  };
  if (mine) item.awaiting = decision.recipients.filter((name) => name !== me);
  if (payload.type === "group_info") {
    item.kind = "info";
    item.infoName = String(payload.name);
  }
  return item;
}

/**
 * A refused message as an unverifiable item: what it claims where it parsed, else the
 * server's word, never its text (14.1).
 *
 * @param {Refused} decision
 * @param {{delivery: Delivery, envelopeText: string}} context
 * @returns {ChatMessage}
 */
export function refusedItem(decision, { delivery, envelopeText }) {
  const claim = decision.claim;
  return {
    messageId: claim?.messageId ?? delivery.messageId,
    conversationId: claim?.conversationId ?? delivery.conversationId,
    sender: claim?.sender ?? delivery.sender,
    text: null,
    sentAt: claim?.sentAt ?? null,
    serverTs: delivery.serverTs,
    verified: false,
    refusal: decision.reason,
    reason: null,
    status: "received",
    envelopeText,
  };
}

export class Receiver {
  /** @param {ReceiveHost} host */
  constructor(host) {
    this.host = host;
    // Decisions and the seen records they write happen one at a time (the inbox and
    // pages of history interleave otherwise, and a record could be written twice).
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
  }

  /**
   * @template T
   * @param {() => Promise<T>} action
   * @returns {Promise<T>}
   */
  serial(action) {
    const run = this.queue.then(action, action);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * The core's decision on one envelope, with the state it needs gathered first. A
   * group message refused as `unknown_group` or `wrong_members` may come from a change
   * not fetched yet: the chain is fetched once and the core asked again (13.5).
   *
   * @param {unknown} wire
   * @param {{deliveredIn: string | null, inboxSeq: number | null, seen: ReadonlyMap<string, SeenRecord>}} where
   * @returns {Promise<MessageDecision>}
   */
  async decide(wire, { deliveredIn, inboxSeq, seen }) {
    const claim = claimed(wire);
    const pins = claim ? await this.host.pins([claim.sender]) : new Map();
    const groupId = claim?.conversationId.startsWith("grp-") ? claim.conversationId : null;
    /** @param {boolean} fresh */
    const groups = async (fresh) => {
      const state = groupId === null ? null : await this.host.groupState(groupId, { fresh });
      return state === null || groupId === null ? new Map() : new Map([[groupId, state]]);
    };
    const me = this.host.me;
    const decision = await decideMessage(wire, { me, deliveredIn, pins, groups: await groups(false), seen, inboxSeq });
    if (groupId !== null && decision.outcome === "refused" && ["unknown_group", "wrong_members"].includes(decision.reason)) {
      const fresh = await groups(true);
      if (fresh.size) return decideMessage(wire, { me, deliveredIn, pins, groups: fresh, seen, inboxSeq });
    }
    return decision;
  }

  /**
   * An inbox entry of type `message`: the item to show, or null for a duplicate (its
   * seen record may gain the inbox position).
   *
   * @param {Record<string, unknown>} frame
   * @param {number} seq
   * @returns {Promise<{item: ChatMessage, peer: string | null} | null>}
   */
  inboxMessage(frame, seq) {
    return this.serial(async () => {
      const wire = frame.envelope;
      const decision = await this.decide(wire, { deliveredIn: null, inboxSeq: seq, seen: await this.host.seen.recordsFor(wire) });
      if (decision.outcome === "duplicate") {
        await this.host.seen.put(decision.messageId, decision.seen);
        return null;
      }
      const envelopeText = JSON.stringify(wire ?? null);
      if (decision.outcome === "refused") {
        return { item: refusedItem(decision, { delivery: deliveryOf(frame), envelopeText }), peer: null };
      }
      await this.host.seen.put(decision.messageId, decision.seen);
      const item = acceptedItem(decision, { me: this.host.me.username, serverTs: safeInteger(frame.server_ts), envelopeText });
      if (item.kind === "info") item.text = await this.nameText(decision, { live: true });
      return { item, peer: decision.peer };
    });
  }

  /**
   * An item of a page of history (14.1 with `delivered_in` the conversation, 14.2 with no
   * inbox position). A message this device accepted before (a duplicate) is shown again,
   * opened by the core without the seen record, since the page holds no plaintext.
   *
   * A preview for the conversation list is not remembered as seen: it shows no message
   * in its conversation, and the message's own inbox entry must still count as new.
   *
   * @param {string} conversationId
   * @param {Record<string, unknown>} entry
   * @param {{remember?: boolean}} [options] remember: store the seen record of an
   *   accepted message (a page of the conversation), or not (a preview)
   * @returns {Promise<ChatMessage>}
   */
  historyItem(conversationId, entry, { remember = true } = {}) {
    return this.serial(async () => {
      const wire = entry.envelope;
      const where = { deliveredIn: conversationId, inboxSeq: null };
      const first = await this.decide(wire, { ...where, seen: await this.host.seen.recordsFor(wire) });
      if (first.outcome === "accepted" && remember) await this.host.seen.put(first.messageId, first.seen);
      const decision = first.outcome === "duplicate" ? await this.decide(wire, { ...where, seen: new Map() }) : first;
      const envelopeText = JSON.stringify(wire ?? null);
      if (decision.outcome === "refused") {
        return refusedItem(decision, { delivery: deliveryOf(entry, conversationId), envelopeText });
      }
      if (decision.outcome === "duplicate") throw new Error("a duplicate without a seen record");
      const item = acceptedItem(decision, { me: this.host.me.username, serverTs: safeInteger(entry.server_ts), envelopeText });
      if (item.kind === "info") item.text = await this.nameText(decision, { live: false });
      return item;
    });
  }

  /**
   * A verified group_info: the core decides whether it renames the group (14.4); the
   * line says what it did.
   *
   * @param {Accepted} decision
   * @param {{live: boolean}} where
   * @returns {Promise<string>}
   */
  async nameText(decision, where) {
    const name = String(decision.payload.name);
    if (decision.kind !== "group") return nameLine(name, "direct", where);
    const named = await this.host.noteName(decision.conversationId, {
      sender: decision.sender,
      name,
      sentAt: decision.sentAt,
      messageId: decision.messageId,
    });
    return nameLine(name, named, where);
  }
}
