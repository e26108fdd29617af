"""Backups of a server's data, consistent while it serves, and their restore
(``securechat admin backup`` / ``restore``; README "Backup and restore").

A backup is a directory:

- ``securechat.db`` (SQLite): a copy made with SQLite's online backup API
  (``sqlite3.Connection.backup``) in one step, inside one read transaction, so it is
  the database as it was at one instant; in WAL mode that read blocks no writer.
- ``securechat.pgdump`` (PostgreSQL): ``pg_dump --format=custom``, which reads
  everything in one repeatable-read snapshot while the server keeps writing.
- ``files/``: the encrypted file chunks, when they live in the data directory (the
  SQLite default). Chunks never change once written (a chunk's name holds its
  SHA-256), so copying the ones the copied database names, after the copy, gives a
  consistent set; a chunk deleted in between (its file expired or was abandoned) is
  reported, not invented.
- ``manifest.json``, written last: what the backup holds, and that it is complete.

What a backup holds is what the server holds: ciphertext and metadata, never a
plaintext or a private key in the clear. The server secret (``server-secret``, which
signs access tokens) is deliberately left out: keep it with your other secrets. A
server restored without it makes a new one, and everyone logs in again.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import make_url

from ..settings import Settings

MANIFEST = "manifest.json"
SQLITE_FILE = "securechat.db"
PG_DUMP_FILE = "securechat.pgdump"
FILES_DIR = "files"
FORMAT = 1
BUSY_TIMEOUT_S = 30.0


class BackupError(Exception):
    """A backup or restore that cannot go ahead (the message says why)."""


@dataclass
class BackupReport:
    path: Path
    database: Literal["sqlite", "postgresql"]
    # The command that dumps a PostgreSQL database (password left out), and whether it ran.
    command: list[str] | None = None
    performed: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    chunks_copied: int = 0
    chunks_missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RestoreReport:
    database: Literal["sqlite", "postgresql"]
    target: str
    command: list[str] | None = None
    performed: bool = True
    chunks_copied: int = 0


def _sqlite_path(settings: Settings) -> Path | None:
    url = make_url(settings.sqlalchemy_url())
    if not url.drivername.startswith("sqlite"):
        return None
    if not url.database:
        raise BackupError("the SQLite database has no file")
    return Path(url.database)


def _libpq(settings: Settings) -> tuple[dict[str, str], str]:
    """The PostgreSQL connection as libpq environment variables (so the password never
    shows in a process list), and the URL to print, without its password."""
    url = make_url(settings.sqlalchemy_url())
    env = {
        name: str(value)
        for name, value in {
            "PGHOST": url.host,
            "PGPORT": url.port,
            "PGUSER": url.username,
            "PGPASSWORD": url.password,
            "PGDATABASE": url.database,
        }.items()
        if value is not None
    }
    shown = url.set(drivername="postgresql", password=None).render_as_string(hide_password=True)
    return env, shown


def _empty_destination(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(f"{path} exists and is not an empty directory")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


def _file_store_is_directory(settings: Settings, is_sqlite: bool) -> bool:
    return settings.file_store == "directory" or (settings.file_store == "auto" and is_sqlite)


def _chunk_relative(file_id: str, index: int, digest: bytes) -> Path:
    # The layout of storage.chunks.DirectoryChunkStore.
    return Path(file_id[:2]) / file_id / f"{index}.{digest.hex()}"


def _counts(connection: sqlite3.Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in (
        "users",
        "messages",
        "inbox_entries",
        "conversations",
        "group_changes",
        "files",
        "file_chunks",
    ):
        (counts[table],) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return counts


def _schema_revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def backup(settings: Settings, destination: Path, *, run_pg_dump: bool = True) -> BackupReport:
    """Back up the server's data into ``destination`` (a new or empty directory)."""
    started = time.monotonic()
    source = _sqlite_path(settings)
    _empty_destination(destination)
    if source is None:
        report = _backup_postgresql(settings, destination, run_pg_dump)
    else:
        report = _backup_sqlite(settings, source, destination)
    report.seconds = round(time.monotonic() - started, 3)
    if report.performed:
        _write_manifest(destination, report, settings)
    return report


def _backup_sqlite(settings: Settings, source: Path, destination: Path) -> BackupReport:
    if not source.exists():
        raise BackupError(f"no database at {source}")
    partial = destination / f".{SQLITE_FILE}.partial"
    origin = sqlite3.connect(source, timeout=BUSY_TIMEOUT_S)
    try:
        origin.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        copy = sqlite3.connect(partial)
        try:
            # One step (pages=-1): the whole copy happens inside one read transaction, so
            # it is one instant of the database. Stepwise copies restart whenever
            # another connection writes, and could starve on a busy server.
            origin.backup(copy, pages=-1)
            # A file that stands alone: no WAL beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
            (check,) = copy.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
            counts = _counts(copy)
            chunks = copy.execute(
                "SELECT f.file_id, c.idx, c.digest FROM file_chunks c JOIN files f ON f.id = c.file_pk"
            ).fetchall()
        finally:
            copy.close()
    finally:
        origin.close()
    partial.chmod(0o600)
    _fsync(partial)
    partial.rename(destination / SQLITE_FILE)
    report = BackupReport(destination, "sqlite", counts=counts)
    if _file_store_is_directory(settings, True):
        root = settings.data_dir / FILES_DIR
        for file_id, index, digest in chunks:
            relative = _chunk_relative(str(file_id), int(index), bytes(digest))
            target = destination / FILES_DIR / relative
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                shutil.copyfile(root / relative, target)
            except FileNotFoundError:
                report.chunks_missing.append(str(relative))
                continue
            report.chunks_copied += 1
    return report


def _backup_postgresql(settings: Settings, destination: Path, run_pg_dump: bool) -> BackupReport:
    env, shown = _libpq(settings)
    dump = destination / PG_DUMP_FILE
    command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}"]
    report = BackupReport(destination, "postgresql", command=[*command, shown], performed=False)
    if not run_pg_dump or shutil.which("pg_dump") is None:
        return report
    # No shell, and every argument is ours (the program, its options and our own path).
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    dump.chmod(0o600)
    report.performed = True
    if _file_store_is_directory(settings, False) and (settings.data_dir / FILES_DIR).is_dir():
        # Chunks never change once written: a copy after the dump holds every chunk the
        # dump names, unless its file was deleted in between.
        shutil.copytree(settings.data_dir / FILES_DIR, destination / FILES_DIR)
        report.chunks_copied = sum(1 for p in (destination / FILES_DIR).rglob("*") if p.is_file())
    return report


def _write_manifest(destination: Path, report: BackupReport, settings: Settings) -> None:
    revision = None
    if report.database == "sqlite":
        connection = sqlite3.connect(destination / SQLITE_FILE)
        try:
            revision = _schema_revision(connection)
        finally:
            connection.close()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "database": report.database,
        "created_at_ms": int(time.time() * 1000),
        "schema_revision": revision,
        "counts": report.counts,
        "chunks_copied": report.chunks_copied,
        "chunks_missing": report.chunks_missing,
        "file_store": "directory" if (destination / FILES_DIR).is_dir() else "database",
    }
    partial = destination / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(destination / MANIFEST)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise BackupError(f"{path} holds no complete backup (no {MANIFEST})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def restore(backup_dir: Path, settings: Settings, *, run_pg_restore: bool = True) -> RestoreReport:
    """Restore a backup into the data dir (SQLite) or the database (PostgreSQL) that
    ``settings`` name. The server must be stopped, and the target must be empty: a
    restore never overwrites data."""
    manifest = read_manifest(backup_dir)
    target = _sqlite_path(settings)
    if manifest["database"] == "sqlite":
        if target is None:
            raise BackupError("this is a SQLite backup: restore it into a data dir, not PostgreSQL")
        report = _restore_sqlite(backup_dir, target)
    else:
        if target is not None:
            raise BackupError("this is a PostgreSQL backup: give the empty database's URL (--database-url)")
        report = _restore_postgresql(backup_dir, settings, run_pg_restore)
    if report.performed and (backup_dir / FILES_DIR).is_dir():
        files = settings.data_dir / FILES_DIR
        if files.exists() and any(files.iterdir()):
            raise BackupError(f"{files} is not empty")
        shutil.copytree(backup_dir / FILES_DIR, files, dirs_exist_ok=True)
        report.chunks_copied = sum(1 for p in files.rglob("*") if p.is_file())
    return report


def _restore_sqlite(backup_dir: Path, target: Path) -> RestoreReport:
    for existing in (target, target.with_name(target.name + "-wal")):
        if existing.exists():
            raise BackupError(
                f"{existing} exists: restore into a fresh data dir (a restore never overwrites)"
            )
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(backup_dir / SQLITE_FILE, partial)
    partial.chmod(0o600)
    connection = sqlite3.connect(partial)
    try:
        (check,) = connection.execute("PRAGMA integrity_check").fetchone()
    finally:
        connection.close()
    if check != "ok":
        partial.unlink()
        raise BackupError(f"the backup's database failed its integrity check: {check}")
    _fsync(partial)
    partial.rename(target)
    return RestoreReport("sqlite", str(target))


def _restore_postgresql(backup_dir: Path, settings: Settings, run_pg_restore: bool) -> RestoreReport:
    env, shown = _libpq(settings)
    command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    dump = str(backup_dir / PG_DUMP_FILE)
    report = RestoreReport(
        "postgresql", shown, command=[*command, f"--dbname={shown}", dump], performed=False
    )
    if not run_pg_restore or shutil.which("pg_restore") is None:
        return report
    # Only the database's name on the command line: host, user and password go by the
    # environment (without --dbname, pg_restore would print SQL instead).
    result = subprocess.run(  # noqa: S603 (no shell; the database's name is the operator's own setting)
        [*command, f"--dbname={env.get('PGDATABASE', '')}", dump],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed (is the database empty?): {result.stderr.strip()}")
    report.performed = True
    return report


def report_dict(report: BackupReport | RestoreReport) -> dict[str, Any]:
    data = asdict(report)
    return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}
