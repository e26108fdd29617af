"""Is this an account's current device list, and what changed (PROTOCOL.md 15.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ....protocol import errors as protocol_errors
from ....protocol.identifiers import Username
from ....protocol.v2.devices import DeviceList, KnownList, check_device_list
from ....protocol.v2.errors import Refusal
from ..reasons import Refused


@dataclass(frozen=True)
class ListAccepted:
    """A newer list: store it. ``added`` and ``removed`` are device ids since the list
    accepted before (both empty for an account's first list), for the notices ("alice
    added a new device"). ``drop_sessions``: the devices whose session sets the caller
    deletes — the removed ones, and any whose keys the new list certifies differently."""

    device_list: DeviceList
    added: tuple[str, ...]
    removed: tuple[str, ...]
    drop_sessions: tuple[str, ...]
    outcome: Literal["accepted"] = "accepted"


@dataclass(frozen=True)
class ListUnchanged:
    """The list accepted before, again (same version and hash): nothing to do."""

    outcome: Literal["unchanged"] = "unchanged"


ListDecision = ListAccepted | ListUnchanged | Refused


def accept_device_list(
    document: object, username: Username, pinned_account_key: bytes, accepted: DeviceList | None
) -> ListDecision:
    """15.3's checks of a fetched list for ``username`` against the pinned account key and
    the list accepted before (None: none yet)."""
    known = None if accepted is None else KnownList(accepted.version, accepted.list_hash)
    try:
        device_list = check_device_list(document, username, pinned_account_key, known)
    except Refusal as exc:
        return Refused(exc.reason)
    except protocol_errors.UnsupportedVersion:
        return Refused("unsupported_version")
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    if accepted is None:
        return ListAccepted(device_list, (), (), ())
    if device_list.list_hash == accepted.list_hash:
        return ListUnchanged()
    before = {device.device_id: device for device in accepted.devices}
    after = {device.device_id: device for device in device_list.devices}
    added = tuple(sorted(after.keys() - before.keys()))
    removed = tuple(sorted(before.keys() - after.keys()))
    changed = {ident for ident in before.keys() & after.keys() if before[ident] != after[ident]}
    return ListAccepted(device_list, added, removed, tuple(sorted(set(removed) | changed)))
