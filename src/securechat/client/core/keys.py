"""Whose direct conversation this is, and whether the server still vouches for my keys."""

from __future__ import annotations

from collections.abc import Iterable

from ...protocol.identifiers import ConversationId, Username, direct_conversation_id
from ...protocol.keys import PrivateIdentity, PublicIdentity
from .reasons import Refused


def direct_peer(me: Username, conversation_id: str, candidates: Iterable[str]) -> Username | None:
    """The candidate ``p`` with ``direct_conversation_id(me, p) == conversation_id``, or None.

    The server's member list (or anything else it says) only proposes names; the id,
    which both usernames determine, decides (PROTOCOL.md 14.1).
    """
    for name in candidates:
        if direct_conversation_id(me, Username(name)) == ConversationId(conversation_id):
            return Username(name)
    return None


def decide_own_keys(me: PrivateIdentity, published: PublicIdentity) -> Refused | None:
    """None if the server publishes exactly my keys; else ``own_keys_changed`` (14.6)."""
    mine = me.public
    same = (
        published.username == mine.username
        and published.signing_key == mine.signing_key
        and published.encryption_key == mine.encryption_key
        and published.encryption_key_signature == mine.encryption_key_signature
    )
    return None if same else Refused("own_keys_changed")
