"""The client's decisions for protocol v2 (PROTOCOL.md 15.3, 15.4, 15.8, 15.9.1, 15.17), pure
like the rest of ``client.core``: state and ``now`` in, decision and new state out."""

from __future__ import annotations

from .bundles import BundleAccepted, BundleDecision, accept_bundle
from .device_lists import ListAccepted, ListDecision, ListUnchanged, accept_device_list
from .receipts import (
    ReceiptV2Accepted,
    ReceiptV2Decision,
    decide_receipt_v2,
    is_receipt_payload,
    parse_receipt_payload,
    receipt_payload,
)
from .receive import REPAIR_REASONS, AcceptedV2, MeV2, ReceiveDecision, RefusedV2, receive_direct_v2
from .sessions import (
    EMPTY,
    MAX_EVICTED,
    MAX_PREVIOUS,
    Notice,
    SessionSet,
    is_pending,
    open_message,
    start_session,
    with_active,
)
from .transitions import (
    IdentityPin,
    TransitionAccepted,
    TransitionDecision,
    TransitionUnchanged,
    accept_identity_transition,
    rotation_drop_sessions,
)

__all__ = [
    "EMPTY",
    "MAX_EVICTED",
    "MAX_PREVIOUS",
    "REPAIR_REASONS",
    "AcceptedV2",
    "BundleAccepted",
    "BundleDecision",
    "IdentityPin",
    "ListAccepted",
    "ListDecision",
    "ListUnchanged",
    "MeV2",
    "Notice",
    "ReceiptV2Accepted",
    "ReceiptV2Decision",
    "ReceiveDecision",
    "RefusedV2",
    "SessionSet",
    "TransitionAccepted",
    "TransitionDecision",
    "TransitionUnchanged",
    "accept_bundle",
    "accept_device_list",
    "accept_identity_transition",
    "decide_receipt_v2",
    "is_pending",
    "is_receipt_payload",
    "open_message",
    "parse_receipt_payload",
    "receipt_payload",
    "receive_direct_v2",
    "rotation_drop_sessions",
    "start_session",
    "with_active",
]
