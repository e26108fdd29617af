"""Protocol v2 in the client library (PROTOCOL.md 15): this home's device, the account's
device list, prekeys, per-peer-device session sets and the per-device inbox.

The decisions (which lists, bundles and messages to accept) are ``client.core.v2``'s;
the cryptography is ``protocol.v2``'s. The modules here do the I/O around them: the
server's endpoints (``transport``), the sealed local records (``store``), and the steps
of publishing (``directory``, ``prekeys``), sending (``sending``) and receiving
(``receiving``), composed by :class:`~securechat.client.v2.client.V2Client`.
"""

from __future__ import annotations

from .client import V2Client

__all__ = ["V2Client"]
