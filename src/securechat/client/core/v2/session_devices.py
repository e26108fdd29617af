"""Which device a session is, and whether this client offers to revoke it (PROTOCOL.md
15.16, "the session's device"). Pure, as ``securechat/web/core/v2/session_devices.js``.

``GET /sessions`` names the device that last proved itself in each session: the server's
word, a hint for the interface only. A client trusts it only as far as the account's
device list it verified itself (15.3) and its own device record go:

- ``none``: the session names no device, or one the verified list does not have (a lie,
  or a device revoked since): nothing is shown of it and nothing offered;
- ``this_device``: the named device is this client's own;
- ``hidden``: the server names another device on the session this client is using: not
  offered, so that a lie cannot make this client revoke a device from its own row;
- ``revocable``: a listed device other than this one, on another session: shown, and
  revoking it (a new signed list without it) is offered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

SessionDeviceKind = Literal["none", "this_device", "hidden", "revocable"]


@dataclass(frozen=True)
class SessionDevice:
    kind: SessionDeviceKind
    # The listed device the session names (none for ``none``).
    device_id: str | None


def session_device(
    named_device: object, current_session: bool, listed_devices: Iterable[str], own_device: str | None
) -> SessionDevice:
    """Decide what to show of a session's ``device_id`` (``named_device``, anything the
    server sent); ``listed_devices`` are the ids of the account's verified list."""
    if not isinstance(named_device, str) or named_device not in set(listed_devices):
        return SessionDevice("none", None)
    if own_device is not None and named_device == own_device:
        return SessionDevice("this_device", named_device)
    if current_session:
        return SessionDevice("hidden", named_device)
    return SessionDevice("revocable", named_device)
