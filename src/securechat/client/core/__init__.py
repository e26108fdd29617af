"""The client's decisions (PROTOCOL.md 14), as pure functions: state in, decision out.

Nothing here touches the network, the local database, the terminal or the clock: the
messenger gathers the state, calls a decision, and stores and shows what it returns.
The browser has the same functions in ``web/core/``; ``decisions`` in the shared
vector file holds the cases both must decide alike.
"""

from __future__ import annotations

from .groups import (
    ChainAccepted,
    ChainDecision,
    ChangePosition,
    GroupView,
    InviteAccepted,
    InviteDecision,
    MemberHistory,
    NameDecision,
    NameRecord,
    change_position,
    decide_group_chain,
    decide_group_name,
    decide_invite,
    invite_code,
    membership_start,
    parse_invite_code,
)
from .keys import decide_own_keys, direct_peer
from .messages import (
    Accepted,
    Claim,
    Duplicate,
    MessageDecision,
    Pin,
    SeenRecord,
    decide_message,
)
from .reasons import REASONS, Reason, Refused
from .receipts import ReceiptAccepted, ReceiptDecision, SentMessages, decide_receipt

__all__ = [
    "REASONS",
    "Accepted",
    "ChainAccepted",
    "ChainDecision",
    "ChangePosition",
    "Claim",
    "Duplicate",
    "GroupView",
    "InviteAccepted",
    "InviteDecision",
    "MemberHistory",
    "MessageDecision",
    "NameDecision",
    "NameRecord",
    "Pin",
    "Reason",
    "ReceiptAccepted",
    "ReceiptDecision",
    "Refused",
    "SeenRecord",
    "SentMessages",
    "change_position",
    "decide_group_chain",
    "decide_group_name",
    "decide_invite",
    "decide_message",
    "decide_own_keys",
    "decide_receipt",
    "direct_peer",
    "invite_code",
    "membership_start",
    "parse_invite_code",
]
