/**
 * Context labels (PROTOCOL.md 2.3), exactly those of `securechat/protocol/labels.py`.
 * Every signed, derived or authenticated byte string starts with one of them, and the
 * protocol version is part of each. `AUTH_KEY_INFO` and `WRAP_KEY_INFO` are raw HKDF
 * info bytes; all others are the first field of a canonical encoding.
 *
 * @module
 */

export const AUTH_KEY_INFO = "securechat/v1/auth-key";
export const WRAP_KEY_INFO = "securechat/v1/wrap-key";
export const KEY_BUNDLE_AAD = "securechat/v1/key-bundle";
export const KEY_BUNDLE_PLAINTEXT = "securechat/v1/private-keys";
export const ENCRYPTION_KEY_BINDING = "securechat/v1/encryption-key";
export const MESSAGE_HEADER = "securechat/v1/message-header";
export const WRAPPED_KEY_LABEL = "securechat/v1/wrapped-key";
export const MESSAGE_SIGNATURE = "securechat/v1/message-signature";
export const DIRECT_CONVERSATION = "securechat/v1/direct-conversation";
export const SAFETY_NUMBER = "securechat/v1/safety-number";
export const FILE_CHUNK = "securechat/v1/file-chunk";
export const GROUP_CHANGE = "securechat/v1/group-change";
export const GROUP_CHANGE_HASH = "securechat/v1/group-change-hash";
export const GROUP_INVITE = "securechat/v1/group-invite";
export const GROUP_INVITE_HASH = "securechat/v1/group-invite-hash";
export const RECEIPT = "securechat/v1/receipt";
export const PRELOGIN_FAKE_SALT = "securechat/v1/prelogin-fake-salt";

/** Every label by its constant name, for the vector test that compares the whole table. */
export const LABELS = Object.freeze({
  AUTH_KEY_INFO,
  WRAP_KEY_INFO,
  KEY_BUNDLE_AAD,
  KEY_BUNDLE_PLAINTEXT,
  ENCRYPTION_KEY_BINDING,
  MESSAGE_HEADER,
  WRAPPED_KEY_LABEL,
  MESSAGE_SIGNATURE,
  DIRECT_CONVERSATION,
  SAFETY_NUMBER,
  FILE_CHUNK,
  GROUP_CHANGE,
  GROUP_CHANGE_HASH,
  GROUP_INVITE,
  GROUP_INVITE_HASH,
  RECEIPT,
  PRELOGIN_FAKE_SALT,
});

/** The protocol version these modules speak (PROTOCOL.md 8.4). */
export const PROTOCOL_VERSION = 1;
