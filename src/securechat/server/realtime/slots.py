"""How many inbox WebSockets this instance holds, in all and per user.

The caps guard this process's file descriptors and memory, so they are per instance by
nature (each instance has its own sockets); nothing here needs to be shared.
"""

from __future__ import annotations

import collections


class ConnectionSlots:
    def __init__(self, max_total: int, max_per_user: int) -> None:
        self.max_total = max_total
        self.max_per_user = max_per_user
        self.total = 0
        self.per_user: collections.Counter[int] = collections.Counter()

    def open(self) -> bool:
        if self.total >= self.max_total:
            return False
        self.total += 1
        return True

    def close(self) -> None:
        self.total -= 1

    def claim_user(self, user_id: int) -> bool:
        if self.per_user[user_id] >= self.max_per_user:
            return False
        self.per_user[user_id] += 1
        return True

    def release_user(self, user_id: int) -> None:
        self.per_user[user_id] -= 1
        if self.per_user[user_id] <= 0:
            del self.per_user[user_id]
