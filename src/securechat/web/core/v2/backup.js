/**
 * What a restored history backup adds (PROTOCOL.md 15.10.1), pure, as
 * `securechat.client.core.v2.backup`. A backup is sealed under the recovery key alone, so
 * whoever held that key once (a former device, a key that leaked) can upload an archive
 * of any rows, and a faulty client can write odd ones; the rows become verified
 * messages. `restoreRows` applies the row check of a device hand-over (15.10.2, `rowFits`,
 * the one check both use) to every row: a row of a group conversation (terminal backups
 * hold them; only a group's signed chain says who was a member) is skipped and counted;
 * any other row that does not fit is skipped and counted (a backup is often the only copy
 * of a history, so unlike a hand-over one such row does not refuse the rest); a message
 * id an earlier row took is skipped and counted; an own row without its peer (`peer` the
 * account itself outside its conversation with itself, as a browser writes for messages
 * it imported) takes as peer the sender of a fitting row of its conversation, and is then
 * checked like the others. Vectors: `tests/data/link_v2_vectors.json`, `restore_rows`.
 *
 * @module
 */

import { rowFits } from "./link.js";

/** @typedef {import("../../protocol/v2/backup.js").BackupMessage} BackupMessage */

/** 3.3: a group conversation's id (a direct one is "dm-" and a hash). */
const GROUP_CONVERSATION_RE = /^grp-[0-9a-f]{32}$/;

/**
 * @typedef {object} RestoreRows
 * @property {BackupMessage[]} rows to add (each fits; each id once; in archive order)
 * @property {number} group rows of group conversations, skipped
 * @property {number} unfit other rows that fail the check, skipped
 * @property {number} repeated fitting rows whose id an earlier fitting row has, skipped
 */

/**
 * The rows of a restored archive to add as verified messages, and what was skipped.
 * The archive's rows are not changed (a row given its peer is a copy).
 *
 * @param {string} username
 * @param {readonly BackupMessage[]} messages
 * @returns {Promise<RestoreRows>}
 */
export async function restoreRows(username, messages) {
  /** @type {Map<string, string>} */
  const peers = new Map();
  for (const message of messages) {
    if (message.sender !== username && (await rowFits(username, message))) peers.set(message.conversation_id, message.sender);
  }
  /** @type {BackupMessage[]} */
  const rows = [];
  const seen = new Set();
  let group = 0;
  let unfit = 0;
  let repeated = 0;
  for (const original of messages) {
    const peer = original.sender === username && original.peer === username ? peers.get(original.conversation_id) : undefined;
    const message = peer === undefined ? original : { ...original, peer };
    if (!(await rowFits(username, message))) {
      if (GROUP_CONVERSATION_RE.test(message.conversation_id)) group += 1;
      else unfit += 1;
    } else if (seen.has(message.message_id)) {
      repeated += 1;
    } else {
      seen.add(message.message_id);
      rows.push(message);
    }
  }
  return { rows, group, unfit, repeated };
}
