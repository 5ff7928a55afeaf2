"""``gravitas subscribe`` and ``gravitas subscriptions list|delete``: outbound webhooks
through the running node's edge (with its token; see docs/webhooks.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import httpx
import orjson
import typer

from gravitas.schemas.errors import InputError, TransportError
from gravitas.streams.cli.common import BrokerOpt, DataOpt, EdgeOpt, out, run, settings_from
from gravitas.streams.transports.edge import discover_edge, local_token
from gravitas.streams.webhooks.subscriptions import parse_clause


class Format(StrEnum):
    json = "json"
    cloudevents = "cloudevents"


class ContentMode(StrEnum):
    binary = "binary"
    structured = "structured"


subscriptions_app = typer.Typer(help="List and delete outbound webhook subscriptions.")

FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        "-f",
        help="FIELD=V1,V2 | bbox=W,S,E,N | FIELD>=NUMBER (repeatable; all must hold).",
        show_default=False,
    ),
]


async def _call(
    broker: str | None, data: Any, edge: str | None, method: str, path: str, body: Any = None
) -> Any:
    settings = settings_from(broker, data)
    url = edge or discover_edge(settings.data_dir)
    token = local_token(settings)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            reply = await http.request(method, path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise TransportError(f"cannot reach the node's edge at {url}: {exc}") from None
    try:
        answer = reply.json()
    except ValueError:
        answer = {"detail": reply.text[:200]}
    if reply.status_code >= 400:
        raise InputError(f"{answer.get('detail', answer)} (HTTP {reply.status_code})")
    return answer


def subscribe(
    topic: Annotated[str, typer.Argument(help="Logical topic, e.g. datacubes.ready")],
    url: Annotated[str, typer.Argument(help="http(s) URL receiving the signed POSTs")],
    filters: FilterOpt = None,
    body_format: Annotated[
        Format,
        typer.Option("--format", help="json (the event) or cloudevents (a CloudEvent 1.0)."),
    ] = Format.json,
    content_mode: Annotated[
        ContentMode,
        typer.Option("--content-mode", help="CloudEvents HTTP mode: binary or structured."),
    ] = ContentMode.binary,
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Deliver the events of TOPIC matching every --filter to URL (Standard Webhooks).

    Prints the subscription with its signing secret (shown once; the receiver verifies
    webhook-signature with it). Example:
    gravitas subscribe methane.enhanced https://example.org/hook -f 'max_ppm_m>=500'
    (add --format cloudevents [--content-mode structured] for CloudEvents receivers)
    """
    for text in filters or []:
        parse_clause(text)  # a bad filter is named before the node is asked
    body = {
        "topic": topic,
        "url": url,
        "filters": list(filters or []),
        "format": body_format.value,
        "content_mode": content_mode.value,
    }
    answer = run(_call(broker, data, edge, "POST", "/subscriptions", body))
    out.print_json(orjson.dumps(answer).decode())


@subscriptions_app.command("list")
def list_subscriptions(
    broker: BrokerOpt = None, data: DataOpt = None, edge: EdgeOpt = None
) -> None:
    """Print the node's subscriptions (without secrets) as JSON."""
    answer = run(_call(broker, data, edge, "GET", "/subscriptions"))
    out.print_json(orjson.dumps(answer).decode())


@subscriptions_app.command("delete")
def delete_subscription(
    subscription_id: Annotated[str, typer.Argument(help="The id printed by subscribe")],
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Stop delivering to a subscription."""
    answer = run(_call(broker, data, edge, "DELETE", f"/subscriptions/{subscription_id}"))
    out.print(f"deleted {answer['deleted']}")


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command()(subscribe)
    app.add_typer(subscriptions_app, name="subscriptions")
