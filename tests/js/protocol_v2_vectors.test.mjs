// tests/data/protocol_v2_vectors.json against the browser implementation of protocol v2
// (src/securechat/web/protocol/v2/), one test per case with the ids of
// tests/vectors/test_protocol_v2_vectors.py. Everything is rebuilt from the hex values in
// the file (seeds, private keys, `now`), so these tests check what PROTOCOL.md 15 asks of
// a second implementation: the same bytes (states, ciphertexts, certificates, list
// hashes, envelopes) and the same refusal reasons.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { b64decode, b64encode, bytesEqual, canonical, toHex, u64 } from "../../src/securechat/web/protocol/index.js";
import { pad } from "../../src/securechat/web/protocol/envelope.js";
import { hkdfSha256, hmacSha256, sha256 } from "../../src/securechat/web/protocol/primitives.js";
import {
  EnvelopeV2,
  KnownList,
  LABELS,
  MAX_SKIP,
  MAX_SKIPPED_KEYS,
  PROTOCOL_VERSION,
  RatchetMessage,
  SIGNED_PREKEY_MAX_AGE_MS,
  SKIPPED_KEY_TTL_MS,
  SessionState,
  SetupMessage,
  VerificationFailed,
  acceptSession,
  certificateBytes,
  checkDeviceList,
  checkOneTimePrekey,
  checkSignedPrekey,
  deviceId,
  ed25519RawPublic,
  ed25519SignRaw,
  ed25519VerifyRaw,
  envelopeSignatureInput,
  initiateSession,
  initiatorSecrets,
  keySlotPlaintext,
  messageKeyMaterial,
  oneTimePrekeyBytes,
  openBody,
  openKeySlot,
  ratchetDecrypt,
  ratchetEncrypt,
  responderSecrets,
  sealEnvelope,
  signedPrekeyBytes,
  targetKey,
  verifyEnvelope,
  x25519Public,
} from "../../src/securechat/web/protocol/v2/index.js";
import { deviceAuthBytes } from "../../src/securechat/web/app/device-auth.js";
import { unhex } from "./support.mjs";
import { VECTORS_V2 as VECTORS, device, fixedRandom, outcome, party, secret } from "./v2_support.mjs";

const DEVICES = VECTORS.devices;
const RATCHET = VECTORS.ratchet;
const ENVELOPES = VECTORS.envelopes;
const SECTIONS = [
  "note",
  "protocol_version",
  "labels",
  "constants",
  "devices",
  "device_lists",
  "prekeys",
  "setups",
  "setup_refusals",
  "ratchet",
  "skipped_limits",
  "envelopes",
  "device_auth",
];

describe("file", () => {
  test("has exactly the sections this suite checks", () => {
    assert.deepEqual(Object.keys(VECTORS).sort(), [...SECTIONS].sort());
  });
  test("labels_are_exactly_those_of_labels_js", () => {
    assert.deepEqual(VECTORS.labels, { ...LABELS });
    assert.equal(VECTORS.protocol_version, 2);
    assert.equal(PROTOCOL_VERSION, 2);
  });
  test("constants", () => {
    assert.deepEqual(VECTORS.constants, {
      max_skip: MAX_SKIP,
      max_skipped_keys: MAX_SKIPPED_KEYS,
      skipped_key_ttl_ms: SKIPPED_KEY_TTL_MS,
      signed_prekey_max_age_ms: SIGNED_PREKEY_MAX_AGE_MS,
    });
  });
});

// ---------------------------------------------------------------------------
// Devices and prekeys (15.1, 15.3, 15.4).
// ---------------------------------------------------------------------------

describe("device_keys_ids_certificates_and_prekeys", () => {
  for (const name of Object.keys(DEVICES).sort()) {
    test(name, async () => {
      const d = DEVICES[name];
      assert.equal(toHex(await ed25519RawPublic(secret(name, "account_seed_hex"))), d.account_key_hex);
      assert.equal(toHex(await ed25519RawPublic(secret(name, "signing_seed_hex"))), d.signing_key_hex);
      assert.equal(toHex(await x25519Public(secret(name, "dh_private_hex"))), d.dh_key_hex);
      assert.equal(await deviceId(unhex(d.signing_key_hex)), d.device_id);
      const signed = certificateBytes(
        d.username,
        unhex(d.account_key_hex),
        d.device_id,
        unhex(d.signing_key_hex),
        unhex(d.dh_key_hex),
        d.created_at,
      );
      assert.equal(toHex(signed), d.certificate_bytes_hex);
      assert.equal(toHex(await ed25519SignRaw(secret(name, "account_seed_hex"), signed)), d.certificate_hex);
      const spk = d.signed_prekey;
      const spkPublic = await x25519Public(unhex(spk.private_hex));
      assert.equal(b64encode(spkPublic), spk.wire.public_key);
      const spkBytes = signedPrekeyBytes(d.username, d.device_id, spk.wire.prekey_id, spkPublic, spk.wire.created_at);
      assert.equal(toHex(spkBytes), spk.signed_bytes_hex);
      // Ed25519 is deterministic: re-signing gives the stored signature.
      assert.equal(b64encode(await ed25519SignRaw(secret(name, "signing_seed_hex"), spkBytes)), spk.wire.signature);
      await ed25519VerifyRaw(unhex(d.signing_key_hex), b64decode(spk.wire.signature), spkBytes);
      for (const opk of d.one_time_prekeys) {
        const publicKey = await x25519Public(unhex(opk.private_hex));
        const bytes = oneTimePrekeyBytes(d.username, d.device_id, opk.wire.prekey_id, publicKey);
        assert.equal(toHex(bytes), opk.signed_bytes_hex);
        assert.equal(b64encode(await ed25519SignRaw(secret(name, "signing_seed_hex"), bytes)), opk.wire.signature);
      }
    });
  }
});

describe("device_lists", () => {
  for (const c of VECTORS.device_lists) {
    test(c.name, async () => {
      const known = c.known === null ? null : new KnownList(c.known.version, unhex(c.known.list_hash_hex));
      const key = unhex(c.account_key_hex);
      assert.equal(await outcome(() => checkDeviceList(c.wire, c.username, key, known)), c.expected, c.note);
      if (c.expected === "ok") {
        const checked = await checkDeviceList(c.wire, c.username, key, known);
        assert.equal(toHex(checked.signedBytes), c.list_bytes_hex);
        assert.equal(toHex(await checked.listHash()), c.list_hash_hex);
        assert.deepEqual(checked.toWire(), c.wire);
      }
    });
  }
});

describe("prekeys", () => {
  for (const c of VECTORS.prekeys) {
    test(c.name, async () => {
      const owner = DEVICES[c.device].username;
      const dev = device(c.device);
      const got =
        c.kind === "signed"
          ? await outcome(() => checkSignedPrekey(c.wire, owner, dev, c.now))
          : await outcome(() => checkOneTimePrekey(c.wire, owner, dev));
      assert.equal(got, c.expected, c.note);
    });
  }
});

// ---------------------------------------------------------------------------
// Setup (15.5).
// ---------------------------------------------------------------------------

/**
 * The checked bundle of a device: its signed prekey and, if named, a one-time prekey.
 *
 * @param {string} name
 * @param {number | null} oneTimePrekeyId
 */
async function bundle(name, oneTimePrekeyId) {
  const d = DEVICES[name];
  const dev = device(name);
  const spk = await checkSignedPrekey(d.signed_prekey.wire, d.username, dev, d.created_at);
  let opk = null;
  if (oneTimePrekeyId !== null) {
    const wires = d.one_time_prekeys.filter((o) => o.wire.prekey_id === oneTimePrekeyId).map((o) => o.wire);
    assert.equal(wires.length, 1);
    opk = await checkOneTimePrekey(wires[0], d.username, dev);
  }
  return { spk, opk };
}

/** @param {import("../../src/securechat/web/protocol/v2/setup.js").SetupSecrets} secrets */
function secretsHex(secrets) {
  return Object.fromEntries(
    Object.entries(secrets).map(([key, value]) => [key, Array.isArray(value) ? value.map(toHex) : toHex(value)]),
  );
}

describe("setups", () => {
  for (const c of VECTORS.setups) {
    test(c.name, async () => {
      const { spk, opk } = await bundle(c.responder, c.one_time_prekey_id);
      const ephemeral = unhex(c.ephemeral_private_hex);
      const got = await initiatorSecrets(party(c.initiator), secret(c.initiator, "dh_private_hex"), party(c.responder), spk, opk, ephemeral);
      assert.deepEqual(got.dh.map(toHex), c.dh_hex);
      assert.equal(got.dh.length, c.one_time_prekey_id !== null ? 4 : 3);
      assert.equal(toHex(got.parties), c.parties_hex);
      assert.equal(toHex(got.setupBytes), c.setup_bytes_hex);
      assert.equal(toHex(got.info), c.info_hex);
      assert.equal(toHex(got.sharedKey), c.shared_key_hex);
      assert.equal(toHex(got.adHash), c.ad_hash_hex);
      assert.equal(toHex(got.sessionId), c.session_id_hex);
      const setup = SetupMessage.fromWire(c.setup_wire);
      assert.ok(bytesEqual(setup.toBytes(), got.setupBytes));
      const responder = DEVICES[c.responder];
      const opkPrivate = c.one_time_prekey_id !== null ? unhex(responder.one_time_prekeys[0].private_hex) : null;
      const mirrored = await responderSecrets(
        party(c.responder),
        secret(c.responder, "dh_private_hex"),
        party(c.initiator),
        setup,
        unhex(responder.signed_prekey.private_hex),
        opkPrivate,
      );
      assert.deepEqual(secretsHex(mirrored), secretsHex(got));
      const state = await initiateSession(party(c.initiator), secret(c.initiator, "dh_private_hex"), party(c.responder), spk, opk, ephemeral);
      assert.equal(toHex(state.toBytes()), c.initiator_state_hex);
      const first = c.first_message;
      const { message } = await ratchetEncrypt(
        state,
        unhex(first.plaintext_hex),
        unhex(first.extra_ad_hex),
        fixedRandom(unhex(first.ratchet_private_hex)),
      );
      assert.deepEqual(message.toWire(), first.wire);
    });
  }
});

/**
 * The responder's acceptance of a setup (15.5), with the prekeys a case says it holds.
 *
 * @param {{responder?: string, initiator?: string, extra_ad_hex: string, signed_prekey_ids?: number[]}} c
 * @param {unknown} wire
 * @param {number} now
 * @param {number[]} oneTimePrekeyIds
 */
async function accept(c, wire, now, oneTimePrekeyIds) {
  const responder = c.responder ?? "bob_phone";
  const initiator = c.initiator ?? "alice_laptop";
  const d = DEVICES[responder];
  const opks = new Map(
    d.one_time_prekeys.filter((o) => oneTimePrekeyIds.includes(o.wire.prekey_id)).map((o) => [o.wire.prekey_id, unhex(o.private_hex)]),
  );
  const spkIds = c.signed_prekey_ids ?? [d.signed_prekey.wire.prekey_id];
  const spks = new Map(
    [d.signed_prekey].filter((s) => spkIds.includes(s.wire.prekey_id)).map((s) => [s.wire.prekey_id, unhex(s.private_hex)]),
  );
  return acceptSession(
    party(responder),
    secret(responder, "dh_private_hex"),
    party(initiator),
    RatchetMessage.fromWire(wire),
    spks,
    opks,
    unhex(c.extra_ad_hex),
    now,
  );
}

describe("setup_refusals", () => {
  for (const c of VECTORS.setup_refusals) {
    test(c.name, async () => {
      assert.equal(await outcome(() => accept(c, c.wire, c.now, c.one_time_prekey_ids)), c.expected, c.note);
      if (c.expected === "ok") {
        const accepted = await accept(c, c.wire, c.now, c.one_time_prekey_ids);
        assert.equal(toHex(accepted.plaintext), c.plaintext_hex);
        assert.equal(toHex(accepted.state.toBytes()), c.state_after_hex);
        assert.equal(accepted.usedOneTimePrekeyId, c.wire.setup.one_time_prekey_id);
      }
    });
  }
});

// ---------------------------------------------------------------------------
// The ratchet, step by step (15.6, 15.7).
// ---------------------------------------------------------------------------

async function initialStates() {
  const { spk, opk } = await bundle(RATCHET.responder, RATCHET.one_time_prekey_id);
  const alice = await initiateSession(
    party(RATCHET.initiator),
    secret(RATCHET.initiator, "dh_private_hex"),
    party(RATCHET.responder),
    spk,
    opk,
    unhex(RATCHET.ephemeral_private_hex),
  );
  return { alice, bob: null };
}

/** @param {any} step */
function stepId(step) {
  return step.name ?? `${step.actor}_sends_${step.label}`;
}

describe("ratchet_steps", () => {
  RATCHET.steps.forEach((step, index) => {
    test(`${String(index).padStart(2, "0")}_${stepId(step)}`, async () => {
      const extraAd = unhex(RATCHET.extra_ad_hex);
      // The actor's state before this step: the last state_after of an earlier step of the actor.
      let before = (await initialStates())[step.actor];
      for (const earlier of RATCHET.steps.slice(0, index)) {
        if (earlier.actor === step.actor && earlier.state_after_hex !== null) {
          before = SessionState.fromBytes(unhex(earlier.state_after_hex));
        }
      }
      if (step.action === "send") {
        assert.ok(before !== null);
        const random = step.ratchet_private_hex ? fixedRandom(unhex(step.ratchet_private_hex)) : fixedRandom();
        const { message, state: after } = await ratchetEncrypt(before, unhex(step.plaintext_hex), extraAd, random);
        assert.equal(toHex(message.headerBytes), step.header_bytes_hex);
        assert.deepEqual(message.toWire(), step.wire);
        const [aesKey, nonce] = await messageKeyMaterial(unhex(step.message_key_hex));
        assert.equal(toHex(aesKey), step.aes_key_hex);
        assert.equal(toHex(nonce), step.nonce_hex);
        assert.equal(toHex(after.toBytes()), step.state_after_hex);
        return;
      }
      const message = RatchetMessage.fromWire(step.wire);
      const stateBefore = before;
      const run =
        stateBefore === null
          ? async () => {
              assert.ok(step.accept_setup);
              return accept({ extra_ad_hex: RATCHET.extra_ad_hex }, step.wire, step.now, [RATCHET.one_time_prekey_id]);
            }
          : () => ratchetDecrypt(stateBefore, message, extraAd, step.now);
      const bytesBefore = stateBefore === null ? null : toHex(stateBefore.toBytes());
      assert.equal(await outcome(run), step.expected);
      if (step.expected === "ok") {
        const { plaintext, state: after } = await run();
        assert.equal(toHex(plaintext), step.plaintext_hex);
        assert.equal(toHex(after.toBytes()), step.state_after_hex);
      } else {
        // A refusal leaves the state as it was.
        assert.equal(bytesBefore, step.state_after_hex);
      }
      assert.equal(stateBefore === null ? null : toHex(stateBefore.toBytes()), bytesBefore, "the argument was changed");
    });
  });
});

describe("skipped_key_limits", () => {
  for (const c of VECTORS.skipped_limits) {
    test(c.name, async () => {
      let state = SessionState.fromBytes(unhex(c.receiver_state_hex));
      const extraAd = unhex(RATCHET.extra_ad_hex);
      for (const step of c.steps) {
        const message = RatchetMessage.fromWire(step.wire);
        const current = state;
        /** @type {Uint8Array | null} */
        let plaintext = null;
        const got = await outcome(async () => {
          ({ plaintext, state } = await ratchetDecrypt(current, message, extraAd, step.now));
        });
        assert.equal(got, step.expected, `${c.note} (n=${step.n})`);
        if (got === "ok") {
          assert.equal(toHex(/** @type {any} */ (plaintext)), step.plaintext_hex);
        } else {
          assert.equal(state, current);
        }
        assert.equal(state.skipped.length, step.skipped_after);
        assert.equal(toHex(await sha256(state.toBytes())), step.state_after_sha256_hex);
      }
    });
  }
});

// ---------------------------------------------------------------------------
// Independent re-implementations of PROTOCOL.md 15 constructions from the text (Web
// Crypto directly, canonical encoding by hand), against the vector values, as the
// Python test's test_spec_* do: they check the file, and Web Crypto on this platform.
// ---------------------------------------------------------------------------

/**
 * @param {string} label
 * @param {Uint8Array[]} fields
 */
function specCanonical(label, fields) {
  const parts = [new TextEncoder().encode(label), ...fields];
  const out = new Uint8Array(parts.reduce((sum, part) => sum + 4 + part.length, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const part of parts) {
    view.setUint32(offset, part.length);
    out.set(part, offset + 4);
    offset += 4 + part.length;
  }
  return out;
}

describe("spec_setup_derivation", () => {
  for (const c of VECTORS.setups) {
    test(c.name, async () => {
      const text = new TextEncoder();
      const fields = [];
      for (const name of [c.initiator, c.responder]) {
        const d = DEVICES[name];
        fields.push(text.encode(d.username), unhex(d.account_key_hex), text.encode(d.device_id), unhex(d.signing_key_hex), unhex(d.dh_key_hex));
      }
      const parties = specCanonical("securechat/v2/session-parties", fields);
      assert.equal(toHex(parties), c.parties_hex);
      assert.deepEqual(parties, canonical(LABELS.SESSION_PARTIES, fields));
      const setup = c.setup_wire;
      const opk = setup.one_time_prekey_id === null ? new Uint8Array(0) : u64(setup.one_time_prekey_id);
      const ephemeral = Uint8Array.from(atob(setup.ephemeral_key), (ch) => ch.charCodeAt(0));
      const setupBytes = specCanonical("securechat/v2/session-setup", [u64(2), ephemeral, u64(setup.signed_prekey_id), opk, new Uint8Array(0)]);
      assert.equal(toHex(setupBytes), c.setup_bytes_hex);
      const info = specCanonical("securechat/v2/session-kdf", [parties, setupBytes]);
      assert.equal(toHex(info), c.info_hex);
      const ikm = unhex("ff".repeat(32) + c.dh_hex.join(""));
      const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
      const shared = new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info }, key, 256));
      assert.equal(toHex(shared), c.shared_key_hex);
      assert.equal(toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", parties))), c.ad_hash_hex);
      const sessionInput = specCanonical("securechat/v2/session-id", [parties, setupBytes]);
      assert.equal(toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", sessionInput))), c.session_id_hex);
    });
  }
});

describe("spec_message_keys_headers_and_ciphertexts", () => {
  RATCHET.steps.forEach((step, index) => {
    if (step.action !== "send") return;
    test(step.label, async () => {
      // 15.6 from the text: the header bytes, the AAD, the message key's AES key and nonce,
      // the ciphertext; and KDF_CK from the sender's chain key in its state before.
      const wire = step.wire;
      const dh = b64decode(wire.dh);
      const header = specCanonical("securechat/v2/ratchet-header", [dh, u64(wire.pn), u64(wire.n)]);
      assert.equal(toHex(header), step.header_bytes_hex);
      const state = SessionState.fromBytes(unhex(step.state_after_hex));
      const aad = specCanonical("securechat/v2/ratchet-aad", [state.adHash, header, unhex(RATCHET.extra_ad_hex)]);
      assert.equal(toHex(aad), step.aad_hex);
      const ikm = await crypto.subtle.importKey("raw", unhex(step.message_key_hex), "HKDF", false, ["deriveBits"]);
      const out = new Uint8Array(
        await crypto.subtle.deriveBits(
          { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: new TextEncoder().encode("securechat/v2/message-key") },
          ikm,
          352,
        ),
      );
      assert.equal(toHex(out.slice(0, 32)), step.aes_key_hex);
      assert.equal(toHex(out.slice(32)), step.nonce_hex);
      const aesKey = await crypto.subtle.importKey("raw", out.slice(0, 32), "AES-GCM", false, ["encrypt"]);
      const ciphertext = new Uint8Array(
        await crypto.subtle.encrypt({ name: "AES-GCM", iv: out.slice(32), additionalData: aad }, aesKey, unhex(step.plaintext_hex)),
      );
      assert.equal(b64encode(ciphertext), wire.ciphertext);
      const previous = RATCHET.steps
        .slice(0, index)
        .filter((s) => s.action === "send" && s.actor === step.actor && s.wire.dh === wire.dh);
      if (previous.length > 0) {
        const chainKey = SessionState.fromBytes(unhex(previous.at(-1).state_after_hex)).cks;
        const hmacKey = await crypto.subtle.importKey("raw", chainKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
        assert.equal(toHex(new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, Uint8Array.of(1)))), step.message_key_hex);
        assert.equal(toHex(new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, Uint8Array.of(2)))), toHex(state.cks));
      }
    });
  });
});

describe("spec_state_layout", () => {
  test("of_the_last_step", () => {
    // 15.7.6 from the text: the fields of a serialised state, in order.
    const raw = unhex(RATCHET.steps.at(-1).state_after_hex);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const fields = [];
    for (let offset = 0; offset < raw.length; ) {
      const size = view.getUint32(offset);
      fields.push(raw.slice(offset + 4, offset + 4 + size));
      offset += 4 + size;
    }
    assert.equal(new TextDecoder().decode(fields[0]), "securechat/v2/session-state");
    assert.deepEqual(fields[1], u64(2));
    assert.deepEqual(fields.slice(2, 9).map((f) => f.length), [32, 32, 32, 32, 32, 0, 32]); // after a turn: no cks
    const count = Number(new DataView(fields[13].buffer).getBigUint64(0));
    assert.equal(fields.length, 14 + 4 * count);
  });
});

describe("spec_kdf_rk_and_the_first_message", () => {
  for (const c of VECTORS.setups) {
    test(c.name, async () => {
      // 15.15: the private scalar as PKCS#8, deriveBits for X25519, HKDF for KDF_RK, HMAC for KDF_CK.
      const first = c.first_message;
      const pkcs8 = unhex("302e020100300506032b656e04220420" + first.ratchet_private_hex);
      const ratchetPrivate = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, true, ["deriveBits"]);
      const signedPrekey = await crypto.subtle.importKey(
        "raw",
        Uint8Array.from(atob(DEVICES[c.responder].signed_prekey.wire.public_key), (ch) => ch.charCodeAt(0)),
        { name: "X25519" },
        true,
        [],
      );
      const dhOut = new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: signedPrekey }, ratchetPrivate, 256));
      const rootInput = await crypto.subtle.importKey("raw", dhOut, "HKDF", false, ["deriveBits"]);
      const out = new Uint8Array(
        await crypto.subtle.deriveBits(
          { name: "HKDF", hash: "SHA-256", salt: unhex(c.shared_key_hex), info: new TextEncoder().encode("securechat/v2/ratchet-root") },
          rootInput,
          512,
        ),
      );
      const messageKey = await hmacSha256(out.slice(32), Uint8Array.of(1));
      const material = await hkdfSha256(messageKey, { salt: new Uint8Array(32), info: new TextEncoder().encode("securechat/v2/message-key"), length: 44 });
      const jwk = await crypto.subtle.exportKey("jwk", ratchetPrivate);
      const dh = Uint8Array.from(atob((jwk.x ?? "").replaceAll("-", "+").replaceAll("_", "/") + "="), (ch) => ch.charCodeAt(0));
      const header = specCanonical("securechat/v2/ratchet-header", [dh, u64(0), u64(0)]);
      const aad = specCanonical("securechat/v2/ratchet-aad", [unhex(c.ad_hash_hex), header, unhex(first.extra_ad_hex)]);
      const aesKey = await crypto.subtle.importKey("raw", material.slice(0, 32), "AES-GCM", false, ["encrypt"]);
      const ciphertext = new Uint8Array(
        await crypto.subtle.encrypt({ name: "AES-GCM", iv: material.slice(32), additionalData: aad }, aesKey, unhex(first.plaintext_hex)),
      );
      assert.equal(first.wire.dh, b64encode(dh));
      assert.equal(first.wire.ciphertext, b64encode(ciphertext));
      assert.deepEqual(first.wire.setup, c.setup_wire);
    });
  }
});

// ---------------------------------------------------------------------------
// The fan-out envelope (15.8).
// ---------------------------------------------------------------------------

describe("envelopes", () => {
  test("sealing_reproduces_the_wire", async () => {
    const sender = ENVELOPES.sender;
    const sessions = new Map();
    for (const entry of ENVELOPES.sessions) {
      const name = entry.device;
      const { spk, opk } = await bundle(name, ENVELOPES.one_time_prekey_id);
      const state = await initiateSession(party(sender), secret(sender, "dh_private_hex"), party(name), spk, opk, unhex(entry.ephemeral_private_hex));
      sessions.set(targetKey(DEVICES[name].username, DEVICES[name].device_id), state);
    }
    const parsed = EnvelopeV2.fromWire(ENVELOPES.wire);
    const { envelope, states } = await sealEnvelope(
      parsed.header,
      unhex(ENVELOPES.payload_hex),
      unhex(ENVELOPES.content_key_hex),
      unhex(ENVELOPES.iv_hex),
      sessions,
      secret(sender, "signing_seed_hex"),
      fixedRandom(...ENVELOPES.ratchet_privates_hex.map(unhex)),
    );
    assert.deepEqual(envelope.toWire(), ENVELOPES.wire);
    assert.equal(toHex(envelope.header.toBytes()), ENVELOPES.header_bytes_hex);
    assert.equal(toHex(await envelope.binding()), ENVELOPES.binding_hex);
    assert.equal(toHex(pad(unhex(ENVELOPES.payload_hex))), ENVELOPES.padded_hex);
    assert.equal(toHex(keySlotPlaintext(unhex(ENVELOPES.content_key_hex), await envelope.binding())), ENVELOPES.key_slot_plaintext_hex);
    assert.equal(toHex(envelopeSignatureInput(envelope.header.toBytes(), await envelope.binding())), ENVELOPES.signature_input_hex);
    assert.deepEqual([...states.keys()].sort(), [...sessions.keys()].sort());
  });

  for (const c of ENVELOPES.cases) {
    test(c.name, async () => {
      let got;
      try {
        got = await outcome(() => openEnvelope(c.wire, c.receiver, c.now));
      } catch (error) {
        if (!(error instanceof EnvelopeRefused)) throw error;
        got = error.reason;
      }
      assert.equal(got, c.expected, c.note);
      if (got === "ok") {
        assert.equal(toHex(await openEnvelope(c.wire, c.receiver, c.now)), ENVELOPES.payload_hex);
      }
    });
  }
});

/** A reason of section 14 that the receiving order gives (not a ProtocolError, as in Python). */
class EnvelopeRefused extends Error {
  /** @param {string} reason */
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

/**
 * 15.8's receiving order, for a first message that carries a setup (as the Python test).
 *
 * @param {unknown} wire
 * @param {string} receiver
 * @param {number} now
 */
async function openEnvelope(wire, receiver, now) {
  const envelope = EnvelopeV2.fromWire(wire);
  try {
    await verifyEnvelope(envelope, device(ENVELOPES.sender));
  } catch (error) {
    if (error instanceof VerificationFailed) throw new EnvelopeRefused("bad_signature");
    throw error;
  }
  const d = DEVICES[receiver];
  const slot = envelope.slotFor(d.username, d.device_id);
  if (slot === null) throw new EnvelopeRefused("not_for_me");
  const accepted = await acceptSession(
    party(receiver),
    secret(receiver, "dh_private_hex"),
    party(ENVELOPES.sender),
    slot.message,
    new Map([[d.signed_prekey.wire.prekey_id, unhex(d.signed_prekey.private_hex)]]),
    new Map(d.one_time_prekeys.map((o) => [o.wire.prekey_id, unhex(o.private_hex)])),
    await envelope.binding(),
    now,
  );
  try {
    return await openBody(envelope, await openKeySlot(envelope, accepted.plaintext));
  } catch (error) {
    if (error instanceof VerificationFailed) throw new EnvelopeRefused("undecryptable");
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Device credentials (15.16): what a device signs for one.
// ---------------------------------------------------------------------------

describe("device_auth", () => {
  for (const c of VECTORS.device_auth) {
    test(c.device, async () => {
      const signed = deviceAuthBytes(c.username, c.device_id, unhex(c.nonce_hex));
      assert.equal(toHex(signed), c.signed_bytes_hex);
      const signature = await ed25519SignRaw(secret(c.device, "signing_seed_hex"), signed);
      assert.equal(toHex(signature), c.signature_hex);
    });
  }
});
