"""deploy/nginx/securechat.conf, run as shipped (only its ports, addresses and paths
rewritten), in front of two instances on PostgreSQL with Redis (issue 13, item 8): HTTPS
and the inbox WebSocket work through it on a non-default port, sockets are balanced by
least connections, the forwarded scheme and address reach the server, plain HTTP is
redirected. The same file with the old README's `Host $host` gets the WebSocket refused,
which is why the file says `$http_host`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
import websockets
from websockets.typing import Origin

from securechat.client.messenger import InboxItem, Messenger
from securechat.client.realtime import LiveInbox

from ..api.support import registration_body
from ..conftest import LiveServer, free_port, postgres_instances
from .conftest import PASSWORDS
from .test_tls import self_signed

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "securechat.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SPOOFED_ADDRESS = "203.0.113.9"


def rewrite(
    config: str, *, upstreams: list[int], https_port: int, http_port: int, cert: Path, key: Path
) -> str:
    """The shipped file on free loopback ports and a test certificate; nothing else."""
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;\n" for port in upstreams)
    config, count = re.subn(r"(    server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers, config)
    assert count == 1
    replacements = {
        "    listen [::]:80;\n": "",
        "    listen [::]:443 ssl;\n": "",
        "    listen 80;": f"    listen 127.0.0.1:{http_port};",
        "    listen 443 ssl;": f"    listen 127.0.0.1:{https_port} ssl;",
        "/etc/letsencrypt/live/chat.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/chat.example.org/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        assert old in config, old
        config = config.replace(old, new)
    return config


@contextmanager
def running_nginx(directory: Path, site: str) -> Iterator[None]:
    """nginx in the foreground with ``site`` in its http block, everything under ``directory``."""
    directory.mkdir()
    (directory / "securechat.conf").write_text(site)
    (directory / "nginx.conf").write_text(
        f"""daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 1024; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    include {directory}/securechat.conf;
}}
"""
    )
    arguments = [
        NGINX,
        "-p",
        str(directory),
        "-c",
        str(directory / "nginx.conf"),
        "-e",
        str(directory / "error.log"),
    ]
    checked = subprocess.run([*arguments, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_until_up(url: str, context: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/healthz", verify=context, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "nginx did not come up"
        time.sleep(0.1)


@asynccontextmanager
async def inbox_socket(url: str, token: str, context: ssl.SSLContext) -> AsyncIterator[dict[str, object]]:
    """A WebSocket through nginx, authenticated: yields the server's first answer."""
    async with websockets.connect(
        url.replace("https://", "wss://") + "/api/v1/ws", ssl=context, origin=Origin(url)
    ) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token, "since": 0}))
        yield json.loads(await asyncio.wait_for(socket.recv(), 10))


def open_sockets(instance: LiveServer) -> float:
    metrics = httpx.get(f"{instance.url}/metrics", timeout=5).text
    match = re.search(r"^securechat_websocket_connections (\S+)$", metrics, re.M)
    assert match, metrics
    return float(match.group(1))


def shipped_site(instances: tuple[LiveServer, ...], cert: Path, key: Path) -> tuple[str, str, int]:
    """The shipped config in front of ``instances`` on free ports: (config, HTTPS URL, HTTP port)."""
    https_port, http_port = free_port(), free_port()
    site = rewrite(
        CONFIG.read_text(),
        upstreams=[int(instance.url.rsplit(":", 1)[1]) for instance in instances],
        https_port=https_port,
        http_port=http_port,
        cert=cert,
        key=key,
    )
    return site, f"https://127.0.0.1:{https_port}", http_port


async def test_the_shipped_nginx_config_in_front_of_two_instances(tmp_path: Path) -> None:
    # Fails rather than skips: a machine that cannot run the config does not report it as checked.
    assert Path(NGINX).exists(), "nginx is missing: apt-get install nginx-light (scripts/test does)"
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    env = {"SECURECHAT_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    async with postgres_instances(tmp_path, "securechat_nginx", env) as (first, second):
        site, url, http_port = shipped_site((first, second), cert, key)
        with running_nginx(tmp_path / "nginx", site):
            await asyncio.to_thread(wait_until_up, url, context)
            async with httpx.AsyncClient(base_url=url, verify=context, timeout=10) as client:
                assert (await client.get("/readyz")).status_code == 200
                page = await client.get("/")
                assert page.status_code == 200 and "strict-transport-security" in page.headers
                registered = await client.post(
                    "/api/v1/auth/register",
                    json=registration_body("alice"),
                    headers={"X-SecureChat-Refresh": "cookie"},
                )
                assert registered.status_code == 201, registered.text
                # X-Forwarded-Proto reached the server and was trusted: the cookie is Secure.
                assert "Secure" in registered.headers["set-cookie"]
                token = registered.json()["access_token"]
                # A client's own X-Forwarded-For does not pass: the server counts the failed
                # login against the address nginx saw, not the one the client claims.
                failed = await client.post(
                    "/api/v1/auth/login",
                    json={"username": "alice", "auth_key": base64.b64encode(bytes(32)).decode()},
                    headers={"X-Forwarded-For": SPOOFED_ADDRESS},
                )
                assert failed.status_code == 401, failed.text
            connection = await asyncpg.connect(first.env["SECURECHAT_DATABASE_URL"])
            try:
                addresses = {row["ip"] for row in await connection.fetch("SELECT ip FROM auth_attempts")}
            finally:
                await connection.close()
            assert addresses == {"127.0.0.1"}, addresses
            redirect = httpx.get(f"http://127.0.0.1:{http_port}/x", timeout=5)
            assert redirect.status_code == 301 and redirect.headers["location"].startswith(
                "https://127.0.0.1"
            )

            # Eight sockets through nginx: each is ready, and least_conn spreads them.
            async with all_open([inbox_socket(url, token, context) for _ in range(8)]) as answers:
                assert [answer["type"] for answer in answers] == ["ready"] * 8
                counts = [open_sockets(first), open_sockets(second)]
                print(f"sockets per instance through nginx: {counts}")
                assert sum(counts) == 8 and min(counts) >= 3

        # The old README's `Host $host` drops the port: the WebSocket is refused.
        old = site.replace("proxy_set_header Host $http_host;", "proxy_set_header Host $host;")
        with running_nginx(tmp_path / "nginx-old", old):
            await asyncio.to_thread(wait_until_up, url, context)
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with inbox_socket(url, token, context):
                    pass
            assert refused.value.response.status_code == 403


@asynccontextmanager
async def all_open(managers: list) -> AsyncIterator[list]:  # type: ignore[type-arg]
    """Several async context managers entered together (all open at once)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(manager) for manager in managers]


async def test_a_client_behind_nginx_moves_to_the_other_instance_when_its_own_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill -9 the instance that holds bob's socket: through nginx he is back at once on
    the other instance, and every message alice had acknowledged, before or after, reaches
    him exactly once."""
    assert Path(NGINX).exists(), "nginx is missing: apt-get install nginx-light (scripts/test does)"
    cert, key = self_signed(tmp_path)
    # The client's WebSocket uses the default trust store, which this reads.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(cafile=str(cert))
    env = {"SECURECHAT_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    async with postgres_instances(tmp_path, "securechat_nginx_failover", env) as instances:
        site, url, _ = shipped_site(instances, cert, key)
        with running_nginx(tmp_path / "nginx", site):
            await asyncio.to_thread(wait_until_up, url, context)
            alice = Messenger(tmp_path / "alice", url, transport=httpx.AsyncHTTPTransport(verify=context))
            bob = Messenger(tmp_path / "bob", url, transport=httpx.AsyncHTTPTransport(verify=context))
            received: list[InboxItem] = []

            async def on_item(item: InboxItem) -> None:
                if item.kind == "message":
                    received.append(item)

            live = LiveInbox(bob, on_item)
            stop = asyncio.Event()
            runner: asyncio.Task[None] | None = None
            try:
                await alice.register("alice", PASSWORDS["alice"])
                await bob.register("bob", PASSWORDS["bob"])
                runner = asyncio.create_task(live.run(stop))
                await asyncio.wait_for(live.wait_connected(), 20)
                expected = [f"before the kill {i}" for i in range(10)]
                for text in expected:
                    await alice.send_text("bob", text)
                async with asyncio.timeout(20):
                    while len(received) < len(expected):
                        await asyncio.sleep(0.02)
                [holder] = [i for i in instances if open_sockets(i) == 1]
                holder.stop(kill=True)
                killed = time.monotonic()
                async with asyncio.timeout(30):
                    while live.connects < 2:
                        await asyncio.sleep(0.01)
                print(f"bob was back through nginx {time.monotonic() - killed:.3f} s after the kill")
                after = [f"after the kill {i}" for i in range(10)]
                for text in after:
                    await alice.send_text("bob", text)
                expected += after
                async with asyncio.timeout(30):
                    while len(received) < len(expected):
                        await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)  # room for a duplicate to show up, if there were one
                assert [item.text for item in received] == expected
                assert all(item.verified for item in received)
            finally:
                stop.set()
                if runner is not None:
                    await asyncio.wait_for(runner, 10)
                await alice.close()
                await bob.close()
