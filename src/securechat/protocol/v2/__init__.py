"""Protocol v2 (PROTOCOL.md 15, draft): per-device keys, prekeys, session setup and the
double ratchet for direct conversations.

Pure like the rest of ``protocol``: no I/O, no clock and no randomness of its own. Every
private key, ephemeral key and ratchet key is an argument (or comes from an injected
``random`` callable), and ``now`` is an argument, so the same inputs give the same bytes.
Functions that change a session take its state and return a new one; a refusal raises
:class:`~securechat.protocol.v2.errors.Refusal` and leaves the caller's state as it was.
"""

PROTOCOL_VERSION = 2
