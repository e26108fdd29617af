/**
 * Context labels of protocol v2 (PROTOCOL.md 15.2), exactly those of
 * `securechat/protocol/v2/labels.py`. `RATCHET_ROOT` and `MESSAGE_KEY` are raw HKDF info;
 * every other label is the first field of a canonical encoding.
 *
 * @module
 */

export const DEVICE_ID = "securechat/v2/device-id";
export const DEVICE_CERTIFICATE = "securechat/v2/device-certificate";
export const DEVICE_LIST = "securechat/v2/device-list";
export const SIGNED_PREKEY = "securechat/v2/signed-prekey";
export const ONE_TIME_PREKEY = "securechat/v2/one-time-prekey";
export const SESSION_PARTIES = "securechat/v2/session-parties";
export const SESSION_SETUP = "securechat/v2/session-setup";
export const SESSION_KDF = "securechat/v2/session-kdf";
export const SESSION_ID = "securechat/v2/session-id";
export const RATCHET_ROOT = "securechat/v2/ratchet-root";
export const MESSAGE_KEY = "securechat/v2/message-key";
export const RATCHET_HEADER = "securechat/v2/ratchet-header";
export const RATCHET_AAD = "securechat/v2/ratchet-aad";
export const SESSION_STATE = "securechat/v2/session-state";
export const MESSAGE_HEADER_V2 = "securechat/v2/message-header";
export const BODY_BINDING = "securechat/v2/body-binding";
export const KEY_SLOT = "securechat/v2/key-slot";
export const MESSAGE_SIGNATURE_V2 = "securechat/v2/message-signature";
export const IDENTITY_TRANSITION = "securechat/v2/identity-transition";
export const HISTORY_LINK = "securechat/v2/history-link";
export const HISTORY_BACKUP = "securechat/v2/history-backup";
export const DEVICE_AUTH = "securechat/v2/device-auth";

/** Every v2 label by its constant name, for the vector test that compares the whole table. */
export const LABELS = Object.freeze({
  DEVICE_ID,
  DEVICE_CERTIFICATE,
  DEVICE_LIST,
  SIGNED_PREKEY,
  ONE_TIME_PREKEY,
  SESSION_PARTIES,
  SESSION_SETUP,
  SESSION_KDF,
  SESSION_ID,
  RATCHET_ROOT,
  MESSAGE_KEY,
  RATCHET_HEADER,
  RATCHET_AAD,
  SESSION_STATE,
  MESSAGE_HEADER_V2,
  BODY_BINDING,
  KEY_SLOT,
  MESSAGE_SIGNATURE_V2,
  IDENTITY_TRANSITION,
  HISTORY_LINK,
  HISTORY_BACKUP,
  DEVICE_AUTH,
});

/** The protocol version these modules speak (PROTOCOL.md 15). */
export const PROTOCOL_VERSION = 2;
