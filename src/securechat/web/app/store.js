/**
 * This device's storage (IndexedDB). It holds no message text (group names aside, below)
 * and no extractable key:
 *
 * - `device`: for "remember this device" only, the user's private keys as
 *   non-extractable CryptoKeys (IndexedDB stores CryptoKey objects by structured clone;
 *   the key bytes cannot be read back by any script) and their public identity;
 * - `pins`: contacts' pinned public keys, verified marks and pending key changes;
 * - `state`: per account, the last inbox sequence processed and unread counts;
 * - `seen`: message ids accepted from the inbox, to recognise replays; and for each
 *   message this user sent, who it was sealed for and who has signed a receipt for it
 *   (receipts.js);
 * - `groups`: per account and group, the group's verified membership chain (signed
 *   changes, public by nature), this user's status in it and the group's name (the one
 *   piece of message content kept here, as the terminal client keeps it, so the list can
 *   show it before the history is fetched again);
 * - `v2` (protocol v2, PROTOCOL.md 15): per account, this browser's device (its private
 *   keys and prekeys sealed under a non-extractable AES-GCM key kept beside them, 15.7.6),
 *   the device lists accepted for each account (public), the session sets with each
 *   device (sealed), the device inbox position, and the v2 messages this device received,
 *   sent or could not open (v2-history.js; sealed: the server cannot serve them again).
 *
 * @module
 */

const DB_NAME = "securechat";
const DB_VERSION = 3;

/** @type {Promise<IDBDatabase> | null} */
let opening = null;

/** @returns {Promise<IDBDatabase>} */
function database() {
  opening ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      // Version 1 made the first four; version 2 adds groups, version 3 v2. Each is made once.
      for (const name of ["device", "pins", "state", "seen", "groups", "v2"]) {
        if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
      }
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab opening a newer version: step aside (the next call opens again).
      db.onversionchange = () => {
        db.close();
        opening = null;
      };
      resolve(db);
    };
    request.onerror = () => reject(request.error);
  });
  return opening;
}

/**
 * @template T
 * @param {string} storeName
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest<T> | void} action
 * @returns {Promise<T | undefined>}
 */
async function run(storeName, mode, action) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(storeName, mode);
    const request = action(transaction.objectStore(storeName));
    transaction.oncomplete = () => resolve(request ? request.result : undefined);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

/** @param {string} storeName @param {IDBValidKey} key */
export function get(storeName, key) {
  return run(storeName, "readonly", (store) => store.get(key));
}

/** @param {string} storeName @param {IDBValidKey} key @param {unknown} value */
export function put(storeName, key, value) {
  return run(storeName, "readwrite", (store) => store.put(value, key));
}

/** @param {string} storeName @param {IDBValidKey} key */
export function remove(storeName, key) {
  return run(storeName, "readwrite", (store) => store.delete(key));
}

/**
 * Every value whose key is an array starting with `account`.
 *
 * @param {string} storeName
 * @param {string} account
 * @returns {Promise<any[]>} the values as stored, for the caller to check
 */
export async function allFor(storeName, account) {
  const range = IDBKeyRange.bound([account], [account, []]);
  const values = await run(storeName, "readonly", (store) => store.getAll(range));
  return values ?? [];
}

/**
 * Remove everything stored for `account` in one store.
 *
 * @param {string} storeName
 * @param {string} account
 */
export function removeAllFor(storeName, account) {
  return run(storeName, "readwrite", (store) => store.delete(IDBKeyRange.bound([account], [account, []])));
}

/**
 * The keys in `[lower, upper)` of one store, without their values (which items of the
 * local v2 history to open, when the key says it: v2-history.js `received`).
 *
 * @param {string} storeName
 * @param {IDBValidKey} lower inclusive
 * @param {IDBValidKey} upper exclusive
 * @returns {Promise<IDBValidKey[]>}
 */
export async function keys(storeName, lower, upper) {
  const found = await run(storeName, "readonly", (store) => store.getAllKeys(IDBKeyRange.bound(lower, upper, false, true)));
  return found ?? [];
}

/**
 * Keys and values in `[lower, upper)` of one store, the highest keys first when
 * `reverse`, at most `limit` of them (the local v2 history's pages, v2-history.js).
 *
 * @param {string} storeName
 * @param {IDBValidKey} lower inclusive
 * @param {IDBValidKey} upper exclusive
 * @param {{reverse?: boolean, limit?: number}} [options]
 * @returns {Promise<{key: IDBValidKey, value: unknown}[]>}
 */
export async function entries(storeName, lower, upper, { reverse = false, limit = Infinity } = {}) {
  const db = await database();
  return new Promise((resolve, reject) => {
    /** @type {{key: IDBValidKey, value: unknown}[]} */
    const found = [];
    const transaction = db.transaction(storeName, "readonly");
    const request = transaction.objectStore(storeName).openCursor(IDBKeyRange.bound(lower, upper, false, true), reverse ? "prev" : "next");
    request.onsuccess = () => {
      const cursor = request.result;
      if (!cursor || found.length >= limit) return;
      found.push({ key: cursor.key, value: cursor.value });
      cursor.continue();
    };
    transaction.oncomplete = () => resolve(found);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

/** @typedef {{store: string, key: IDBValidKey, value?: unknown}} Write */

/**
 * Several writes (puts, or deletes when `value` is undefined) in one transaction over
 * their stores: all happen or none (PROTOCOL.md 15.8: a v2 message's new session state,
 * its seen record and the inbox position are stored together).
 *
 * @param {Write[]} writes
 * @returns {Promise<void>}
 */
export async function writeAll(writes) {
  if (writes.length === 0) return;
  const db = await database();
  const names = [...new Set(writes.map((write) => write.store))];
  await new Promise((resolve, reject) => {
    const transaction = db.transaction(names, "readwrite");
    for (const write of writes) {
      const objectStore = transaction.objectStore(write.store);
      if (write.value === undefined) objectStore.delete(write.key);
      else objectStore.put(write.value, write.key);
    }
    transaction.oncomplete = () => resolve(undefined);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}
