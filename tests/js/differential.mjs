// Differential runner (not a test file): reads cases from the JSON file named on the
// command line, runs each through the browser protocol modules and prints one JSON
// object {id: {outcome, result}} to stdout. tests/js/test_node_suite.py makes the cases,
// runs the same operations in Python and compares the outcomes.
//
// outcome is "ok", an error kind of PROTOCOL.md 1.1, or "error:<Name>" for an exception
// outside the protocol's error tree.

import { readFileSync } from "node:fs";

import {
  Envelope,
  KdfParams,
  ProtocolError,
  PublicIdentity,
  b64decode,
  encodePayload,
  fileDescriptorFromPayload,
  fileDescriptorToPayload,
  loadEd25519PublicKey,
  loadRsaPublicKey,
  openKeyBundle,
  parseConversationId,
  parseMessageId,
  parseUsername,
  toHex,
} from "../../src/securechat/web/protocol/index.js";
import { receive, unhex } from "./support.mjs";

const OPERATIONS = {
  b64decode: ({ text, max_bytes: maxBytes }) => toHex(b64decode(text, maxBytes == null ? {} : { maxBytes })),
  username: ({ input }) => parseUsername(input),
  message_id: ({ input }) => parseMessageId(input),
  conversation_id: ({ input }) => parseConversationId(input),
  rsa_spki: async ({ hex }) => {
    await loadRsaPublicKey(unhex(hex));
    return null;
  },
  ed25519_spki: async ({ hex }) => {
    await loadEd25519PublicKey(unhex(hex));
    return null;
  },
  kdf_params: ({ wire }) => KdfParams.fromWire(wire).toWire(),
  public_identity: async ({ username, wire }) => {
    await PublicIdentity.fromWire(username, wire).verified();
    return null;
  },
  key_bundle: async ({ sealed, wrap_key_hex: wrapKeyHex, username }) =>
    (await openKeyBundle(sealed, unhex(wrapKeyHex), username)).public.toWire(),
  envelope_wire: ({ wire }) => Envelope.fromWire(wire).toJson(),
  envelope_text: ({ text }) => Envelope.fromJson(text).toJson(),
  envelope_open: async ({ wire, recipient, context }) => {
    const payload = await receive(wire, recipient, context);
    return { type: payload.type, text: payload.text ?? null };
  },
  encode_payload: ({ payload }) => toHex(encodePayload(payload)),
  file_descriptor: ({ payload }) => fileDescriptorToPayload(fileDescriptorFromPayload(payload)).file,
};

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = {};
for (const item of cases) {
  const operation = OPERATIONS[item.op];
  if (operation === undefined) throw new Error(`unknown operation ${item.op}`);
  try {
    const result = await operation(item.args);
    results[item.id] = { outcome: "ok", result: result ?? null };
  } catch (error) {
    results[item.id] = {
      outcome: error instanceof ProtocolError ? error.kind : `error:${error?.name ?? typeof error}`,
      result: null,
    };
  }
}
process.stdout.write(JSON.stringify(results));
