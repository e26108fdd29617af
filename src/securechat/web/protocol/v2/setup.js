/**
 * Asynchronous session setup in the manner of X3DH (PROTOCOL.md 15.5), mirroring
 * `securechat/protocol/v2/setup.py`.
 *
 * Without XEdDSA the device's DH key is not its signing key; the device certificate
 * (15.3) binds the two, and both are in `parties`, which goes into the HKDF info and,
 * hashed, into every ratchet message's associated data.
 *
 * @module
 */

import { canonical, concatBytes } from "../encoding.js";
import { hkdfSha256, sha256 } from "../primitives.js";
import { Refusal } from "./errors.js";
import { SESSION_ID, SESSION_KDF, SESSION_PARTIES } from "./labels.js";
import { x25519, x25519Public } from "./primitives.js";
import { SessionState, SetupMessage, ratchetDecrypt } from "./ratchet.js";


const IKM_PREFIX = new Uint8Array(32).fill(0xff);
const ZERO_SALT = new Uint8Array(32);
const EMPTY = new Uint8Array(0);

/** One side of a session: the account and one of its listed devices. */
export class Party {
  /**
   * @param {string} username
   * @param {Uint8Array} accountKey
   * @param {import("./devices.js").Device} device
   */
  constructor(username, accountKey, device) {
    this.username = username;
    this.accountKey = accountKey;
    this.device = device;
    Object.freeze(this);
  }
}

/**
 * Everything 15.5 derives; the vectors compare each value.
 *
 * @typedef {object} SetupSecrets
 * @property {readonly Uint8Array[]} dh DH1, DH2, DH3 and, with a one-time prekey, DH4
 * @property {Uint8Array} parties
 * @property {Uint8Array} setupBytes
 * @property {Uint8Array} info
 * @property {Uint8Array} sharedKey
 * @property {Uint8Array} adHash
 * @property {Uint8Array} sessionId
 */

/**
 * @param {Party} initiator
 * @param {Party} responder
 * @returns {Uint8Array}
 */
export function partiesBytes(initiator, responder) {
  /** @type {(Uint8Array | string)[]} */
  const fields = [];
  for (const party of [initiator, responder]) {
    fields.push(party.username, party.accountKey, party.device.deviceId, party.device.signingKey, party.device.dhKey);
  }
  return canonical(SESSION_PARTIES, fields);
}

/**
 * @param {Party} initiator
 * @param {Party} responder
 * @param {SetupMessage} setup
 * @param {Uint8Array[]} dh
 * @returns {Promise<SetupSecrets>}
 */
async function derive(initiator, responder, setup, dh) {
  const parties = partiesBytes(initiator, responder);
  const setupBytes = setup.toBytes();
  const info = canonical(SESSION_KDF, [parties, setupBytes]);
  const sharedKey = await hkdfSha256(concatBytes(IKM_PREFIX, ...dh), { salt: ZERO_SALT, info, length: 32 });
  return Object.freeze({
    dh: Object.freeze(dh),
    parties,
    setupBytes,
    info,
    sharedKey,
    adHash: await sha256(parties),
    sessionId: await sha256(canonical(SESSION_ID, [parties, setupBytes])),
  });
}

/**
 * DH1..DH4 in order; a zero output (a small-order public key) refuses the setup.
 *
 * @param {[Uint8Array, Uint8Array][]} pairs (private, public)
 * @param {import("./errors.js").V2Reason} refusal
 * @returns {Promise<Uint8Array[]>}
 */
async function agree(pairs, refusal) {
  // Every output first, as in Python, so a key of the wrong size is `malformed` wherever it is.
  /** @type {(Uint8Array | null)[]} */
  const outputs = [];
  for (const [privateKey, publicKey] of pairs) {
    outputs.push(await x25519(privateKey, publicKey));
  }
  const dh = outputs.filter((output) => output !== null);
  if (dh.length !== outputs.length) {
    throw new Refusal(refusal);
  }
  return dh;
}

/**
 * The initiator's side of 15.5, from a checked bundle; `prekey_invalid` on a zero DH.
 *
 * @param {Party} initiator
 * @param {Uint8Array} initiatorDhPrivate
 * @param {Party} responder
 * @param {import("./prekeys.js").SignedPrekey} signedPrekey
 * @param {import("./prekeys.js").OneTimePrekey | null} oneTimePrekey
 * @param {Uint8Array} ephemeralPrivate
 * @returns {Promise<SetupSecrets>}
 */
export async function initiatorSecrets(initiator, initiatorDhPrivate, responder, signedPrekey, oneTimePrekey, ephemeralPrivate) {
  const setup = new SetupMessage(
    await x25519Public(ephemeralPrivate),
    signedPrekey.prekeyId,
    oneTimePrekey === null ? null : oneTimePrekey.prekeyId,
  );
  /** @type {[Uint8Array, Uint8Array][]} */
  const pairs = [
    [initiatorDhPrivate, signedPrekey.publicKey],
    [ephemeralPrivate, responder.device.dhKey],
    [ephemeralPrivate, signedPrekey.publicKey],
  ];
  if (oneTimePrekey !== null) {
    pairs.push([ephemeralPrivate, oneTimePrekey.publicKey]);
  }
  return derive(initiator, responder, setup, await agree(pairs, "prekey_invalid"));
}

/**
 * A new session with `responder`'s device; the ephemeral key is forgotten here.
 *
 * @param {Party} initiator
 * @param {Uint8Array} initiatorDhPrivate
 * @param {Party} responder
 * @param {import("./prekeys.js").SignedPrekey} signedPrekey
 * @param {import("./prekeys.js").OneTimePrekey | null} oneTimePrekey
 * @param {Uint8Array} ephemeralPrivate
 * @returns {Promise<SessionState>}
 */
export async function initiateSession(initiator, initiatorDhPrivate, responder, signedPrekey, oneTimePrekey, ephemeralPrivate) {
  const secrets = await initiatorSecrets(initiator, initiatorDhPrivate, responder, signedPrekey, oneTimePrekey, ephemeralPrivate);
  return new SessionState({
    sessionId: secrets.sessionId,
    adHash: secrets.adHash,
    rootKey: secrets.sharedKey,
    dhsPrivate: EMPTY,
    dhr: signedPrekey.publicKey,
    cks: EMPTY,
    ckr: EMPTY,
    ns: 0,
    nr: 0,
    pn: 0,
    pendingSetup: secrets.setupBytes,
  });
}

/**
 * The responder's side of 15.5; `ratchet_failed` on a zero DH.
 *
 * @param {Party} responder
 * @param {Uint8Array} responderDhPrivate
 * @param {Party} initiator
 * @param {SetupMessage} setup
 * @param {Uint8Array} signedPrekeyPrivate
 * @param {Uint8Array | null} oneTimePrekeyPrivate
 * @returns {Promise<SetupSecrets>}
 */
export async function responderSecrets(responder, responderDhPrivate, initiator, setup, signedPrekeyPrivate, oneTimePrekeyPrivate) {
  /** @type {[Uint8Array, Uint8Array][]} */
  const pairs = [
    [signedPrekeyPrivate, initiator.device.dhKey],
    [responderDhPrivate, setup.ephemeralKey],
    [signedPrekeyPrivate, setup.ephemeralKey],
  ];
  if (oneTimePrekeyPrivate !== null) {
    pairs.push([oneTimePrekeyPrivate, setup.ephemeralKey]);
  }
  return derive(initiator, responder, setup, await agree(pairs, "ratchet_failed"));
}

/**
 * What a responder gets from an accepted setup.
 *
 * @typedef {object} AcceptedSetup
 * @property {Uint8Array} plaintext
 * @property {SessionState} state
 * @property {number | null} usedOneTimePrekeyId the one-time prekey whose private half the caller must now delete
 */

/**
 * 15.5 steps 2-3 for the responder: find the named prekeys' private halves (else
 * `prekey_unknown`), derive the session, open the message with it (else
 * `ratchet_failed`). Nothing is kept unless the message opens.
 *
 * @param {Party} responder
 * @param {Uint8Array} responderDhPrivate
 * @param {Party} initiator
 * @param {import("./ratchet.js").RatchetMessage} message
 * @param {ReadonlyMap<number, Uint8Array>} signedPrekeys private halves by prekey id
 * @param {ReadonlyMap<number, Uint8Array>} oneTimePrekeys private halves by prekey id
 * @param {Uint8Array} extraAd
 * @param {number} now
 * @returns {Promise<AcceptedSetup>}
 * @throws {Refusal}
 */
export async function acceptSession(responder, responderDhPrivate, initiator, message, signedPrekeys, oneTimePrekeys, extraAd, now) {
  const setup = message.setup;
  if (setup === null) {
    throw new Refusal("session_unknown");
  }
  const signedPrivate = signedPrekeys.get(setup.signedPrekeyId);
  let oneTimePrivate = null;
  if (setup.oneTimePrekeyId !== null) {
    oneTimePrivate = oneTimePrekeys.get(setup.oneTimePrekeyId);
    if (oneTimePrivate === undefined) throw new Refusal("prekey_unknown");
  }
  if (signedPrivate === undefined) {
    throw new Refusal("prekey_unknown");
  }
  const secrets = await responderSecrets(responder, responderDhPrivate, initiator, setup, signedPrivate, oneTimePrivate);
  const state = new SessionState({
    sessionId: secrets.sessionId,
    adHash: secrets.adHash,
    rootKey: secrets.sharedKey,
    dhsPrivate: signedPrivate,
    dhr: EMPTY,
    cks: EMPTY,
    ckr: EMPTY,
    ns: 0,
    nr: 0,
    pn: 0,
    pendingSetup: EMPTY,
  });
  const opened = await ratchetDecrypt(state, message, extraAd, now);
  return Object.freeze({ plaintext: opened.plaintext, state: opened.state, usedOneTimePrekeyId: setup.oneTimePrekeyId });
}

/**
 * The session id a setup would make (15.5 step 1: a setup of a session already held is
 * no new setup).
 *
 * @param {Party} initiator
 * @param {Party} responder
 * @param {SetupMessage} setup
 * @returns {Promise<Uint8Array>}
 */
export async function setupSessionId(initiator, responder, setup) {
  return sha256(canonical(SESSION_ID, [partiesBytes(initiator, responder), setup.toBytes()]));
}
