"""Prometheus /metrics: counts logins, blocks, stored messages and requests by route
template (never a username or id), and answers only loopback scrapers or token holders."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import SecretStr

from .conftest import RegisterUser
from .support import bearer, client_from, material, seal

WRONG_KEY = "A" * 43 + "="


def value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{sample} not in metrics")


async def test_metrics_count_what_happens_without_user_data(
    app: FastAPI, register_user: RegisterUser
) -> None:
    alice = await register_user("alice")
    bob = await register_user("bob")
    async with client_from(app, "127.0.0.1") as local, client_from(app, "198.51.100.3") as remote:
        await local.post("/api/v1/auth/login", json={"username": "alice", "auth_key": alice.auth_key})
        await remote.post("/api/v1/auth/login", json={"username": "alice", "auth_key": WRONG_KEY})
        envelope = seal(
            material("alice").identity, [material("alice").identity, material("bob").identity], "hi"
        )
        sent = await local.post("/api/v1/messages", headers=alice.headers, json={"envelope": envelope})
        assert sent.status_code == 201
        await local.get("/api/v1/users/bob/keys", headers=bob.headers)
        scraped = await local.get("/metrics")
    assert scraped.status_code == 200
    text = scraped.text
    assert value(text, 'securechat_logins_total{outcome="success"}') == 1
    assert value(text, 'securechat_logins_total{outcome="failure"}') == 1
    assert value(text, "securechat_messages_stored_total") == 1
    assert 'route="/api/v1/users/{username}/keys"' in text
    # Labels are route templates: no username, token or message id appears.
    for secret in ("alice", "bob", alice.tokens["access_token"], sent.json()["message_id"]):
        assert secret not in text


async def test_metrics_refuse_remote_scrapers_without_the_token(app: FastAPI) -> None:
    async with client_from(app, "198.51.100.4") as remote:
        refused = await remote.get("/metrics")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        app.state.context.settings.metrics_token = SecretStr("s3cret-metrics-token")
        assert (await remote.get("/metrics", headers=bearer("wrong"))).status_code == 403
        allowed = await remote.get("/metrics", headers=bearer("s3cret-metrics-token"))
        assert allowed.status_code == 200
        assert "securechat_websocket_connections" in allowed.text
