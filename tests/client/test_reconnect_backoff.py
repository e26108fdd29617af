"""The reconnect delays of client/realtime.py (issue 13, item 6): at once after a good
connection, then full jitter over a window doubling from 0.25 s to a small cap."""

from __future__ import annotations

from securechat.client.realtime import RECONNECT_MAX_DELAY_S, Backoff


def test_the_first_attempt_goes_at_once_then_the_window_doubles_to_the_cap() -> None:
    backoff = Backoff(rng=lambda: 0.999999)  # the top of each window
    delays = [round(backoff.next_delay(), 3) for _ in range(8)]
    assert delays == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert max(delays) <= RECONNECT_MAX_DELAY_S <= 5.0


def test_full_jitter_spreads_each_delay_over_its_whole_window() -> None:
    backoff = Backoff(rng=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.0] * 5
    halves = Backoff(rng=lambda: 0.5)
    assert [halves.next_delay() for _ in range(4)] == [0.0, 0.125, 0.25, 0.5]


def test_a_reset_makes_the_next_attempt_immediate_again() -> None:
    backoff = Backoff(rng=lambda: 0.999999)
    for _ in range(20):
        backoff.next_delay()
    assert backoff.next_delay() <= RECONNECT_MAX_DELAY_S  # no overflow after many failures
    backoff.reset()
    assert backoff.next_delay() == 0.0
    assert 0 < backoff.next_delay() <= 0.25
