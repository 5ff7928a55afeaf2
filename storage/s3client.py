"""Shared S3 plumbing for the block and object stores: URL parsing, client, bucket.

URL form: ``s3://bucket/prefix?endpoint=host:port[&secure=true][&region=us-east-1]``.
Credentials come from explicit arguments or the environment variables
``GRAVITAS_S3_ACCESS_KEY`` / ``GRAVITAS_S3_SECRET_KEY``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error

from gravitas.schemas.errors import ConfigError, StorageError

__all__ = ["S3Url", "ensure_bucket", "make_client", "parse_s3_url"]

ENV_ACCESS = "GRAVITAS_S3_ACCESS_KEY"
ENV_SECRET = "GRAVITAS_S3_SECRET_KEY"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Url:
    """A parsed ``s3://`` location."""

    bucket: str
    prefix: str
    """Object name prefix without leading/trailing slashes ("" for the bucket root)."""
    endpoint: str
    """``host:port`` of the S3 server."""
    secure: bool = False
    region: str = DEFAULT_REGION

    def object_name(self, name: str) -> str:
        """Full object name of ``name`` under the prefix."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def url(self) -> str:
        """Canonical URL string (no credentials)."""
        path = f"/{self.prefix}" if self.prefix else ""
        secure = "&secure=true" if self.secure else ""
        return f"s3://{self.bucket}{path}?endpoint={self.endpoint}{secure}"


def parse_s3_url(url: str, endpoint: str | None = None) -> S3Url:
    """Parse ``s3://bucket/prefix?endpoint=host:port``; ``endpoint`` overrides the query."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"expected s3://bucket/prefix?endpoint=host:port, got {url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    ep = endpoint or query.get("endpoint")
    if not ep:
        raise ConfigError(f"S3 URL {url!r} needs ?endpoint=host:port (or an endpoint argument)")
    secure = query.get("secure", "false").lower() in ("1", "true", "yes")
    prefix = parts.path.strip("/")
    return S3Url(parts.netloc, prefix, ep, secure, query.get("region", DEFAULT_REGION))


def make_client(
    loc: S3Url,
    access_key: str | None = None,
    secret_key: str | None = None,
    pool_size: int = 16,
) -> Minio:
    """A minio client for ``loc`` with a connection pool of ``pool_size``."""
    access = access_key or os.environ.get(ENV_ACCESS)
    secret = secret_key or os.environ.get(ENV_SECRET)
    if not access or not secret:
        raise ConfigError(
            f"no S3 credentials for {loc.url()}: pass access_key/secret_key or set "
            f"{ENV_ACCESS} and {ENV_SECRET}"
        )
    http = urllib3.PoolManager(
        maxsize=pool_size,
        timeout=urllib3.Timeout(connect=10, read=120),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(
        loc.endpoint,
        access_key=access,
        secret_key=secret,
        secure=loc.secure,
        region=loc.region,
        http_client=http,
    )


def ensure_bucket(client: Minio, bucket: str) -> None:
    """Create ``bucket`` if it does not exist yet (safe against a concurrent creator)."""
    try:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
    except S3Error as exc:
        if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise StorageError(f"cannot create S3 bucket {bucket!r}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"invalid S3 bucket name {bucket!r}: {exc}") from exc
