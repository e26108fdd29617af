/**
 * History backups from the browser (PROTOCOL.md 15.10.1), the same archives as the
 * terminal's `securechat backup` (client/history_backup.py), so either restores the
 * other's.
 *
 * What is backed up is the history this profile keeps (v2-history.js: verified messages
 * with a text; v1 messages stay on the server and are fetched again anyway). The
 * recovery key is made here, shown once, and kept only after the user says it is
 * written down: sealed in IndexedDB under the profile's non-extractable AES-GCM key
 * (device-keys.js `Sealer`), like the device keys, so later backups can be uploaded
 * without asking for it. It is never sent to the server and never derived from the
 * password; the server holds only the sealed archive. Logging out without "remember
 * this device" removes it with the rest of the account's v2 store.
 *
 * The highest version this profile has uploaded or restored is kept too (in the clear:
 * it is a number the server knows), so an older backup the server hands back is refused
 * (`backup_rollback`). After new messages an upload follows on its own, debounced and at
 * most one every 30.5 seconds (the server takes 2 a minute). No DOM.
 *
 * @module
 */

import { restoreRows } from "../core/v2/backup.js";
import { b64decode, b64encode } from "../protocol/encoding.js";
import { BackupRefused, RECOVERY_KEY_BYTES, formatRecoveryKey, openBackup, parseRecoveryKey, sealBackup } from "../protocol/v2/backup.js";
import { EnvelopeV2 } from "../protocol/v2/index.js";
import { ApiError } from "./api.js";
import { Sealer } from "./device-keys.js";
import * as store from "./store.js";
import { LocalHistory } from "./v2-history.js";

/** @import { Archive, BackupMessage, BackupReason } from "../protocol/v2/backup.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage } from "./conversations.js" */

const PATH = "/account/history-backup";
/** After the last change, this long without another before the automatic upload. */
export const AUTO_DELAY_MS = 3_000;
/** Between two uploads at least this long: the server takes 2 a minute (429 past that). */
export const MIN_GAP_MS = 30_500;

/** @type {Record<BackupReason, string>} */
export const BACKUP_REFUSALS = {
  recovery_key_malformed: "That is not a recovery key: 64 characters, in 16 groups of 4.",
  recovery_key_checksum: "That recovery key has a typo (its checksum does not match). Nothing was downloaded.",
  backup_failed: "The backup does not open with this recovery key.",
  backup_malformed: "The backup opened but is not this account's history.",
  backup_rollback: "The server offered an older backup than one this device has already seen: refused.",
  backup_too_large: "The backup is too large.",
};

/** A refusal in words the user can act on. */
export class BackupFailed extends Error {
  /** @param {BackupReason} reason */
  constructor(reason) {
    super(BACKUP_REFUSALS[reason]);
    this.reason = reason;
  }
}

/**
 * @typedef {object} Restored what a restore did, in rows of the backup
 * @property {number} version
 * @property {number} messages rows in the backup
 * @property {number} added new to this profile
 * @property {number} present fitting rows whose message id this profile keeps: its copy kept
 * @property {number} differing of those, rows whose conversation, sender or text differ from it
 * @property {number} group rows of group conversations, not restored
 * @property {number} unfit rows that fail the row check of 15.10.2, not restored
 * @property {number} repeated rows with a message id an earlier row has, not restored
 */

/**
 * @param {number} n
 * @param {string} noun
 */
function count(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/**
 * What to tell the user after a restore: the counts, then each kind of row left out.
 *
 * @param {Restored} restored
 * @returns {string}
 */
export function restoredText(restored) {
  const was = (/** @type {number} */ n) => (n === 1 ? "was" : "were");
  const parts = [`Backup version ${restored.version} restored: ${restored.added} of its ${restored.messages} messages were new here.`];
  if (restored.differing) {
    parts.push(`${count(restored.differing, "message")} already here, with other content than in the backup: the copy here was kept.`);
  }
  if (restored.group) {
    parts.push(`${count(restored.group, "group message")} ${was(restored.group)} not restored: a backup restores direct messages only.`);
  }
  if (restored.unfit) {
    const what = restored.unfit === 1 ? "not a direct message" : "not direct messages";
    parts.push(
      `${count(restored.unfit, "message")} ${was(restored.unfit)} not restored: ${what} of this account (an id, conversation, sender or text none of your messages can have).`,
    );
  }
  if (restored.repeated) {
    const whose = restored.repeated === 1 ? "its message id" : "their message ids";
    parts.push(`${count(restored.repeated, "message")} ${was(restored.repeated)} not restored: ${whose} came earlier in the backup.`);
  }
  return parts.join(" ");
}

/**
 * @typedef {object} BackupHost
 * @property {Api} api
 * @property {string} me
 * @property {(item: ChatMessage, peer: string | null) => Promise<void>} show a restored message
 * @property {(uploaded: {version: number, messages: number} | null, error: unknown) => void} [changed]
 *   after each upload, automatic or not (error: why it failed)
 */

export class HistoryBackups {
  /** @param {BackupHost} host */
  constructor(host) {
    this.host = host;
    this.me = host.me;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    this.lastUpload = 0;
    /** @type {Promise<unknown>} uploads one at a time */
    this.queue = Promise.resolve();
    this.stopped = false;
  }

  get keyPath() {
    return [this.me, "backup-recovery-key"];
  }

  get highestPath() {
    return [this.me, "backup-highest"];
  }

  /** A hash of what the last upload held (message ids), to skip one that would hold the same. */
  get digestPath() {
    return [this.me, "backup-digest"];
  }

  /** @returns {Promise<boolean>} backups are on in this profile */
  async enabled() {
    return (await store.get("v2", this.keyPath)) !== undefined;
  }

  /** @returns {Promise<number>} */
  async highestSeen() {
    const value = await store.get("v2", this.highestPath);
    return typeof value === "number" ? value : 0;
  }

  /** @returns {Promise<Uint8Array | null>} the kept recovery key; null when backups are off */
  async recoveryKey() {
    const sealer = await Sealer.existing(this.me);
    const kept = sealer ? await sealer.read(this.keyPath) : null;
    if (typeof kept !== "string") return null;
    const key = b64decode(kept);
    return key.length === RECOVERY_KEY_BYTES ? key : null;
  }

  /**
   * A new recovery key and its shown form. Nothing is kept until `confirm`: closing the
   * page before leaves backups off.
   *
   * @returns {Promise<{key: Uint8Array, shown: string}>}
   */
  async propose() {
    const key = crypto.getRandomValues(new Uint8Array(RECOVERY_KEY_BYTES));
    return { key, shown: await formatRecoveryKey(key) };
  }

  /**
   * The user wrote the key down: keep it (sealed) and upload the first backup. If that
   * upload fails the key stays kept, and the next upload tries again.
   *
   * @param {Uint8Array} key
   */
  async confirm(key) {
    await this.keep(key);
    return this.upload();
  }

  /** @param {Uint8Array} key */
  async keep(key) {
    const sealer = await Sealer.forAccount(this.me);
    await store.writeAll([await sealer.write(this.keyPath, b64encode(key))]);
  }

  /** Turn backups off here: forget the key (the server's copy stays until deleted). */
  async disable() {
    this.cancel();
    await store.remove("v2", this.keyPath);
  }

  /**
   * The verified messages with a text this profile keeps, as 15.10.1's archive has them.
   *
   * @returns {Promise<BackupMessage[]>}
   */
  async keptMessages() {
    const local = await LocalHistory.existing(this.me);
    if (!local) return [];
    const prefix = [this.me, "msg"];
    const found = await store.entries("v2", prefix, [...prefix, []], { limit: 1_000_000 });
    /** @type {BackupMessage[]} */
    const messages = [];
    for (const { key, value } of found) {
      const item = /** @type {ChatMessage | null} */ (await local.sealer.open(key, value));
      if (!item || !item.verified || item.kind || typeof item.text !== "string" || item.text === "" || item.file) continue;
      if (item.status === "sending" || item.status === "failed") continue;
      messages.push({
        message_id: item.messageId,
        conversation_id: item.conversationId,
        sender: item.sender,
        peer: item.sender === this.me ? this.peerOf(item) : item.sender,
        sent_at: item.sentAt ?? 0,
        server_ts: item.serverTs ?? 0,
        text: item.text,
      });
    }
    return messages;
  }

  /**
   * The other account of an own message, from the envelope it was sent in.
   *
   * @param {ChatMessage} item
   */
  peerOf(item) {
    try {
      const header = EnvelopeV2.fromWire(JSON.parse(item.envelopeText ?? "null")).header;
      return header.targets.find((target) => target.username !== this.me)?.username ?? this.me;
    } catch {
      return this.me;
    }
  }

  /**
   * Seal this profile's history as the next version and upload it. If another device
   * of the account uploaded a later version meanwhile, go above it once.
   *
   * @returns {Promise<{version: number, messages: number, size: number}>}
   */
  upload() {
    const run = this.queue.then(() => this.uploadNow());
    this.queue = run.catch(() => {});
    return run;
  }

  async uploadNow() {
    const key = await this.recoveryKey();
    if (!key) throw new Error("Backups are off on this device.");
    const messages = await this.keptMessages();
    let version = (await this.highestSeen()) + 1;
    for (let attempt = 0; ; attempt += 1) {
      /** @type {Archive} */
      const archive = { username: this.me, version, created_at: Date.now(), messages };
      const sealed = await sealBackup(key, archive, crypto.getRandomValues(new Uint8Array(12)));
      this.lastUpload = Date.now();
      try {
        await this.host.api.request("PUT", PATH, { body: { version, sealed: b64encode(sealed) } });
      } catch (error) {
        const stored = error instanceof ApiError ? error.details.version : undefined;
        if (attempt === 0 && error instanceof ApiError && error.code === "backup_version_stale" && typeof stored === "number") {
          version = Math.max(version, stored) + 1;
          continue;
        }
        throw error;
      }
      await store.writeAll([
        { store: "v2", key: this.highestPath, value: Math.max(version, await this.highestSeen()) },
        { store: "v2", key: this.digestPath, value: await digest(messages) },
      ]);
      return { version, messages: messages.length, size: sealed.length };
    }
  }

  /**
   * Restore on this device from the key the user typed: its checksum first (a typo
   * downloads nothing), then the server's latest backup, opened, its rows sorted by the
   * core (`restoreRows`: each must pass the hand-over's row check, 15.10.2; group rows and
   * rows that fail are skipped and counted; a repeated id is taken once) and merged into
   * the kept history. A message id kept here already keeps the copy here, whatever the
   * backup's row says (the row is only as trustworthy as whoever held the recovery key).
   * The key is kept for later backups.
   *
   * @param {string} typed
   * @returns {Promise<Restored>}
   * @throws {BackupFailed} with the refusal's reason
   */
  async restore(typed) {
    const key = await refusing(() => parseRecoveryKey(typed));
    const answer = await this.host.api.request("GET", PATH);
    const version = answer?.version;
    const sealedText = answer?.sealed;
    if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1 || typeof sealedText !== "string") {
      throw new Error("The server's answer is not a backup.");
    }
    /** @type {Uint8Array} */
    let sealed;
    try {
      sealed = b64decode(sealedText);
    } catch {
      throw new BackupFailed("backup_failed");
    }
    const highest = await this.highestSeen();
    const archive = await refusing(() => openBackup(key, this.me, version, sealed, { highestSeen: highest }));
    const sorted = await restoreRows(this.me, archive.messages);
    const local = new LocalHistory(this.me, await Sealer.forAccount(this.me));
    const { writes, added, present, differing } = await local.importWrites(sorted.rows);
    writes.push(await local.sealer.write(this.keyPath, b64encode(key)));
    writes.push({ store: "v2", key: this.highestPath, value: Math.max(version, highest) });
    await store.writeAll(writes);
    for (const { item, peer } of added) {
      await this.host.show(item, peer === this.me ? null : peer);
    }
    return {
      version,
      messages: archive.messages.length,
      added: added.length,
      present,
      differing,
      group: sorted.group,
      unfit: sorted.unfit,
      repeated: sorted.repeated,
    };
  }

  /**
   * Something in the history may have changed: upload once things are quiet, and not
   * sooner than MIN_GAP_MS after the last upload. Nothing happens while backups are off.
   */
  schedule() {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(AUTO_DELAY_MS, this.lastUpload + MIN_GAP_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.automatic();
    }, wait);
  }

  async automatic() {
    try {
      if (!(await this.enabled())) return;
      if (Date.now() < this.lastUpload + MIN_GAP_MS) {
        this.schedule();
        return;
      }
      if ((await digest(await this.keptMessages())) === (await store.get("v2", this.digestPath))) return;
      const uploaded = await this.upload();
      this.host.changed?.(uploaded, null);
    } catch (error) {
      if (error instanceof ApiError && error.code === "rate_limited") {
        // Another tab or device of the account used the minute's uploads: try later.
        this.lastUpload = Date.now();
        this.schedule();
      }
      this.host.changed?.(null, error);
    }
  }

  cancel() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  stop() {
    this.stopped = true;
    this.cancel();
  }
}

/**
 * @template T
 * @param {() => Promise<T>} action
 * @returns {Promise<T>}
 */
async function refusing(action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof BackupRefused) throw new BackupFailed(error.reason);
    throw error;
  }
}

/**
 * @param {BackupMessage[]} messages
 * @returns {Promise<string>}
 */
async function digest(messages) {
  const ids = new TextEncoder().encode(messages.map((m) => m.message_id).join(","));
  return b64encode(new Uint8Array(await crypto.subtle.digest("SHA-256", ids)));
}
