/**
 * This device's storage (IndexedDB). It holds no plaintext and no extractable key:
 *
 * - `device`: for "remember this device" only, the user's private keys as
 *   non-extractable CryptoKeys (IndexedDB stores CryptoKey objects by structured clone;
 *   the key bytes cannot be read back by any script) and their public identity;
 * - `pins`: contacts' pinned public keys, verified marks and pending key changes;
 * - `state`: per account, the last inbox sequence processed and unread counts;
 * - `seen`: message ids accepted from the inbox, to recognise replays.
 *
 * @module
 */

const DB_NAME = "securechat";
const DB_VERSION = 1;

/** @type {Promise<IDBDatabase> | null} */
let opening = null;

/** @returns {Promise<IDBDatabase>} */
function database() {
  opening ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore("device");
      db.createObjectStore("pins");
      db.createObjectStore("state");
      db.createObjectStore("seen");
    };
    request.onsuccess = () => resolve(request.result);
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

/** Every value whose key is an array starting with `account`. */
export async function allFor(storeName, account) {
  const range = IDBKeyRange.bound([account], [account, []]);
  const values = await run(storeName, "readonly", (store) => store.getAll(range));
  return values ?? [];
}

/** Remove everything stored for `account` in one store. */
export function removeAllFor(storeName, account) {
  return run(storeName, "readwrite", (store) => store.delete(IDBKeyRange.bound([account], [account, []])));
}
