"""Prometheus metrics: one registry per app (so several apps in one process, as in the
tests, do not collide). Each instance exposes its own; Prometheus sums them.

Labels never carry user data: HTTP requests are labelled with the route's template
(``/api/v1/users/{username}/keys``), not the path.
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import Settings

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("securechat_websocket_connections", "Open inbox WebSockets", registry=r)
        self.messages = Counter("securechat_messages_stored", "Messages stored (sends accepted)", registry=r)
        self.logins = Counter(
            "securechat_logins", "Login attempts by outcome", ["outcome"], registry=r
        )  # success | failure | blocked | throttled
        self.blocks = Counter("securechat_blocks", "Addresses blocked by intrusion detection", registry=r)
        self.rate_limited = Counter(
            "securechat_rate_limited", "Requests refused by a rate limit", ["action"], registry=r
        )
        self.requests = Histogram(
            "securechat_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery = Histogram(
            "securechat_delivery_seconds",
            "From a message's commit to its frame being written to a recipient's socket",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        self.broker_healthy = Gauge(
            "securechat_broker_healthy",
            "1 while Redis answers and this instance is subscribed (or the broker is in process)",
            registry=r,
        )
        self.broker_healthy.set(1)
        self.broker_queue = Gauge(
            "securechat_broker_publish_queue", "Publishes waiting for Redis on this instance", registry=r
        )
        self.broker_dropped_total = Counter(
            "securechat_broker_publishes_dropped",
            "Publishes dropped because the queue for Redis was full (sockets resync from the database)",
            registry=r,
        )
        self.broker_bytes = Counter(
            "securechat_broker_published_bytes", "Bytes published to Redis by this instance", registry=r
        )

    # The Redis broker reports through these (realtime/redis_broker.py, BrokerMetrics).
    def broker_state(self, healthy: bool, queued: int) -> None:
        self.broker_healthy.set(1 if healthy else 0)
        self.broker_queue.set(queued)

    def broker_published(self, size: int) -> None:
        self.broker_bytes.inc(size)

    def broker_dropped(self, count: int) -> None:
        self.broker_dropped_total.inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware timing HTTP requests by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.requests.labels(scope["method"], _route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )


def _route_template(scope: Scope) -> str:
    """The matched route's path template: the router records the route in the scope."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """Loopback clients may scrape; others need ``Authorization: Bearer <metrics token>``."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token:
        offered = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if hmac.compare_digest(offered.encode(), token.encode()):
            return True
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
