"""How the terminal client writes sizes and shared files."""

from __future__ import annotations

from typing import Any


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def message_text(text: str | None, shared: dict[str, Any] | None) -> str:
    """A message's text, or a shared file's line (with the command that fetches it)."""
    if not shared:
        return text or ""
    # The name is the sender's text: repr() keeps control characters visible.
    caption = f" — {text}" if text else ""
    return (
        f"[file] {shared['name']!r} ({human_size(shared['size'])}, {shared['media_type']}){caption}"
        f"\n    get it with: securechat get-file {shared['id']}"
    )
