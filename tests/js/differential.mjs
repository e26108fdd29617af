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
  GroupChange,
  Invite,
  KdfParams,
  ProtocolError,
  PublicIdentity,
  b64decode,
  decodePayload,
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
  verifyChain,
} from "../../src/securechat/web/protocol/index.js";
import { VECTORS, publicIdentity, receive, unhex } from "./support.mjs";

/** The pinned keys of a group's members: every persona of the vectors, nobody else. */
function groupLookup(name) {
  return Object.hasOwn(VECTORS.identities, name) ? publicIdentity(name) : null;
}

/** A parsed change or invite, its signed bytes and its hash, as test_node_suite.py writes them. */
async function signedObject(parsed) {
  return {
    wire: parsed.toWire(),
    signed_bytes_hex: toHex(await parsed.signedBytes()),
    hash_hex: toHex(await parsed.digest()),
  };
}

/** Replay a chain of change wires (PROTOCOL.md 13.3). */
function replay(wires, groupId) {
  return verifyChain(
    wires.map((wire) => GroupChange.fromWire(wire)),
    groupLookup,
    groupId == null ? {} : { groupId },
  );
}

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
  decode_payload: ({ hex }) => decodePayload(unhex(hex)),
  group_change: ({ wire }) => signedObject(GroupChange.fromWire(wire)),
  group_invite: ({ wire }) => signedObject(Invite.fromWire(wire)),
  group_chain: async ({ wires, group_id: groupId }) => {
    const state = await replay(wires, groupId);
    return {
      group_id: state.groupId,
      seq: state.seq,
      head: toHex(state.head),
      at: state.at,
      members: state.members,
      admins: state.admins,
      history: state.history,
      invite_uses: Object.fromEntries(state.inviteUses),
      joined_at: Object.fromEntries(Object.keys(VECTORS.identities).map((name) => [name, state.joinedAt(name)])),
    };
  },
  group_accepts: async ({ wires, recipients, sender, since }) =>
    (await replay(wires)).acceptsRecipients(recipients, sender, since === undefined ? {} : { since }),
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
