"""The Python client library, driven from synchronous Playwright tests: its coroutines
run on an event loop in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from securechat.client.messenger import Messenger

T = TypeVar("T")


class TerminalUser:
    def __init__(self, home: Path, server_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.messenger = self.run(self._make(home, server_url))

    @staticmethod
    async def _make(home: Path, server_url: str) -> Messenger:
        return Messenger(home, server_url)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a synchronous method on the loop's thread (the client's SQLite lives there)."""

        async def wrapper() -> T:
            return function(*args)

        return self.run(wrapper())

    def close(self) -> None:
        self.run(self.messenger.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
