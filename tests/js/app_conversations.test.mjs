// The browser app's conversations (app/conversations.js), without a DOM: a direct chat's
// contact is derived from its id (PROTOCOL.md 14.1), whatever the server lists; items
// from history and the inbox show once; receipts move own messages only.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Conversations,
  UNKNOWN_CONTACT,
  alreadyShown,
  applyReceipt,
  contactWarning,
  conversationTitle,
  derivePeer,
  mergeOlder,
} from "../../src/securechat/web/app/conversations.js";
import { directConversationId } from "../../src/securechat/web/protocol/index.js";

/** @returns {import("../../src/securechat/web/app/conversations.js").ChatMessage} */
function item(fields) {
  return {
    messageId: "m1",
    conversationId: "dm-x",
    sender: "bob",
    text: "hi",
    sentAt: 1,
    serverTs: 2,
    verified: true,
    refusal: null,
    reason: null,
    status: "received",
    envelopeText: "{}",
    ...fields,
  };
}

/** A group record as the group book keeps one (only what these tests read). */
function groupRecord(id, name = null) {
  return { id, chain: [], state: null, name, status: "member", problem: null, serverMembers: null, mismatch: null };
}

describe("a direct conversation's contact", () => {
  test("derives from the id: the listed peer whose conversation with me has it", async () => {
    const id = await directConversationId("alice", "bob");
    assert.equal(await derivePeer("alice", id, ["alice", "bob"]), "bob");
    assert.equal(await derivePeer("alice", id, ["bob", "alice", "mallory"]), "bob");
  });

  test("a server's edited list does not make bob mallory's conversation partner", async () => {
    const mallorys = await directConversationId("alice", "mallory");
    assert.equal(await derivePeer("alice", mallorys, ["alice", "bob"]), null);
    // A contact pinned here is a candidate too: the id still decides.
    assert.equal(await derivePeer("alice", mallorys, ["alice", "bob"], ["bob", "mallory"]), "mallory");
  });

  test("names that are not usernames are candidates that never derive", async () => {
    const id = await directConversationId("alice", "bob");
    assert.equal(await derivePeer("alice", id, ["<img src=x>", 7, null, ""]), null);
    assert.equal(await derivePeer("alice", "dm-" + "0".repeat(32), ["bob"]), null);
  });

  test("a chat with oneself is one's own", async () => {
    const id = await directConversationId("alice", "alice");
    assert.equal(await derivePeer("alice", id, ["alice"]), "alice");
  });

  test("the list from the server is taken in with derived contacts only", async () => {
    const bobs = await directConversationId("alice", "bob");
    const mallorys = await directConversationId("alice", "mallory");
    const conversations = new Conversations("alice");
    const groups = await conversations.applyListing(
      {
        conversations: [
          { id: bobs, kind: "direct", members: ["alice", "bob"], last_message_at: 5 },
          { id: mallorys, kind: "direct", members: ["alice", "bob"], created_at: 3 },
          { id: "grp-" + "a".repeat(32), kind: "group", members: ["alice", "carol"] },
          { id: "grp-<b>", kind: "group", members: [] },
          { id: 7, kind: "direct", members: [] },
          "not an object",
        ],
      },
      { known: [], unread: new Map([[bobs, 2]]), group: (id) => groupRecord(id, { name: "Team", sentAt: 1, messageId: "x" }) },
    );
    assert.deepEqual(groups, [["grp-" + "a".repeat(32), ["alice", "carol"]]]);
    const bob = conversations.get(bobs);
    assert.equal(bob?.peer, "bob");
    assert.equal(bob?.unread, 2);
    assert.equal(bob?.lastActivity, 5);
    const unknown = conversations.get(mallorys);
    assert.equal(unknown?.peer, "");
    assert.deepEqual(unknown?.listed, ["bob"]);
    assert.equal(conversationTitle(/** @type {any} */ (unknown)), UNKNOWN_CONTACT);
    assert.match(contactWarning(/** @type {any} */ (unknown)) ?? "", /^The server lists bob in it, but it is not your conversation/);
    assert.equal(contactWarning(/** @type {any} */ (bob)), null);
    assert.equal(conversations.all().length, 3);
    assert.equal(conversationTitle(/** @type {any} */ (conversations.get("grp-" + "a".repeat(32)))), "Team");
  });

  test("a conversation without a contact takes the one a message derives, and keeps it", async () => {
    const mallorys = await directConversationId("alice", "mallory");
    const conversations = new Conversations("alice");
    assert.equal(conversations.direct(mallorys, null).peer, "");
    assert.equal(conversations.direct(mallorys, "mallory").peer, "mallory");
    assert.equal(conversations.direct(mallorys, "bob").peer, "mallory");
  });
});

describe("items show once", () => {
  test("history overlapping the inbox: the same accepted message is not shown twice", () => {
    const shown = [item({ messageId: "m1" })];
    assert.ok(alreadyShown(shown, item({ messageId: "m1", envelopeText: "{\"other\":1}" })));
    assert.ok(!alreadyShown(shown, item({ messageId: "m2" })));
  });

  test("the same refused envelope is shown once; a different one with that id is shown", () => {
    const refused = item({ verified: false, refusal: "bad_signature", text: null, envelopeText: "E" });
    assert.ok(alreadyShown([refused], { ...refused, refusal: "key_changed" }));
    assert.ok(!alreadyShown([refused], { ...refused, envelopeText: "F" }));
  });

  test("a replay the inbox flagged does not hide the original from history", () => {
    const replay = item({ verified: false, refusal: "replayed", text: null, envelopeText: "E" });
    const original = item({ envelopeText: "E" });
    assert.ok(!alreadyShown([replay], original));
    assert.deepEqual(
      mergeOlder([replay], [original]).map((m) => m.refusal),
      [null, "replayed"],
    );
  });

  test("a page of history that repeats itself shows each message once, older first", () => {
    const merged = mergeOlder([item({ messageId: "m3" })], [item({ messageId: "m1" }), item({ messageId: "m2" }), item({ messageId: "m1" })]);
    assert.deepEqual(
      merged.map((m) => m.messageId),
      ["m1", "m2", "m3"],
    );
  });
});

describe("receipts", () => {
  const own = () =>
    item({ messageId: "m1", sender: "alice", status: "sent", awaiting: ["bob", "carol"] });

  test("delivered once every other recipient has it, read once every one read it", () => {
    const conversation = { ...new Conversations("alice").make("grp-1", "group"), messages: [own()] };
    const ids = new Set(["m1"]);
    assert.deepEqual(applyReceipt([conversation], { me: "alice", ids, reader: "bob", status: "delivered" }), []);
    assert.equal(conversation.messages[0].status, "sent");
    assert.deepEqual(applyReceipt([conversation], { me: "alice", ids, reader: "carol", status: "delivered" }), ["grp-1"]);
    assert.equal(conversation.messages[0].status, "delivered");
    applyReceipt([conversation], { me: "alice", ids, reader: "bob", status: "read" });
    applyReceipt([conversation], { me: "alice", ids, reader: "carol", status: "read" });
    assert.equal(conversation.messages[0].status, "read");
    // A late "delivered" does not move a read message back.
    applyReceipt([conversation], { me: "alice", ids, reader: "carol", status: "delivered" });
    assert.equal(conversation.messages[0].status, "read");
  });

  test("only own, verified messages move", () => {
    const theirs = item({ messageId: "m1", sender: "bob", status: "received" });
    const forged = item({ messageId: "m2", sender: "alice", verified: false, status: "received" });
    const conversation = { ...new Conversations("alice").make("dm-1", "direct"), messages: [theirs, forged] };
    assert.deepEqual(
      applyReceipt([conversation], { me: "alice", ids: new Set(["m1", "m2"]), reader: "bob", status: "read" }),
      [],
    );
    assert.equal(theirs.status, "received");
    assert.equal(forged.status, "received");
  });
});
