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
 * The highest version this profile has uploaded or restored under its recovery key is
 * kept too (in the clear: a number the server knows), with which key it belongs to (a
 * hash of the key, `keyId`), so an older backup of that key the server hands back is
 * refused (`backup_rollback`), and an upload never goes below it (`BackupBehind`: the
 * server's copy was deleted or rolled back; the user decides). Another key has its own
 * count: a new key (backups turned on again) or restoring one made under another key
 * starts from what that key has seen. "Delete" deletes the server's copy and forgets the
 * key. After new messages an upload follows on its own, debounced and at most one every
 * 30.5 seconds (the server takes 2 a minute). No DOM.
 *
 * @module
 */

import { restoreRows } from "../core/v2/backup.js";
import { b64decode, b64encode } from "../protocol/encoding.js";
import {
  BackupRefused,
  MAX_SEALED_BACKUP_BYTES,
  RECOVERY_KEY_BYTES,
  formatRecoveryKey,
  openBackup,
  parseRecoveryKey,
  sealBackup,
} from "../protocol/v2/backup.js";
import { EnvelopeV2 } from "../protocol/v2/index.js";
import { ApiError } from "./api.js";
import { Sealer } from "./device-keys.js";
import * as store from "./store.js";
import { LocalHistory } from "./v2-history.js";

/** @import { Archive, BackupMessage, BackupReason } from "../protocol/v2/backup.js" */
/** @import { Api } from "./api.js" */
/** @import { ChatMessage } from "./conversations.js" */

const PATH = "/account/history-backup";
/** Versions are below 2^53 (15.10.1). */
const VERSION_LIMIT = 2 ** 53;
const KEY_ID_LABEL = new TextEncoder().encode("securechat/v2/history-backup/key-id\0");
/**
 * The longest answer to GET: the largest sealed backup in base64, and its few other
 * members. Read with this bound as it streams (a malicious server could send without end).
 */
export const MAX_ANSWER_BYTES = 4 * Math.ceil(MAX_SEALED_BACKUP_BYTES / 3) + 4096;
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
 * The server holds an older version than this profile has seen under its key: the backup
 * was deleted (by a device of the account or anyone with the password) or rolled back.
 * Nothing is uploaded: going on from the server's version would let that key's older
 * backups, replayed by the server, pass for new ones.
 */
export class BackupBehind extends Error {
  /**
   * @param {number} stored
   * @param {number} highest
   */
  constructor(stored, highest) {
    super(
      `The server holds backup version ${stored}, older than version ${highest} this device has seen under its recovery key: the backup was deleted or rolled back, so nothing was uploaded. Restore the backup there with its recovery key, or turn backups off on this device and on again with a new key.`,
    );
    this.stored = stored;
    this.highest = highest;
  }
}

/**
 * A name for a recovery key in this profile's store: which key the highest version seen
 * belongs to. A hash of it (the key cannot be had back from it).
 *
 * @param {Uint8Array} key
 * @returns {Promise<string>}
 */
export async function keyId(key) {
  const data = new Uint8Array(KEY_ID_LABEL.length + key.length);
  data.set(KEY_ID_LABEL);
  data.set(key, KEY_ID_LABEL.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest.subarray(0, 16), (byte) => byte.toString(16).padStart(2, "0")).join("");
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

  /** Which key `highestPath` belongs to (`keyId`); absent in profiles of earlier releases. */
  get highestKeyPath() {
    return [this.me, "backup-highest-key"];
  }

  /** A hash of what the last upload held (message ids), to skip one that would hold the same. */
  get digestPath() {
    return [this.me, "backup-digest"];
  }

  /** @returns {Promise<boolean>} backups are on in this profile */
  async enabled() {
    return (await store.get("v2", this.keyPath)) !== undefined;
  }

  /**
   * The highest version this profile has seen; with `key`, under that key (0 for a key it
   * has not seen a backup of; a count kept without its key counts for any key).
   *
   * @param {Uint8Array} [key]
   * @returns {Promise<number>}
   */
  async highestSeen(key) {
    const value = await store.get("v2", this.highestPath);
    const highest = typeof value === "number" ? value : 0;
    const owner = await store.get("v2", this.highestKeyPath);
    if (!key || typeof owner !== "string" || owner === (await keyId(key))) return highest;
    return 0;
  }

  /**
   * The writes that note `version` of `key`'s backups as uploaded or restored here.
   *
   * @param {Uint8Array} key
   * @param {number} version
   * @returns {Promise<import("./store.js").Write[]>}
   */
  async sawWrites(key, version) {
    return [
      { store: "v2", key: this.highestPath, value: Math.max(version, await this.highestSeen(key)) },
      { store: "v2", key: this.highestKeyPath, value: await keyId(key) },
    ];
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

  /**
   * Turn backups off here: forget the key (the server's copy stays until deleted). The
   * highest version seen under it stays, so restoring with it later still refuses its
   * older backups; a count kept without its key is tied to the key first.
   */
  async disable() {
    this.cancel();
    const kept = await this.recoveryKey();
    if (kept && (await store.get("v2", this.highestPath)) !== undefined && (await store.get("v2", this.highestKeyPath)) === undefined) {
      await store.writeAll([{ store: "v2", key: this.highestKeyPath, value: await keyId(kept) }]);
    }
    await store.remove("v2", this.keyPath);
  }

  /**
   * Delete the account's backup on the server and turn backups off here. Turning them on
   * again makes a new key, whose versions start at 1.
   *
   * @returns {Promise<boolean>} whether the server had one
   */
  async deleteBackup() {
    const answer = await this.host.api.request("DELETE", PATH);
    await this.disable();
    // A count tied to no key would hold back the new key's first upload: the user's
    // delete ends it. What the last upload held is forgotten with the key.
    if ((await store.get("v2", this.highestKeyPath)) === undefined) await store.remove("v2", this.highestPath);
    await store.remove("v2", this.digestPath);
    return answer?.deleted === true;
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
   * Seal this profile's history as the next version and upload it. The server takes only
   * its stored version plus one: if another device of the account uploaded a later
   * version meanwhile, go above it once; if it holds an older one than this profile has
   * seen under its key, upload nothing (`BackupBehind`).
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
    const highest = await this.highestSeen(key);
    let version = highest + 1;
    for (let attempt = 0; ; attempt += 1) {
      if (version >= VERSION_LIMIT) throw new Error("The backup's versions are used up: delete the backup, then turn backups on again with a new key.");
      /** @type {Archive} */
      const archive = { username: this.me, version, created_at: Date.now(), messages };
      const sealed = await sealBackup(key, archive, crypto.getRandomValues(new Uint8Array(12)));
      this.lastUpload = Date.now();
      try {
        await this.host.api.request("PUT", PATH, { body: { version, sealed: b64encode(sealed) } });
      } catch (error) {
        const stored = error instanceof ApiError ? error.details.version : undefined;
        if (!(error instanceof ApiError && error.code === "backup_version_stale" && Number.isSafeInteger(stored))) throw error;
        const at = /** @type {number} */ (stored);
        if (at < highest) throw new BackupBehind(at, highest);
        if (attempt > 0 || at < version) throw error;
        version = at + 1;
        continue;
      }
      await store.writeAll([...(await this.sawWrites(key, version)), { store: "v2", key: this.digestPath, value: await digest(messages) }]);
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
    const answer = await this.fetchAnswer();
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
    const highest = await this.highestSeen(key);
    const archive = await refusing(() => openBackup(key, this.me, version, sealed, { highestSeen: highest }));
    const sorted = await restoreRows(this.me, archive.messages);
    const local = new LocalHistory(this.me, await Sealer.forAccount(this.me));
    const { writes, added, present, differing } = await local.importWrites(sorted.rows);
    writes.push(await local.sealer.write(this.keyPath, b64encode(key)));
    writes.push(...(await this.sawWrites(key, version)));
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
   * The server's answer to GET, refused as `backup_too_large` once it is longer than
   * `limit`: before reading it when its length is declared, else as soon as more has
   * arrived (not after taking in all a malicious server sends). Api.request reads a
   * whole body, so this one is fetched here, with the same token.
   *
   * @param {number} [limit]
   * @returns {Promise<any>}
   * @throws {BackupFailed} backup_too_large; {ApiError} an error answer, or the network
   */
  async fetchAnswer(limit = MAX_ANSWER_BYTES) {
    const { api } = this.host;
    await api.ensureToken();
    /** @type {Record<string, string>} */
    const headers = {};
    if (api.accessToken) headers.Authorization = `Bearer ${api.accessToken}`;
    /** @type {Response} */
    let response;
    try {
      response = await fetch(`/api/v1${PATH}`, { method: "GET", headers, credentials: "same-origin", cache: "no-store" });
    } catch {
      throw new ApiError(0, "network_error", "The server cannot be reached. Check your connection.");
    }
    const declared = Number(response.headers.get("content-length") ?? Number.NaN);
    if (Number.isFinite(declared) && declared > limit) {
      await response.body?.cancel().catch(() => {});
      throw new BackupFailed("backup_too_large");
    }
    /** @type {Uint8Array[]} */
    const parts = [];
    let length = 0;
    const reader = response.body?.getReader();
    for (;;) {
      if (!reader) break;
      /** @type {ReadableStreamReadResult<Uint8Array>} */
      let step;
      try {
        step = await reader.read();
      } catch {
        throw new ApiError(0, "network_error", "The download was interrupted. Check your connection.");
      }
      if (step.done) break;
      length += step.value.length;
      if (length > limit) {
        await reader.cancel().catch(() => {});
        throw new BackupFailed("backup_too_large");
      }
      parts.push(step.value);
    }
    const body = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      body.set(part, at);
      at += part.length;
    }
    let data = null;
    try {
      data = JSON.parse(new TextDecoder().decode(body));
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = data && typeof data === "object" ? data.error ?? {} : {};
      throw new ApiError(response.status, String(error.code ?? "error"), String(error.message ?? response.statusText), error);
    }
    return data;
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
