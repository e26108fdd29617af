"""Groups on the server (PROTOCOL.md 13.6): the chain is checked with the same rules as
clients, membership follows it, every change reaches old and new members, invites are
enforced by the server's clock and use count, and history starts at a member's join."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from securechat.protocol.groups import GroupChange, GroupState, Invite, genesis, make_invite, sign_change
from securechat.protocol.keys import PrivateIdentity

from .conftest import RegisteredUser, RegisterUser
from .support import identity_for, seal

NAMES = ("alice", "bob", "carol", "mallory")


def now() -> int:
    return int(time.time() * 1000)


class Group:
    """Alice's group as the tests drive it: the chain so far and its verified state."""

    def __init__(self, http: httpx.AsyncClient, users: dict[str, RegisteredUser]) -> None:
        self.http = http
        self.users = users
        self.state: GroupState | None = None
        self.changes: list[GroupChange] = []

    @staticmethod
    def lookup(name: str) -> Any:
        return identity_for(name).public

    async def post(self, actor: str, action: str, members: list[str] = (), **kw: Any) -> httpx.Response:  # type: ignore[assignment]
        change = sign_change(identity_for(actor), self.state, action, members, at=now(), **kw)
        return await self.submit(actor, change)

    async def submit(self, actor: str, change: GroupChange) -> httpx.Response:
        headers = self.users[actor].headers
        if change.seq == 0:
            response = await self.http.post(
                "/api/v1/groups", headers=headers, json={"change": change.to_wire()}
            )
        else:
            response = await self.http.post(
                f"/api/v1/groups/{change.group_id}/changes",
                headers=headers,
                json={"change": change.to_wire()},
            )
        if response.status_code == 201:
            self.changes.append(change)
            self.state = (
                genesis(change, self.lookup) if self.state is None else self.state.apply(change, self.lookup)
            )
        return response

    @property
    def id(self) -> str:
        assert self.state is not None
        return self.state.group_id


@pytest.fixture
async def users(register_user: RegisterUser) -> dict[str, RegisteredUser]:
    return {name: await register_user(name) for name in NAMES}


@pytest.fixture
async def group(http: httpx.AsyncClient, users: dict[str, RegisteredUser]) -> Group:
    made = Group(http, users)
    response = await made.post("alice", "create", ["bob", "carol"])
    assert response.status_code == 201, response.text
    assert response.json() == {"group_id": made.id, "seq": 0, "members": ["alice", "bob", "carol"]}
    return made


async def group_frames(http: httpx.AsyncClient, user: RegisteredUser) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/inbox", headers=user.headers, params={"since": 0})
    return [entry for entry in response.json()["entries"] if entry["type"] == "group"]


async def members_seen_by_server(http: httpx.AsyncClient, user: RegisteredUser, group_id: str) -> list[str]:
    response = await http.get("/api/v1/conversations", headers=user.headers)
    (conversation,) = [c for c in response.json()["conversations"] if c["id"] == group_id]
    assert conversation["kind"] == "group"
    return list(conversation["members"])


def error(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_create_delivers_the_change_and_lists_the_group(
    http: httpx.AsyncClient, users: dict[str, RegisteredUser], group: Group
) -> None:
    for name in ("alice", "bob", "carol"):
        frames = await group_frames(http, users[name])
        assert [(f["group_id"], f["change"]["action"]) for f in frames] == [(group.id, "create")]
        assert await members_seen_by_server(http, users[name], group.id) == ["alice", "bob", "carol"]
    assert await group_frames(http, users["mallory"]) == []
    changes = await http.get(f"/api/v1/groups/{group.id}/changes", headers=users["bob"].headers)
    assert changes.json()["changes"] == [c.to_wire() for c in group.changes]
    hidden = await http.get(f"/api/v1/groups/{group.id}/changes", headers=users["mallory"].headers)
    assert hidden.status_code == 404


async def test_membership_follows_the_chain(
    http: httpx.AsyncClient, users: dict[str, RegisteredUser], group: Group
) -> None:
    assert (await group.post("alice", "add", ["mallory"])).status_code == 201
    assert await members_seen_by_server(http, users["alice"], group.id) == [
        "alice",
        "bob",
        "carol",
        "mallory",
    ]
    assert (await group.post("alice", "remove", ["carol"])).status_code == 201
    assert await members_seen_by_server(http, users["alice"], group.id) == ["alice", "bob", "mallory"]
    # Carol learns of her removal, then sees the group no more.
    frames = await group_frames(http, users["carol"])
    assert [f["change"]["action"] for f in frames] == ["create", "add", "remove"]
    assert (
        await http.get(f"/api/v1/groups/{group.id}/changes", headers=users["carol"].headers)
    ).status_code == 404
    # Mallory got the changes from her addition on, not the creation.
    assert [f["change"]["action"] for f in await group_frames(http, users["mallory"])] == ["add", "remove"]
    assert (await group.post("mallory", "leave")).status_code == 201
    assert await members_seen_by_server(http, users["alice"], group.id) == ["alice", "bob"]


@pytest.mark.parametrize(
    ("actor", "action", "targets", "status", "code"),
    [
        ("bob", "add", ["mallory"], 400, "invalid_group_change"),  # not an admin
        ("alice", "add", ["bob"], 400, "invalid_group_change"),  # already a member
        ("alice", "remove", ["alice"], 400, "invalid_group_change"),  # leave instead
        ("alice", "add", ["nobody"], 404, "not_found"),  # no such user
        ("mallory", "leave", [], 404, "not_found"),  # not a member
    ],
)
async def test_changes_that_break_a_rule_are_refused(
    group: Group, actor: str, action: str, targets: list[str], status: int, code: str
) -> None:
    response = await group.post(actor, action, targets)
    assert response.status_code == status, response.text
    assert error(response) == code


async def test_a_change_must_extend_the_head_and_be_the_callers(
    http: httpx.AsyncClient, users: dict[str, RegisteredUser], group: Group
) -> None:
    assert group.state is not None
    first = sign_change(identity_for("alice"), group.state, "add", ["mallory"], at=now())
    rival = sign_change(identity_for("alice"), group.state, "promote", ["bob"], at=now())
    assert (await group.submit("alice", first)).status_code == 201
    response = await http.post(
        f"/api/v1/groups/{group.id}/changes", headers=users["alice"].headers, json={"change": rival.to_wire()}
    )
    assert response.status_code == 409 and error(response) == "group_conflict"
    assert response.json()["error"]["head"] == 1
    # Bob cannot submit a change alice signed, nor one he signs in her name.
    assert group.state is not None
    hers = sign_change(identity_for("alice"), group.state, "promote", ["bob"], at=now())
    response = await http.post(
        f"/api/v1/groups/{group.id}/changes", headers=users["bob"].headers, json={"change": hers.to_wire()}
    )
    assert response.status_code == 403
    # A change altered after signing (a member slipped in) fails the signature check.
    tampered = hers.to_wire() | {"members": ["bob", "carol"], "action": "promote"}
    response = await http.post(
        f"/api/v1/groups/{group.id}/changes", headers=users["alice"].headers, json={"change": tampered}
    )
    assert response.status_code == 400 and error(response) == "invalid_group_change"


async def test_group_messages_need_exactly_the_members(
    http: httpx.AsyncClient, users: dict[str, RegisteredUser], group: Group
) -> None:
    members = [identity_for(n) for n in ("alice", "bob", "carol")]
    envelope = seal(identity_for("bob"), members, "hi all", conversation_id=group.id)
    response = await http.post("/api/v1/messages", headers=users["bob"].headers, json={"envelope": envelope})
    assert response.status_code == 201, response.text
    inbox = await http.get("/api/v1/inbox", headers=users["carol"].headers, params={"since": 0})
    assert [e["message_id"] for e in inbox.json()["entries"] if e["type"] == "message"] == [
        envelope["message_id"]
    ]
    # Leaving someone out (or adding someone) is refused.
    short = seal(identity_for("bob"), members[:2], conversation_id=group.id)
    response = await http.post("/api/v1/messages", headers=users["bob"].headers, json={"envelope": short})
    assert response.status_code == 400
    outsider = seal(identity_for("mallory"), [*members, identity_for("mallory")], conversation_id=group.id)
    response = await http.post(
        "/api/v1/messages", headers=users["mallory"].headers, json={"envelope": outsider}
    )
    assert response.status_code == 403


async def test_new_members_get_no_history_from_before_they_joined(
    http: httpx.AsyncClient, users: dict[str, RegisteredUser], group: Group
) -> None:
    members = [identity_for(n) for n in ("alice", "bob", "carol")]
    before = seal(identity_for("alice"), members, "before", conversation_id=group.id)
    assert (
        await http.post("/api/v1/messages", headers=users["alice"].headers, json={"envelope": before})
    ).status_code == 201
    time.sleep(0.002)
    assert (await group.post("alice", "add", ["mallory"])).status_code == 201
    after = seal(
        identity_for("alice"), [*members, identity_for("mallory")], "after", conversation_id=group.id
    )
    assert (
        await http.post("/api/v1/messages", headers=users["alice"].headers, json={"envelope": after})
    ).status_code == 201
    history = await http.get(f"/api/v1/conversations/{group.id}/messages", headers=users["mallory"].headers)
    assert [m["message_id"] for m in history.json()["messages"]] == [after["message_id"]]
    history = await http.get(f"/api/v1/conversations/{group.id}/messages", headers=users["bob"].headers)
    assert [m["message_id"] for m in history.json()["messages"]] == [
        after["message_id"],
        before["message_id"],
    ]


def invite_body(admin: PrivateIdentity, group_id: str, **kw: Any) -> dict[str, Any]:
    return {"invite": make_invite(admin, group_id, **kw).to_wire()}  # type: ignore[arg-type]


async def test_invites(http: httpx.AsyncClient, users: dict[str, RegisteredUser], group: Group) -> None:
    alice = identity_for("alice")
    body = invite_body(alice, group.id, expires_at=now() + 60_000, max_uses=1)
    code = body["invite"]["invite_id"]
    assert (
        await http.post(f"/api/v1/groups/{group.id}/invites", headers=users["alice"].headers, json=body)
    ).status_code == 201
    # Only admins make invites, and only in their own name.
    not_admin = invite_body(identity_for("bob"), group.id, expires_at=now() + 60_000, max_uses=1)
    response = await http.post(
        f"/api/v1/groups/{group.id}/invites", headers=users["bob"].headers, json=not_admin
    )
    assert response.status_code == 403
    response = await http.post(f"/api/v1/groups/{group.id}/invites", headers=users["bob"].headers, json=body)
    assert response.status_code == 403

    fetched = await http.get(f"/api/v1/invites/{code}", headers=users["mallory"].headers)
    assert fetched.status_code == 200
    assert fetched.json() == {
        "invite": body["invite"],
        "group_id": group.id,
        "changes": [c.to_wire() for c in group.changes],
    }
    invite = Invite.from_wire(fetched.json()["invite"])
    assert (await group.post("mallory", "join", invite=invite)).status_code == 201
    assert "mallory" in await members_seen_by_server(http, users["alice"], group.id)
    # Used up: the code no longer reads, and a second join is refused.
    assert (await http.get(f"/api/v1/invites/{code}", headers=users["mallory"].headers)).status_code == 404
    assert (await group.post("alice", "remove", ["mallory"])).status_code == 201
    response = await group.post("mallory", "join", invite=invite)
    assert response.status_code == 403
    assert response.json()["error"]["reason"] == "invite_invalid"


async def test_expired_or_unknown_invites_are_refused(
    http: httpx.AsyncClient, users: dict[str, RegisteredUser], group: Group
) -> None:
    alice = identity_for("alice")
    past = invite_body(alice, group.id, expires_at=now() - 1, max_uses=3)
    response = await http.post(
        f"/api/v1/groups/{group.id}/invites", headers=users["alice"].headers, json=past
    )
    assert response.status_code == 400
    never_stored = make_invite(alice, group.id, expires_at=now() + 60_000, max_uses=3)  # type: ignore[arg-type]
    response = await group.post("mallory", "join", invite=never_stored)
    assert response.status_code == 403
    assert response.json()["error"]["reason"] == "invite_invalid"
    assert (
        await http.get(f"/api/v1/invites/{never_stored.invite_id}", headers=users["bob"].headers)
    ).status_code == 404
    # Not an invite id at all: refused at the edge (api/identifiers.py).
    malformed = await http.get("/api/v1/invites/not-a-code", headers=users["bob"].headers)
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_input"
