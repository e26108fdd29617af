"""A group change costs the server one signature check whatever the chain's length
(issue 12, item 2): it is checked against the stored verified head, never by replaying
the chain."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from securechat.protocol import groups as protocol_groups
from securechat.protocol.groups import GroupState, genesis, sign_change

from .conftest import RegisteredUser, RegisterUser
from .support import identity_for


def now() -> int:
    return int(time.time() * 1000)


def lookup(name: str) -> Any:
    return identity_for(name).public


class CountingVerify:
    """Stands in for the protocol's Ed25519 verification, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = protocol_groups.ed25519_verify

    def __call__(self, key: Any, signature: bytes, message: bytes) -> None:
        self.calls += 1
        self.real(key, signature, message)


async def test_one_signature_check_per_change_at_length_10_and_1000(
    http: httpx.AsyncClient, register_user: RegisterUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    users: dict[str, RegisteredUser] = {name: await register_user(name) for name in ("alice", "bob", "carol")}
    verify = CountingVerify()
    monkeypatch.setattr(protocol_groups, "ed25519_verify", verify)
    state: GroupState | None = None

    async def append(action: str, members: list[str]) -> None:
        nonlocal state
        change = sign_change(identity_for("alice"), state, action, members, at=now())
        path = "/api/v1/groups" if state is None else f"/api/v1/groups/{change.group_id}/changes"
        response = await http.post(path, headers=users["alice"].headers, json={"change": change.to_wire()})
        assert response.status_code == 201, response.text
        state = (
            genesis(change, lookup) if state is None else state.apply(change, lookup, check_signature=False)
        )

    async def checks_for_one_more() -> int:
        before = verify.calls
        await append("add" if state is not None and "carol" not in state.members else "remove", ["carol"])
        return verify.calls - before

    await append("create", ["bob"])
    while state is not None and state.seq < 9:
        await append("add" if "carol" not in state.members else "remove", ["carol"])
    assert state is not None and state.seq + 1 == 10
    assert await checks_for_one_more() == 1
    while state.seq < 999:
        await append("add" if "carol" not in state.members else "remove", ["carol"])
    assert state.seq + 1 == 1000
    assert await checks_for_one_more() == 1
