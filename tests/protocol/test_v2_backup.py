"""History backups (PROTOCOL.md 15.10): the shared vectors, and that every single-character
typo of a recovery key is caught by its checksum before any decryption."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from make_v2_backup_vectors import outcome

from securechat.protocol.v2.backup import (
    ALPHABET,
    Archive,
    BackupMessage,
    backup_aad,
    backup_key,
    encode_archive,
    format_recovery_key,
    open_backup,
    padded_length,
    parse_recovery_key,
    seal_backup,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads((ROOT / "tests" / "data" / "backup_v2_vectors.json").read_text())[
    "history_backup"
]


def test_the_vector_file_is_what_the_generator_makes() -> None:
    script = ROOT / "scripts" / "make_v2_backup_vectors.py"
    completed = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, check=False)
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("case", VECTORS["recovery_keys"][0]["cases"], ids=lambda c: c["name"])
def test_recovery_key_text_forms(case: dict[str, Any]) -> None:
    assert outcome(lambda: parse_recovery_key(case["text"])) == case["expected"]
    if case["expected"] == "ok":
        assert parse_recovery_key(case["text"]).hex() == case["key_hex"]


def test_the_shown_form_is_64_characters_in_16_groups() -> None:
    entry = VECTORS["recovery_keys"][0]
    shown = format_recovery_key(bytes.fromhex(entry["key_hex"]))
    assert shown == entry["shown"]
    groups = shown.split(" ")
    assert len(groups) == 16 and all(len(g) == 4 and set(g) <= set(ALPHABET) for g in groups)


def test_every_single_character_typo_is_caught_by_the_checksum() -> None:
    compact = VECTORS["recovery_keys"][0]["shown"].replace(" ", "")
    for index, original in enumerate(compact):
        for char in ALPHABET:
            if char == original:
                continue
            typed = compact[:index] + char + compact[index + 1 :]
            assert outcome(lambda typed=typed: parse_recovery_key(typed)) == "recovery_key_checksum"


@pytest.mark.parametrize("case", VECTORS["seals"], ids=lambda c: str(c["archive"]["version"]))
def test_seal_vectors(case: dict[str, Any]) -> None:
    key = bytes.fromhex(case["recovery_key_hex"])
    doc = case["archive"]
    archive = Archive(
        doc["username"],
        doc["version"],
        doc["created_at"],
        tuple(BackupMessage(**m) for m in doc["messages"]),
    )
    assert backup_key(key, archive.username, archive.version).hex() == case["backup_key_hex"]
    assert backup_aad(archive.username, archive.version).hex() == case["aad_hex"]
    assert encode_archive(archive).hex() == case["plaintext_hex"]
    sealed = seal_backup(key, archive, bytes.fromhex(case["iv_hex"]))
    assert sealed.hex() == case["sealed_hex"]
    assert open_backup(key, archive.username, archive.version, sealed) == archive


@pytest.mark.parametrize("case", VECTORS["openings"], ids=lambda c: c["name"])
def test_open_vectors(case: dict[str, Any]) -> None:
    got = outcome(
        lambda: open_backup(
            bytes.fromhex(case["recovery_key_hex"]),
            case["username"],
            case["version"],
            bytes.fromhex(case["sealed_hex"]),
            highest_seen=case["highest_seen"],
        )
    )
    assert got == case["expected"]


@pytest.mark.parametrize("case", VECTORS["padding"], ids=lambda c: str(c["length"]))
def test_padding_vectors(case: dict[str, int]) -> None:
    assert padded_length(case["length"]) == case["padded"]


def test_padding_costs_at_most_12_percent_above_the_minimum() -> None:
    for length in range(4096, 2_000_000, 997):
        padded = padded_length(length)
        assert length <= padded <= length * 1.12


def test_a_different_key_is_never_accepted_as_a_typo_of_another() -> None:
    # Two keys' shown forms differ, and each parses to its own key only.
    first, second = bytes(32), bytes([1]) + bytes(31)
    assert parse_recovery_key(format_recovery_key(first)) == first
    assert parse_recovery_key(format_recovery_key(second)) == second
    assert format_recovery_key(first) != format_recovery_key(second)
