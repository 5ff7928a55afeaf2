"""Object store in an S3 bucket under a prefix (minio client).

The bucket is created on first use. Files are uploaded with ``fput_object`` and a
``part_size``, so anything larger goes up as a multipart upload; the SHA-256 of the
content is computed before upload and recorded in the object metadata
(``x-amz-meta-sha256``), so ``stat`` never has to read the object back.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

from minio.error import S3Error

from gravitas.storage.objects.base import ObjectStat
from gravitas.storage.objects.errors import ObjectNotFoundError, ObjectStoreError
from gravitas.storage.objects.keys import check_key, check_prefix
from gravitas.storage.objects.local import sha256_file
from gravitas.storage.s3client import ensure_bucket, make_client, parse_s3_url

__all__ = ["S3ObjectStore"]

MIN_PART = 5 * 1024 * 1024
_META = "sha256"
_MISSING = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


class S3ObjectStore:
    """An :class:`~gravitas.storage.objects.base.ObjectStore` over ``s3://bucket/prefix``."""

    def __init__(
        self,
        url: str,
        access_key: str | None = None,
        secret_key: str | None = None,
        part_size: int = 16 * 1024 * 1024,
    ) -> None:
        if part_size < MIN_PART:
            raise ObjectStoreError(f"part_size must be >= 5 MiB ({MIN_PART}), got {part_size}")
        self.loc = parse_s3_url(url)
        self.url = self.loc.url()
        self.part_size = part_size
        self._client = make_client(self.loc, access_key, secret_key)
        self._bucket_ready = False
        self._base = self.loc.object_name("")

    def _name(self, key: str) -> str:
        return self._base + check_key(key)

    def _ready(self) -> None:
        if not self._bucket_ready:
            ensure_bucket(self._client, self.loc.bucket)
            self._bucket_ready = True

    def _fail(self, action: str, key: str, exc: S3Error) -> Exception:
        if exc.code in _MISSING:
            return ObjectNotFoundError(f"no object {key!r} in {self.url}")
        return ObjectStoreError(f"S3 {action} of {key!r} in {self.url} failed: {exc}")

    def put_file(self, key: str, path: str | Path) -> ObjectStat:
        name = self._name(key)
        src = Path(path)
        if not src.is_file():
            raise ObjectNotFoundError(f"cannot upload {src}: not a file")
        self._ready()
        digest = sha256_file(src)
        try:
            self._client.fput_object(
                self.loc.bucket, name, str(src), metadata={_META: digest}, part_size=self.part_size
            )
        except S3Error as exc:
            raise self._fail("upload", key, exc) from exc
        return ObjectStat(key, src.stat().st_size, digest)

    def put_bytes(self, key: str, data: bytes) -> ObjectStat:
        name = self._name(key)
        self._ready()
        digest = hashlib.sha256(data).hexdigest()
        try:
            self._client.put_object(
                self.loc.bucket, name, io.BytesIO(data), len(data), metadata={_META: digest}
            )
        except S3Error as exc:
            raise self._fail("put", key, exc) from exc
        return ObjectStat(key, len(data), digest)

    def get_bytes(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"offset and length must be >= 0, got {offset}, {length}")
        name = self._name(key)
        if length == 0:
            self.stat(key)  # still report a missing object
            return b""
        try:
            resp = self._client.get_object(self.loc.bucket, name, offset=offset, length=length or 0)
        except S3Error as exc:
            raise self._fail("get", key, exc) from exc
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def download(self, key: str, path: str | Path) -> Path:
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._client.fget_object(self.loc.bucket, self._name(key), str(dest))
        except S3Error as exc:
            raise self._fail("download", key, exc) from exc
        return dest

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        self._ready()
        full = self._base + prefix
        try:
            for obj in self._client.list_objects(
                self.loc.bucket, prefix=full or None, recursive=True
            ):
                if obj.object_name is not None and not obj.is_dir:
                    yield obj.object_name[len(self._base) :]
        except S3Error as exc:
            raise ObjectStoreError(f"S3 listing of {self.url} failed: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._client.remove_object(self.loc.bucket, self._name(key))
        except S3Error as exc:
            if exc.code not in _MISSING:
                raise self._fail("delete", key, exc) from exc

    def href(self, key: str) -> str:
        return f"s3://{self.loc.bucket}/{self._name(key)}"

    def size(self, key: str) -> int:
        try:
            st = self._client.stat_object(self.loc.bucket, self._name(key))
        except S3Error as exc:
            raise self._fail("stat", key, exc) from exc
        return int(st.size or 0)

    def stat(self, key: str) -> ObjectStat:
        try:
            st = self._client.stat_object(self.loc.bucket, self._name(key))
        except S3Error as exc:
            raise self._fail("stat", key, exc) from exc
        meta = {k.lower(): v for k, v in (st.metadata or {}).items()}
        digest = meta.get(f"x-amz-meta-{_META}")
        if not digest:
            raise ObjectStoreError(
                f"object {key!r} in {self.url} has no recorded sha256 (not written by gravitas)"
            )
        return ObjectStat(key, int(st.size or 0), str(digest))
