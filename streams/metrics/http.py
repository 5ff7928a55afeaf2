"""ASGI middleware timing every edge request into ``gravitas_http_request_seconds``.

The ``kind`` label is the method and the matched route's template
(``POST /topics/{topic}/events``), never the raw path, so label values stay bounded;
requests no route matched are counted as ``unmatched``.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gravitas.streams.metrics.node import NodeMetrics


class RequestTimer:
    """Observes the duration and status class of each HTTP request."""

    def __init__(self, app: ASGIApp, metrics: NodeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None)
            kind = f"{scope['method']} {template}" if template else "unmatched"
            self.metrics.requests.labels(kind, f"{status // 100}xx").observe(
                time.perf_counter() - start
            )
