"""May this device start a session from this prekey bundle (PROTOCOL.md 15.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ....protocol import errors as protocol_errors
from ....protocol.v2.devices import Device, DeviceList
from ....protocol.v2.errors import Refusal
from ....protocol.v2.prekeys import OneTimePrekey, SignedPrekey, check_one_time_prekey, check_signed_prekey
from ....protocol.v2.wire import members
from ..reasons import Refused


@dataclass(frozen=True)
class BundleAccepted:
    """What 15.5's initiator needs: the listed device and its checked prekeys."""

    device: Device
    signed_prekey: SignedPrekey
    one_time_prekey: OneTimePrekey | None
    outcome: Literal["accepted"] = "accepted"


BundleDecision = BundleAccepted | Refused


def accept_bundle(bundle: object, device_list: DeviceList, now: int) -> BundleDecision:
    """A fetched bundle ``{device_id, signed_prekey, one_time_prekey | null}`` for a device
    of the account's accepted list: ``device_not_listed``, ``malformed``,
    ``prekey_invalid`` or ``prekey_stale``, else the checked prekeys."""
    try:
        obj = members(bundle, ("device_id", "signed_prekey", "one_time_prekey"))
        ident = obj["device_id"]
        if not isinstance(ident, str):
            raise protocol_errors.MalformedInput("device id")
        device = device_list.device(ident)
        signed = check_signed_prekey(obj["signed_prekey"], device_list.username, device, now)
        raw_one_time = obj["one_time_prekey"]
        one_time = (
            None
            if raw_one_time is None
            else check_one_time_prekey(raw_one_time, device_list.username, device)
        )
    except Refusal as exc:
        return Refused(exc.reason)
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    return BundleAccepted(device, signed, one_time)
