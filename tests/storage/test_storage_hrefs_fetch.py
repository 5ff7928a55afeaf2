"""The safe downloader against real HTTP servers on 127.0.0.1: an allow-listed server
redirects to forbidden places (another port, the metadata address, a file, a look-alike
host); each hop is re-checked and refused before it is requested, so the forbidden
server never sees a request. Sizes are bounded; the Host header stays the URL's host."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gravitas.schemas.errors import InputError
from gravitas.schemas.settings import load_settings
from gravitas.storage.hrefs import HrefFetchError, HrefPolicy, HrefRefusedError, download

BODY = b"GRAVITAS" * 1000


@dataclass
class Server:
    """A real HTTP server with a log of the requests it received."""

    url: str
    hits: list[tuple[str, str]] = field(default_factory=list)
    """(path, Host header) per request."""


def _serve(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> Iterator[Server]:
    server_box: list[Server] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server_box[0].hits.append((self.path, self.headers.get("Host", "")))
            status, headers, body = routes.get(self.path, (404, {}, b"missing"))
            self.send_response(status)
            for k, v in headers.items():
                if k != "Content-Length":
                    self.send_header(k, v)
            length = headers.get("Content-Length", str(len(body)))
            if length != "-":  # "-": no length, the body ends when the connection closes
                self.send_header("Content-Length", length)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_box.append(Server(f"http://127.0.0.1:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_box[0]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def forbidden() -> Iterator[Server]:
    """A server that is NOT on the allow-list (it must never be reached)."""
    yield from _serve({"/secret": (200, {}, b"secret")})


@pytest.fixture
def allowed(forbidden: Server) -> Iterator[Server]:
    """An allow-listed server whose routes redirect to forbidden places."""
    redirect = {
        "/to-port": forbidden.url + "/secret",
        "/to-localhost": forbidden.url.replace("127.0.0.1", "localhost") + "/secret",
        "/to-metadata": "http://169.254.169.254/latest/meta-data/iam/",
        "/to-file": "file:///etc/passwd",
        "/to-gopher": "gopher://127.0.0.1:70/_x",
        "/to-lookalike": "http://127.0.0.1.evil.net/data/a.tif",
        "/to-decimal": "http://2130706433/secret",
        "/to-ipv6": "http://[::1]:" + forbidden.url.rsplit(":", 1)[1] + "/secret",
        "/loop": "/loop",
        "/relative": "/data/a.tif",
        "/to-outside-path": "/private/a.tif",
    }
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {
        path: (302, {"Location": target}, b"") for path, target in redirect.items()
    }
    routes["/data/a.tif"] = (200, {}, BODY)
    routes["/data/to-data"] = (307, {"Location": "/data/a.tif"}, b"")
    routes["/data/huge"] = (200, {"Content-Length": str(10**12)}, b"")
    routes["/data/big"] = (200, {"Content-Length": "-"}, BODY * 10)
    routes["/data/escape"] = (302, {"Location": "/private/a.tif"}, b"")
    yield from _serve(routes)


def _policy(tmp: Path, allowed: Server, *extra: str) -> HrefPolicy:
    return HrefPolicy.from_settings(
        load_settings(data_dir=tmp / "node", allowed_url_prefixes=(allowed.url + "/", *extra))
    )


def test_an_allowed_url_is_downloaded_with_its_host_header(tmp_path: Path, allowed: Server) -> None:
    target = tmp_path / "a.tif"
    assert download(_policy(tmp_path, allowed), allowed.url + "/data/a.tif", target) == len(BODY)
    assert target.read_bytes() == BODY
    # redirects that stay inside the allow-list are followed, each one checked
    assert download(_policy(tmp_path, allowed), allowed.url + "/relative", target) == len(BODY)
    assert download(_policy(tmp_path, allowed), allowed.url + "/data/to-data", target) > 0
    port = allowed.url.rsplit(":", 1)[1]
    local = _policy(tmp_path, allowed, f"http://localhost:{port}/")
    download(local, f"http://localhost:{port}/data/a.tif", target)
    assert allowed.hits[-1] == ("/data/a.tif", f"localhost:{port}")  # connected to the checked IP


@pytest.mark.parametrize(
    ("route", "rule"),
    [
        ("/to-port", "not under an allowed URL prefix"),
        ("/to-localhost", "not under an allowed URL prefix"),
        ("/to-metadata", "not under an allowed URL prefix"),
        ("/to-file", "must lead to an http(s) URL"),
        ("/to-gopher", "scheme 'gopher'"),
        ("/to-lookalike", "not under an allowed URL prefix"),
        ("/to-decimal", "not in dotted-quad form"),
        ("/to-ipv6", "not under an allowed URL prefix"),
        ("/loop", "more than 5 redirects"),
    ],
)
def test_redirects_to_forbidden_places_are_refused_before_they_are_requested(
    tmp_path: Path, allowed: Server, forbidden: Server, route: str, rule: str
) -> None:
    target = tmp_path / "out"
    with pytest.raises(HrefRefusedError) as info:
        download(_policy(tmp_path, allowed), allowed.url + route, target)
    assert rule in info.value.rule
    bad = info.value.href
    assert repr(bad) in str(info.value)
    assert forbidden.hits == []  # the forbidden server never saw a request
    assert not target.exists() or target.read_bytes() == b""


def test_a_prefix_with_a_path_confines_redirects_to_it(tmp_path: Path, allowed: Server) -> None:
    policy = HrefPolicy.from_settings(
        load_settings(data_dir=tmp_path / "n", allowed_url_prefixes=(allowed.url + "/data",))
    )
    with pytest.raises(HrefRefusedError, match=r"/private/a\.tif"):
        download(policy, allowed.url + "/data/escape", tmp_path / "x")
    with pytest.raises(HrefRefusedError, match=r"decodes to '\.\.'"):
        download(policy, allowed.url + "/data/../to-outside-path", tmp_path / "x")
    with pytest.raises(HrefRefusedError, match="to-outside-path"):
        download(policy, allowed.url + "/to-outside-path", tmp_path / "x")
    assert all(path.startswith("/data") for path, _host in allowed.hits)


def test_sizes_are_bounded_and_failures_name_the_url(tmp_path: Path, allowed: Server) -> None:
    policy = _policy(tmp_path, allowed)
    with pytest.raises(InputError, match="more than 1000"):
        download(policy, allowed.url + "/data/huge", tmp_path / "h", max_bytes=1000)
    with pytest.raises(InputError, match="larger than 20000 bytes"):
        download(policy, allowed.url + "/data/big", tmp_path / "b", max_bytes=20_000)
    with pytest.raises(InputError, match="answered 404"):
        download(policy, allowed.url + "/data/nothing", tmp_path / "n")
    closed = allowed.url.rsplit(":", 1)[0] + ":9"  # nothing listens on the discard port
    far = HrefPolicy.from_settings(
        load_settings(data_dir=tmp_path / "n", allowed_url_prefixes=(closed + "/",))
    )
    with pytest.raises(HrefFetchError, match=r":9/x\.tif"):
        download(far, closed + "/x.tif", tmp_path / "c")
