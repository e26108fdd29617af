#!/usr/bin/env python3
"""Generate tests/data/link_v2_vectors.json, the device-linking vectors (PROTOCOL.md 15.10.2).

Usage:
    python scripts/make_v2_link_vectors.py            # (re)write the vector file
    python scripts/make_v2_link_vectors.py --check    # exit 1 if the file is not what this script makes

Deterministic: keys are derived here from fixed labels. Byte strings are lower-case hex in
``_hex`` members; devices as their list entries (15.3, base64). ``expected`` is written
here by hand for every case (``ok``, ``accepted``, a device id, or a reason), and the
script runs the Python code on each and stops if the code disagrees.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import vector_file

from securechat.client.core.v2.backup import restore_rows
from securechat.client.core.v2.link import (
    MAX_ROW_TEXT_BYTES,
    accept_history_link,
    check_archive_rows,
    choose_link_target,
)
from securechat.protocol.encoding import b64encode
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.v2.backup import Archive, BackupMessage, encode_archive
from securechat.protocol.v2.devices import Device
from securechat.protocol.v2.link import LinkRefused, link_code, link_value, open_link_archive, parse_link_code
from securechat.protocol.v2.primitives import device_id, ed25519_raw_public, x25519_public

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "link_v2_vectors.json"


def fixed(label: str, size: int = 32) -> bytes:
    return hashlib.sha256(f"securechat/v2/link-vectors/{label}".encode()).digest()[:size]


def device(label: str) -> Device:
    signing = ed25519_raw_public(fixed(f"{label}/signing"))
    return Device(device_id(signing), signing, x25519_public(fixed(f"{label}/dh")), 1_790_000_000_000, b"")


def device_wire(d: Device) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "signing_key": b64encode(d.signing_key),
        "dh_key": b64encode(d.dh_key),
        "created_at": d.created_at,
    }


def outcome(work: Callable[[], object]) -> str:
    try:
        work()
    except LinkRefused as exc:
        return exc.reason
    return "ok"


def check(case: dict[str, Any], got: str) -> None:
    if got != case["expected"]:
        raise SystemExit(f"case {case['name']!r}: expected {case['expected']}, the code says {got}")


def swap(text: str, index: int, new: str) -> str:
    return text[:index] + new + text[index + 1 :]


OLD, NEW, OTHER = device("old"), device("new"), device("other")


def code_section() -> dict[str, Any]:
    codes = [
        {
            "username": username,
            "device": device_wire(d),
            "value_hex": link_value(username, d).hex(),
            "shown": link_code(username, d),
        }
        for username, d in (("alice", NEW), ("alice", OLD), ("bob", NEW))
    ]
    shown = codes[0]["shown"]
    compact = shown.replace("-", "")
    typo = "1" if compact[3] != "1" else "2"
    texts: list[dict[str, Any]] = [
        {"name": "as shown", "text": shown, "expected": "ok"},
        {"name": "lower case, spaces for hyphens", "text": shown.lower().replace("-", " "), "expected": "ok"},
        {"name": "no separators", "text": compact, "expected": "ok"},
        {"name": "a typo", "text": swap(compact, 3, typo), "expected": "link_code_checksum"},
        {"name": "one character short", "text": compact[:-1], "expected": "link_code_malformed"},
        {"name": "one character too many", "text": compact + "0", "expected": "link_code_malformed"},
        {
            "name": "U is not in the alphabet",
            "text": swap(compact, 2, "U"),
            "expected": "link_code_malformed",
        },
        {"name": "empty", "text": "", "expected": "link_code_malformed"},
    ]
    for read_as, char in (("0", "O"), ("1", "I"), ("1", "L")):
        if read_as in compact:
            index = compact.index(read_as)
            texts.append(
                {
                    "name": f"{char} read as {read_as}",
                    "text": swap(compact, index, char.lower()),
                    "expected": "ok",
                }
            )
    for case in texts:
        check(case, outcome(lambda text=case["text"]: parse_link_code(text)))
        if case["expected"] == "ok":
            case["value_hex"] = codes[0]["value_hex"]
    return {"codes": codes, "texts": texts}


def choose_section() -> list[dict[str, Any]]:
    listed = [OLD, NEW]

    def case(name: str, typed: str, expected: str, devices: list[Device] = listed) -> dict[str, Any]:
        entry = {
            "name": name,
            "typed": typed,
            "username": "alice",
            "devices": [device_wire(d) for d in devices],
            "this_device": OLD.device_id,
            "expected": expected,
        }
        decision = choose_link_target(typed, "alice", devices, OLD.device_id)
        check(entry, decision.device.device_id if decision.outcome == "target" else decision.reason)
        return entry

    new_code = link_code("alice", NEW)
    return [
        case("the new device's code", new_code, NEW.device_id),
        case("typed in lower case", new_code.lower(), NEW.device_id),
        case("this device's own code", link_code("alice", OLD), "link_self"),
        case("a device not in the accepted list", link_code("alice", OTHER), "link_device_unknown"),
        case("the device's code under another account", link_code("bob", NEW), "link_device_unknown"),
        case("the new device, not yet in the accepted list", new_code, "link_device_unknown", [OLD]),
        case("a typo", swap(new_code, 0, "1" if new_code[0] != "1" else "2"), "link_code_checksum"),
        case("not a code", "hello", "link_code_malformed"),
    ]


def accept_section() -> list[dict[str, Any]]:
    self_dm = direct_conversation_id(Username("alice"), Username("alice"))
    with_bob = direct_conversation_id(Username("alice"), Username("bob"))
    archive = {
        "id": "0b0e6c6e-3f7a-4c1e-9d0a-00000000000a",
        "key": b64encode(fixed("archive-key")),
        "name": "history-archive",
        "media_type": "application/octet-stream",
        "size": 4096,
        "sha256": fixed("archive-hash").hex(),
    }
    payload = {"type": "history_link", "device_id": NEW.device_id, "archive": archive}
    base: dict[str, Any] = {
        "username": "alice",
        "device_id": NEW.device_id,
        "sender": "alice",
        "sender_device": OLD.device_id,
        "conversation_id": self_dm,
        "target_devices": [["alice", NEW.device_id]],
        "payload": payload,
        "expected_until": 1_790_000_600_000,
        "now": 1_790_000_000_000,
    }

    def case(name: str, expected: str, **changes: Any) -> dict[str, Any]:
        entry = {"name": name, **base, **changes, "expected": expected}
        decision = accept_history_link(
            username=entry["username"],
            device_id=entry["device_id"],
            sender=entry["sender"],
            sender_device=entry["sender_device"],
            conversation_id=entry["conversation_id"],
            target_devices=[tuple(t) for t in entry["target_devices"]],
            payload=entry["payload"],
            expected_until=entry["expected_until"],
            now=entry["now"],
        )
        check(entry, decision.outcome if decision.outcome == "accepted" else decision.reason)
        if decision.outcome == "accepted":
            entry["archive_file_id"] = decision.archive.file_id
        return entry

    return [
        case("from an own device, to this one alone", "accepted"),
        case("from another account", "link_foreign", sender="bob", conversation_id=with_bob),
        case(
            "from an own device, in a conversation with bob",
            "link_foreign",
            conversation_id=with_bob,
            target_devices=[["alice", NEW.device_id], ["bob", OTHER.device_id]],
        ),
        case(
            "addressed to another device as well",
            "link_not_for_me",
            target_devices=[["alice", NEW.device_id], ["alice", OTHER.device_id]],
        ),
        case(
            "the payload names another device",
            "link_not_for_me",
            payload=payload | {"device_id": OTHER.device_id},
        ),
        case("this device showed no link code", "link_unexpected", expected_until=None),
        case("the wait its code opened is over", "link_unexpected", now=1_790_000_600_001),
        case("the last moment of the wait", "accepted", now=1_790_000_600_000),
        # An imported hand-over closes the wait (the device forgets expected_until in the
        # transaction that imports it): a second hand-over for the same shown code is refused.
        case("a second hand-over, after the first closed the wait", "link_unexpected", expected_until=None),
        case("an extra member", "link_malformed", payload=payload | {"text": "hi"}),
        case("no archive", "link_malformed", payload={"type": "history_link", "device_id": NEW.device_id}),
        case(
            "a key of 31 bytes",
            "link_malformed",
            payload=payload | {"archive": archive | {"key": b64encode(bytes(31))}},
        ),
        case(
            "a size that is no integer",
            "link_malformed",
            payload=payload | {"archive": archive | {"size": 1.5}},
        ),
        case(
            "a hash in upper case",
            "link_malformed",
            payload=payload | {"archive": archive | {"sha256": "AB" * 32}},
        ),
        case(
            "past 256 MiB",
            "link_too_large",
            payload=payload | {"archive": archive | {"size": 256 * 1024 * 1024 + 1}},
        ),
        case(
            "exactly 256 MiB",
            "accepted",
            payload=payload | {"archive": archive | {"size": 256 * 1024 * 1024}},
        ),
    ]


def archive_section() -> list[dict[str, Any]]:
    message = BackupMessage(
        "0b0e6c6e-3f7a-4c1e-9d0a-000000000001",
        direct_conversation_id(Username("alice"), Username("bob")),
        "alice",
        "bob",
        1_789_000_000_000,
        1_789_000_000_100,
        "hello bob ✓",
    )

    def case(name: str, archive: Archive, expected: str, plaintext: bytes | None = None) -> dict[str, Any]:
        data = plaintext if plaintext is not None else encode_archive(archive)
        entry = {"name": name, "username": "alice", "plaintext_hex": data.hex(), "expected": expected}
        check(entry, outcome(lambda: open_link_archive(data, "alice")))
        if expected == "ok":
            entry["texts"] = [m.text for m in open_link_archive(data, "alice").messages]
        return entry

    good = Archive("alice", 0, 1_790_000_000_000, (message,))
    padded = bytearray(encode_archive(good))
    padded[-1] = 1
    return [
        case("alice's hand-over archive", good, "ok"),
        case("another account's", Archive("bob", 0, 1, (message,)), "link_archive_malformed"),
        case("a backup's version, not 0", Archive("alice", 1, 1, (message,)), "link_archive_malformed"),
        case("padding that is not zero", good, "link_archive_malformed", bytes(padded)),
        case("cut short", good, "link_archive_malformed", encode_archive(good)[:20]),
    ]


def rows_section() -> list[dict[str, Any]]:
    """check_archive_rows: every row a direct message of the account, or none imported."""
    alice, bob = Username("alice"), Username("bob")
    with_bob = direct_conversation_id(alice, bob)
    with_self = direct_conversation_id(alice, alice)
    bob_carol = direct_conversation_id(bob, Username("carol"))

    def row(n: int, **changes: Any) -> dict[str, Any]:
        base = {
            "message_id": f"0b0e6c6e-3f7a-4c1e-9d0a-{n:012d}",
            "conversation_id": with_bob,
            "sender": "alice",
            "peer": "bob",
            "sent_at": 1_789_000_000_000 + n,
            "server_ts": 1_789_000_000_100 + n,
            "text": f"row {n}",
        }
        return base | changes

    def case(name: str, rows: list[dict[str, Any]], expected: str) -> dict[str, Any]:
        entry = {"name": name, "username": "alice", "messages": rows, "expected": expected}
        messages = [BackupMessage(**r) for r in rows]
        decision = check_archive_rows("alice", messages)
        check(entry, "ok" if decision is None else decision.reason)
        return entry

    good = [row(1), row(2, sender="bob"), row(3, conversation_id=with_self, peer="alice")]
    return [
        case("own and bob's messages, and a note to self", good, "ok"),
        case("no messages", [], "ok"),
        case("an id that is no UUIDv4", [*good, row(4, message_id="m-forged")], "link_archive_malformed"),
        case(
            "an id in upper case",
            [row(4, message_id="0B0E6C6E-3F7A-4C1E-9D0A-000000000004")],
            "link_archive_malformed",
        ),
        case(
            "a conversation of other accounts", [row(4, conversation_id=bob_carol)], "link_archive_malformed"
        ),
        case(
            "bob's words in the conversation with carol",
            [row(4, conversation_id=direct_conversation_id(alice, Username("carol")), sender="bob")],
            "link_archive_malformed",
        ),
        case(
            "a sender who is neither alice nor the peer", [row(4, sender="carol")], "link_archive_malformed"
        ),
        case(
            "the note to self put in bob's mouth",
            [row(4, conversation_id=with_self, peer="alice", sender="bob")],
            "link_archive_malformed",
        ),
        case("the peer does not match the conversation", [row(4, peer="carol")], "link_archive_malformed"),
        case(
            "a group conversation",
            [row(4, conversation_id="grp-" + "0" * 32, peer="grp-" + "0" * 32)],
            "link_archive_malformed",
        ),
        case(
            "a peer that is not a normal username",
            [row(4, peer="Bob", conversation_id=direct_conversation_id(alice, Username("Bob")))],
            "link_archive_malformed",
        ),
        case(
            "an empty peer",
            [row(4, peer="", conversation_id=direct_conversation_id(alice, Username("")))],
            "link_archive_malformed",
        ),
        case(
            "a text that is not well-formed Unicode (a lone surrogate)",
            [row(4, text="lone \ud800 half")],
            "link_archive_malformed",
        ),
        # Bytes of UTF-8, not characters: 131 072 bytes is the most a 15.8 body carries.
        case("a text of 131 072 UTF-8 bytes", [row(4, text="x" * (MAX_ROW_TEXT_BYTES - 3) + "\u20ac")], "ok"),
        case(
            "a text of 131 073 UTF-8 bytes in fewer characters",
            [row(4, text="x" * (MAX_ROW_TEXT_BYTES - 2) + "\u20ac")],
            "link_archive_malformed",
        ),
    ]


def restore_section() -> list[dict[str, Any]]:
    """restore_rows (15.10.1): the rows a restored backup adds; the others skipped and counted."""
    alice, bob, carol = Username("alice"), Username("bob"), Username("carol")
    with_bob = direct_conversation_id(alice, bob)
    with_carol = direct_conversation_id(alice, carol)
    with_self = direct_conversation_id(alice, alice)
    group = "grp-" + "5" * 32

    def row(n: int, **changes: Any) -> dict[str, Any]:
        base = {
            "message_id": f"7e57a11c-3f7a-4c1e-9d0a-{n:012d}",
            "conversation_id": with_bob,
            "sender": "alice",
            "peer": "bob",
            "sent_at": 1_789_000_000_000 + n,
            "server_ts": 1_789_000_000_100 + n,
            "text": f"row {n}",
        }
        return base | changes

    def case(name: str, rows: list[dict[str, Any]], expected: dict[str, Any]) -> dict[str, Any]:
        entry = {"name": name, "username": "alice", "messages": rows, "expected": expected}
        sorted_rows = restore_rows("alice", [BackupMessage(**r) for r in rows])
        got = {
            "kept": [[m.message_id, m.peer] for m in sorted_rows.rows],
            "group": sorted_rows.group,
            "unfit": sorted_rows.unfit,
            "repeated": sorted_rows.repeated,
        }
        if got != expected:
            raise SystemExit(f"case {name!r}: expected {expected}, the code says {got}")
        return entry

    def kept(*pairs: tuple[int, str], group: int = 0, unfit: int = 0, repeated: int = 0) -> dict[str, Any]:
        ids = [[row(n)["message_id"], peer] for n, peer in pairs]
        return {"kept": ids, "group": group, "unfit": unfit, "repeated": repeated}

    note = {"conversation_id": with_self, "peer": "alice"}
    return [
        case("no rows", [], kept()),
        case(
            "direct rows and a note to self; group rows skipped and counted",
            [
                row(1),
                row(2, sender="bob"),
                row(3, **note),
                row(4, conversation_id=group, peer=group),
                row(5, conversation_id=group, peer=group, sender="bob"),
            ],
            kept((1, "bob"), (2, "bob"), (3, "alice"), group=2),
        ),
        case(
            "rows that fail the hand-over's check are skipped, the others kept",
            [
                row(1),
                row(2, sender="carol"),
                row(3, conversation_id=direct_conversation_id(bob, carol)),
                row(4, message_id="m-forged"),
                row(5, text="lone \udc00 half"),
                row(6, sender="bob"),
            ],
            kept((1, "bob"), (6, "bob"), unfit=4),
        ),
        case(
            "a repeated message id: the first row kept",
            [row(1), row(1, text="another text"), row(2, sender="bob"), row(2, sender="bob", sent_at=1)],
            kept((1, "bob"), (2, "bob"), repeated=2),
        ),
        case(
            "a skipped row does not take the id of a later row that fits",
            [row(1, sender="carol"), row(1)],
            kept((1, "bob"), unfit=1),
        ),
        case(
            "an own row without its peer takes the one who wrote in its conversation",
            [row(1, peer="alice"), row(2, sender="bob"), row(3, peer="alice")],
            kept((1, "bob"), (2, "bob"), (3, "bob")),
        ),
        case(
            "an own row without its peer where no one else wrote is skipped",
            [row(1, peer="alice"), row(2, sender="bob", conversation_id=with_carol, peer="carol")],
            kept(unfit=2),
        ),
        case(
            "a peer is never taken from a row that does not fit",
            [
                row(1, sender="carol", conversation_id=with_carol, peer="bob"),
                row(2, peer="alice", conversation_id=with_carol),
            ],
            kept(unfit=2),
        ),
        case(
            "a row of the peer's own is not repaired",
            [row(1, sender="bob", peer="alice"), row(2, sender="bob")],
            kept((2, "bob"), unfit=1),
        ),
    ]


def build() -> dict[str, Any]:
    return {
        "description": "Device linking (PROTOCOL.md 15.10.2); generated by scripts/make_v2_link_vectors.py",
        "link": {
            "codes": code_section(),
            "choose": choose_section(),
            "accept": accept_section(),
            "archives": archive_section(),
            "rows": rows_section(),
            "restore_rows": restore_section(),
        },
    }


if __name__ == "__main__":
    sys.exit(vector_file.main(__doc__, OUTPUT, __file__, build))
