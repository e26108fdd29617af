/**
 * The sessions a device keeps with one peer device (PROTOCOL.md 15.9.1), as
 * `securechat/client/core/v2/sessions.py`.
 *
 * One *active* session (the one sends use), up to five *previous* ones (receive-only, so
 * messages already in flight on a replaced session still open), and the ids of the last
 * forty sessions evicted from `previous` (so a replayed setup cannot bring one back).
 * Every function returns a new {@link SessionSet}; a refusal throws a `Refusal` and
 * changes nothing.
 *
 * @module
 */

import { bytesEqual } from "../../protocol/encoding.js";
import { Refusal, ratchetDecrypt } from "../../protocol/v2/index.js";

/** @import { RatchetMessage, SessionState } from "../../protocol/v2/index.js" */

export const MAX_PREVIOUS = 5;
export const MAX_EVICTED = 40;

/** @typedef {"session_repaired"} Notice */

/**
 * Derive a new responder session from a setup and open the message with it; throws a
 * `Refusal` (`prekey_unknown`, `ratchet_failed`).
 *
 * @typedef {(message: RatchetMessage) => Promise<{plaintext: Uint8Array, state: SessionState, oneTimePrekeyUsed: number | null}>} AcceptSetup
 */

/**
 * @typedef {object} SessionSetFields
 * @property {SessionState | null} active
 * @property {readonly SessionState[]} previous newest first, at most {@link MAX_PREVIOUS}
 * @property {readonly Uint8Array[]} evicted session ids, newest first, at most {@link MAX_EVICTED}
 * @property {number | null} lastSentAt the greatest `sent_at` of the peer device's
 *   messages accepted through this set (null before any): a setup sent before it is older
 *   than a session the peer has used since, so it never becomes active (15.9.1)
 */

/** A device's sessions with one peer device. */
export class SessionSet {
  /**
   * @param {Partial<SessionSetFields>} [fields]
   */
  constructor({ active = null, previous = [], evicted = [], lastSentAt = null } = {}) {
    this.active = active;
    /** @type {readonly SessionState[]} */
    this.previous = Object.freeze([...previous]);
    /** @type {readonly Uint8Array[]} */
    this.evicted = Object.freeze([...evicted]);
    this.lastSentAt = lastSentAt;
    Object.freeze(this);
  }

  /** @returns {Uint8Array | null} */
  get activeId() {
    return this.active === null ? null : this.active.sessionId;
  }

  /**
   * A copy with some fields replaced.
   *
   * @param {Partial<SessionSetFields>} changes
   * @returns {SessionSet}
   */
  with(changes) {
    return new SessionSet({ ...this, ...changes });
  }
}

export const EMPTY = new SessionSet();

/**
 * This device initiated the session and has never received on it (15.7.1).
 *
 * @param {SessionState} state
 * @returns {boolean}
 */
export function isPending(state) {
  return state.pendingSetup.length > 0;
}

/**
 * Bytewise order of two session ids (Python's comparison of bytes).
 *
 * @param {Uint8Array} first
 * @param {Uint8Array} second
 * @returns {number}
 */
export function compareBytes(first, second) {
  const length = Math.min(first.length, second.length);
  for (let index = 0; index < length; index += 1) {
    if (first[index] !== second[index]) return first[index] - second[index];
  }
  return first.length - second.length;
}

/**
 * What opening a message gave: the plaintext, the set to store, and what to tell the user.
 *
 * @typedef {object} Opened
 * @property {Uint8Array} plaintext
 * @property {SessionSet} sessions
 * @property {number | null} oneTimePrekeyUsed
 * @property {readonly Notice[]} notices
 */

/**
 * @param {Uint8Array} plaintext
 * @param {SessionSet} sessions
 * @param {number | null} [oneTimePrekeyUsed]
 * @param {readonly Notice[]} [notices]
 * @returns {Opened}
 */
function opened(plaintext, sessions, oneTimePrekeyUsed = null, notices = []) {
  return Object.freeze({ plaintext, sessions, oneTimePrekeyUsed, notices: Object.freeze([...notices]) });
}

/**
 * Put `state` first in `previous`; the oldest beyond five is evicted, its id kept.
 *
 * @param {SessionSet} sessions
 * @param {SessionState} state
 * @returns {SessionSet}
 */
function withPrevious(sessions, state) {
  const previous = [state, ...sessions.previous];
  const gone = previous.slice(MAX_PREVIOUS).map((old) => old.sessionId);
  return sessions.with({
    previous: previous.slice(0, MAX_PREVIOUS),
    evicted: [...gone, ...sessions.evicted].slice(0, MAX_EVICTED),
  });
}

/**
 * The sending side: a session this device just initiated becomes active.
 *
 * @param {SessionSet} sessions
 * @param {SessionState} state
 * @returns {SessionSet}
 */
export function startSession(sessions, state) {
  if (sessions.active === null) {
    return sessions.with({ active: state });
  }
  return withPrevious(sessions, sessions.active).with({ active: state });
}

/**
 * The active session's state after a send.
 *
 * @param {SessionSet} sessions
 * @param {SessionState} state
 * @returns {SessionSet}
 */
export function withActive(sessions, state) {
  return sessions.with({ active: state });
}

/**
 * @param {SessionSet} sessions
 * @param {number} sentAt
 * @returns {SessionSet}
 */
function seenAt(sessions, sentAt) {
  const last = sessions.lastSentAt;
  return sessions.with({ lastSentAt: last === null ? sentAt : Math.max(last, sentAt) });
}

/**
 * `index` -1 is the active session, 0.. the previous ones.
 *
 * @param {SessionSet} sessions
 * @param {number} index
 * @param {SessionState} state
 * @returns {SessionSet}
 */
function replaceAt(sessions, index, state) {
  if (index < 0) {
    return sessions.with({ active: state });
  }
  const previous = [...sessions.previous];
  previous[index] = state;
  return sessions.with({ previous });
}

/**
 * @param {SessionSet} sessions
 * @returns {[number, SessionState][]}
 */
function candidates(sessions) {
  /** @type {[number, SessionState][]} */
  const out = sessions.active === null ? [] : [[-1, sessions.active]];
  sessions.previous.forEach((state, index) => out.push([index, state]));
  return out;
}

/**
 * No setup: the active session, then the previous ones newest first; the first that
 * opens wins. If none does, the active session's refusal (`session_unknown` without one).
 *
 * @param {SessionSet} sessions
 * @param {RatchetMessage} message
 * @param {Uint8Array} extraAd
 * @param {number} sentAt
 * @param {number} now
 * @returns {Promise<Opened>}
 */
async function decryptKnown(sessions, message, extraAd, sentAt, now) {
  /** @type {Refusal | null} */
  let first = null;
  for (const [index, state] of candidates(sessions)) {
    let result;
    try {
      result = await ratchetDecrypt(state, message, extraAd, now);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      if (first === null && index < 0) first = error;
      continue;
    }
    const placed = openedKnown(sessions, index, result.state, sentAt);
    return opened(result.plaintext, seenAt(placed, sentAt), null, notices(sessions, placed));
  }
  throw first ?? new Refusal("session_unknown");
}

/**
 * Sent before a message the peer device sent since and this device accepted.
 *
 * @param {SessionSet} sessions
 * @param {number} sentAt
 * @returns {boolean}
 */
function stale(sessions, sentAt) {
  return sessions.lastSentAt !== null && sentAt < sessions.lastSentAt;
}

/**
 * `state` (in the set, or new) becomes active; the old active one goes first in previous.
 *
 * @param {SessionSet} sessions
 * @param {SessionState} state
 * @returns {SessionSet}
 */
function activate(sessions, state) {
  const active = sessions.active;
  if (active !== null && bytesEqual(active.sessionId, state.sessionId)) {
    return sessions.with({ active: state });
  }
  const rest = sessions.with({ previous: sessions.previous.filter((p) => !bytesEqual(p.sessionId, state.sessionId)) });
  return active === null ? rest.with({ active: state }) : withPrevious(rest, active).with({ active: state });
}

/**
 * A repair: an established active session was replaced.
 *
 * @param {SessionSet} before
 * @param {SessionSet} after
 * @returns {Notice[]}
 */
function notices(before, after) {
  const old = before.active;
  if (old === null || isPending(old)) return [];
  const now = after.activeId;
  return now !== null && bytesEqual(now, old.sessionId) ? [] : ["session_repaired"];
}

/**
 * A session of the set opened the message. A previous one with a lower id than the
 * active one becomes active if the message is the peer's newest: the peer uses it, and
 * both devices move only towards the lower of their two active sessions (15.9.1 step 3).
 *
 * @param {SessionSet} sessions
 * @param {number} index
 * @param {SessionState} state
 * @param {number} sentAt
 * @returns {SessionSet}
 */
function openedKnown(sessions, index, state, sentAt) {
  const updated = replaceAt(sessions, index, state);
  const active = sessions.active;
  if (index < 0 || active === null || stale(sessions, sentAt) || compareBytes(state.sessionId, active.sessionId) > 0) {
    return updated;
  }
  return activate(updated, state);
}

/**
 * Where a new, opened session from the peer goes (15.9.1 step 4).
 *
 * @param {SessionSet} sessions
 * @param {SessionState} state
 * @param {number} sentAt
 * @returns {SessionSet}
 */
function placeNew(sessions, state, sentAt) {
  const active = sessions.active;
  if (active === null) {
    return sessions.with({ active: state });
  }
  if (stale(sessions, sentAt)) {
    // The peer sent this before a message accepted from it since: it has moved on from
    // this session (a crossed setup delivered late, or the older of two repairs).
    return withPrevious(sessions, state);
  }
  if (isPending(active) && compareBytes(active.sessionId, state.sessionId) < 0) {
    // Simultaneous initiation: both devices keep the session with the lower id.
    return withPrevious(sessions, state);
  }
  return activate(sessions, state);
}

/**
 * Open a ratchet message from the peer device with this set (15.5 step 1, 15.9.1).
 *
 * @param {SessionSet} sessions
 * @param {RatchetMessage} message
 * @param {Uint8Array | null} setupSessionId the id the message's setup would make (null without a setup)
 * @param {AcceptSetup} acceptSetup
 * @param {Uint8Array} extraAd
 * @param {number} sentAt
 * @param {number} now
 * @returns {Promise<Opened>}
 * @throws {Refusal}
 */
export async function openMessage(sessions, message, setupSessionId, acceptSetup, extraAd, sentAt, now) {
  if (setupSessionId === null) {
    return decryptKnown(sessions, message, extraAd, sentAt, now);
  }
  for (const [index, state] of candidates(sessions)) {
    if (bytesEqual(state.sessionId, setupSessionId)) {
      const result = await ratchetDecrypt(state, message, extraAd, now);
      const placed = openedKnown(sessions, index, result.state, sentAt);
      return opened(result.plaintext, seenAt(placed, sentAt), null, notices(sessions, placed));
    }
  }
  if (sessions.evicted.some((id) => bytesEqual(id, setupSessionId))) {
    throw new Refusal("ratchet_duplicate");
  }
  const accepted = await acceptSetup(message);
  const placed = placeNew(sessions, accepted.state, sentAt);
  return opened(accepted.plaintext, seenAt(placed, sentAt), accepted.oneTimePrekeyUsed, notices(sessions, placed));
}
