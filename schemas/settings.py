"""The one frozen configuration object of a node.

Values come from (highest first) explicit arguments, ``GRAVITAS_*`` environment
variables, a TOML file named by ``GRAVITAS_CONFIG``, and the defaults below.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gravitas.schemas.errors import ConfigError
from gravitas.schemas.peers import Peer
from gravitas.schemas.webhooks import SOURCE_PATTERN, WebhookSource

FAILPOINT_PATTERN = r"^(progress:[A-Za-z0-9_.-]{1,64}(@(0(\.[0-9]+)?|1(\.0+)?))?)?$"
"""A fault drill's failpoint: ``progress:<stage>`` or ``progress:<stage>@<fraction in
[0, 1]>``; empty: none (:mod:`gravitas.streams.failpoints`)."""

BROKER_SCHEMES = ("memory", "kafka")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/gravitas`` (``~/.local/share/gravitas``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gravitas"


def default_cache_dir() -> Path:
    """``$GRAVITAS_CACHE`` or ``~/.cache/gravitas``: jars, sample data, binaries."""
    return Path(os.environ.get("GRAVITAS_CACHE") or Path.home() / ".cache" / "gravitas")


class Settings(BaseSettings):
    """Effective configuration of one gravitas node."""

    model_config = SettingsConfigDict(
        env_prefix="GRAVITAS_", frozen=True, extra="forbid", validate_default=True
    )

    broker: str = "memory://"
    """``memory://`` (embedded, in-process) or ``kafka://host:port[,host:port]``."""
    node_id: str = Field(default="local", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    data_dir: Path = Field(default_factory=default_data_dir)
    http_host: str = "127.0.0.1"
    http_allow_non_loopback: bool = False
    """Allow a non-loopback ``http_host`` (containers); then ``api_token`` is required."""
    http_port: int = Field(default=8765, ge=0, le=65535)
    """Port of the node's HTTP edge (STAC API, publish/tail, webhooks, metrics); 0 = any."""
    public_url: str | None = None
    """URL other nodes use to reach this node's edge; defaults to http://host:port."""
    log_json: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,100}$")
    """Prefix of this node's physical topic names (separate deployments on one cluster)."""
    federation_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,100}$")
    """Prefix of the federation topics (``stac.registrations``), the same on every node."""
    partitions: int = Field(default=4, ge=1, le=256)
    """Partition count of every source topic this node creates."""
    kafka_session_timeout_s: float = Field(default=10.0, gt=0)
    kafka_batch_size: int = Field(default=500, ge=1, le=100_000)
    group_id: str | None = None
    """Consumer group of this node's workers; defaults to ``gravitas-<node_id>``."""
    agents: tuple[str, ...] = ()
    """Names of the agents this node runs (empty: all of them)."""
    retry_attempts: int = Field(default=3, ge=1, le=20)
    failpoint: str = Field(
        default="",
        pattern=FAILPOINT_PATTERN,
    )
    """Fault drills only: hold a request's handler after it publishes the progress record
    ``progress:<stage>[@<fraction>]`` so a test's SIGKILL lands exactly there."""
    inline_result_bytes: int = Field(default=512 * 1024, ge=1024, le=64 * 1024 * 1024)
    """A result larger than this (encoded) goes to the object store and travels as a
    reference that the SDK and CLI fetch; keep it under the broker's message limit."""
    compute_threads: int | None = Field(default=None, ge=1, le=256)
    """Threads for CPU-heavy agent work (indexing, overviews, datacubes, methane); default:
    one per CPU but one, which is left to the event loop. More only adds GIL contention."""
    datacube_strip_mb: float = Field(default=1024.0, gt=0, le=1024 * 1024)
    """A datacube whose retrieved stack (pairs x bands x rows x columns, float32) is larger
    is built and written strip by strip, each strip's stack at most this size; peak memory
    is a few times one strip (agents/datacube/tiled.py)."""
    flower_python: Path | None = None
    """The Python of Flower's own environment (federated training); default
    ``<cache>/flower-venv/bin/python``, made by ``scripts/flower-venv``."""
    dask_scheduler: str | None = None
    """Where process graphs compute: ``threads`` (default, in the node), ``sync``,
    ``local-cluster:N`` (N local worker processes) or ``tcp://host:port`` (a running
    dask.distributed scheduler; its workers need the same block-store settings)."""
    graph_max_bytes: int = Field(default=8 * 1024**3, ge=1024)
    """Largest selection one process graph may load (bytes of its input cubes)."""
    graph_max_seconds: float = Field(default=600.0, gt=0)
    """Longest one process graph may compute before it is answered as failed."""
    graph_overviews: bool = True
    """Serve exact zonal statistics of whole blocks from the overview pyramids."""
    block_store: str | None = None
    """``rocksdb:///path`` (default under data_dir) or ``s3://bucket/prefix?endpoint=h:p``."""
    object_store: str | None = None
    """A directory under data_dir by default, or ``s3://bucket/prefix?endpoint=h:p``."""
    catalog: str | None = None
    """``sqlite:///path`` (default under data_dir) or ``postgresql://...`` (pgstac)."""
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    api_token: SecretStr | None = None
    """Bearer token for publishing, tailing and STAC transactions through the edge; when
    unset, one is generated on first start into ``<data_dir>/api_token`` (mode 0600),
    where local CLI commands find it."""
    signing_key: SecretStr | None = None
    """Base64 Ed25519 private key (32-byte seed) that signs this node's registrations;
    when unset, one is generated on first start into ``<data_dir>/node_key`` (0600)."""
    peers: dict[str, Peer] = Field(default_factory=dict)
    """The federation's other nodes: ``{"b": {"public_key": "...", "api_url": "..."}}``
    (JSON in ``GRAVITAS_PEERS``); only their signed registrations are accepted and only
    their ``api_url`` receives forwarded requests."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    """Largest HTTP request body the edge accepts (refused with 413 while streaming)."""
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key that signs outgoing and verifies incoming webhooks."""
    webhook_sources: dict[str, WebhookSource] = Field(default_factory=dict)
    """Inbound webhook sources (JSON): ``{"provider": {"topics": ["scenes.announced"]}}``;
    each has its own secret file and topic allow-list (docs/webhooks.md)."""
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """Largest body ``POST /webhooks/{source}`` accepts (refused with 413)."""
    webhook_retry_schedule_s: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    """Delays before each retry of an outbound delivery (Standard Webhooks' schedule);
    after the last one fails the delivery is dead-lettered with its last status."""
    webhook_timeout_s: float = Field(default=15.0, gt=0, le=300)
    """Seconds an outbound delivery waits for the receiver's answer."""
    webhook_delivery: bool = True
    """Run the outbound delivery worker in each Kafka node process."""
    allowed_roots: tuple[Path, ...] = ()
    """Directories whose files any data mode may read (real paths: ``..`` and symlinks out
    are refused); empty: ``<data_dir>/files`` and the sample-data cache. The node's own
    state (the rest of data_dir) is never readable. See ``gravitas.storage.hrefs``."""
    allowed_url_prefixes: tuple[str, ...] = ()
    """http(s) URL prefixes hrefs may point at, matched by scheme, host, port and leading
    path segments; loopback/link-local/private addresses only when an entry names them
    (an IP literal, or ``localhost`` for loopback). Redirects are checked the same way."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("GRAVITAS_CONFIG")
        if toml_path:
            if not Path(toml_path).is_file():
                raise ConfigError(f"GRAVITAS_CONFIG={toml_path!r} is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme not in BROKER_SCHEMES:
            raise ValueError(f"broker must be memory:// or kafka://host:port, got {value!r}")
        if scheme == "kafka" and not urlparse(value).netloc:
            raise ValueError(f"broker {value!r} names no host:port (e.g. kafka://127.0.0.1:9092)")
        return value

    @model_validator(mode="after")
    def _loopback(self) -> Settings:
        try:
            loopback = (
                self.http_host == "localhost" or ipaddress.ip_address(self.http_host).is_loopback
            )
        except ValueError:
            loopback = False
        if loopback:
            return self
        if not self.http_allow_non_loopback:
            raise ValueError(
                f"http_host must be a loopback address (127.0.0.1), got {self.http_host!r}; "
                "set GRAVITAS_HTTP_ALLOW_NON_LOOPBACK=true to serve other hosts (containers)"
            )
        if self.api_token is None:
            raise ValueError(
                f"http_host {self.http_host!r} is not loopback: set GRAVITAS_API_TOKEN so "
                "writes through the edge need a bearer token"
            )
        return self

    @field_validator("webhook_sources")
    @classmethod
    def _sources(cls, value: dict[str, WebhookSource]) -> dict[str, WebhookSource]:
        for name in value:
            if not re.fullmatch(SOURCE_PATTERN, name):
                raise ValueError(f"webhook source name {name!r} must match {SOURCE_PATTERN}")
        return value

    @field_validator("allowed_url_prefixes")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if urlparse(prefix).scheme not in ("http", "https"):
                raise ValueError(
                    f"allowed_url_prefixes entries must be http(s) URLs, got {prefix!r}"
                )
        return value

    @property
    def edge_url(self) -> str:
        """The base URL of this node's HTTP edge."""
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    @property
    def consumer_group(self) -> str:
        """The Kafka consumer group of this node's workers."""
        return self.group_id or f"gravitas-{self.node_id}"

    @property
    def is_memory(self) -> bool:
        """True for the embedded in-process transport."""
        return self.broker.startswith("memory://")

    def masked(self) -> dict[str, Any]:
        """The configuration as plain values, with every secret replaced by ``*****``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "*****" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, tuple):
                out[name] = [str(v) for v in value]
            elif isinstance(value, dict):
                out[name] = {k: v.model_dump() for k, v in value.items()}
            else:
                out[name] = value
        return out


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation errors into one :class:`ConfigError`."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            name = ".".join(str(p) for p in err["loc"]) or "http_host"
            env = f"GRAVITAS_{name.upper()}"
            problems.append(f"setting {name} (env {env}): {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
