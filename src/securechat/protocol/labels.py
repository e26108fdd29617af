"""Context labels: every signed, MACed, derived or authenticated byte string starts
with exactly one of these. The version is part of each label."""

from __future__ import annotations

AUTH_KEY_INFO = "securechat/v1/auth-key"
WRAP_KEY_INFO = "securechat/v1/wrap-key"
KEY_BUNDLE_AAD = "securechat/v1/key-bundle"
KEY_BUNDLE_PLAINTEXT = "securechat/v1/private-keys"
ENCRYPTION_KEY_BINDING = "securechat/v1/encryption-key"
MESSAGE_HEADER = "securechat/v1/message-header"
WRAPPED_KEY_LABEL = "securechat/v1/wrapped-key"
MESSAGE_SIGNATURE = "securechat/v1/message-signature"
DIRECT_CONVERSATION = "securechat/v1/direct-conversation"
SAFETY_NUMBER = "securechat/v1/safety-number"
PRELOGIN_FAKE_SALT = "securechat/v1/prelogin-fake-salt"
FILE_CHUNK = "securechat/v1/file-chunk"
GROUP_CHANGE = "securechat/v1/group-change"
GROUP_CHANGE_HASH = "securechat/v1/group-change-hash"
GROUP_INVITE = "securechat/v1/group-invite"
GROUP_INVITE_HASH = "securechat/v1/group-invite-hash"
RECEIPT = "securechat/v1/receipt"
