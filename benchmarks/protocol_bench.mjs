// The JavaScript half of benchmarks/bench_protocol.py: the same v1 and v2 measurements
// with the browser client's own protocol modules (src/securechat/web/protocol/), in
// Chromium (loaded by protocol_bench.html) or in Node (`node benchmarks/protocol_bench.mjs 300`).
// Only Web Crypto; every key fresh from the platform's randomness. Times are medians in ms.

import * as v1 from "../src/securechat/web/protocol/index.js";
import * as v2 from "../src/securechat/web/protocol/v2/index.js";

const TEXT = "x".repeat(100);
const NOW = Date.now();

/** @param {number} size */
function randomBytes(size) {
  return globalThis.crypto.getRandomValues(new Uint8Array(size));
}

/** @param {number[]} samples in ms */
function median(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return Math.round(value * 10_000) / 10_000;
}

/** @param {() => Promise<unknown>} action */
async function timed(action) {
  const start = performance.now();
  const result = await action();
  return { ms: performance.now() - start, result };
}

/** @param {number} repeats */
async function benchV1(repeats) {
  const alice = await v1.PrivateIdentity.generate("alice");
  const bob = await v1.PrivateIdentity.generate("bob");
  const conversationId = await v1.directConversationId("alice", "bob");
  const recipients = { alice: alice.public, bob: bob.public };
  const seal = [];
  const open = [];
  const unwrap = [];
  for (let i = 0; i < repeats; i += 1) {
    const sealed = await timed(() => v1.sealMessage(alice, conversationId, recipients, { type: "text", text: TEXT }));
    seal.push(sealed.ms);
    const envelope = /** @type {any} */ (sealed.result);
    const wire = JSON.parse(envelope.toJson());
    const opened = await timed(async () =>
      v1.openMessage(v1.Envelope.fromWire(wire), {
        me: bob,
        senderIdentity: alice.public,
        conversationId,
        members: ["alice", "bob"],
      }),
    );
    if (/** @type {any} */ (opened.result).payload.text !== TEXT) throw new Error("v1 did not open");
    open.push(opened.ms);
    const mine = envelope.keys.find((/** @type {any} */ key) => key.recipient === "bob");
    const label = v1.wrappedKeyLabel(envelope.header.messageId, "bob");
    unwrap.push((await timed(() => v1.rsaOaepDecrypt(bob.encryptionPrivate, mine.wrappedKey, label))).ms);
  }
  return { seal_ms: median(seal), open_ms: median(open), rsa_unwrap_ms: median(unwrap) };
}

/** @param {string} username @param {Uint8Array} [accountSeed] */
async function persona(username, accountSeed = randomBytes(32)) {
  const signingSeed = randomBytes(32);
  const dhPrivate = randomBytes(32);
  const spkPrivate = randomBytes(32);
  const device = await v2.certifyDevice(
    accountSeed,
    username,
    await v2.ed25519RawPublic(signingSeed),
    await v2.x25519Public(dhPrivate),
    NOW,
  );
  const signedPrekey = await v2.makeSignedPrekey(signingSeed, username, device.deviceId, 1, spkPrivate, NOW);
  const party = new v2.Party(username, await v2.ed25519RawPublic(accountSeed), device);
  return { username, signingSeed, dhPrivate, device, spkPrivate, signedPrekey, party };
}

/** @typedef {Awaited<ReturnType<typeof persona>>} Persona */

/** @param {Persona} sender @param {Persona[]} targets */
function header(sender, targets) {
  // The sender's account is a target too, with its other devices (none here), as a
  // client makes every direct message's header (15.8).
  /** @type {Map<string, string[]>} */
  const byUser = new Map([[sender.username, []]]);
  for (const target of targets) byUser.set(target.username, [...(byUser.get(target.username) ?? []), target.device.deviceId]);
  return new v2.HeaderV2({
    messageId: v1.newMessageId(),
    conversationId: conversation,
    sender: sender.username,
    senderDevice: sender.device.deviceId,
    sentAt: Date.now(),
    targets: [...byUser.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([user, ids]) => new v2.Target(user, 1, ids.sort())),
  });
}

let conversation = "";

/**
 * Seal for one target device over `state`; the envelope's wire form and the new state.
 * @param {Persona} sender @param {Persona} receiver @param {any} state
 */
async function seal(sender, receiver, state) {
  const key = v2.targetKey(receiver.username, receiver.device.deviceId);
  const { envelope, states } = await v2.sealEnvelope(
    header(sender, [receiver]),
    v1.encodePayload({ type: "text", text: TEXT }),
    randomBytes(32),
    randomBytes(12),
    new Map([[key, state]]),
    sender.signingSeed,
    v2.randomX25519Private,
  );
  return { wire: JSON.parse(JSON.stringify(envelope.toWire())), state: states.get(key) };
}

/** The receiving steps of 15.8 over an existing session. @param {Persona} me @param {Persona} sender @param {any} state @param {unknown} wire */
async function openAs(me, sender, state, wire) {
  const envelope = v2.EnvelopeV2.fromWire(wire);
  await v2.verifyEnvelope(envelope, sender.device);
  const slot = envelope.slotFor(me.username, me.device.deviceId);
  if (slot === null) throw new Error("no slot");
  const binding = await envelope.binding();
  const opened = await v2.ratchetDecrypt(state, slot.message, binding, Date.now());
  const payload = v1.decodePayload(await v2.openBody(envelope, await v2.openKeySlot(envelope, opened.plaintext)));
  if (payload.text !== TEXT) throw new Error("v2 did not open");
  return opened.state;
}

/** A session alice -> bob, answered once. @param {Persona} alice @param {Persona} bob */
async function establish(alice, bob) {
  const opkPrivate = randomBytes(32);
  const opk = await v2.makeOneTimePrekey(bob.signingSeed, bob.username, bob.device.deviceId, 1000, opkPrivate);
  const initial = await v2.initiateSession(alice.party, alice.dhPrivate, bob.party, bob.signedPrekey, opk, randomBytes(32));
  const first = await seal(alice, bob, initial);
  const envelope = v2.EnvelopeV2.fromWire(first.wire);
  const slot = /** @type {any} */ (envelope.slotFor(bob.username, bob.device.deviceId));
  const accepted = await v2.acceptSession(
    bob.party,
    bob.dhPrivate,
    alice.party,
    slot.message,
    new Map([[1, bob.spkPrivate]]),
    new Map([[1000, opkPrivate]]),
    await envelope.binding(),
    NOW,
  );
  const reply = await seal(bob, alice, accepted.state);
  return { alice: await openAs(alice, bob, first.state, reply.wire), bob: reply.state };
}

/** @param {number} repeats */
async function benchV2(repeats) {
  conversation = await v1.directConversationId("alice", "bob");
  const alice = await persona("alice");
  const bob = await persona("bob");
  let states = await establish(alice, bob);
  const chainSeal = [];
  const chainOpen = [];
  const turnSeal = [];
  const turnOpen = [];
  /** @param {Persona} sender @param {Persona} receiver @param {number[] | null} sealTimes @param {number[] | null} openTimes */
  async function send(sender, receiver, sealTimes, openTimes) {
    const fromAlice = sender === alice;
    const sealed = await timed(() => seal(sender, receiver, fromAlice ? states.alice : states.bob));
    const { wire, state } = /** @type {any} */ (sealed.result);
    const opened = await timed(() => openAs(receiver, sender, fromAlice ? states.bob : states.alice, wire));
    states = fromAlice ? { alice: state, bob: opened.result } : { alice: opened.result, bob: state };
    sealTimes?.push(sealed.ms);
    openTimes?.push(opened.ms);
  }
  for (let i = 0; i < repeats; i += 1) {
    await send(alice, bob, turnSeal, turnOpen);
    await send(alice, bob, chainSeal, chainOpen);
    await send(bob, alice, null, null);
  }
  const initiate = [];
  const accept = [];
  for (let i = 0; i < Math.max(20, Math.floor(repeats / 10)); i += 1) {
    const opkPrivate = randomBytes(32);
    const opk = await v2.makeOneTimePrekey(bob.signingSeed, "bob", bob.device.deviceId, 2000 + i, opkPrivate);
    const started = await timed(() =>
      v2.initiateSession(alice.party, alice.dhPrivate, bob.party, bob.signedPrekey, opk, randomBytes(32)),
    );
    initiate.push(started.ms);
    const first = await seal(alice, bob, started.result);
    const envelope = v2.EnvelopeV2.fromWire(first.wire);
    const slot = /** @type {any} */ (envelope.slotFor("bob", bob.device.deviceId));
    const binding = await envelope.binding();
    const accepted = await timed(() =>
      v2.acceptSession(bob.party, bob.dhPrivate, alice.party, slot.message, new Map([[1, bob.spkPrivate]]), new Map([[2000 + i, opkPrivate]]), binding, NOW),
    );
    accept.push(accepted.ms);
  }
  return {
    seal_same_chain_ms: median(chainSeal),
    seal_dh_turn_ms: median(turnSeal),
    open_same_chain_ms: median(chainOpen),
    open_dh_turn_ms: median(turnOpen),
    setup_initiate_ms: median(initiate),
    setup_accept_with_first_message_ms: median(accept),
    state_bytes_established: states.alice.toBytes().length,
  };
}

/** @param {number} repeats */
export async function runProtocolBench(repeats) {
  const v1Result = await benchV1(repeats);
  const v2Result = await benchV2(repeats);
  return { v1: v1Result, v2: v2Result };
}

const isNode = typeof process !== "undefined" && process.versions?.node !== undefined;
if (isNode && import.meta.url === `file://${process.argv[1]}`) {
  const repeats = Number(process.argv[2] ?? 300);
  console.log(JSON.stringify(await runProtocolBench(repeats)));
}
