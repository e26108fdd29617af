#!/usr/bin/env python3
"""Generate tests/data/backup_v2_vectors.json, the history-backup vectors (PROTOCOL.md 15.10).

Usage:
    python scripts/make_v2_backup_vectors.py            # (re)write the vector file
    python scripts/make_v2_backup_vectors.py --check    # exit 1 if the file is not what this script makes

Deterministic: recovery keys and IVs are derived here from fixed labels. Byte strings are
lower-case hex in ``_hex`` members. ``expected`` is ``ok`` or a reason of
``securechat.protocol.v2.backup``; each is written here by hand, and the script runs the
Python code on every case and stops if the code disagrees.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import vector_file

from securechat.protocol.v2.backup import (
    Archive,
    BackupMessage,
    BackupRefused,
    backup_aad,
    backup_key,
    encode_archive,
    format_recovery_key,
    open_backup,
    padded_length,
    parse_recovery_key,
    seal_backup,
)

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "backup_v2_vectors.json"


def fixed(label: str, size: int) -> bytes:
    return hashlib.sha256(f"securechat/v2/backup-vectors/{label}".encode()).digest()[:size]


def outcome(work: Callable[[], object]) -> str:
    try:
        work()
    except BackupRefused as exc:
        return exc.reason
    return "ok"


def expect(case: dict[str, Any], work: Callable[[], object]) -> None:
    got = outcome(work)
    if got != case["expected"]:
        raise SystemExit(f"case {case['name']!r}: expected {case['expected']}, the code says {got}")


def swap(text: str, index: int, new: str) -> str:
    return text[:index] + new + text[index + 1 :]


def recovery_key_cases() -> list[dict[str, Any]]:
    key = fixed("key-a", 32)
    shown = format_recovery_key(key)
    compact = shown.replace(" ", "")
    # A typo: the first character replaced by the next in the alphabet.
    typo_char = "1" if compact[0] != "1" else "2"
    cases: list[dict[str, Any]] = [
        {"name": "as shown", "text": shown, "expected": "ok"},
        {"name": "lower case, no spaces", "text": compact.lower(), "expected": "ok"},
        {"name": "hyphens and extra spaces", "text": "-".join(shown.split(" ")) + "  ", "expected": "ok"},
        {
            "name": "a typo in the first character",
            "text": swap(compact, 0, typo_char),
            "expected": "recovery_key_checksum",
        },
        {
            "name": "two characters swapped",
            "text": compact[1] + compact[0] + compact[2:],
            "expected": "recovery_key_checksum" if compact[0] != compact[1] else "ok",
        },
        {"name": "one character short", "text": compact[:-1], "expected": "recovery_key_malformed"},
        {"name": "one character too many", "text": compact + "0", "expected": "recovery_key_malformed"},
        {
            "name": "U is not in the alphabet",
            "text": swap(compact, 5, "U"),
            "expected": "recovery_key_malformed",
        },
        {"name": "empty", "text": "", "expected": "recovery_key_malformed"},
    ]
    # O read as 0 and I, L as 1: the same key.
    for read_as, char in (("0", "O"), ("1", "I"), ("1", "L")):
        if read_as in compact:
            index = compact.index(read_as)
            cases.append(
                {
                    "name": f"{char} read as {read_as}",
                    "text": swap(compact, index, char.lower()),
                    "expected": "ok",
                }
            )
    for case in cases:
        expect(case, functools.partial(parse_recovery_key, str(case["text"])))
        if case["expected"] == "ok":
            case["key_hex"] = key.hex()
            assert parse_recovery_key(case["text"]) == key
    return [{"key_hex": key.hex(), "shown": shown, "cases": cases}]


def archive(version: int) -> Archive:
    return Archive(
        "alice",
        version,
        1_790_000_000_000 + version,
        (
            BackupMessage(
                "0b0e6c6e-3f7a-4c1e-9d0a-000000000001",
                "dm-" + "0" * 64,
                "alice",
                "bob",
                1_789_000_000_000,
                1_789_000_000_100,
                "hello bob",
            ),
            BackupMessage(
                "0b0e6c6e-3f7a-4c1e-9d0a-000000000002",
                "dm-" + "0" * 64,
                "bob",
                "bob",
                1_789_000_000_200,
                1_789_000_000_300,
                'héllo, ünïcode \u2028 "quoted" \\ and a\nnew line ✓',
            ),
        ),
    )


def archive_json(value: Archive) -> dict[str, Any]:
    return {
        "username": value.username,
        "version": value.version,
        "created_at": value.created_at,
        "messages": [message.to_json() for message in value.messages],
    }


def seal_section() -> dict[str, Any]:
    key = fixed("key-a", 32)
    other = fixed("key-b", 32)
    iv = fixed("iv-1", 12)
    sealed = seal_backup(key, archive(3), iv)
    seals = [
        {
            "recovery_key_hex": key.hex(),
            "archive": archive_json(archive(version)),
            "iv_hex": fixed(f"iv-{version}", 12).hex(),
            "backup_key_hex": backup_key(key, "alice", version).hex(),
            "aad_hex": backup_aad("alice", version).hex(),
            "plaintext_hex": encode_archive(archive(version)).hex(),
            "sealed_hex": seal_backup(key, archive(version), fixed(f"iv-{version}", 12)).hex(),
        }
        for version in (1, 3)
    ]

    def opening(name: str, expected: str, **changes: Any) -> dict[str, Any]:
        case: dict[str, Any] = {
            "name": name,
            "recovery_key_hex": key.hex(),
            "username": "alice",
            "version": 3,
            "highest_seen": 0,
            "sealed_hex": sealed.hex(),
            "expected": expected,
        }
        case.update(changes)
        expect(
            case,
            lambda: open_backup(
                bytes.fromhex(case["recovery_key_hex"]),
                case["username"],
                case["version"],
                bytes.fromhex(case["sealed_hex"]),
                highest_seen=case["highest_seen"],
            ),
        )
        return case

    flipped = bytearray(sealed)
    flipped[20] ^= 1
    # A blob whose AEAD opens but whose archive names another version: only a holder of
    # the recovery key can make one, and the client still refuses it.
    mislabelled = seal_backup(key, Archive("alice", 4, 1, ()), iv)
    # Sealed for version 3 under the right key and AAD, but with the archive saying 4.
    inner = encode_archive(Archive("alice", 4, 1, ()))
    from securechat.protocol.primitives import aes_gcm_encrypt

    wrong_inner = iv + aes_gcm_encrypt(backup_key(key, "alice", 3), iv, inner, backup_aad("alice", 3))
    openings = [
        opening("as sealed", "ok"),
        opening("the same version already seen", "ok", highest_seen=3),
        opening("a rollback: an older version than one seen", "backup_rollback", highest_seen=4),
        opening("another recovery key", "backup_failed", recovery_key_hex=other.hex()),
        opening("another account", "backup_failed", username="mallory"),
        opening("presented as another version", "backup_failed", version=4),
        opening("one bit flipped", "backup_failed", sealed_hex=bytes(flipped).hex()),
        opening("truncated by one byte", "backup_failed", sealed_hex=sealed[:-1].hex()),
        opening("truncated to the IV", "backup_failed", sealed_hex=sealed[:12].hex()),
        opening("empty", "backup_failed", sealed_hex=""),
        opening("version 4's blob presented as 3", "backup_failed", sealed_hex=mislabelled.hex()),
        opening(
            "opens, but the archive names another version", "backup_malformed", sealed_hex=wrong_inner.hex()
        ),
    ]
    padding = [
        {"length": n, "padded": padded_length(n)} for n in (0, 1, 4096, 4097, 65_536, 65_537, 1_000_000)
    ]
    return {"seals": seals, "openings": openings, "padding": padding}


def build() -> dict[str, Any]:
    return {
        "description": "History backups under a recovery key (PROTOCOL.md 15.10); scripts/make_v2_backup_vectors.py",
        "history_backup": {"recovery_keys": recovery_key_cases(), **seal_section()},
    }


def main() -> int:
    return vector_file.main(__doc__, OUTPUT, __file__, build)


if __name__ == "__main__":
    sys.exit(main())
