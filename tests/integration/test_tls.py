"""`securechat serve --tls-cert --tls-key`: HTTPS and WSS from the server itself, with the
Secure refresh cookie and HSTS that TLS calls for."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.typing import Origin

from ..api.support import registration_body
from ..conftest import free_port


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_serve_with_tls_gives_secure_cookies_hsts_and_wss(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "securechat",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    context = ssl.create_default_context(cafile=str(cert))
    try:
        with httpx.Client(base_url=url, verify=context, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                    time.sleep(0.1)
            page = client.get("/")
            assert page.headers["strict-transport-security"].startswith("max-age=")
            response = client.post(
                "/api/v1/auth/register",
                json=registration_body("alice"),
                headers={"X-SecureChat-Refresh": "cookie"},
            )
            assert response.status_code == 201, response.text
            cookie = response.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie
            token = response.json()["access_token"]

        async def over_wss() -> dict[str, object]:
            async with websockets.connect(
                f"wss://127.0.0.1:{port}/api/v1/ws", ssl=context, origin=Origin(url)
            ) as socket:
                await socket.send(json.dumps({"type": "auth", "token": token, "since": 0}))
                ready: dict[str, object] = json.loads(await asyncio.wait_for(socket.recv(), 10))
                return ready

        assert asyncio.run(over_wss())["type"] == "ready"
        # Plain HTTP to the TLS port gets nowhere.
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            assert plain.status_code >= 400
        except httpx.HTTPError:
            pass
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
