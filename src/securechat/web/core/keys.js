/**
 * Whose direct conversation this is, and whether the server still vouches for my keys
 * (PROTOCOL.md 14.1, 14.6). As `securechat/client/core/keys.py`.
 *
 * @module
 */

import { bytesEqual, directConversationId } from "../protocol/index.js";
import { refused } from "./reasons.js";

/** @import { PrivateIdentity, PublicIdentity } from "../protocol/index.js" */
/** @import { Refused } from "./reasons.js" */

/**
 * The candidate `p` with `directConversationId(me, p) === conversationId`, or null.
 *
 * The server's member list (or anything else it says) only proposes names; the id, which
 * both usernames determine, decides (PROTOCOL.md 14.1). Async because hashing is.
 *
 * @param {string} me
 * @param {string} conversationId
 * @param {Iterable<string>} candidates
 * @returns {Promise<string | null>}
 */
export async function directPeer(me, conversationId, candidates) {
  for (const name of candidates) {
    if ((await directConversationId(me, name)) === conversationId) {
      return name;
    }
  }
  return null;
}

/**
 * Null if the server publishes exactly my keys; else `own_keys_changed` (14.6).
 *
 * @param {PrivateIdentity} me this device's unsealed identity
 * @param {PublicIdentity} published what the server publishes for my username
 * @returns {Refused | null}
 */
export function decideOwnKeys(me, published) {
  const mine = me.public;
  const same =
    published.username === mine.username &&
    bytesEqual(published.signingKey, mine.signingKey) &&
    bytesEqual(published.encryptionKey, mine.encryptionKey) &&
    bytesEqual(published.encryptionKeySignature, mine.encryptionKeySignature);
  return same ? null : refused("own_keys_changed");
}
