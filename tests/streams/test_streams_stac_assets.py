"""The asset route of a live node edge (``/stac/assets/{key}``) over both object stores
(a local directory and a real SeaweedFS S3 bucket): whole objects, byte ranges (206,
Content-Range), unsatisfiable ranges (416), HEAD, content types, GDAL reading a COG over
HTTP, and hostile keys refused without touching the store."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gravitas.storage.objects.public import asset_url, key_of_href, public_item
from gravitas.storage.sampledata import fetch
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.stac_api import running_node

DATA = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture(scope="module", params=["local", "s3"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedNode]:
    extra: dict[str, object] = {}
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        extra = {
            "object_store": f"s3://gravitas-assets/n-{uuid.uuid4().hex[:8]}"
            f"?endpoint={server.endpoint}",
            "s3_access_key": server.access_key,
            "s3_secret_key": server.secret_key,
        }
    with running_node(tmp_path_factory.mktemp("assets"), node_id="assets", **extra) as n:
        store = n.services.object_store
        store.put_bytes("assets/c/s1/blob.bin", DATA)
        band = sorted(fetch("landsat7_series").glob("*/*_b3.tif"))[0]
        store.put_file("assets/c/s1/b3.tif", band)
        store.put_bytes("datacubes/r1/cube.zarr/.zmetadata", b'{"metadata": {}}')
        yield n


def url(node: EmbeddedNode, key: str) -> str:
    return f"{node.edge_url}/stac/assets/{key}"


def test_whole_object_with_length_and_type(node: EmbeddedNode) -> None:
    r = httpx.get(url(node, "assets/c/s1/blob.bin"))
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["content-type"] == "application/octet-stream"
    tif = httpx.get(url(node, "assets/c/s1/b3.tif"))
    assert tif.headers["content-type"] == "image/tiff; application=geotiff"
    zmeta = httpx.get(url(node, "datacubes/r1/cube.zarr/.zmetadata"))
    assert zmeta.json() == {"metadata": {}}


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=16000-", 16000, len(DATA) - 1),
        ("bytes=-10", len(DATA) - 10, len(DATA) - 1),
        ("bytes=16380-999999", 16380, len(DATA) - 1),  # clipped to the object
    ],
)
def test_byte_ranges_are_206_with_content_range(
    node: EmbeddedNode, header: str, first: int, last: int
) -> None:
    r = httpx.get(url(node, "assets/c/s1/blob.bin"), headers={"Range": header})
    assert r.status_code == 206, r.text
    assert r.content == DATA[first : last + 1]
    assert r.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert r.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("header", ["bytes=20000-", "bytes=-0", "bytes=50-10", "bytes=x-y"])
def test_unsatisfiable_ranges_are_416_naming_the_range(node: EmbeddedNode, header: str) -> None:
    r = httpx.get(url(node, "assets/c/s1/blob.bin"), headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"
    assert header in r.json()["description"]


def test_head_answers_the_size_without_a_body(node: EmbeddedNode) -> None:
    r = httpx.head(url(node, "assets/c/s1/blob.bin"))
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(DATA))
    ranged = httpx.head(url(node, "assets/c/s1/blob.bin"), headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.headers["content-range"] == "bytes 0-9/16384"


def test_gdal_reads_the_cog_over_http_with_ranges(node: EmbeddedNode) -> None:
    import rasterio

    band = sorted(fetch("landsat7_series").glob("*/*_b3.tif"))[0]
    with rasterio.open(band) as local:
        expected = local.read(1)
    with (
        rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
        rasterio.open(url(node, "assets/c/s1/b3.tif")) as remote,
    ):
        assert (remote.read(1) == expected).all()


def test_missing_object_is_404_naming_the_key(node: EmbeddedNode) -> None:
    r = httpx.get(url(node, "assets/c/s1/nothing.tif"))
    assert r.status_code == 404
    assert r.json() == {
        "code": "NotFound",
        "description": "no asset 'assets/c/s1/nothing.tif' on this node "
        "(assets are keys under assets/, datacubes/, methane/, graphs/)",
    }


def _raw_get(node: EmbeddedNode, raw_path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (clients would normalise ``..``)."""
    host, port = node.edge_url.removeprefix("http://").split(":")  # type: ignore[union-attr]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"GET {raw_path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "raw_path",
    [
        "/stac/assets/../../../etc/passwd",
        "/stac/assets/assets/../../etc/passwd",
        "/stac/assets//etc/passwd",
        "/stac/assets/assets%2Fc%2Fs1%2Fblob.bin",
        "/stac/assets/assets/c/s1/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/stac/assets/%2e%2e/%2e%2e/etc/passwd",
        "/stac/assets/assets\\c\\s1\\blob.bin",
        "/stac/assets/assets/c/s1/blob.bin%00.tif",
        "/stac/assets/C:/Windows/win.ini",
    ],
)
def test_hostile_keys_are_refused_and_nothing_changes(node: EmbeddedNode, raw_path: str) -> None:
    store = node.services.object_store
    before = {k: store.size(k) for k in store.list("")}
    status, body = _raw_get(node, raw_path)
    assert status in (400, 404), (status, body)
    assert b"root:" not in body and b"[fonts]" not in body
    assert {k: store.size(k) for k in store.list("")} == before


def test_item_hrefs_in_the_store_become_asset_urls_others_stay(node: EmbeddedNode) -> None:
    store = node.services.object_store
    own = store.href("assets/c/s1/b3.tif")
    assert key_of_href(store, own) == "assets/c/s1/b3.tif"
    item = {
        "type": "Feature",
        "assets": {
            "b3": {"href": own, "roles": ["data"]},
            "ext": {"href": "https://example.org/x.tif"},
            "file": {"href": "file:///etc/hostname"},
        },
        "links": [{"rel": "via", "href": own}],
    }
    out = public_item(item, store, "https://node.example")
    assert out["assets"]["b3"]["href"] == "https://node.example/stac/assets/assets/c/s1/b3.tif"
    assert out["links"][0]["href"] == out["assets"]["b3"]["href"]
    assert out["assets"]["ext"]["href"] == "https://example.org/x.tif"
    assert out["assets"]["file"]["href"] == "file:///etc/hostname"
    assert item["assets"]["b3"]["href"] == own  # the input is not changed
    assert asset_url("http://h/", "a b/c.tif") == "http://h/stac/assets/a%20b/c.tif"


def test_store_hrefs_outside_the_store_are_not_keys(tmp_path: Path) -> None:
    from gravitas.storage.objects.local import LocalObjectStore

    store = LocalObjectStore(tmp_path / "objects")
    own = tmp_path / "objects" / "assets" / "b.tif"
    assert key_of_href(store, own.as_uri()) == "assets/b.tif"
    assert key_of_href(store, str(own)) == "assets/b.tif"
    # in the store but not published (e.g. a search result by reference): not a URL
    assert key_of_href(store, (tmp_path / "objects" / "results" / "r.json").as_uri()) is None
    assert key_of_href(store, (tmp_path / "elsewhere.tif").as_uri()) is None
    assert key_of_href(store, (tmp_path / "objects").as_uri() + "/../x.tif") is None
    assert key_of_href(store, str(tmp_path / "objects-other" / "b.tif")) is None


def test_hrefs_follow_the_public_url_setting(tmp_path: Path) -> None:
    public = "https://gravitas.example.org/node-p"
    with running_node(tmp_path, node_id="pub", public_url=public) as n:
        store = n.services.object_store
        store.put_bytes("assets/c/s1/blob.bin", DATA)
        item = {
            "type": "Feature",
            "stac_version": "1.1.0",
            "id": "s1",
            "collection": "c",
            "bbox": [0.0, 0.0, 1.0, 1.0],
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
            },
            "properties": {"datetime": "2020-01-01T00:00:00Z"},
            "links": [],
            "assets": {
                "blob": {"href": store.href("assets/c/s1/blob.bin"), "roles": ["data"]},
                "ext": {"href": "https://example.org/elsewhere.tif", "roles": ["data"]},
            },
        }
        n.services.catalog.upsert_item(item)
        got = httpx.get(f"{n.edge_url}/stac/collections/c/items/s1").json()
        assert got["assets"]["blob"]["href"] == f"{public}/stac/assets/assets/c/s1/blob.bin"
        assert got["assets"]["ext"]["href"] == "https://example.org/elsewhere.tif"
        # links follow the URL the client used (paging works from anywhere)
        assert got["links"][0]["href"] == f"{n.edge_url}/stac/collections/c/items/s1"
        # the catalog itself keeps the store's href, which the agents read
        stored = n.services.catalog.get_item("c", "s1")
        assert stored["assets"]["blob"]["href"] == store.href("assets/c/s1/blob.bin")


def test_symlinks_out_of_a_local_store_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    with running_node(tmp_path / "node", node_id="links") as n:
        root = Path(n.services.object_store.href("k").removeprefix("file://")).parent
        (root / "assets").mkdir(parents=True, exist_ok=True)
        (root / "assets" / "escape.txt").symlink_to(secret)
        r = httpx.get(f"{n.edge_url}/stac/assets/assets/escape.txt")
        assert r.status_code == 400
        assert "assets/escape.txt" in r.json()["description"]
        assert "root:x" not in r.text
        assert secret.read_text() == "root:x:0:0"


def test_range_header_rules() -> None:
    from gravitas.streams.stac.assets import RangeNotSatisfiableError, media_type, parse_range

    assert parse_range(None, 100) is None
    assert parse_range("items=0-10", 100) is None  # another unit: the whole object
    assert parse_range("bytes=0-1,5-6", 100) is None  # several ranges: the whole object
    assert parse_range("bytes=10-", 100) == (10, 99)
    assert parse_range("bytes=-500", 100) == (0, 99)
    for bad in ("bytes=", "bytes=-", "bytes=0-0", "bytes=-1"):
        with pytest.raises(RangeNotSatisfiableError, match="Range"):
            parse_range(bad, 0)  # nothing to select in an empty object
    assert media_type("a/b/scene_B04.JP2") == "image/jp2"
    assert media_type("cube.nc") == "application/netcdf"
    assert media_type("no-suffix") == "application/octet-stream"


def test_empty_object_is_served_whole(node: EmbeddedNode) -> None:
    node.services.object_store.put_bytes("assets/c/s1/empty.bin", b"")
    r = httpx.get(url(node, "assets/c/s1/empty.bin"))
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    ranged = httpx.get(url(node, "assets/c/s1/empty.bin"), headers={"Range": "bytes=0-"})
    assert ranged.status_code == 416


def test_items_written_back_keep_naming_the_store(tmp_path: Path) -> None:
    token = "t-" + uuid.uuid4().hex
    with running_node(tmp_path, node_id="rt", api_token=token) as n:
        store = n.services.object_store
        store.put_bytes("assets/c/s1/blob.bin", DATA)
        item = {
            "type": "Feature",
            "stac_version": "1.1.0",
            "id": "s1",
            "collection": "c",
            "bbox": [0.0, 0.0, 1.0, 1.0],
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
            },
            "properties": {"datetime": "2020-01-01T00:00:00Z"},
            "links": [],
            "assets": {"blob": {"href": store.href("assets/c/s1/blob.bin"), "roles": ["data"]}},
        }
        n.services.catalog.upsert_item(item)
        url = f"{n.edge_url}/stac/collections/c/items/s1"
        served = httpx.get(url).json()
        served["properties"]["title"] = "edited"
        served["assets"]["evil"] = {"href": f"{n.edge_url}/stac/assets/../../etc/passwd"}
        r = httpx.put(url, json=served, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        stored = n.services.catalog.get_item("c", "s1")
        assert stored["properties"]["title"] == "edited"
        assert stored["assets"]["blob"]["href"] == store.href("assets/c/s1/blob.bin")
        assert stored["assets"]["evil"]["href"] == f"{n.edge_url}/stac/assets/../../etc/passwd"
        again = httpx.get(url).json()
        assert again["assets"]["blob"]["href"] == served["assets"]["blob"]["href"]


@pytest.mark.parametrize(
    "header",
    [
        "bytes=" + "9" * 5000 + "-",  # over Python's int digit limit: must not be a 500
        "bytes=0-" + "1" * 40,
        "bytes=-" + "7" * 30,
        "bytes=--1",
        "bytes=1-2-3",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits are not byte positions
        "bytes=-1e3",
        "bytes=0x10-0x20",
        "bytes=+5-9",
    ],
)
def test_hostile_range_headers_are_416(node: EmbeddedNode, header: str) -> None:
    raw = header.encode("utf-8")
    r = httpx.get(url(node, "assets/c/s1/blob.bin"), headers=[(b"Range", raw)])
    assert r.status_code == 416, (header[:40], r.status_code, r.text[:200])
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"
    assert "Range" in r.json()["description"] and "\n" not in r.json()["description"]
    assert httpx.get(url(node, "assets/c/s1/blob.bin")).content == DATA  # still serving


def test_unpublished_objects_are_not_served(node: EmbeddedNode) -> None:
    """Objects that no item points at (a search result by reference, anything else kept in
    the store) are 404 like a missing key, and stay as they were."""
    store = node.services.object_store
    store.put_bytes("results/req-1.json", b'{"secret": true}')
    before = {k: store.size(k) for k in store.list("")}
    for key in ("results/req-1.json", "staging/x.bin", "assetsx/c.tif"):
        r = httpx.get(url(node, key))
        assert r.status_code == 404, (key, r.status_code)
        assert key in r.json()["description"] and "secret" not in r.text
    item = {"assets": {"r": {"href": store.href("results/req-1.json")}}, "links": []}
    assert (
        public_item(item, store, "http://h")["assets"]["r"]["href"] == item["assets"]["r"]["href"]
    )
    assert {k: store.size(k) for k in store.list("")} == before
