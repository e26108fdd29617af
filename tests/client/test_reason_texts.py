"""Every reason code has words for people, and nothing else does."""

from __future__ import annotations

from securechat.client.core import REASONS
from securechat.client.reason_texts import REASON_TEXTS, explain


def test_every_reason_code_is_explained() -> None:
    assert set(REASON_TEXTS) == set(REASONS)


def test_explain_keeps_the_code_first() -> None:
    assert explain("replayed").startswith("replayed: ")
    assert explain("something new") == "something new"
    assert explain(None) == "no reason given"
