"""One ObjectStore suite, run on a local directory and on the real SeaweedFS S3 server."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gravitas.schemas.errors import UnsafePathError
from gravitas.storage.objects import ObjectNotFoundError, ObjectStore, open_object_store
from gravitas.storage.s3server import SeaweedS3


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        s = open_object_store(f"file://{tmp_path / 'objects'}")
    else:
        server: SeaweedS3 = request.getfixturevalue("s3_server")
        url = f"s3://gravitas-objects/node-{uuid.uuid4().hex[:8]}?endpoint={server.endpoint}"
        s = open_object_store(url, access_key=server.access_key, secret_key=server.secret_key)
    assert isinstance(s, ObjectStore)
    yield s


def test_put_get_and_ranged_get(store: ObjectStore) -> None:
    data = bytes(range(256)) * 40
    st = store.put_bytes("cogs/scene-1/B04.tif", data)
    assert st.size == len(data) and st.sha256 == hashlib.sha256(data).hexdigest()
    assert store.get_bytes("cogs/scene-1/B04.tif") == data
    assert store.get_bytes("cogs/scene-1/B04.tif", offset=1000, length=300) == data[1000:1300]
    assert store.get_bytes("cogs/scene-1/B04.tif", offset=len(data) - 5) == data[-5:]
    assert store.exists("cogs/scene-1/B04.tif")
    assert not store.exists("cogs/scene-1/B05.tif")
    with pytest.raises(ObjectNotFoundError, match="B05"):
        store.get_bytes("cogs/scene-1/B05.tif")


def test_list_delete_and_href(store: ObjectStore) -> None:
    for key in ["b/2.nc", "a/1.nc", "a/sub/3.zarr/.zarray", "c.txt"]:
        store.put_bytes(key, key.encode())
    assert list(store.list()) == ["a/1.nc", "a/sub/3.zarr/.zarray", "b/2.nc", "c.txt"]
    assert list(store.list("a/")) == ["a/1.nc", "a/sub/3.zarr/.zarray"]
    store.delete("a/1.nc")
    store.delete("a/1.nc")  # missing is fine
    assert list(store.list("a/")) == ["a/sub/3.zarr/.zarray"]
    href = store.href("b/2.nc")
    assert href.endswith("/b/2.nc")
    assert href.startswith("file:///") or href.startswith("s3://gravitas-objects/node-")
    with pytest.raises(ObjectNotFoundError):
        store.stat("a/1.nc")


def test_large_file_multipart_sha256_and_download(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "big.nc"
    payload = os.urandom(6 * 1024 * 1024 + 123)  # > 5 MiB: two parts at part_size=5 MiB
    src.write_bytes(payload)
    if hasattr(store, "part_size"):
        store.part_size = 5 * 1024 * 1024  # type: ignore[attr-defined]
    st = store.put_file("netcdf/big.nc", src)
    digest = hashlib.sha256(payload).hexdigest()
    assert st.sha256 == digest and st.size == len(payload)
    assert store.stat("netcdf/big.nc").sha256 == digest  # recorded, read back
    out = store.download("netcdf/big.nc", tmp_path / "dl" / "big.nc")
    assert out.read_bytes() == payload
    if store.url.startswith("s3://"):
        s3 = store._client  # type: ignore[attr-defined]
        etag = s3.stat_object(store.loc.bucket, store.loc.object_name("netcdf/big.nc")).etag  # type: ignore[attr-defined]
        assert etag.endswith("-2"), f"expected a 2-part multipart ETag, got {etag}"


@pytest.mark.parametrize(
    "bad",
    ["../etc/passwd", "a/../../b", "/abs/path", "a\\b", "a\x00b", "", "a//b", "./a", "a/.", "C:x"],
)
def test_unsafe_keys_are_rejected(store: ObjectStore, bad: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        store.put_bytes(bad, b"x")
    assert repr(bad) in str(info.value) or bad == ""
    with pytest.raises(UnsafePathError):
        store.get_bytes(bad)


def test_local_symlink_escape_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = open_object_store(tmp_path / "root")
    (tmp_path / "root" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="link/x"):
        store.put_bytes("link/x", b"x")
    assert not (outside / "x").exists()
