"""Rotating this account's identity key (PROTOCOL.md 15.11 "Rotating"), from one device:
the transition and the first list under the new key published together, the new key
sealed under the password for the account's other devices and later logins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...protocol.identifiers import Username
from ...protocol.keys import PrivateIdentity
from ..core.v2 import MeV2
from ..core.v2.transitions import IdentityPin
from ..errors import ApiError, ClientError
from .device import DEVICE_RECORD, LocalDevice
from .prekeys import PrekeyKeeper
from .receiving import MeV2Source
from .rotation import ACCOUNT_KEY_RECORD, Pins, check_holds, prepare_rotation, seal_for_password, set_up_again

if TYPE_CHECKING:
    from .client import V2Client


@dataclass(frozen=True)
class RotationDone:
    old_key: bytes
    new_key: bytes
    version: int
    devices: int


async def rotate(client: V2Client, identity: PrivateIdentity, wrap_key: bytes, now: int) -> RotationDone:
    username = Username(identity.username)
    directory = client.directory
    await directory.keys.load(username, wrap_key)  # another device may have rotated first
    current, _ = await directory.refresh(username)
    record = client.device()
    if current is None or record is None or record.device_id not in {d.device_id for d in current.devices}:
        raise ClientError("this device is not in your device list: run `securechat devices add` first")
    pin = await directory.pins.pin(username)
    old_seed = directory.keys.seed(identity)
    check_holds(old_seed, pin.key)
    rotation = prepare_rotation(old_seed, username, current, pin.since, now)
    body: dict[str, object] = {
        "transition": rotation.transition.to_wire(),
        "device_list": rotation.device_list.to_wire(),
        "account_key_seal": seal_for_password(wrap_key, username, rotation.new_seed),
    }
    try:
        await client.api.rotate_identity(body)
    except ApiError as exc:
        if exc.status == 409 and exc.code in ("identity_key_stale", "device_list_stale"):
            raise ClientError(
                "your account's identity key or device list changed on another device meanwhile: "
                "run the command again"
            ) from exc
        raise
    transition = rotation.transition
    with client.state.transaction() as conn:
        client.store.put_record(conn, ACCOUNT_KEY_RECORD, {"seed": rotation.new_seed.hex()})
        directory.pins.put(conn, IdentityPin(username, transition.new_key, transition.at, False))
        client.store.put_device_list(conn, rotation.device_list)
        entry = next(d for d in rotation.device_list.devices if d.device_id == record.device_id)
        client.store.put_record(conn, DEVICE_RECORD, record.recertified(entry).to_record())
        set_up_again(conn, client.store, None)
    return RotationDone(
        transition.old_key, transition.new_key, rotation.device_list.version, len(current.devices)
    )


async def reseal(client: V2Client, identity: PrivateIdentity, wrap_key: bytes, retired: bytes | None) -> None:
    """Seal the account key again under ``wrap_key`` (the new password's). This home's kept
    copy, else the server's seal opened with ``retired`` (the old password's wrap key)."""
    username = Username(identity.username)
    with client.state.transaction() as conn:
        held = client.store.record(conn, ACCOUNT_KEY_RECORD) is not None
    if not held and retired is not None:
        await client.directory.keys.load(username, retired)
        with client.state.transaction() as conn:
            held = client.store.record(conn, ACCOUNT_KEY_RECORD) is not None
    if not held:
        if (await client.api.account_key_seal()).get("account_key_seal") is None:
            return  # never rotated: the v1 bundle carries the account key
        raise ClientError(
            "your account rotated its identity key on another device and this device does not "
            "hold the new key: log in on that device to seal it under the new password"
        )
    seal = seal_for_password(wrap_key, username, client.directory.keys.seed(identity))
    try:
        await client.api.put_account_key_seal(seal)
    except ApiError as exc:
        raise ClientError(
            "the password changed, but your identity key could not be sealed under it "
            f"({exc.code}): log in on the device that last rotated it and change the password there"
        ) from exc


class FollowingSource(MeV2Source):
    """This device as the receiver needs it, with the account key read again for each
    entry: a rotation of this account followed while reading the inbox (15.11) applies
    from the next entry on."""

    def __init__(
        self, username: str, pins: Pins, fallback: bytes, device: LocalDevice, prekeys: PrekeyKeeper
    ):
        super().__init__(username, fallback, device, prekeys)
        self.pins = pins

    def me_v2(self) -> MeV2:
        rotated = self.pins.rotated(self.username)
        if rotated is not None:
            self.account_key = rotated.key
        return super().me_v2()
