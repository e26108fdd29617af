"""A token bucket for one connection's incoming frames.

A client that sends faster than the rate is not read from until it is back within the
budget, so its frames wait in its own TCP buffers (and, once those are full, in the
client) rather than in the server's event loop: a flood costs the server no more than
the budget. The bucket belongs to one socket, so it holds nothing that other instances
would need.
"""

from __future__ import annotations

import time


class FrameBudget:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Spend one frame; the seconds to wait before reading the next (0 if none)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
