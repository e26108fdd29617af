// Shared helpers for the node:test suites in this directory (not a test file itself).
//
// The suites run with `node --test tests/js/` from the repository root, and
// tests/js/test_node_suite.py runs them from pytest.

import { readFileSync } from "node:fs";

import {
  Envelope,
  PrivateIdentity,
  ProtocolError,
  PublicIdentity,
  ed25519Pkcs8FromSeed,
  fromHex,
  openMessage,
} from "../../src/securechat/web/protocol/index.js";

/** Repository-relative data files, resolved from this file so the cwd does not matter. */
export const DATA_DIR = new URL("../data/", import.meta.url);

/**
 * @param {string} name a file under tests/data
 * @returns {any}
 */
export function loadJson(name) {
  return JSON.parse(readFileSync(new URL(name, DATA_DIR), "utf8"));
}

export const VECTORS = loadJson("protocol_vectors.json");

/** Hex to bytes (the vectors' `_hex` members). */
export const unhex = fromHex;

/**
 * "ok", or the kind of the ProtocolError that `action` threw; anything else is rethrown,
 * so an unexpected exception type fails the test instead of counting as a refusal.
 *
 * @param {() => unknown} action
 * @returns {Promise<string>}
 */
export async function outcome(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof ProtocolError) return error.kind;
    throw error;
  }
  return "ok";
}

/** @type {Map<string, Promise<PrivateIdentity>>} */
const identities = new Map();

/**
 * The private identity of a persona from the vector file, built from its Ed25519 seed
 * and its RSA PKCS#8 (memoised: RSA imports are not free).
 *
 * @param {string} name
 * @returns {Promise<PrivateIdentity>}
 */
export function privateIdentity(name) {
  let identity = identities.get(name);
  if (identity === undefined) {
    const record = VECTORS.identities[name];
    identity = PrivateIdentity.fromPrivateKeys(
      record.username,
      ed25519Pkcs8FromSeed(unhex(record.ed25519_seed_hex)),
      unhex(record.encryption_private_pkcs8_hex),
    );
    identities.set(name, identity);
  }
  return identity;
}

/**
 * @param {string} name
 * @returns {Promise<PublicIdentity>}
 */
export async function publicIdentity(name) {
  return (await privateIdentity(name)).public;
}

/**
 * The receiver's procedure (PROTOCOL.md 7.9) with the context a client keeps, as the
 * vectors describe it: parse, look up the pinned key, then openMessage (which also does
 * the replay check). Returns the payload.
 *
 * @param {unknown} wire the envelope as parsed JSON
 * @param {string} recipient the persona opening it
 * @param {{conversation_id: string, members: string[], pinned: Record<string, string>, seen_message_ids: string[]}} context
 * @returns {Promise<Record<string, unknown>>}
 */
export async function receive(wire, recipient, context) {
  const envelope = Envelope.fromWire(wire);
  const sender = envelope.header.sender;
  let senderIdentity = null;
  if (Object.hasOwn(context.pinned, sender)) {
    const pinned = await publicIdentity(context.pinned[sender]);
    senderIdentity = new PublicIdentity({
      username: sender,
      signingKey: pinned.signingKey,
      encryptionKey: pinned.encryptionKey,
      encryptionKeySignature: pinned.encryptionKeySignature,
    });
  }
  const opened = await openMessage(envelope, {
    me: await privateIdentity(recipient),
    senderIdentity,
    conversationId: context.conversation_id,
    members: context.members,
    seenMessageIds: new Set(context.seen_message_ids),
  });
  return opened.payload;
}

/**
 * A message decision in the vector file's (Python's) names. With `payloadSummary`, only the
 * payload's type and text (the differential test's form: some payloads there are nested too
 * deep to print, or hold numbers the two languages print differently).
 */
export function messageOutcome(decision, { payloadSummary = false } = {}) {
  if (decision.outcome === "refused") return { outcome: "refused", reason: decision.reason };
  const seen = { signature: decision.seen.signature, seq: decision.seen.seq };
  if (decision.outcome === "duplicate") return { outcome: "duplicate", seen };
  return {
    outcome: "accepted",
    conversation_id: decision.conversationId,
    kind: decision.kind,
    peer: decision.peer,
    sender: decision.sender,
    sent_at: decision.sentAt,
    payload: payloadSummary
      ? { type: decision.payload.type, text: decision.payload.text ?? null }
      : decision.payload,
    seen,
  };
}
