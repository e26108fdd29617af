"""Server settings: read once at start from ``SECURECHAT_*`` environment variables."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def web_origin(value: str | None) -> str | None:
    """A configured origin written as browsers send it in ``Origin``: lower-case scheme
    and host (IDNA), no default port, no path. Anything else is refused at start."""
    if not value:
        return None
    parts = urlsplit(value.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError("must be an origin such as https://chat.example.org (no path)")
    host = parts.hostname.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError if it is not a port
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")


_UTC_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|\+00:00)")


def utc_instant(value: object) -> datetime | None:
    """An ISO-8601 UTC date-time such as ``2027-01-01T00:00:00Z`` (or ``+00:00``; at most milliseconds); empty
    or unset is none. Anything else, a date without a time or another offset included,
    stops the server at start: a cut-off read in the wrong zone would refuse sends hours
    early or late."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is UTC):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 UTC date-time such as 2027-01-01T00:00:00Z")
    text = value.strip()
    if not text:
        return None
    if not _UTC_INSTANT.fullmatch(text):
        raise ValueError("must be an ISO-8601 UTC date-time such as 2027-01-01T00:00:00Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SECURECHAT_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None  # default: SQLite in data_dir
    # Several instances on one database: Redis carries live events between them. The
    # channel must be this deployment's own if the Redis server is shared.
    redis_url: str | None = None
    redis_channel: str = "securechat:inbox-events"
    # Events waiting to be published to Redis, at most (publishing never holds up a
    # commit); past it the oldest are dropped and sockets re-read their inboxes instead.
    redis_publish_queue_max: int = Field(default=10_000, ge=1)
    host: str = "127.0.0.1"
    port: int = 8000
    # Behind a TLS reverse proxy: the proxy addresses whose X-Forwarded-Proto/For to trust
    # (comma-separated), so the refresh cookie is Secure and HSTS is sent. Unset: none.
    forwarded_allow_ips: str | None = None
    # Web origins besides the server's own that may open the WebSocket (comma-separated),
    # e.g. when the app is served from another host name. Cross-origin HTTP stays closed.
    allowed_origins: str = ""
    # The origin the app is served from for its users, e.g. "https://chat.example.org"
    # behind a TLS proxy. When set, a WebSocket's Origin must be it (or one of
    # allowed_origins) whatever the Host header says: a Host header is the client's word,
    # so a site whose name resolves here (DNS rebinding, a proxy passing Host through)
    # would otherwise pass the check with its own name. Unset: the Host header names
    # the server's own origin, as before.
    public_origin: Annotated[str | None, AfterValidator(web_origin)] = None

    # Secrets never have a default in code: they come from the environment, from a
    # *_FILE path, or are generated into the data dir on first start.
    server_secret: SecretStr | None = None
    server_secret_file: Path | None = None

    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # Absolute session lifetime: a refresh-token family stops refreshing this long after
    # its login, however active it is, so a stolen family cannot be kept alive forever.
    session_max_age_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # For this long after a rotation, the token just spent gets the same new pair again
    # (two tabs refreshing at once, an answer lost on the way) instead of ending the
    # session. A thief who replays a stolen token within it gets that pair too, so it is
    # kept to seconds; 0 turns it off. Reuse after it revokes the family.
    refresh_reuse_grace_seconds: float = Field(default=5.0, ge=0, le=60)

    # Slow and idle connections, guarded below the app (server/connections.py), per
    # process since they hold its file descriptors. A request's head must arrive within
    # header_timeout_seconds of its first byte (of the connection's opening, for the
    # first request) and its body must progress at least every
    # body_progress_timeout_seconds, or the connection gets 408 and is closed: without
    # them, a connection sending half a request line stayed open for good.
    header_timeout_seconds: float = Field(default=15.0, gt=0)
    body_progress_timeout_seconds: float = Field(default=15.0, gt=0)
    # Open connections (HTTP and WebSocket) per client address (an IPv6 /64 counts as
    # one) and in all (unset: the open-file limit, raised at start to the hard limit,
    # less a reserve for the database and files). Beyond: 429 (per address) or 503 (in
    # all) too_many_connections, and closed. A browser opens up to 6 connections to a
    # server plus a socket per tab, so the default leaves room for dozens of users behind
    # one NAT. Trusted proxies (forwarded_allow_ips) are not capped per address: every
    # client behind them shares their address, so cap clients at the proxy.
    max_connections_per_address: int = Field(default=256, ge=1)
    max_connections: int | None = Field(default=None, ge=1)

    max_body_bytes: int = 1024 * 1024
    max_envelope_bytes: int = 768 * 1024
    default_kdf_iterations: int = 600_000

    # argon2id of a 256-bit auth key: the input has full entropy, so the cost only has
    # to make a stolen hash useless as a login credential, not resist guessing.
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 8192
    argon2_parallelism: int = 1
    password_hash_concurrency: int = 2
    # Of those hashing slots, how many only logins may use: a storm of password changes
    # or registrations then cannot starve logins (needs a concurrency of 2 or more).
    password_hash_login_reserve: int = Field(default=1, ge=0)
    # Hashing requests of each kind (logins; password changes and registrations) that
    # may wait for a slot, and for how long. Past either the request is refused at once
    # with 503 server_busy, so a storm gets quick answers instead of an endless queue.
    # Per process: the cap is on this process's CPU, which other instances do not share.
    password_hash_queue: int = Field(default=32, ge=0)
    password_hash_wait_seconds: float = Field(default=5.0, gt=0)
    # Per account: password-change attempts a minute. Each costs two hashes and several
    # writes; a storm from one account (from many addresses, with its own password, so
    # intrusion detection has nothing to count) is refused before any of that.
    password_changes_per_minute: int = 5

    history_page_max: int = 200
    inbox_batch_max: int = 500
    ws_auth_timeout_seconds: float = 10.0
    ws_heartbeat_seconds: float = 30.0
    # How often an open WebSocket re-checks that its session was not revoked.
    ws_session_check_seconds: float = 30.0
    # Incoming frames per connection: sustained rate and burst. Past them the server
    # stops reading that socket until it is back within budget.
    # Open inbox sockets per instance, in all, per user and per client address (an IPv6
    # /64 counts as one; behind a trusted proxy, the forwarded address). Beyond: refused,
    # 4503/4429. Per address because sockets that have not yet authenticated count too.
    ws_max_connections: int = 10_000
    ws_max_per_user: int = 20
    ws_max_per_address: int = Field(default=128, ge=1)
    ws_frames_per_second: float = 400.0
    ws_frame_burst: float = 800.0
    # Per address, in a sliding window of a minute (stored, so shared by instances).
    register_per_minute: int = 10
    prelogin_per_minute: int = 60
    ws_connects_per_minute: int = 120
    # Per account: messages sent over HTTP (the WebSocket is paced by its frame budget).
    messages_per_minute: int = 1200
    # Per account: calls that hand the server receipts to relay (PROTOCOL.md 9.3), over
    # HTTP and the WebSocket alike: signed receipts and the transitional unsigned "read".
    receipts_per_minute: int = 1200
    # Per account: group membership changes (creating a group counts). Each one is
    # stored for good, delivered to every member and replayed by every client that later
    # meets the group, so one member must not grow a chain without limit.
    group_changes_per_minute: int = 30
    # Per account: lookups that tell whether a username exists (public keys, a direct
    # conversation, a group change naming unknown users) for names the account shares no
    # conversation with; a name that does not exist costs the same (services/lookups.py).
    # Room for a new group of 255 strangers; the apps' re-checks of contacts are free.
    lookups_per_minute: int = Field(default=300, ge=1)
    # Protocol v2 (PROTOCOL.md 15.16). Per requesting account: prekey bundle claims a
    # minute. Each claim takes one one-time prekey from every device it names, so without
    # a limit one account could drain another's in seconds (the bundles then come
    # without one, which costs the victim the one-time prekey's protection, 15.4).
    bundle_claims_per_minute: int = Field(default=60, ge=1)
    # Per account: device list publications and prekey uploads a minute. Each costs up
    # to 100 signature checks; a device needs a few a week.
    device_updates_per_minute: int = Field(default=60, ge=1)
    # Unclaimed one-time prekeys the server keeps per device (uploads past it: 409
    # too_many_prekeys), bounding what an account stores: 32 devices times this.
    max_one_time_prekeys: int = Field(default=500, ge=1)
    # Device credentials (PROTOCOL.md 15.16): how long one lasts (a device renews it by
    # signing a new challenge), and challenges per session a minute (each costs the
    # server a row and, answered, a signature check; per session so that a stolen token
    # cannot spend the account's real devices' budget).
    device_token_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    device_challenges_per_minute: int = Field(default=120, ge=1)
    # A device inbox page holds at most this many bytes of stored envelope and slot text
    # (and at least one entry, whatever its size), so a page of 500 large envelopes
    # is never built in memory.
    device_inbox_page_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Migration (PROTOCOL.md 15.12): from this UTC instant on, v1 message sends are refused
    # with 410 v1_retired; v1 history and inboxes stay readable and v2 sends go on. Unset
    # or empty: no cut-off.
    v1_sends_until: Annotated[datetime | None, BeforeValidator(utc_instant)] = None
    # History backups (15.10): the largest sealed backup one account may store, in bytes
    # of ciphertext. It also counts against file_quota_bytes.
    history_backup_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Per account: history backup uploads a minute (each may rewrite up to the cap above).
    history_backup_uploads_per_minute: int = Field(default=2, ge=1)

    # Every instance deletes expired rate-limit events, login attempts and blocks this
    # often, in transactions of at most prune_batch_rows rows each (services/pruning.py),
    # so those tables do not grow with every address ever seen.
    prune_interval_seconds: float = Field(default=60.0, gt=0)
    prune_batch_rows: int = Field(default=1000, ge=1)

    # Intrusion detection (login): an address with this many failed (or in-flight)
    # logins within the window is blocked; each further block within a day doubles.
    ids_window_seconds: int = 300
    ids_ip_failures: int = 5
    ids_block_seconds: int = 300
    ids_max_block_seconds: int = 24 * 3600
    ids_repeat_window_seconds: int = 24 * 3600
    # Per account: past this many failures in the window from anywhere, only addresses
    # that have not yet failed for the account may try it (the owner still gets in).
    ids_account_failures: int = 10

    # Encrypted files: the largest plaintext size accepted, how many unfinished uploads
    # one user may have, and how long an unfinished upload is kept. Chunks go to the
    # data directory ("directory") or the database ("database"); "auto" picks the
    # directory with SQLite and the database with PostgreSQL (several hosts).
    max_file_bytes: int = 100 * 1024 * 1024
    max_pending_uploads: int = 8
    upload_expiry_seconds: int = 24 * 3600
    file_store: Literal["auto", "directory", "database"] = "auto"
    # Per account: bytes of encrypted chunks its uploads may hold (registration is open,
    # so without a quota one account could fill the disk). An upload reserves its whole
    # stored size when it starts; past the quota: 413 quota_exceeded.
    file_quota_bytes: int = 1024 * 1024 * 1024
    # Per account: MiB of chunks uploaded per minute (each chunk counts as 1 MiB), so one
    # account cannot take the disk's whole bandwidth; past it: 429 rate_limited.
    upload_mib_per_minute: int = 256

    log_json: bool = False
    # /metrics answers loopback clients; others must present this as a bearer token.
    metrics_token: SecretStr | None = None

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url[len("postgresql://") :]
            elif url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'securechat.db').resolve()}"

    def load_server_secret(self) -> bytes:
        """The HMAC/JWT secret: from settings, a file, or generated once (0600) in the data dir."""
        if self.server_secret is not None:
            return self.server_secret.get_secret_value().encode()
        path = self.server_secret_file or (self.data_dir / "server-secret")
        if path.exists():
            return path.read_bytes().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_urlsafe(48).encode()
        # O_EXCL: if two instances start at once on a shared data dir, one secret wins.
        try:
            with open(path, "xb", opener=_private_opener) as handle:
                handle.write(value)
        except FileExistsError:
            return path.read_bytes().strip()
        return value


def _private_opener(path: str, flags: int) -> int:
    import os

    return os.open(path, flags, 0o600)
