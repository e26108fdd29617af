/**
 * The double ratchet of a device pair (PROTOCOL.md 15.6, 15.7), mirroring
 * `securechat/protocol/v2/ratchet.py`.
 *
 * Signal's "The Double Ratchet Algorithm" with HKDF-SHA256 for KDF_RK, HMAC-SHA256 with
 * constants 0x01 and 0x02 for KDF_CK, and message keys expanded by HKDF to an AES-256-GCM
 * key and nonce. Two choices make the functions pure:
 *
 * - a new sending ratchet key is made at the first send after a turn (from the injected
 *   `random`), not on receipt, so decryption needs no randomness;
 * - `now` is an argument, used only to date and expire skipped message keys.
 *
 * `ratchetEncrypt` and `ratchetDecrypt` take a {@link SessionState} and return a new one.
 * States are frozen and no byte array inside one is ever written to, so the argument is
 * never changed, and a refusal returns nothing: "a failed decryption leaves the state
 * unchanged" holds by construction, as in Python.
 *
 * @module
 */

import { b64decode, b64encode, bytesEqual, canonical, splitCanonical, u64, utf8Encode } from "../encoding.js";
import { aesGcmDecrypt, aesGcmEncrypt, hkdfSha256 } from "../primitives.js";
import { MalformedInput, Refusal, VerificationFailed } from "./errors.js";
import { MESSAGE_KEY, RATCHET_AAD, RATCHET_HEADER, RATCHET_ROOT, SESSION_SETUP, SESSION_STATE } from "./labels.js";
import { KEY_BYTES, checkX25519Raw, forgetX25519Ratchet, x25519Ratchet, x25519RatchetPublic } from "./primitives.js";
import { exactBytes, integer, members, readU64 } from "./wire.js";


export const MAX_SKIP = 25_000;
export const MAX_SKIPPED_KEYS = 2_000;
export const SKIPPED_KEY_TTL_MS = 30 * 86_400_000;
export const MAX_PLAINTEXT_BYTES = 65_536;
export const POSITION_LIMIT = 2 ** 32;
const TAG_BYTES = 16;
const STATE_VERSION = 2;
const EMPTY = new Uint8Array(0);
const ZERO_SALT = new Uint8Array(32);
const RATCHET_ROOT_INFO = utf8Encode(RATCHET_ROOT);
const MESSAGE_KEY_INFO = utf8Encode(MESSAGE_KEY);
const MESSAGE_KEY_CONSTANT = Uint8Array.of(0x01);
const CHAIN_KEY_CONSTANT = Uint8Array.of(0x02);
const SETUP_FIELDS = Object.freeze(["ephemeral_key", "signed_prekey_id", "one_time_prekey_id"]);
const MESSAGE_FIELDS = Object.freeze(["dh", "pn", "n", "ciphertext"]);

/** What an initiator states about its setup (PROTOCOL.md 15.5). */
export class SetupMessage {
  /**
   * @param {Uint8Array} ephemeralKey
   * @param {number} signedPrekeyId
   * @param {number | null} oneTimePrekeyId
   */
  constructor(ephemeralKey, signedPrekeyId, oneTimePrekeyId) {
    this.ephemeralKey = ephemeralKey;
    this.signedPrekeyId = signedPrekeyId;
    this.oneTimePrekeyId = oneTimePrekeyId;
    Object.freeze(this);
  }

  /** `setup_bytes`: bound into the setup's HKDF info and the session id. */
  toBytes() {
    const opk = this.oneTimePrekeyId === null ? EMPTY : u64(this.oneTimePrekeyId);
    return canonical(SESSION_SETUP, [u64(2), this.ephemeralKey, u64(this.signedPrekeyId), opk, EMPTY]);
  }

  /**
   * @param {Uint8Array} data
   * @returns {SetupMessage}
   * @throws {MalformedInput}
   */
  static fromBytes(data) {
    const fields = splitCanonical(data, SESSION_SETUP);
    if (fields.length !== 5 || !bytesEqual(fields[0], u64(2)) || fields[2].length !== 8 || fields[4].length !== 0) {
      throw new MalformedInput("setup bytes");
    }
    if (fields[3].length !== 0 && fields[3].length !== 8) {
      throw new MalformedInput("setup bytes");
    }
    const opk = fields[3].length === 0 ? null : readU64(fields[3]);
    return new SetupMessage(checkX25519Raw(fields[1]), readU64(fields[2]), opk);
  }

  /** @returns {Record<string, unknown>} */
  toWire() {
    return {
      ephemeral_key: b64encode(this.ephemeralKey),
      signed_prekey_id: this.signedPrekeyId,
      one_time_prekey_id: this.oneTimePrekeyId,
    };
  }

  /**
   * @param {unknown} data
   * @returns {SetupMessage}
   * @throws {MalformedInput}
   */
  static fromWire(data) {
    const obj = members(data, SETUP_FIELDS);
    const opk = obj.one_time_prekey_id;
    return new SetupMessage(
      checkX25519Raw(exactBytes(obj.ephemeral_key, KEY_BYTES)),
      integer(obj.signed_prekey_id, { below: POSITION_LIMIT }),
      opk === null ? null : integer(opk, { below: POSITION_LIMIT }),
    );
  }
}

/** A ratchet message on the wire (PROTOCOL.md 15.6). */
export class RatchetMessage {
  /**
   * @param {{dh: Uint8Array, pn: number, n: number, ciphertext: Uint8Array, setup?: SetupMessage | null}} fields
   */
  constructor({ dh, pn, n, ciphertext, setup = null }) {
    this.dh = dh;
    this.pn = pn;
    this.n = n;
    this.ciphertext = ciphertext;
    this.setup = setup;
    Object.freeze(this);
  }

  get headerBytes() {
    return ratchetHeaderBytes(this.dh, this.pn, this.n);
  }

  /** @returns {Record<string, unknown>} */
  toWire() {
    /** @type {Record<string, unknown>} */
    const wire = { dh: b64encode(this.dh), pn: this.pn, n: this.n, ciphertext: b64encode(this.ciphertext) };
    if (this.setup !== null) {
      wire.setup = this.setup.toWire();
    }
    return wire;
  }

  /**
   * @param {unknown} data
   * @returns {RatchetMessage}
   * @throws {MalformedInput}
   */
  static fromWire(data) {
    const obj = members(data, MESSAGE_FIELDS, ["setup"]);
    if (typeof obj.ciphertext !== "string") {
      throw new MalformedInput("ciphertext");
    }
    const ciphertext = b64decode(obj.ciphertext, { maxBytes: MAX_PLAINTEXT_BYTES + TAG_BYTES });
    if (ciphertext.length < TAG_BYTES) {
      throw new MalformedInput("ciphertext too short");
    }
    return new RatchetMessage({
      dh: checkX25519Raw(exactBytes(obj.dh, KEY_BYTES)),
      pn: integer(obj.pn, { below: POSITION_LIMIT }),
      n: integer(obj.n, { below: POSITION_LIMIT }),
      ciphertext,
      setup: Object.hasOwn(obj, "setup") ? SetupMessage.fromWire(obj.setup) : null,
    });
  }
}

/** A message key kept for a position not yet received. */
export class SkippedKey {
  /**
   * @param {Uint8Array} dh the ratchet key of its chain
   * @param {number} n its position in that chain
   * @param {Uint8Array} messageKey
   * @param {number} storedAt when it was stored (ms)
   */
  constructor(dh, n, messageKey, storedAt) {
    this.dh = dh;
    this.n = n;
    this.messageKey = messageKey;
    this.storedAt = storedAt;
    Object.freeze(this);
  }
}

/**
 * @typedef {object} SessionFields
 * @property {Uint8Array} sessionId
 * @property {Uint8Array} adHash
 * @property {Uint8Array} rootKey
 * @property {Uint8Array} dhsPrivate own ratchet private key, or empty
 * @property {Uint8Array} dhr the peer's ratchet public key, or empty
 * @property {Uint8Array} cks sending chain key, or empty
 * @property {Uint8Array} ckr receiving chain key, or empty
 * @property {number} ns
 * @property {number} nr
 * @property {number} pn
 * @property {Uint8Array} pendingSetup `setup_bytes` until the peer has answered, or empty
 * @property {readonly SkippedKey[]} skipped oldest first
 */

/**
 * One device's half of a session with one peer device (PROTOCOL.md 15.7.1). Empty byte
 * strings stand for "none". It holds private keys: store it sealed.
 */
export class SessionState {
  /**
   * @param {Omit<SessionFields, "skipped"> & {skipped?: readonly SkippedKey[]}} fields
   */
  constructor({ sessionId, adHash, rootKey, dhsPrivate, dhr, cks, ckr, ns, nr, pn, pendingSetup, skipped = [] }) {
    this.sessionId = sessionId;
    this.adHash = adHash;
    this.rootKey = rootKey;
    this.dhsPrivate = dhsPrivate;
    this.dhr = dhr;
    this.cks = cks;
    this.ckr = ckr;
    this.ns = ns;
    this.nr = nr;
    this.pn = pn;
    this.pendingSetup = pendingSetup;
    /** @type {readonly SkippedKey[]} */
    this.skipped = Object.freeze([...skipped]);
    Object.freeze(this);
  }

  /**
   * A copy with some fields replaced (Python's `dataclasses.replace`).
   *
   * @param {Partial<SessionFields>} changes
   * @returns {SessionState}
   */
  with(changes) {
    return new SessionState({ ...this, ...changes });
  }

  /** The canonical serialised form of 15.7.6. */
  toBytes() {
    /** @type {Uint8Array[]} */
    const fields = [
      u64(STATE_VERSION),
      this.sessionId,
      this.adHash,
      this.rootKey,
      this.dhsPrivate,
      this.dhr,
      this.cks,
      this.ckr,
      u64(this.ns),
      u64(this.nr),
      u64(this.pn),
      this.pendingSetup,
      u64(this.skipped.length),
    ];
    for (const key of this.skipped) {
      fields.push(key.dh, u64(key.n), key.messageKey, u64(key.storedAt));
    }
    return canonical(SESSION_STATE, fields);
  }

  /**
   * Parse 15.7.6; any other layout is `malformed`.
   *
   * @param {Uint8Array} data
   * @returns {SessionState}
   * @throws {MalformedInput}
   */
  static fromBytes(data) {
    const fields = splitCanonical(data, SESSION_STATE);
    if (fields.length < 13 || !bytesEqual(fields[0], u64(STATE_VERSION))) {
      throw new MalformedInput("session state");
    }
    const count = readU64(fields[12]);
    if (count > MAX_SKIPPED_KEYS || fields.length !== 13 + 4 * count) {
      throw new MalformedInput("session state");
    }
    /** @type {SkippedKey[]} */
    const skipped = [];
    for (let index = 0; index < count; index += 1) {
      const at = 13 + 4 * index;
      skipped.push(
        new SkippedKey(stateKey(fields[at], false), readU64(fields[at + 1]), stateKey(fields[at + 2], false), readU64(fields[at + 3])),
      );
    }
    if (fields[11].length > 0) {
      SetupMessage.fromBytes(fields[11]);
    }
    return new SessionState({
      sessionId: stateKey(fields[1], false),
      adHash: stateKey(fields[2], false),
      rootKey: stateKey(fields[3], false),
      dhsPrivate: stateKey(fields[4], true),
      dhr: stateKey(fields[5], true),
      cks: stateKey(fields[6], true),
      ckr: stateKey(fields[7], true),
      ns: readU64(fields[8]),
      nr: readU64(fields[9]),
      pn: readU64(fields[10]),
      pendingSetup: fields[11],
      skipped,
    });
  }
}

/**
 * A 32-byte field of a serialised state (or, where `optional`, an empty one).
 *
 * @param {Uint8Array} raw
 * @param {boolean} optional
 * @returns {Uint8Array}
 */
function stateKey(raw, optional) {
  if (raw.length !== KEY_BYTES && !(optional && raw.length === 0)) {
    throw new MalformedInput("session state");
  }
  return raw;
}

// ---------------------------------------------------------------------------
// The key derivations of 15.6.
// ---------------------------------------------------------------------------

/**
 * KDF_RK: (new root key, new chain key).
 *
 * @param {Uint8Array} rootKey
 * @param {Uint8Array} dhOut
 * @returns {Promise<[Uint8Array, Uint8Array]>}
 */
export async function kdfRk(rootKey, dhOut) {
  const out = await hkdfSha256(dhOut, { salt: rootKey, info: RATCHET_ROOT_INFO, length: 64 });
  return [out.slice(0, 32), out.slice(32)];
}

/**
 * KDF_CK: (message key, next chain key), HMAC-SHA256 of one byte each.
 *
 * @param {Uint8Array} chainKey 32 bytes
 * @returns {Promise<[Uint8Array, Uint8Array]>}
 */
export async function kdfCk(chainKey) {
  // One key import for both MACs: a forward jump of 25,000 positions is 25,000 steps.
  const subtle = globalThis.crypto.subtle;
  const key = await subtle.importKey(
    "raw",
    /** @type {Uint8Array<ArrayBuffer>} */ (chainKey),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const [messageKey, nextChainKey] = await Promise.all([
    subtle.sign("HMAC", key, MESSAGE_KEY_CONSTANT),
    subtle.sign("HMAC", key, CHAIN_KEY_CONSTANT),
  ]);
  return [new Uint8Array(messageKey), new Uint8Array(nextChainKey)];
}

/**
 * The AES-256-GCM key and 12-byte nonce of a message key.
 *
 * @param {Uint8Array} messageKey
 * @returns {Promise<[Uint8Array, Uint8Array]>}
 */
export async function messageKeyMaterial(messageKey) {
  const out = await hkdfSha256(messageKey, { salt: ZERO_SALT, info: MESSAGE_KEY_INFO, length: 44 });
  return [out.slice(0, 32), out.slice(32)];
}

/**
 * @param {Uint8Array} dh
 * @param {number} pn
 * @param {number} n
 * @returns {Uint8Array}
 */
export function ratchetHeaderBytes(dh, pn, n) {
  return canonical(RATCHET_HEADER, [dh, u64(pn), u64(n)]);
}

/**
 * @param {Uint8Array} adHash
 * @param {Uint8Array} headerBytes
 * @param {Uint8Array} extraAd
 * @returns {Uint8Array}
 */
export function ratchetAad(adHash, headerBytes, extraAd) {
  return canonical(RATCHET_AAD, [adHash, headerBytes, extraAd]);
}

/**
 * @param {Uint8Array} messageKey
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} aad
 * @returns {Promise<Uint8Array>}
 */
async function seal(messageKey, plaintext, aad) {
  const [key, nonce] = await messageKeyMaterial(messageKey);
  return aesGcmEncrypt(key, nonce, plaintext, aad);
}

/**
 * @param {Uint8Array} messageKey
 * @param {Uint8Array} ciphertext
 * @param {Uint8Array} aad
 * @returns {Promise<Uint8Array>}
 * @throws {Refusal} `ratchet_failed`
 */
async function open(messageKey, ciphertext, aad) {
  const [key, nonce] = await messageKeyMaterial(messageKey);
  try {
    return await aesGcmDecrypt(key, nonce, ciphertext, aad);
  } catch (error) {
    if (error instanceof VerificationFailed) throw new Refusal("ratchet_failed");
    throw error;
  }
}

/**
 * @param {unknown} now
 * @returns {number}
 */
function checkNow(now) {
  if (typeof now !== "number" || !Number.isSafeInteger(now) || now < 0) {
    throw new TypeError("now must be a safe integer of milliseconds");
  }
  return now;
}

// ---------------------------------------------------------------------------
// Encrypt and decrypt (15.7.2, 15.7.3).
// ---------------------------------------------------------------------------

/**
 * Encrypt one message; `random(32)` is called only when the ratchet turns.
 *
 * @param {SessionState} state
 * @param {Uint8Array} plaintext at most 65,536 bytes
 * @param {Uint8Array} extraAd what the layer above binds (15.8: the body binding)
 * @param {import("./primitives.js").RandomSource} random
 * @returns {Promise<{message: RatchetMessage, state: SessionState}>}
 * @throws {MalformedInput | Refusal} `session_unknown` for a responder that has opened nothing
 */
export async function ratchetEncrypt(state, plaintext, extraAd, random) {
  if (plaintext.length > MAX_PLAINTEXT_BYTES) {
    throw new MalformedInput("plaintext too long");
  }
  let current = state;
  if (current.cks.length === 0) {
    if (current.dhr.length === 0) {
      throw new Refusal("session_unknown");
    }
    const dhsPrivate = Uint8Array.from(await random(KEY_BYTES));
    const shared = await x25519Ratchet(dhsPrivate, current.dhr);
    if (shared === null) {
      throw new Refusal("ratchet_failed");
    }
    const [rootKey, cks] = await kdfRk(current.rootKey, shared);
    // The new key replaces the old one in this session, so the cache need not keep it
    // (a caller that goes on with the old state only imports it again).
    forgetX25519Ratchet(current.dhsPrivate);
    current = current.with({ dhsPrivate, rootKey, cks, pn: current.ns, ns: 0 });
  }
  const [messageKey, cks] = await kdfCk(current.cks);
  const dh = await x25519RatchetPublic(current.dhsPrivate);
  const header = ratchetHeaderBytes(dh, current.pn, current.ns);
  const ciphertext = await seal(messageKey, plaintext, ratchetAad(current.adHash, header, extraAd));
  const setup = current.pendingSetup.length > 0 ? SetupMessage.fromBytes(current.pendingSetup) : null;
  const message = new RatchetMessage({ dh, pn: current.pn, n: current.ns, ciphertext, setup });
  return { message, state: current.with({ cks, ns: current.ns + 1 }) };
}

/**
 * The message keys of positions `start … until-1` of a chain, and the chain key after.
 *
 * @param {Uint8Array} chainKey
 * @param {Uint8Array} dh
 * @param {number} start
 * @param {number} until
 * @param {number} now
 * @returns {Promise<[Uint8Array, SkippedKey[]]>}
 */
async function skip(chainKey, dh, start, until, now) {
  /** @type {SkippedKey[]} */
  const keys = [];
  let current = chainKey;
  for (let n = start; n < until; n += 1) {
    const [messageKey, next] = await kdfCk(current);
    keys.push(new SkippedKey(dh, n, messageKey, now));
    current = next;
  }
  return [current, keys];
}

/**
 * The skipped keys that have not expired by `now` (`now < stored_at + 30 days`, written
 * as a difference so that it stays exact for any two safe integers).
 *
 * @param {readonly SkippedKey[]} skipped
 * @param {number} now
 * @returns {SkippedKey[]}
 */
function live(skipped, now) {
  return skipped.filter((key) => now - key.storedAt < SKIPPED_KEY_TTL_MS);
}

/**
 * Open one message, or throw a {@link Refusal} (`ratchet_duplicate`, `ratchet_too_far`,
 * `ratchet_failed`) and change nothing.
 *
 * @param {SessionState} state
 * @param {RatchetMessage} message
 * @param {Uint8Array} extraAd
 * @param {number} now
 * @returns {Promise<{plaintext: Uint8Array, state: SessionState}>}
 * @throws {Refusal}
 */
export async function ratchetDecrypt(state, message, extraAd, now) {
  checkNow(now);
  const aad = ratchetAad(state.adHash, message.headerBytes, extraAd);
  const liveKeys = live(state.skipped, now);
  const found = liveKeys.findIndex((key) => key.n === message.n && bytesEqual(key.dh, message.dh));
  if (found >= 0) {
    const plaintext = await open(liveKeys[found].messageKey, message.ciphertext, aad);
    return { plaintext, state: finish(state, [...liveKeys.slice(0, found), ...liveKeys.slice(found + 1)]) };
  }

  let { rootKey, ckr, nr, cks } = state;
  /** @type {SkippedKey[]} */
  let previousChainKeys = [];
  if (state.dhr.length > 0 && bytesEqual(message.dh, state.dhr)) {
    if (message.n < nr) throw new Refusal("ratchet_duplicate");
    if (message.n - nr > MAX_SKIP) throw new Refusal("ratchet_too_far");
    if (ckr.length === 0) throw new Refusal("ratchet_failed");
  } else {
    const hasChain = state.dhr.length > 0 && ckr.length > 0;
    // A jump is refused before any key is derived, so a forged header cannot make a
    // receiver compute 2^32 chain steps.
    if (message.n > MAX_SKIP || (hasChain && message.pn - nr > MAX_SKIP)) {
      throw new Refusal("ratchet_too_far");
    }
    // Checked before the old chain's keys are derived (Python derives them first; no
    // other refusal lies between, so the outcome is the same and the work is saved).
    if (state.dhsPrivate.length === 0) throw new Refusal("ratchet_failed");
    if (hasChain) {
      [, previousChainKeys] = await skip(ckr, state.dhr, nr, message.pn, now);
    }
    const shared = await x25519Ratchet(state.dhsPrivate, message.dh);
    if (shared === null) throw new Refusal("ratchet_failed");
    [rootKey, ckr] = await kdfRk(rootKey, shared);
    nr = 0;
    cks = EMPTY;
  }
  const [chainKey, chainKeys] = await skip(ckr, message.dh, nr, message.n, now);
  const [messageKey, nextChainKey] = await kdfCk(chainKey);
  const plaintext = await open(messageKey, message.ciphertext, aad);
  // After a turn cks is empty: the next send makes a new ratchet key and sets pn (15.7.2).
  const next = state.with({ rootKey, dhr: message.dh, ckr: nextChainKey, cks, nr: message.n + 1 });
  return { plaintext, state: finish(next, [...liveKeys, ...previousChainKeys, ...chainKeys]) };
}

/**
 * After a successful decryption: keep at most the newest 2,000 skipped keys, and forget
 * the pending setup (the peer has the session).
 *
 * @param {SessionState} state
 * @param {SkippedKey[]} skipped
 * @returns {SessionState}
 */
function finish(state, skipped) {
  return state.with({ skipped: skipped.slice(-MAX_SKIPPED_KEYS), pendingSetup: EMPTY });
}

/**
 * Drop the skipped keys that have expired by `now` (callers may run it any time).
 *
 * @param {SessionState} state
 * @param {number} now
 * @returns {SessionState}
 */
export function expireSkippedKeys(state, now) {
  return state.with({ skipped: live(state.skipped, checkNow(now)) });
}
