"""The admin console: every admin route refuses non-admins; the message log filters by
sender, recipient and time and pages; the export is an encrypted log (no plaintext,
byte for byte); the file log shows uploads (parties, size, times) and never a file's
name, key or contents; users can be disabled and enabled; blocks can be lifted; every
action is in an audit log the database itself keeps append-only."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from securechat.protocol.envelope import seal_message
from securechat.protocol.files import FILE_CHUNK_BYTES, FileEncryptor
from securechat.protocol.identifiers import ConversationId
from securechat.server.services.admin import make_admin

from .conftest import RegisteredUser, RegisterUser
from .support import material, seal
from .test_files import create, direct, upload

TEXTS = [f"admin-scan plaintext number {n}" for n in range(6)]


async def send(http: httpx.AsyncClient, sender: RegisteredUser, peer: str, text: str) -> dict[str, object]:
    envelope = seal(
        material(sender.name).identity, [material(sender.name).identity, material(peer).identity], text
    )
    response = await http.post("/api/v1/messages", headers=sender.headers, json={"envelope": envelope})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.fixture
async def people(
    app: FastAPI, http: httpx.AsyncClient, register_user: RegisterUser
) -> dict[str, RegisteredUser]:
    users = {name: await register_user(name) for name in ("root", "alice", "bob", "carol")}
    await make_admin(app.state.context.database, "root")
    return users


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every admin route, from the app's own OpenAPI schema."""
    found = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/admin")
        for method in operations
    ]
    assert len(found) >= 9, found
    return found


async def test_every_admin_route_refuses_a_non_admin(
    app: FastAPI, http: httpx.AsyncClient, people: dict[str, RegisteredUser]
) -> None:
    for method, template in admin_routes(app):
        path = template.replace("{username}", "bob")
        response = await http.request(
            method, path, headers=people["alice"].headers, json={"address": "1.2.3.4"}
        )
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
        anonymous = await http.request(method, path, json={"address": "1.2.3.4"})
        assert anonymous.status_code == 401, (method, path)


async def test_message_log_filters_pages_and_shows_no_plaintext(
    http: httpx.AsyncClient, people: dict[str, RegisteredUser]
) -> None:
    alice, bob, root = people["alice"], people["bob"], people["root"]
    for n, text in enumerate(TEXTS):
        await send(
            http, alice if n % 2 == 0 else bob, "carol" if n < 4 else "bob" if n % 2 == 0 else "alice", text
        )

    async def log(**params: object) -> dict[str, object]:
        response = await http.get("/api/v1/admin/messages", headers=root.headers, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    everything = await log(limit=200)
    entries = everything["messages"]
    assert isinstance(entries, list) and len(entries) == 6
    assert [e["server_ts"] for e in entries] == sorted((e["server_ts"] for e in entries), reverse=True)
    assert {
        "id",
        "protocol",
        "message_id",
        "sender",
        "recipients",
        "conversation_id",
        "client_ts",
        "server_ts",
        "size",
        "ciphertext_preview",
    } == set(entries[0])
    from_alice = (await log(sender="alice"))["messages"]
    assert {e["sender"] for e in from_alice} == {"alice"} and len(from_alice) == 3
    to_carol = (await log(recipient="carol"))["messages"]
    assert len(to_carol) == 4 and all(e["recipients"] == ["carol"] for e in to_carol)
    middle = entries[3]["server_ts"]
    assert all(e["server_ts"] >= middle for e in (await log(since=middle))["messages"])
    # Paging: two pages of three cover everything once.
    first = await log(limit=3)
    second = await log(limit=3, before=first["next_before"])
    assert [e["id"] for e in first["messages"] + second["messages"]] == [e["id"] for e in entries]
    assert (
        await http.get("/api/v1/admin/messages", headers=root.headers, params={"sender": "nobody"})
    ).status_code == 404

    # The export: one envelope per line, and no plaintext anywhere in it or in the log view.
    export = await http.get("/api/v1/admin/messages/export", headers=root.headers)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert len(lines) == 6 and all("ciphertext" in line["envelope"] for line in lines)
    everything_bytes = export.content + json.dumps(everything).encode()
    for text in TEXTS:
        assert text.encode() not in everything_bytes
        assert text.encode().hex().encode() not in everything_bytes


async def share_file(
    http: httpx.AsyncClient, sender: RegisteredUser, peer: str, name: str, contents: bytes
) -> tuple[str, FileEncryptor]:
    """As a client sends a file: encrypt and upload it, then share its name and key in a
    signed, encrypted ``file`` message. Returns the conversation and the encryptor."""
    conversation = await direct(http, sender, peer)
    encryptor, _ = await upload(http, sender, conversation, contents)
    payload = encryptor.descriptor(name, "application/pdf").to_payload("the file log caption")
    me, them = material(sender.name).identity, material(peer).identity
    envelope = seal_message(
        me, ConversationId(conversation), {me.username: me.public, them.username: them.public}, payload
    )
    response = await http.post(
        "/api/v1/messages", headers=sender.headers, json={"envelope": envelope.to_wire()}
    )
    assert response.status_code == 201, response.text
    return conversation, encryptor


async def test_file_log_shows_parties_sizes_and_times_never_names(
    http: httpx.AsyncClient, people: dict[str, RegisteredUser]
) -> None:
    alice, bob, root = people["alice"], people["bob"], people["root"]
    name = "Zebra-Ωmega quarterly payroll (secret).pdf"
    contents = os.urandom(FILE_CHUNK_BYTES + 321)
    to_bob, named = await share_file(http, alice, "bob", name, contents)
    to_carol, _ = await share_file(http, bob, "carol", "bob-to-carol.txt", b"bob's little file")
    await share_file(http, alice, "carol", "alice-to-carol.txt", b"alice's little file")
    pending = str(uuid.uuid4())  # created, never completed
    assert (await create(http, alice, to_bob, 5, pending)).status_code == 201

    async def log(**params: str | int) -> dict[str, Any]:
        response = await http.get("/api/v1/admin/files", headers=root.headers, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = await log(limit=200)
    entries = everything["files"]
    assert isinstance(entries, list) and len(entries) == 4 and everything["next_before"] is None
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert {
        "id",
        "file_id",
        "conversation_id",
        "sender",
        "recipients",
        "size",
        "chunks",
        "created_at",
        "completed_at",
    } == set(entries[0])
    assert entries[0]["file_id"] == pending and entries[0]["completed_at"] is None
    by_id = {e["file_id"]: e for e in entries}
    first = by_id[named.file_id]
    assert (first["sender"], first["recipients"], first["conversation_id"]) == ("alice", ["bob"], to_bob)
    assert (first["size"], first["chunks"]) == (len(contents), 2)
    assert first["created_at"] <= first["completed_at"]
    assert [(e["sender"], e["recipients"], e["size"]) for e in entries[1:3]] == [
        ("alice", ["carol"], len(b"alice's little file")),
        ("bob", ["carol"], len(b"bob's little file")),
    ]

    # The server never had the name, the key or the contents; none is in the answer,
    # raw, hex or base64, nor is the caption.
    answer = json.dumps(everything, ensure_ascii=False).encode() + json.dumps(everything).encode()
    for secret in (name.encode(), b"Zebra", b"payroll", named.key, contents[:64], b"file log caption"):
        for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
            assert form not in answer, secret

    # Filters and paging, as in the message log.
    assert {e["file_id"] for e in (await log(sender="alice"))["files"]} == {
        e["file_id"] for e in entries if e["sender"] == "alice"
    }
    assert len((await log(sender="alice"))["files"]) == 3
    to_carol_files = (await log(recipient="carol"))["files"]
    assert len(to_carol_files) == 2 and all(e["recipients"] == ["carol"] for e in to_carol_files)
    assert [e["conversation_id"] for e in (await log(conversation=to_carol))["files"]] == [to_carol]
    assert [e["file_id"] for e in (await log(recipient="bob", sender="alice"))["files"]] == [
        pending,
        named.file_id,
    ]
    middle = entries[2]["created_at"]
    assert all(e["created_at"] >= middle for e in (await log(since=middle))["files"])
    assert all(e["created_at"] < middle for e in (await log(until=middle))["files"])
    page_one = await log(limit=3)
    assert page_one["next_before"] == entries[2]["id"]
    page_two = await log(limit=3, before=page_one["next_before"])
    assert page_two["next_before"] is None
    assert [e["id"] for e in page_one["files"] + page_two["files"]] == [e["id"] for e in entries]
    for params, status in (({"sender": "nobody"}, 404), ({"conversation": "room"}, 422)):
        response = await http.get("/api/v1/admin/files", headers=root.headers, params=params)
        assert response.status_code == status, params
    response = await http.get("/api/v1/admin/files", headers=root.headers, params={"since": 5, "until": 5})
    assert response.status_code == 422

    # Not for anyone else, and looking is on record.
    refused = await http.get("/api/v1/admin/files", headers=bob.headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    audit = (await http.get("/api/v1/admin/audit", headers=root.headers)).json()["entries"]
    viewed = [e for e in audit if e["action"] == "view_files"]
    assert viewed and all(e["admin"] == "root" and e["target"] == "files" for e in viewed)
    assert {"sender": "alice", "recipient": "bob"}.items() <= next(
        e["details"] for e in viewed if e["details"]["recipient"] == "bob"
    ).items()


async def test_disable_enable_and_unblock_are_audited_append_only(
    app: FastAPI, http: httpx.AsyncClient, people: dict[str, RegisteredUser]
) -> None:
    root, bob = people["root"], people["bob"]
    disabled = await http.post("/api/v1/admin/users/bob/disable", headers=root.headers)
    assert disabled.status_code == 200 and disabled.json()["revoked_sessions"] == 1
    assert (await http.get("/api/v1/account", headers=bob.headers)).status_code == 401
    login = await http.post("/api/v1/auth/login", json={"username": "bob", "auth_key": bob.auth_key})
    assert login.status_code == 403 and login.json()["error"]["reason"] == "account_disabled"
    listing = (await http.get("/api/v1/admin/users", headers=root.headers)).json()["users"]
    assert {u["username"]: u["disabled"] for u in listing}["bob"] is True
    assert (await http.post("/api/v1/admin/users/bob/enable", headers=root.headers)).status_code == 200
    login = await http.post("/api/v1/auth/login", json={"username": "bob", "auth_key": bob.auth_key})
    assert login.status_code == 200
    assert (await http.post("/api/v1/admin/users/root/disable", headers=root.headers)).status_code == 422

    # Intrusion view and unblock.
    for _ in range(5):
        await http.post("/api/v1/auth/login", json={"username": "carol", "auth_key": "A" * 43 + "="})
    view = (await http.get("/api/v1/admin/intrusion", headers=root.headers)).json()
    assert [b["address"] for b in view["blocks"]] == ["127.0.0.1"]
    lifted = await http.post(
        "/api/v1/admin/intrusion/unblock", headers=root.headers, json={"address": "127.0.0.1"}
    )
    assert lifted.json()["lifted"] == 1
    assert (await http.get("/api/v1/admin/intrusion", headers=root.headers)).json()["blocks"] == []

    audit = (await http.get("/api/v1/admin/audit", headers=root.headers)).json()["entries"]
    assert [(e["admin"], e["action"], e["target"]) for e in reversed(audit)] == [
        ("securechat admin create", "grant_admin", "root"),
        ("root", "disable_user", "bob"),
        ("root", "enable_user", "bob"),
        ("root", "unblock", "127.0.0.1"),
    ]
    # Append-only in the database itself: UPDATE and DELETE are refused.
    settings = app.state.context.settings
    connection = sqlite3.connect(settings.data_dir / "securechat.db")
    try:
        for statement in ("UPDATE admin_audit SET admin = 'someone'", "DELETE FROM admin_audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                connection.execute(statement)
    finally:
        connection.close()
