// Differential runner (not a test file): reads cases from the JSON file named on the
// command line, runs each through the browser protocol modules (or, for the decide_*
// operations, the browser's client core, PROTOCOL.md 14) and prints one JSON
// object {id: {outcome, result}} to stdout. tests/js/test_node_suite.py makes the cases,
// runs the same operations in Python and compares the outcomes.
//
// outcome is "ok", an error kind of PROTOCOL.md 1.1, or "error:<Name>" for an exception
// outside the protocol's error tree.

import { readFileSync } from "node:fs";

import { REASONS, decideGroupChain, decideMessage, decideReceipt } from "../../src/securechat/web/core/index.js";
import {
  Envelope,
  GroupChange,
  Invite,
  KdfParams,
  ProtocolError,
  PublicIdentity,
  Receipt,
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
import { VECTORS, messageOutcome, privateIdentity, publicIdentity, receive, unhex } from "./support.mjs";
import {
  EnvelopeV2,
  RatchetMessage,
  Refusal,
  SessionState,
  VerificationFailed,
  acceptSession,
  checkDeviceList,
  checkSignedPrekey,
  openBody,
  openKeySlot,
  ratchetDecrypt,
  verifyEnvelope,
} from "../../src/securechat/web/protocol/v2/index.js";
import { VECTORS_V2, device, party } from "./v2_support.mjs";

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

/** A persona's keys pinned under `user`, as the vectors' `pinned` contexts say. */
async function pinnedAs(user, persona) {
  const keys = await publicIdentity(persona);
  return {
    identity: new PublicIdentity({
      username: user,
      signingKey: keys.signingKey,
      encryptionKey: keys.encryptionKey,
      encryptionKeySignature: keys.encryptionKeySignature,
    }),
    pending: null,
  };
}

/** As python_decide_message in test_node_suite.py: an envelope_open case's inputs, from the inbox. */
async function decideOpenCase({ wire, recipient, context }) {
  const conversation = context.conversation_id;
  const groups = new Map();
  if (conversation.startsWith("grp-")) {
    groups.set(conversation, { history: [[...context.members]], admins: [] });
  }
  const pins = new Map();
  for (const [user, persona] of Object.entries(context.pinned)) pins.set(user, await pinnedAs(user, persona));
  const given = wire !== null && typeof wire === "object" && !Array.isArray(wire) ? wire.signature : undefined;
  const signature = typeof given === "string" ? given : "";
  const decision = await decideMessage(wire, {
    me: await privateIdentity(recipient),
    deliveredIn: conversation,
    pins,
    groups,
    seen: new Map(context.seen_message_ids.map((id) => [id, { signature, seq: 1 }])),
    inboxSeq: 2,
  });
  return messageOutcome(decision, { payloadSummary: true });
}

/** As python_decide_group_chain: a first sight of the chain, every persona pinned. */
async function decideChainCase({ wires, group_id: groupId }) {
  const pins = new Map();
  for (const name of Object.keys(VECTORS.identities)) {
    pins.set(name, { identity: await publicIdentity(name), pending: null });
  }
  const decision = await decideGroupChain([], wires, {
    groupId: groupId ?? VECTORS.groups.chain[0].wire.group_id,
    pins,
  });
  if (decision.outcome === "refused") return { outcome: "refused", reason: decision.reason };
  return {
    outcome: "accepted",
    new: decision.new.map((change) => change.seq),
    members: [...decision.state.members].sort(),
    admins: [...decision.state.admins].sort(),
  };
}

/** As python_receipt in test_node_suite.py: parse, then verify with a persona's key. */
async function receiptCase({ wire, verify_with: verifyWith }) {
  const receipt = Receipt.fromWire(wire);
  await receipt.verify((await pinnedAs(receipt.reader, verifyWith)).identity);
  return { wire: receipt.toWire(), signed_bytes_hex: toHex(receipt.signedBytes()) };
}

/** As python_decide_receipt: the receipt decision as alice, every persona pinned as itself. */
async function decideReceiptCase({ frame, sent }) {
  const pins = new Map();
  for (const name of Object.keys(VECTORS.identities)) {
    pins.set(name, { identity: await publicIdentity(name), pending: null });
  }
  const decision = await decideReceipt(frame, { me: "alice", pins, sent });
  if (decision.outcome === "refused") return { outcome: "refused", reason: decision.reason };
  return {
    outcome: "accepted",
    conversation_id: decision.conversationId,
    reader: decision.reader,
    status: decision.status,
    message_ids: [...decision.messageIds],
  };
}

/** A v2 refusal as a result ({refused: reason}), as v2_refusals in test_node_suite.py. */
async function v2Refusals(action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof Refusal) return { refused: error.reason };
    throw error;
  }
}

/** As v2_envelope_open in test_node_suite.py: 15.8's order for a first message with a setup. */
async function v2EnvelopeOpen({ wire, receiver, now }) {
  const envelope = EnvelopeV2.fromWire(wire);
  const sender = VECTORS_V2.envelopes.sender;
  try {
    await verifyEnvelope(envelope, device(sender));
  } catch (error) {
    if (error instanceof VerificationFailed) return { refused: "bad_signature" };
    throw error;
  }
  const d = VECTORS_V2.devices[receiver];
  const slot = envelope.slotFor(d.username, d.device_id);
  if (slot === null) return { refused: "not_for_me" };
  const accepted = await v2Refusals(async () =>
    acceptSession(
      party(receiver),
      unhex(d.dh_private_hex),
      party(sender),
      slot.message,
      new Map([[d.signed_prekey.wire.prekey_id, unhex(d.signed_prekey.private_hex)]]),
      new Map(d.one_time_prekeys.map((o) => [o.wire.prekey_id, unhex(o.private_hex)])),
      await envelope.binding(),
      now,
    ),
  );
  if ("refused" in accepted) return accepted;
  try {
    return { payload: toHex(await openBody(envelope, await openKeySlot(envelope, accepted.plaintext))) };
  } catch (error) {
    if (error instanceof VerificationFailed) return { refused: "undecryptable" };
    throw error;
  }
}

const V2_OPERATIONS = {
  v2_device_list: ({ wire, username, account_key_hex: keyHex }) =>
    v2Refusals(async () => {
      const checked = await checkDeviceList(wire, username, unhex(keyHex), null);
      return { list_hash: toHex(await checked.listHash()), wire: checked.toWire() };
    }),
  v2_signed_prekey: ({ wire, device: name, now }) =>
    v2Refusals(async () => (await checkSignedPrekey(wire, VECTORS_V2.devices[name].username, device(name), now)).toWire()),
  v2_ratchet_message: ({ wire }) => RatchetMessage.fromWire(wire).toWire(),
  v2_state: ({ hex }) => toHex(SessionState.fromBytes(unhex(hex)).toBytes()),
  v2_ratchet_decrypt: ({ state_hex: stateHex, wire, extra_ad_hex: extraHex, now }) =>
    v2Refusals(async () => {
      const state = SessionState.fromBytes(unhex(stateHex));
      const opened = await ratchetDecrypt(state, RatchetMessage.fromWire(wire), unhex(extraHex), now);
      return { plaintext: toHex(opened.plaintext), state: toHex(opened.state.toBytes()) };
    }),
  v2_envelope: ({ wire }) => EnvelopeV2.fromWire(wire).toWire(),
  v2_envelope_open: v2EnvelopeOpen,
};

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
  decide_message: decideOpenCase,
  decide_group_chain: decideChainCase,
  receipt: receiptCase,
  decide_receipt: decideReceiptCase,
  reasons: () => [...REASONS],
  ...V2_OPERATIONS,
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
