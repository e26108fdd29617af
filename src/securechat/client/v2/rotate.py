"""Rotating this account's identity key (PROTOCOL.md 15.11 "Rotating"), from one device:
the transition and the first list under the new key published together, the new key
sealed under the password for the account's other devices and later logins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...protocol.identifiers import Username
from ...protocol.keys import PrivateIdentity
from ...protocol.v2.primitives import ed25519_raw_public
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
    current, _ = await directory.refresh(username)
    record = client.device()
    if current is None or record is None or record.device_id not in {d.device_id for d in current.devices}:
        raise ClientError("this device is not in your device list: run `securechat devices add` first")
    pin = await directory.pins.pin(username)
    # Another device may have rotated first: its key, if it is the one the chain leads to.
    await directory.keys.load(username, wrap_key, pin.key)
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


async def seal_for_new_password(
    client: V2Client, identity: PrivateIdentity, old_wrap: bytes, new_wrap: bytes
) -> dict[str, object] | None:
    """The account key sealed under the new password's wrap key, for the password change's
    own request (15.11); None if the account never rotated. Obtained before the password
    changes: this home's key if it is the account's current one, else the server's seal
    opened with the old password's wrap key, and kept only if it is the current key (an
    old seal served again is refused). Without it the password is left as it was."""
    username = Username(identity.username)
    if (await client.api.account_key_seal()).get("account_key_seal") is None:
        return None  # never rotated: the v1 bundle carries the account key
    directory = client.directory
    await directory.refresh(username)  # follow this account's own rotation first
    current_key = await directory.account_key(username)
    held = directory.keys.held()
    if held is None or ed25519_raw_public(held) != current_key:
        await directory.keys.load(username, old_wrap, current_key)
    seed = directory.keys.seed(identity)
    check_holds(seed, current_key)
    return seal_for_password(new_wrap, username, seed)


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
