"""One correction to Typer's help output, applied once on import.

Typer 0.29's rich help prints the value type beside every option, flags included, so
``--help`` and ``--password-stdin`` read ``<bool>`` as if they took a value. A flag takes
none: its type column is left empty. Everything else is Typer's own rendering.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_typed = TyperOption.display_type_rich


def _display_type_rich(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _typed(self, ctx)


TyperOption.display_type_rich = _display_type_rich  # type: ignore[method-assign]
