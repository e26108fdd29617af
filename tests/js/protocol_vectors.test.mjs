// tests/data/protocol_vectors.json against the browser implementation of protocol v1,
// section by section as PROTOCOL.md section 10 describes. Everything deterministic is
// recomputed and compared byte for byte; RSA key generation and RSA-OAEP encryption are
// randomised, so stored keys and wraps are checked to load and unwrap instead.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Envelope,
  FILE_CHUNK_BYTES,
  FileDecryptor,
  FileEncryptor,
  GroupChange,
  GroupState,
  Header,
  Invite,
  KdfParams,
  Receipt,
  LABELS,
  PROTOCOL_VERSION,
  PublicIdentity,
  b64decode,
  b64encode,
  canonical,
  chunkAad,
  chunkCiphertextSize,
  chunkCount,
  chunkNonce,
  chunkPlaintextSize,
  decodePayload,
  decryptChunk,
  deriveKeys,
  directConversationId,
  ed25519Pkcs8FromSeed,
  ed25519Sign,
  encodePayload,
  encryptChunk,
  encryptionKeyBinding,
  extend,
  fileDescriptorFromPayload,
  fileDescriptorToPayload,
  fingerprint,
  formatSafetyNumber,
  genesis,
  keyBundleAad,
  loadEd25519PublicKey,
  loadRsaPublicKey,
  makeInvite,
  makeReceipt,
  normalisePassword,
  openKeyBundle,
  pad,
  parseConversationId,
  parseMessageId,
  parseUsername,
  rsaOaepDecrypt,
  safetyNumber,
  safetyNumberHalf,
  sealKeyBundle,
  sealMessage,
  sha256,
  signChange,
  signatureInput,
  splitCanonical,
  toHex,
  u64,
  unpad,
  utf8Encode,
  verifyChain,
  wrappedKeyLabel,
} from "../../src/securechat/web/protocol/index.js";
import { VECTORS, outcome, privateIdentity, publicIdentity, receive, unhex } from "./support.mjs";

/** Every top-level member of the vector file, each checked below. */
const SECTIONS = [
  "description",
  "protocol_version",
  "labels",
  "u64",
  "canonical",
  "base64",
  "usernames",
  "identifiers",
  "kdf",
  "kdf_params",
  "identities",
  "identity_invalid",
  "public_keys",
  "key_bundle",
  "safety_numbers",
  "padding",
  "envelopes",
  "files",
  "groups",
  "receipts",
  "decisions", // the client core's cases: decisions.test.mjs checks them
  "rsa_oaep",
];

/** canonical() written out from PROTOCOL.md 2.2, independently of encoding.js. */
function specCanonical(label, fields) {
  const parts = [label, ...fields].map((field) => (typeof field === "string" ? new TextEncoder().encode(field) : field));
  const out = [];
  for (const part of parts) {
    out.push(part.length >>> 24, (part.length >>> 16) & 255, (part.length >>> 8) & 255, part.length & 255, ...part);
  }
  return Uint8Array.from(out);
}

/** Python's Envelope.to_json() f-string, transcribed: the text the server stores. */
function pythonToJson(wire) {
  const keys = wire.keys.map((k) => `{"recipient":"${k.recipient}","wrapped_key":"${k.wrapped_key}"}`).join(",");
  return (
    `{"v":${wire.v},"message_id":"${wire.message_id}",` +
    `"conversation_id":"${wire.conversation_id}","sender":"${wire.sender}",` +
    `"sent_at":${wire.sent_at},"iv":"${wire.iv}",` +
    `"ciphertext":"${wire.ciphertext}","keys":[${keys}],` +
    `"signature":"${wire.signature}"}`
  );
}

describe("file", () => {
  test("has exactly the sections this suite checks", () => {
    assert.deepEqual(Object.keys(VECTORS).sort(), [...SECTIONS].sort());
  });
  test("is for protocol version 1", () => {
    assert.equal(VECTORS.protocol_version, PROTOCOL_VERSION);
    assert.equal(PROTOCOL_VERSION, 1);
  });
  test("every envelope error kind is exercised", () => {
    const kinds = new Set(VECTORS.envelopes.invalid.map((c) => c.expected));
    assert.deepEqual([...kinds].sort(), ["malformed", "unsupported_version", "unverifiable"]);
  });
});

describe("labels", () => {
  test("the label table equals labels.js exactly", () => {
    const fromFile = Object.fromEntries(Object.entries(VECTORS.labels).map(([name, item]) => [name, item.value]));
    assert.deepEqual({ ...LABELS }, fromFile);
  });
  test("every canonical label has a canonical vector", () => {
    const covered = new Set(VECTORS.canonical.map((c) => c.label));
    for (const [name, value] of Object.entries(LABELS)) {
      if (name === "AUTH_KEY_INFO" || name === "WRAP_KEY_INFO") continue;
      assert.ok(covered.has(value), name);
    }
  });
});

describe("u64", () => {
  for (const c of VECTORS.u64) {
    test(c.value, () => {
      assert.equal(toHex(u64(BigInt(c.value))), c.hex);
      if (BigInt(c.value) <= BigInt(Number.MAX_SAFE_INTEGER)) assert.equal(toHex(u64(Number(c.value))), c.hex);
    });
  }
});

describe("canonical", () => {
  for (const c of VECTORS.canonical) {
    test(c.note, () => {
      const fields = c.fields_hex.map(unhex);
      assert.equal(toHex(canonical(c.label, fields)), c.expected_hex);
      assert.equal(toHex(specCanonical(c.label, fields)), c.expected_hex);
      assert.deepEqual(splitCanonical(unhex(c.expected_hex), c.label).map(toHex), c.fields_hex);
    });
  }
});

describe("base64", () => {
  for (const c of VECTORS.base64.valid) {
    test(`valid ${JSON.stringify(c.text)}`, () => {
      assert.equal(toHex(b64decode(c.text)), c.hex);
      assert.equal(b64encode(unhex(c.hex)), c.text);
    });
  }
  for (const c of VECTORS.base64.invalid) {
    test(`invalid: ${c.note}`, async () => {
      assert.equal(await outcome(() => b64decode(c.text)), c.expected);
    });
  }
});

describe("usernames", () => {
  for (const c of VECTORS.usernames.valid) {
    test(`valid: ${c.note}`, () => {
      assert.equal(parseUsername(c.input), c.normalised);
    });
  }
  for (const c of VECTORS.usernames.invalid) {
    test(`invalid: ${c.note}`, async () => {
      assert.equal(await outcome(() => parseUsername(c.input)), c.expected);
    });
  }
});

describe("identifiers", () => {
  const { message_ids: messageIds, conversation_ids: conversationIds } = VECTORS.identifiers;
  for (const value of messageIds.valid) {
    test(`message id ${value}`, () => assert.equal(parseMessageId(value), value));
  }
  for (const c of messageIds.invalid) {
    test(`message id invalid: ${c.note}`, async () => {
      assert.equal(await outcome(() => parseMessageId(c.input)), c.expected);
    });
  }
  for (const value of conversationIds.valid) {
    test(`conversation id ${value}`, () => assert.equal(parseConversationId(value), value));
  }
  for (const c of conversationIds.invalid) {
    test(`conversation id invalid: ${c.note}`, async () => {
      assert.equal(await outcome(() => parseConversationId(c.input)), c.expected);
    });
  }
  for (const c of VECTORS.identifiers.direct_conversations) {
    test(`direct conversation ${c.first}/${c.second}`, async () => {
      assert.equal(await directConversationId(c.first, c.second), c.conversation_id);
      assert.equal(await directConversationId(c.second, c.first), c.conversation_id);
      const [low, high] = [c.first, c.second].sort();
      const input = specCanonical(LABELS.DIRECT_CONVERSATION, [low, high]);
      assert.equal(toHex(input), c.sha256_input_hex);
      assert.equal("dm-" + toHex(await sha256(input)).slice(0, 32), c.conversation_id);
    });
  }
});

describe("kdf", () => {
  for (const c of VECTORS.kdf) {
    test(c.name, async () => {
      const params = KdfParams.fromWire(c.kdf_wire);
      assert.equal(toHex(params.salt), c.salt_hex);
      assert.equal(params.iterations, c.iterations);
      assert.equal(toHex(normalisePassword(c.password)), c.password_bytes_hex);
      const derived = await deriveKeys(c.password, params);
      assert.equal(toHex(derived.authKey), c.auth_key_hex);
      assert.equal(toHex(derived.wrapKey), c.wrap_key_hex);
      for (const spelling of c.nfkc_equivalents) {
        assert.equal(toHex(normalisePassword(spelling)), c.password_bytes_hex);
      }
    });
  }
});

describe("kdf_params", () => {
  for (const wire of VECTORS.kdf_params.valid) {
    test(`valid ${wire.salt}`, () => {
      assert.deepEqual(KdfParams.fromWire(wire).toWire(), wire);
    });
  }
  for (const c of VECTORS.kdf_params.invalid) {
    test(`invalid: ${c.note}`, async () => {
      assert.equal(await outcome(() => KdfParams.fromWire(c.kdf)), c.expected);
    });
  }
});

describe("identities", () => {
  for (const [name, record] of Object.entries(VECTORS.identities)) {
    test(name, async () => {
      assert.equal(toHex(ed25519Pkcs8FromSeed(unhex(record.ed25519_seed_hex))), record.signing_private_pkcs8_hex);
      const identity = await privateIdentity(name);
      const identityPublic = identity.public;
      assert.equal(toHex(identity.signingPkcs8), record.signing_private_pkcs8_hex);
      assert.equal(toHex(identity.encryptionPkcs8), record.encryption_private_pkcs8_hex);
      assert.equal(toHex(identityPublic.signingKey), record.signing_key_hex);
      assert.equal(toHex(identityPublic.encryptionKey), record.encryption_key_hex);
      const binding = encryptionKeyBinding(name, identityPublic.encryptionKey);
      assert.equal(toHex(binding), record.encryption_key_binding_input_hex);
      assert.deepEqual(binding, specCanonical(LABELS.ENCRYPTION_KEY_BINDING, [name, identityPublic.encryptionKey]));
      // Ed25519 is deterministic: the binding signature is reproduced exactly.
      assert.equal(toHex(identityPublic.encryptionKeySignature), record.encryption_key_signature_hex);
      assert.equal(await fingerprint(identityPublic.signingKey), record.signing_key_fingerprint);
      assert.equal(await fingerprint(identityPublic.encryptionKey), record.encryption_key_fingerprint);
      assert.deepEqual(identityPublic.toWire(), record.public_identity_wire);
      const parsed = await PublicIdentity.fromWire(name, record.public_identity_wire).verified();
      assert.ok(parsed.equals(identityPublic));
      const rsaKey = await loadRsaPublicKey(identityPublic.encryptionKey);
      assert.equal(rsaKey.algorithm.modulusLength, 2048);
    });
  }
});

describe("identity_invalid", () => {
  for (const c of VECTORS.identity_invalid) {
    test(c.note, async () => {
      const check = () => PublicIdentity.fromWire(c.username, c.public_identity_wire).verified();
      assert.equal(await outcome(check), c.expected);
    });
  }
});

describe("public_keys", () => {
  for (const c of VECTORS.public_keys.rsa_encryption_keys) {
    test(`RSA: ${c.name}`, async () => {
      const der = unhex(c.spki_hex);
      assert.equal(await outcome(() => loadRsaPublicKey(der)), c.expected);
      if (c.expected === "ok") {
        const key = await loadRsaPublicKey(der);
        assert.deepEqual(new Uint8Array(await crypto.subtle.exportKey("spki", key)), der);
      }
    });
  }
  for (const c of VECTORS.public_keys.ed25519_signing_keys) {
    test(`Ed25519: ${c.name}`, async () => {
      const der = unhex(c.spki_hex);
      assert.equal(await outcome(() => loadEd25519PublicKey(der)), c.expected);
      if (c.expected === "ok") {
        assert.equal(der.length, 44);
        assert.equal(toHex(der.subarray(0, 12)), "302a300506032b6570032100");
      }
    });
  }
});

describe("key_bundle", () => {
  for (const c of VECTORS.key_bundle.cases) {
    test(`seal ${c.username}`, async () => {
      const identity = await privateIdentity(c.identity);
      const kdfCase = VECTORS.kdf.find((item) => item.name === c.wrap_key_from_kdf_case);
      assert.equal(kdfCase.wrap_key_hex, c.wrap_key_hex);
      const aad = keyBundleAad(c.username);
      assert.equal(toHex(aad), c.aad_hex);
      assert.deepEqual(aad, specCanonical(LABELS.KEY_BUNDLE_AAD, [c.username, "1"]));
      const plaintext = specCanonical(LABELS.KEY_BUNDLE_PLAINTEXT, [identity.encryptionPkcs8, identity.signingPkcs8]);
      assert.equal(toHex(plaintext), c.plaintext_hex);
      const sealed = await sealKeyBundle(identity, unhex(c.wrap_key_hex), { iv: unhex(c.iv_hex) });
      assert.deepEqual(sealed, c.sealed);
      assert.equal(JSON.stringify(sealed), JSON.stringify(c.sealed));
    });
    test(`open ${c.username}`, async () => {
      const opened = await openKeyBundle(c.sealed, unhex(c.wrap_key_hex), c.username);
      const expected = await privateIdentity(c.identity);
      assert.ok(opened.public.equals(expected.public));
      assert.deepEqual(opened.encryptionPkcs8, expected.encryptionPkcs8);
      assert.deepEqual(opened.signingPkcs8, expected.signingPkcs8);
    });
  }
  for (const c of VECTORS.key_bundle.invalid) {
    test(`invalid: ${c.note}`, async () => {
      const check = () => openKeyBundle(c.sealed, unhex(c.wrap_key_hex), c.username);
      assert.equal(await outcome(check), c.expected);
    });
  }
});

describe("safety_numbers", () => {
  for (const c of VECTORS.safety_numbers) {
    test(`${c.first}/${c.second}`, async () => {
      const [first, second] = await Promise.all([publicIdentity(c.first), publicIdentity(c.second)]);
      assert.equal(await safetyNumberHalf(first), c.first_digits);
      assert.equal(await safetyNumberHalf(second), c.second_digits);
      assert.equal(await safetyNumber(first, second), c.safety_number);
      assert.equal(await safetyNumber(second, first), c.safety_number);
      assert.equal(formatSafetyNumber(c.safety_number), c.display);
    });
  }
});

describe("padding", () => {
  for (const c of VECTORS.padding.lengths) {
    test(`length ${c.payload_length}`, () => {
      assert.equal(pad(new Uint8Array(c.payload_length)).length, c.padded_length);
    });
  }
  for (const c of VECTORS.padding.valid) {
    test(`valid ${c.payload_hex.slice(0, 16) || "(empty)"}`, () => {
      assert.equal(toHex(pad(unhex(c.payload_hex))), c.padded_hex);
      assert.equal(toHex(unpad(unhex(c.padded_hex))), c.payload_hex);
    });
  }
  for (const c of VECTORS.padding.valid_larger_bucket) {
    test(`valid, larger bucket ${c.payload_hex.slice(0, 16)}`, () => {
      assert.equal(toHex(unpad(unhex(c.padded_hex))), c.payload_hex);
      assert.ok(pad(unhex(c.payload_hex)).length < unhex(c.padded_hex).length);
    });
  }
  for (const c of VECTORS.padding.invalid) {
    test(`invalid: ${c.note}`, async () => {
      assert.equal(await outcome(() => unpad(unhex(c.padded_hex))), c.expected);
    });
  }
});

describe("rsa_oaep", () => {
  VECTORS.rsa_oaep.forEach((c, index) => {
    test(`${index} ${c.recipient_identity}`, async () => {
      const identity = await privateIdentity(c.recipient_identity);
      const plaintext = await rsaOaepDecrypt(identity.encryptionPrivate, unhex(c.wrapped_key_hex), unhex(c.label_hex));
      assert.equal(toHex(plaintext), c.plaintext_hex);
    });
  });
});

function caseHeader(c) {
  return new Header({
    version: 1,
    messageId: c.message_id,
    conversationId: c.conversation_id,
    sender: c.sender,
    sentAt: c.sent_at,
  });
}

describe("envelopes", () => {
  for (const c of VECTORS.envelopes.cases) {
    test(`${c.name}: bytes`, async () => {
      const header = caseHeader(c);
      const headerBytes = unhex(c.header_canonical_hex);
      assert.deepEqual(header.canonical(), headerBytes);
      assert.deepEqual(
        headerBytes,
        specCanonical(LABELS.MESSAGE_HEADER, [u64(1), c.message_id, c.conversation_id, c.sender, u64(c.sent_at)]),
      );
      const payloadBytes = encodePayload(c.payload);
      assert.equal(toHex(payloadBytes), c.payload_bytes_hex);
      const padded = pad(payloadBytes);
      assert.equal(toHex(padded), c.padded_plaintext_hex);
      const key = await crypto.subtle.importKey("raw", unhex(c.message_key_hex), "AES-GCM", false, ["encrypt"]);
      const ciphertext = await crypto.subtle.encrypt({ name: "AES-GCM", iv: unhex(c.iv_hex), additionalData: headerBytes }, key, padded);
      assert.equal(toHex(new Uint8Array(ciphertext)), c.ciphertext_hex);

      const envelope = Envelope.fromWire(c.wire);
      assert.deepEqual(envelope.toWire(), c.wire);
      assert.equal(envelope.toJson(), pythonToJson(c.wire));
      assert.deepEqual(envelope.header, header);
      assert.equal(toHex(envelope.iv), c.iv_hex);
      assert.equal(toHex(envelope.ciphertext), c.ciphertext_hex);
      assert.deepEqual(envelope.recipients, [...c.recipients].sort());
      assert.deepEqual(
        envelope.keys.map((k) => [k.recipient, toHex(k.wrappedKey)]),
        c.wrapped_keys.map((k) => [k.recipient, k.wrapped_key_hex]),
      );
      const signed = signatureInput(header, envelope.iv, envelope.ciphertext, envelope.keys);
      assert.equal(toHex(signed), c.signature_input_hex);
      assert.deepEqual(envelope.signedBytes(), signed);
      const specFields = [headerBytes, envelope.iv, envelope.ciphertext, u64(envelope.keys.length)];
      for (const k of c.wrapped_keys) specFields.push(k.recipient, unhex(k.wrapped_key_hex));
      assert.deepEqual(signed, specCanonical(LABELS.MESSAGE_SIGNATURE, specFields));
      // Ed25519 is deterministic: the sender's key reproduces the signature exactly.
      const sender = await privateIdentity(c.sender);
      assert.equal(toHex(await ed25519Sign(sender.signingPrivate, signed)), c.signature_hex);
      assert.equal(toHex(envelope.signature), c.signature_hex);
    });

    test(`${c.name}: wrapped keys`, async () => {
      for (const k of c.wrapped_keys) {
        const label = wrappedKeyLabel(c.message_id, k.recipient);
        assert.equal(toHex(label), k.oaep_label_hex);
        assert.deepEqual(label, specCanonical(LABELS.WRAPPED_KEY_LABEL, [c.message_id, k.recipient]));
        const identity = await privateIdentity(k.recipient);
        const unwrapped = await rsaOaepDecrypt(identity.encryptionPrivate, unhex(k.wrapped_key_hex), label);
        assert.equal(toHex(unwrapped), c.message_key_hex);
      }
    });

    test(`${c.name}: opens for every recipient`, async () => {
      for (const recipient of c.recipients) {
        assert.deepEqual(await receive(c.wire, recipient, c.context), c.payload);
      }
      assert.deepEqual(decodePayload(unhex(c.payload_bytes_hex)), c.payload);
      assert.deepEqual(decodePayload(utf8Encode(JSON.stringify(c.payload))), c.payload);
    });

    test(`${c.name}: reseal with the stored key and IV`, async () => {
      const recipients = new Map();
      for (const name of c.recipients) recipients.set(name, await publicIdentity(name));
      const sealed = await sealMessage(await privateIdentity(c.sender), c.conversation_id, recipients, c.payload, {
        messageId: c.message_id,
        sentAt: c.sent_at,
        messageKey: unhex(c.message_key_hex),
        iv: unhex(c.iv_hex),
      });
      assert.equal(toHex(sealed.header.canonical()), c.header_canonical_hex);
      assert.equal(toHex(sealed.ciphertext), c.ciphertext_hex);
      // The fresh RSA-OAEP wraps differ; with the stored ones the signature input is identical.
      const stored = Envelope.fromWire(c.wire);
      assert.equal(toHex(signatureInput(sealed.header, sealed.iv, sealed.ciphertext, stored.keys)), c.signature_input_hex);
      assert.deepEqual(sealed.recipients, stored.recipients);
      const wire = JSON.parse(sealed.toJson());
      for (const recipient of c.recipients) {
        assert.deepEqual(await receive(wire, recipient, c.context), c.payload);
      }
    });
  }

  for (const c of VECTORS.envelopes.invalid) {
    test(`invalid ${c.name} (${c.expected})`, async () => {
      assert.equal(await outcome(() => receive(c.wire, c.recipient, c.context)), c.expected);
    });
  }
});

describe("envelopes: opaque failures", () => {
  test("every unverifiable case throws the same error with the same message", async () => {
    const messages = new Set();
    for (const c of VECTORS.envelopes.invalid.filter((item) => item.expected === "unverifiable")) {
      await assert.rejects(
        () => receive(c.wire, c.recipient, c.context),
        (error) => {
          messages.add(`${error.constructor.name}: ${error.message}: ${error.cause}`);
          return true;
        },
      );
    }
    assert.deepEqual([...messages], ["VerificationFailed: verification failed: undefined"]);
  });
});

/** u64 written out from PROTOCOL.md 1, independently of encoding.js. */
function specU64(value) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

/** nonce(i) = u64(i) ‖ u32(last(i)) and aad(i), written out from PROTOCOL.md 12.2. */
function specChunkNonce(index, last) {
  const out = new Uint8Array(12);
  out.set(specU64(index), 0);
  new DataView(out.buffer).setUint32(8, last ? 1 : 0);
  return out;
}

function specChunkAad(fileId, index, last) {
  return specCanonical(LABELS.FILE_CHUNK, [fileId, specU64(index), specU64(last ? 1 : 0)]);
}

/** AES-256-GCM of one chunk straight through Web Crypto, with the spec's nonce and AAD. */
async function specEncryptChunk(keyBytes, fileId, index, last, plaintext) {
  const key = await crypto.subtle.importKey("raw", keyBytes, "AES-GCM", false, ["encrypt"]);
  const iv = specChunkNonce(index, last);
  const additionalData = specChunkAad(fileId, index, last);
  return new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData, tagLength: 128 }, key, plaintext));
}

/** Bytes [start, start + length) of the generated file: byte j is j mod 251. */
function patternBytes(start, length) {
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 1) out[offset] = (start + offset) % 251;
  return out;
}

describe("files", () => {
  const files = VECTORS.files;

  test("chunk size", () => {
    assert.equal(files.chunk_bytes, FILE_CHUNK_BYTES);
    assert.equal(FILE_CHUNK_BYTES, 1048576);
  });

  for (const c of files.layout) {
    test(`layout: size ${c.size}`, async () => {
      assert.equal(chunkCount(c.size), c.chunks);
      // PROTOCOL.md 12.1, written out.
      const n = Math.max(1, Math.ceil(c.size / files.chunk_bytes));
      assert.equal(n, c.chunks);
      const plaintextSizes = [];
      const ciphertextSizes = [];
      for (let i = 0; i < c.chunks; i += 1) {
        plaintextSizes.push(chunkPlaintextSize(c.size, i));
        ciphertextSizes.push(chunkCiphertextSize(c.size, i));
      }
      assert.deepEqual(plaintextSizes, c.plaintext_sizes);
      assert.deepEqual(ciphertextSizes, c.ciphertext_sizes);
      const specSizes = Array.from({ length: n }, (_, i) => Math.min(c.size, (i + 1) * files.chunk_bytes) - i * files.chunk_bytes);
      assert.deepEqual(specSizes, c.plaintext_sizes);
      assert.deepEqual(c.ciphertext_sizes, specSizes.map((size) => size + 16));
      assert.equal(await outcome(() => chunkPlaintextSize(c.size, c.chunks)), "malformed");
      assert.equal(await outcome(() => chunkPlaintextSize(c.size, -1)), "malformed");
    });
  }

  for (const c of files.nonces) {
    test(`nonce and AAD: index ${c.index}, last ${c.last}`, () => {
      assert.equal(toHex(chunkNonce(c.index, c.last)), c.nonce_hex);
      assert.equal(toHex(chunkNonce(BigInt(c.index), c.last)), c.nonce_hex);
      assert.equal(toHex(specChunkNonce(c.index, c.last)), c.nonce_hex);
      assert.equal(toHex(chunkAad(c.file_id, c.index, c.last)), c.aad_hex);
      assert.equal(toHex(chunkAad(c.file_id, BigInt(c.index), c.last)), c.aad_hex);
      assert.equal(toHex(specChunkAad(c.file_id, c.index, c.last)), c.aad_hex);
    });
  }

  for (const c of files.small) {
    test(`small: ${c.note}`, async () => {
      const key = unhex(c.key_hex);
      const plaintext = unhex(c.plaintext_hex);
      assert.equal(c.chunks_hex.length, 1);
      assert.equal(chunkCount(plaintext.length), 1);
      assert.equal(toHex(await sha256(plaintext)), c.sha256_hex);
      assert.equal(toHex(await encryptChunk(key, c.file_id, 0, true, plaintext)), c.chunks_hex[0]);
      assert.equal(toHex(await specEncryptChunk(key, c.file_id, 0, true, plaintext)), c.chunks_hex[0]);
      const chunk = unhex(c.chunks_hex[0]);
      assert.equal(chunk.length, chunkCiphertextSize(plaintext.length, 0));
      assert.deepEqual(await decryptChunk(key, c.file_id, 0, true, chunk), plaintext);

      // The sender's and the receiver's procedures end to end, through a payload.
      const encryptor = new FileEncryptor(plaintext.length, { fileId: c.file_id, key });
      assert.equal(toHex(await encryptor.encrypt(plaintext)), c.chunks_hex[0]);
      const descriptor = encryptor.descriptor("vector.txt", "text/plain", await sha256(plaintext));
      const payload = decodePayload(encodePayload(fileDescriptorToPayload(descriptor, "a caption")));
      assert.equal(payload.file.sha256, c.sha256_hex);
      assert.equal(payload.text, "a caption");
      const decryptor = new FileDecryptor(fileDescriptorFromPayload(payload));
      assert.deepEqual(await decryptor.decrypt(chunk), plaintext);
      decryptor.finish(unhex(c.sha256_hex));
    });
  }

  test("generated: three chunks, byte j is j mod 251", async () => {
    const g = files.generated;
    const key = unhex(g.key_hex);
    const count = chunkCount(g.size);
    assert.equal(count, 3);
    assert.equal(g.chunk_sha256_hex.length, count);
    const plaintext = patternBytes(0, g.size);
    const digest = await sha256(plaintext);
    assert.equal(toHex(digest), g.sha256_hex);

    const encryptor = new FileEncryptor(g.size, { fileId: g.file_id, key });
    const chunks = [];
    for (let index = 0; index < count; index += 1) {
      const start = index * FILE_CHUNK_BYTES;
      const chunk = await encryptor.encrypt(plaintext.subarray(start, start + chunkPlaintextSize(g.size, index)));
      assert.equal(chunk.length, chunkCiphertextSize(g.size, index));
      assert.equal(toHex(await sha256(chunk)), g.chunk_sha256_hex[index], `chunk ${index}`);
      chunks.push(chunk);
    }
    assert.equal(toHex(chunks[count - 1]), g.last_chunk_hex);
    const lastStart = (count - 1) * FILE_CHUNK_BYTES;
    const specLast = await specEncryptChunk(key, g.file_id, count - 1, true, patternBytes(lastStart, g.size - lastStart));
    assert.equal(toHex(specLast), g.last_chunk_hex);

    const descriptor = encryptor.descriptor("pattern.bin", undefined, digest);
    assert.equal(descriptor.mediaType, "application/octet-stream");
    assert.equal(descriptor.chunks, count);
    const decryptor = new FileDecryptor(fileDescriptorFromPayload(fileDescriptorToPayload(descriptor)));
    const parts = [];
    for (const chunk of chunks) parts.push(await decryptor.decrypt(chunk));
    assert.deepEqual(parts.map((part) => part.length), [FILE_CHUNK_BYTES, FILE_CHUNK_BYTES, g.size - lastStart]);
    let offset = 0;
    for (const part of parts) {
      assert.deepEqual(part, plaintext.subarray(offset, offset + part.length));
      offset += part.length;
    }
    decryptor.finish(digest);
  });

  for (const c of files.invalid_chunks) {
    test(`invalid chunk: ${c.note}`, async () => {
      const check = () => decryptChunk(unhex(c.key_hex), c.file_id, c.index, c.last, unhex(c.ciphertext_hex));
      assert.equal(await outcome(check), c.expected);
    });
  }

  for (const c of files.payloads) {
    test(`payload: ${c.note} (${c.expected})`, async () => {
      const bytes = unhex(c.payload_hex);
      assert.equal(await outcome(() => decodePayload(bytes)), c.expected);
      // The sender refuses what a receiver would not accept.
      const payload = JSON.parse(new TextDecoder().decode(bytes));
      assert.equal(await outcome(() => encodePayload(payload)), c.expected === "ok" ? "ok" : "malformed");
      if (c.expected === "ok") {
        const descriptor = fileDescriptorFromPayload(payload);
        const rebuilt = fileDescriptorToPayload(descriptor, payload.text);
        assert.equal(rebuilt.type, "file");
        assert.equal(rebuilt.text, payload.text);
        for (const [name, value] of Object.entries(rebuilt.file)) assert.equal(value, payload.file[name], name);
      }
    });
  }
});

/** The vectors' pinned keys: every persona, and nobody else. */
async function groupLookup(name) {
  return Object.hasOwn(VECTORS.identities, name) ? publicIdentity(name) : null;
}

/** signed_bytes(i) and hash(i) of an invite, written out from PROTOCOL.md 13.4. */
function specInviteSignedBytes(wire) {
  return specCanonical(LABELS.GROUP_INVITE, [
    specU64(1),
    wire.group_id,
    wire.invite_id,
    wire.inviter,
    specU64(wire.expires_at),
    specU64(wire.max_uses),
  ]);
}

async function specSha256(data) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

async function specInviteHash(wire) {
  return specSha256(specCanonical(LABELS.GROUP_INVITE_HASH, [specInviteSignedBytes(wire), b64decode(wire.signature)]));
}

/** signed_bytes(c) and hash(c) of a change, written out from PROTOCOL.md 13.2. */
async function specChangeSignedBytes(wire) {
  return specCanonical(LABELS.GROUP_CHANGE, [
    specU64(1),
    wire.group_id,
    specU64(wire.seq),
    unhex(wire.prev),
    wire.actor,
    wire.action,
    specU64(wire.members.length),
    ...wire.members,
    wire.invite === null ? new Uint8Array(0) : await specInviteHash(wire.invite),
    specU64(wire.at),
  ]);
}

async function specChangeHash(wire) {
  return specSha256(specCanonical(LABELS.GROUP_CHANGE_HASH, [await specChangeSignedBytes(wire), b64decode(wire.signature)]));
}

describe("groups", () => {
  const groups = VECTORS.groups;
  const chainChanges = () => groups.chain.map((c) => GroupChange.fromWire(c.wire));

  test("invite: bytes, hash, signature", async () => {
    const c = groups.invite;
    const invite = Invite.fromWire(c.wire);
    assert.deepEqual(invite.toWire(), c.wire);
    assert.equal(JSON.stringify(invite.toWire()), JSON.stringify(c.wire));
    assert.equal(invite.inviteId, c.code);
    assert.equal(toHex(invite.signedBytes()), c.signed_bytes_hex);
    assert.equal(toHex(specInviteSignedBytes(c.wire)), c.signed_bytes_hex);
    assert.equal(toHex(await invite.digest()), c.hash_hex);
    assert.equal(toHex(await specInviteHash(c.wire)), c.hash_hex);
    // Ed25519 is deterministic: re-signing gives the stored signature.
    const resigned = await makeInvite(await privateIdentity(invite.inviter), invite.groupId, {
      expiresAt: invite.expiresAt,
      maxUses: invite.maxUses,
      inviteId: invite.inviteId,
    });
    assert.deepEqual(resigned.toWire(), c.wire);
    await invite.verify(await publicIdentity(invite.inviter));
    for (const other of ["alice", "carol", "mallory"]) {
      assert.equal(await outcome(async () => invite.verify(await publicIdentity(other))), "unverifiable", other);
    }
    assert.equal(await outcome(() => invite.verify(null)), "unverifiable");
  });

  groups.chain.forEach((c, index) => {
    test(`chain ${index}: ${c.wire.action} by ${c.wire.actor}`, async () => {
      const change = GroupChange.fromWire(c.wire);
      assert.deepEqual(change.toWire(), c.wire);
      assert.equal(JSON.stringify(change.toWire()), JSON.stringify(c.wire));
      assert.equal(change.seq, index);
      const signed = await change.signedBytes();
      assert.equal(toHex(signed), c.signed_bytes_hex);
      assert.equal(toHex(await specChangeSignedBytes(c.wire)), c.signed_bytes_hex);
      assert.equal(toHex(await change.digest()), c.hash_hex);
      assert.equal(toHex(await specChangeHash(c.wire)), c.hash_hex);
      // prev links the chain: empty for the first change, else the previous change's hash.
      assert.equal(c.wire.prev, index === 0 ? "" : groups.chain[index - 1].hash_hex);
      assert.equal(toHex(change.prev), c.wire.prev);
      if (change.invite !== null) assert.deepEqual(change.invite.toWire(), groups.invite.wire);

      // Replayed up to here: the members and admins after it.
      const before = index === 0 ? null : await verifyChain(chainChanges().slice(0, index), groupLookup);
      const state = before === null ? await genesis(change, groupLookup) : await before.apply(change, groupLookup);
      assert.deepEqual(state.members, c.members_after);
      assert.deepEqual(state.admins, c.admins_after);
      assert.equal(state.seq, index);
      assert.equal(toHex(state.head), c.hash_hex);
      assert.equal(state.at, c.wire.at);
      assert.deepEqual(state.history, groups.history.slice(0, index + 1));

      // Ed25519 is deterministic: the actor re-signing the same change gives the same wire.
      const resigned = await signChange(await privateIdentity(change.actor), before, change.action, change.members, {
        groupId: change.groupId,
        invite: change.invite,
        at: change.at,
      });
      assert.deepEqual(resigned.toWire(), c.wire);
    });
  });

  test("chain: replayed whole, and extended from every position", async () => {
    const changes = chainChanges();
    const state = await verifyChain(changes, groupLookup, { groupId: changes[0].groupId });
    assert.ok(state instanceof GroupState);
    const last = groups.chain[groups.chain.length - 1];
    assert.deepEqual(state.members, last.members_after);
    assert.deepEqual(state.admins, last.admins_after);
    assert.equal(toHex(state.head), last.hash_hex);
    assert.deepEqual(state.inviteUses, new Map([[groups.invite.wire.invite_id, 1]]));
    for (let split = 1; split < changes.length; split += 1) {
      const partial = await verifyChain(changes.slice(0, split), groupLookup);
      const extended = await extend(partial, changes.slice(split), groupLookup);
      assert.deepEqual(extended.history, state.history);
      assert.equal(toHex(extended.head), toHex(state.head));
    }
    assert.equal(
      await outcome(() => verifyChain(changes, groupLookup, { groupId: "grp-" + "1".repeat(32) })),
      "unverifiable",
    );
  });

  test("history: the member set after each change", async () => {
    const state = await verifyChain(chainChanges(), groupLookup);
    assert.deepEqual(state.history, groups.history);
    assert.equal(state.seq, groups.history.length - 1);
    groups.history.forEach((members, seq) => assert.deepEqual(state.membersAt(seq), members));
    // joinedAt, written out from the history: the start of the last unbroken run.
    for (const name of Object.keys(VECTORS.identities)) {
      let expected = null;
      if (groups.history.at(-1).includes(name)) {
        expected = groups.history.length - 1;
        while (expected > 0 && groups.history[expected - 1].includes(name)) expected -= 1;
      }
      assert.equal(state.joinedAt(name), expected, name);
    }
  });

  for (const c of groups.invalid_chains) {
    test(`invalid chain: ${c.note} (${c.expected})`, async () => {
      const replay = () => verifyChain(c.wires.map((wire) => GroupChange.fromWire(wire)), groupLookup);
      assert.equal(await outcome(replay), c.expected);
      // Where the changes before the last are the genuine chain's, they still verify: it
      // is the last change that is refused.
      const prefix = c.wires.slice(0, -1);
      if (prefix.length > 0 && prefix.every((wire, index) => JSON.stringify(wire) === JSON.stringify(groups.chain[index].wire))) {
        await verifyChain(prefix.map((wire) => GroupChange.fromWire(wire)), groupLookup);
      }
    });
  }

  for (const c of groups.malformed_changes) {
    test(`malformed change: ${c.note} (${c.expected})`, async () => {
      assert.equal(await outcome(() => GroupChange.fromWire(c.wire)), c.expected);
    });
  }

  for (const c of groups.recipients) {
    test(`recipients: ${c.note} (${c.accepted})`, async () => {
      const state = await verifyChain(chainChanges(), groupLookup);
      assert.equal(state.acceptsRecipients(c.recipients, c.sender, { since: c.since }), c.accepted);
      assert.equal(state.acceptsRecipients(new Set(c.recipients), c.sender, { since: c.since }), c.accepted);
      // PROTOCOL.md 13.5, written out: some M(k), k >= since, equals the set and has the sender.
      const wanted = [...c.recipients].sort();
      const spec = groups.history.slice(c.since).some((members) => JSON.stringify(members) === JSON.stringify(wanted) && members.includes(c.sender));
      assert.equal(spec, c.accepted);
    });
  }

  for (const c of groups.payloads) {
    test(`payload: ${c.note} (${c.expected})`, async () => {
      const bytes = unhex(c.payload_hex);
      assert.equal(await outcome(() => decodePayload(bytes)), c.expected);
      // The sender refuses what a receiver would not accept.
      const payload = JSON.parse(new TextDecoder().decode(bytes));
      assert.equal(await outcome(() => encodePayload(payload)), c.expected === "ok" ? "ok" : "malformed");
      if (c.expected === "ok") assert.deepEqual(decodePayload(encodePayload(payload)), payload);
    });
  }
});

describe("receipts", () => {
  const receipts = VECTORS.receipts;

  for (const c of receipts.cases) {
    test(`receipt: ${c.note}`, async () => {
      const receipt = Receipt.fromWire(c.wire);
      assert.deepEqual(receipt.toWire(), c.wire);
      assert.equal(JSON.stringify(receipt.toWire()), JSON.stringify(c.wire));
      assert.equal(toHex(receipt.signedBytes()), c.signed_bytes_hex);
      // PROTOCOL.md 9.3, written out.
      const { wire } = c;
      const spec = specCanonical(LABELS.RECEIPT, [
        u64(1),
        wire.conversation_id,
        wire.reader,
        wire.status,
        u64(wire.message_ids.length),
        ...wire.message_ids,
      ]);
      assert.equal(toHex(spec), c.signed_bytes_hex);
      // Ed25519 is deterministic: re-signing (ids in any order) gives the stored signature.
      const resigned = await makeReceipt(await privateIdentity(receipt.reader), receipt.conversationId, receipt.status, [
        ...receipt.messageIds,
      ].reverse());
      assert.deepEqual(resigned.toWire(), c.wire);
      await receipt.verify(await publicIdentity(receipt.reader));
      for (const other of ["alice", "bob", "carol", "mallory"].filter((name) => name !== receipt.reader)) {
        assert.equal(await outcome(async () => receipt.verify(await publicIdentity(other))), "unverifiable", other);
      }
      assert.equal(await outcome(() => receipt.verify(null)), "unverifiable");
    });
  }

  for (const c of receipts.invalid) {
    test(`receipt invalid: ${c.name} (${c.expected})`, async () => {
      const result = await outcome(async () => Receipt.fromWire(c.wire).verify(await publicIdentity(c.verify_with)));
      assert.equal(result, c.expected, c.note);
    });
  }

  test("makeReceipt refuses what no receiver could parse", async () => {
    const bob = await privateIdentity("bob");
    const id = receipts.cases[0].wire.message_ids[0];
    const conversation = receipts.cases[0].wire.conversation_id;
    assert.equal(await outcome(() => makeReceipt(bob, conversation, /** @type {any} */ ("seen"), [id])), "malformed");
    assert.equal(await outcome(() => makeReceipt(bob, conversation, "read", [])), "malformed");
    assert.equal(await outcome(() => makeReceipt(bob, "dm-1", "read", [id])), "malformed");
    assert.equal(await outcome(() => makeReceipt(bob, conversation, "read", [id.toUpperCase()])), "malformed");
    // The same id twice is one id.
    assert.deepEqual((await makeReceipt(bob, conversation, "read", [id, id])).messageIds, [id]);
  });
});
