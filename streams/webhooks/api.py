"""``/subscriptions`` on the edge (the node's token): create, list and delete outbound
subscriptions. They are records on the compacted subscriptions topic, so a Kafka broker
is needed (an embedded ``memory://`` node answers 501)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gravitas.schemas.errors import GravitasError
from gravitas.streams.edge.app import EdgeContext
from gravitas.streams.edge.auth import require_token
from gravitas.streams.transports.kafka import bootstrap_servers
from gravitas.streams.webhooks.deliver import master_secret, subscription_secret
from gravitas.streams.webhooks.store import SubscriptionLog
from gravitas.streams.webhooks.subscriptions import Subscription, check_target, parse_clause


class NewSubscription(BaseModel):
    """The body of ``POST /subscriptions``."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    filters: list[str] = Field(default_factory=list, max_length=20)
    format: Literal["json", "cloudevents"] = "json"
    content_mode: Literal["binary", "structured"] = "binary"


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _shown(sub: Subscription) -> dict[str, Any]:
    return sub.model_dump(mode="json", exclude={"deleted"})


def subscriptions_router(ctx: EdgeContext) -> APIRouter:
    router = APIRouter()
    settings = ctx.settings

    def store() -> SubscriptionLog:
        if settings.is_memory:
            raise HTTPException(
                501,
                "outbound webhooks keep their subscriptions on Kafka: run the node with "
                "--broker kafka://host:port",
            )
        return SubscriptionLog(bootstrap_servers(settings.broker), settings.topic_prefix)

    @router.post("/subscriptions")
    async def create(
        request: Request, authorization: str | None = Header(default=None)
    ) -> Response:
        require_token(ctx.token, authorization)
        try:
            wanted = NewSubscription.model_validate_json(await request.body())
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "body"
            raise HTTPException(422, f"subscription {where}: {err['msg']}") from None
        try:
            ctx.topology.spec(wanted.topic)
            filters = tuple(parse_clause(f) for f in wanted.filters)
            check_target(settings, wanted.url)
        except GravitasError as exc:
            raise HTTPException(422, str(exc)) from None
        sub = Subscription(
            topic=wanted.topic,
            url=wanted.url,
            filters=filters,
            format=wanted.format,
            content_mode=wanted.content_mode,
        )
        log = store()
        try:
            await log.ensure()
            await log.put(sub)
        finally:
            await log.close()
        secret = subscription_secret(master_secret(settings), sub.id)
        return _json({**_shown(sub), "secret": secret}, 201)

    @router.get("/subscriptions")
    async def listing(authorization: str | None = Header(default=None)) -> Response:
        require_token(ctx.token, authorization)
        log = store()
        await log.ensure()
        subs = await log.load()
        return _json({"subscriptions": [_shown(s) for s in subs.values()]})

    @router.delete("/subscriptions/{subscription_id}")
    async def delete(
        subscription_id: str, authorization: str | None = Header(default=None)
    ) -> Response:
        require_token(ctx.token, authorization)
        log = store()
        try:
            await log.ensure()
            subs = await log.load()
            sub = subs.get(subscription_id)
            if sub is None:
                raise HTTPException(
                    404, f"no subscription {subscription_id[:80]!r}; see GET /subscriptions"
                )
            await log.put(sub.model_copy(update={"deleted": True, "active": False}))
        finally:
            await log.close()
        return _json({"deleted": subscription_id})

    return router


__all__ = ["subscriptions_router"]
