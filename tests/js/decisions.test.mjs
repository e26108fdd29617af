// The browser's client core (src/securechat/web/core/) against `decisions` of the shared
// vector file (PROTOCOL.md 14): one test per case, named by section and case, with the
// inputs built and the outcome compared exactly as tests/client/core/test_decision_vectors.py
// does for the Python core.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  REASONS,
  changePosition,
  decideGroupChain,
  decideGroupName,
  decideInvite,
  decideMessage,
  decideOwnKeys,
  decideReceipt,
  directPeer,
} from "../../src/securechat/web/core/index.js";
import { PublicIdentity, b64decode } from "../../src/securechat/web/protocol/index.js";
import { VECTORS, messageOutcome, privateIdentity, publicIdentity } from "./support.mjs";

const DECISIONS = VECTORS.decisions;
const SECTIONS = [
  "messages",
  "group_changes",
  "group_chains",
  "group_names",
  "invites",
  "own_keys",
  "direct_peers",
  "receipts",
];

/**
 * A persona's keys pinned under `username` (a pin need not be that user's real keys).
 *
 * @param {string} username
 * @param {string | null} persona
 * @returns {Promise<PublicIdentity | null>}
 */
async function keysUnder(username, persona) {
  if (persona === null) return null;
  const keys = await publicIdentity(persona);
  return new PublicIdentity({
    username,
    signingKey: keys.signingKey,
    encryptionKey: keys.encryptionKey,
    encryptionKeySignature: keys.encryptionKeySignature,
  });
}

/** The case's pins as a Map, as a client keeps them. */
async function pins(wire) {
  const out = new Map();
  for (const [username, pin] of Object.entries(wire)) {
    out.set(username, {
      identity: await keysUnder(username, pin.identity),
      pending: await keysUnder(username, pin.pending),
    });
  }
  return out;
}

test("every section of decisions is checked here", () => {
  assert.deepEqual(Object.keys(DECISIONS).sort(), [...SECTIONS].sort());
});

describe("decisions.messages", () => {
  for (const item of DECISIONS.messages) {
    test(`messages/${item.name}`, async () => {
      const decision = await decideMessage(item.wire, {
        me: await privateIdentity(item.me),
        deliveredIn: item.delivered_in,
        pins: await pins(item.pins),
        // Plain objects here (a Map for pins above): the core takes either.
        groups: item.groups,
        seen: item.seen,
        inboxSeq: item.inbox_seq,
      });
      assert.deepEqual(messageOutcome(decision), item.expected, item.note);
      if (decision.outcome === "refused") {
        // A refusal says what the envelope claimed if, and only if, it parsed.
        const parsed = !["malformed", "unsupported_version"].includes(decision.reason);
        assert.deepEqual(
          decision.claim,
          parsed
            ? {
                messageId: item.wire.message_id,
                conversationId: item.wire.conversation_id,
                sender: item.wire.sender,
                sentAt: item.wire.sent_at,
              }
            : null,
        );
      } else {
        assert.equal(decision.messageId, item.wire.message_id);
      }
    });
  }
});

describe("decisions.group_changes", () => {
  for (const item of DECISIONS.group_changes) {
    test(`group_changes/${item.name}`, () => {
      const result = changePosition(item.local, item.change);
      assert.equal(typeof result === "string" ? result : result.reason, item.expected, item.note);
    });
  }
});

describe("decisions.group_chains", () => {
  for (const item of DECISIONS.group_chains) {
    test(`group_chains/${item.name}`, async () => {
      const decision = await decideGroupChain(item.local, item.offered, {
        groupId: item.group_id,
        pins: await pins(item.pins),
      });
      const actual =
        decision.outcome === "refused"
          ? { outcome: "refused", reason: decision.reason }
          : {
              outcome: "accepted",
              new: decision.new.map((change) => change.seq),
              members: [...decision.state.members].sort(),
              admins: [...decision.state.admins].sort(),
            };
      assert.deepEqual(actual, item.expected, item.note);
    });
  }
});

describe("decisions.group_names", () => {
  for (const item of DECISIONS.group_names) {
    test(`group_names/${item.name}`, () => {
      const { info, current } = item;
      const decision = decideGroupName(
        current === null ? null : { name: current.name, sentAt: current.sent_at, messageId: current.message_id },
        { sender: info.sender, name: info.name, sentAt: info.sent_at, messageId: info.message_id, group: item.group },
      );
      const actual =
        decision.outcome === "refused"
          ? { outcome: "refused", reason: decision.reason }
          : { outcome: "accepted", name: decision.name, sent_at: decision.sentAt, message_id: decision.messageId };
      assert.deepEqual(actual, item.expected, item.note);
    });
  }
});

describe("decisions.invites", () => {
  for (const item of DECISIONS.invites) {
    test(`invites/${item.name}`, async () => {
      const decision = await decideInvite(item.code, item.answer, {
        pins: await pins(item.pins),
        local: item.local,
        now: item.now,
      });
      const actual =
        decision.outcome === "refused"
          ? { outcome: "refused", reason: decision.reason }
          : { outcome: "accepted", group_id: decision.state.groupId, members: [...decision.state.members].sort() };
      assert.deepEqual(actual, item.expected, item.note);
    });
  }
});

describe("decisions.own_keys", () => {
  for (const item of DECISIONS.own_keys) {
    test(`own_keys/${item.name}`, async () => {
      const { published } = item;
      const identity = new PublicIdentity({
        username: item.me,
        signingKey: b64decode(published.signing_key),
        encryptionKey: b64decode(published.encryption_key),
        encryptionKeySignature: b64decode(published.encryption_key_signature),
      });
      const result = decideOwnKeys(await privateIdentity(item.me), identity);
      assert.equal(result === null ? "accepted" : result.reason, item.expected, item.note);
    });
  }
});

describe("decisions.direct_peers", () => {
  for (const item of DECISIONS.direct_peers) {
    test(`direct_peers/${item.name}`, async () => {
      assert.equal(await directPeer(item.me, item.conversation_id, item.candidates), item.expected, item.note);
    });
  }
});

describe("decisions.receipts", () => {
  for (const item of DECISIONS.receipts) {
    test(`receipts/${item.name}`, async () => {
      const decision = await decideReceipt(item.frame, { me: item.me, pins: await pins(item.pins), sent: item.sent });
      const actual =
        decision.outcome === "refused"
          ? { outcome: "refused", reason: decision.reason }
          : {
              outcome: "accepted",
              conversation_id: decision.conversationId,
              reader: decision.reader,
              status: decision.status,
              message_ids: [...decision.messageIds],
            };
      assert.deepEqual(actual, item.expected, item.note);
    });
  }
});

test("every reason code has a case", () => {
  const found = new Set();
  // The v2 decisions (PROTOCOL.md 15) have their own file, tests/data/decisions_v2_vectors.json.
  const v2 = JSON.parse(readFileSync(new URL("../data/decisions_v2_vectors.json", import.meta.url), "utf8"));
  for (const section of [...Object.values(DECISIONS), v2.device_lists, v2.bundles, v2.receive, v2.identity_transitions]) {
    for (const item of section) {
      const expected = item.expected;
      if (typeof expected === "string") found.add(expected);
      else if (expected !== null && typeof expected === "object") found.add(expected.reason ?? expected.outcome);
    }
  }
  assert.deepEqual(
    REASONS.filter((reason) => !found.has(reason)),
    [],
  );
});

test("REASONS are PROTOCOL.md 14's table, in its order", () => {
  const text = readFileSync(new URL("../../PROTOCOL.md", import.meta.url), "utf8");
  const table = text.slice(text.indexOf("## 14. Client decisions"), text.indexOf("### 14.1"));
  const listed = table
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) => line.split("`")[1]);
  assert.deepEqual([...REASONS], listed);
  assert.ok(Object.isFrozen(REASONS));
});
