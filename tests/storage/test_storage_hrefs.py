"""The href policy attacked: paths out of the roots, symlinks, loopback and link-local
addresses in every spelling, look-alike hosts, scheme tricks, foreign buckets; each is
refused with a message naming the bad value. Real files, real name resolution."""

from __future__ import annotations

import ipaddress
import os
import socket
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gravitas.schemas.errors import ConfigError, UnsafePathError
from gravitas.schemas.settings import load_settings
from gravitas.storage.hrefs import HrefPolicy, HrefRefusedError, parse_href
from gravitas.storage.hrefs.addresses import kind

ALLOWED = "https://data.example.com/pub/scenes"
LOOP = "http://127.0.0.1:8123/"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """roots/ok.tif, a symlink out of the root, a symlink inside it, node state."""
    root = tmp_path / "roots"
    (root / "sub").mkdir(parents=True)
    (root / "ok.tif").write_bytes(b"x")
    (root / "sub" / "in.tif").write_bytes(b"y")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "out-link.tif").symlink_to(tmp_path / "secret.txt")
    (root / "dir-link").symlink_to(tmp_path)
    (root / "in-link.tif").symlink_to(root / "sub" / "in.tif")
    node = tmp_path / "node"
    (node / "objects" / "assets").mkdir(parents=True)
    (node / "objects" / "assets" / "a.tif").write_bytes(b"z")
    (node / "catalog.sqlite").write_bytes(b"state")
    return tmp_path


def _policy(tmp: Path, **extra: object) -> HrefPolicy:
    values: dict[str, object] = {
        "data_dir": tmp / "node",
        "allowed_roots": (tmp / "roots",),
        "allowed_url_prefixes": (ALLOWED, LOOP),
    }
    values.update(extra)
    return HrefPolicy.from_settings(load_settings(**values))


def _refused(policy: HrefPolicy, href: str, rule: str, *, must_exist: bool = False) -> None:
    with pytest.raises(HrefRefusedError) as info:
        policy.check(href, must_exist=must_exist)
    assert repr(href)[:200].strip("'") in str(info.value), str(info.value)
    assert rule in info.value.rule, info.value.rule
    assert "\n" not in str(info.value)
    assert isinstance(info.value, UnsafePathError)  # an InputError: dead-lettered, not retried


HOSTILE_FILES = {
    "/etc/passwd": "outside the allowed roots",
    "file:///etc/passwd": "outside the allowed roots",
    "FILE:///etc/passwd": "outside the allowed roots",
    "file://localhost/etc/passwd": "outside the allowed roots",
    "file://evil.net/etc/passwd": "must not name a host",
    "{t}/roots/../secret.txt": "'..' segment",
    "file://{t}/roots/%2e%2e/secret.txt": "'..' segment",
    "{t}/roots/out-link.tif": "outside the allowed roots",
    "{t}/roots/dir-link/secret.txt": "outside the allowed roots",
    "{t}/node/catalog.sqlite": "outside the allowed roots",
    "relative/path.tif": "scheme '(none)'",
    "{t}/roots/ok.tif\x00.png": "control character",
    "file:///{t}/roots/ok.tif?x=1": "query or fragment",
}


@pytest.mark.parametrize("template", sorted(HOSTILE_FILES))
def test_local_files_outside_the_roots_are_refused(tree: Path, template: str) -> None:
    _refused(_policy(tree), template.format(t=tree), HOSTILE_FILES[template])


def test_symlinks_resolve_and_node_state_is_never_a_source(tree: Path) -> None:
    policy = _policy(tree)
    checked = policy.check(str(tree / "roots" / "in-link.tif"), must_exist=True)
    assert checked.path == tree / "roots" / "sub" / "in.tif"  # the real file is what is read
    assert policy.check((tree / "node/objects/assets/a.tif").as_uri()).path is not None
    _refused(policy, str(tree / "roots" / "out-link.tif"), f"resolves to {tree}/secret.txt")
    _refused(policy, str(tree / "roots" / "missing.tif"), "not a readable", must_exist=True)
    _refused(policy, str(tree / "roots" / "sub"), "not a readable regular file", must_exist=True)
    # a root that contains the data dir still never admits the node's own state
    wide = _policy(tree, allowed_roots=(tree,))
    _refused(wide, str(tree / "node" / "catalog.sqlite"), "node's own data dir")
    assert wide.check(str(tree / "secret.txt")).path == tree / "secret.txt"
    # ... unless a folder inside it is allow-listed on purpose
    inbox = tree / "node" / "files"
    inbox.mkdir()
    (inbox / "s.tif").write_bytes(b"s")
    default = _policy(tree, allowed_roots=())
    assert default.check(str(inbox / "s.tif"), must_exist=True).path == inbox / "s.tif"
    _refused(default, str(tree / "node" / "catalog.sqlite"), "outside the allowed roots")


HOSTILE_URLS = {
    # look-alike hosts and user information
    "https://data.example.com.evil.net/pub/scenes/a.tif": "not under an allowed URL prefix",
    "https://data.example.com@evil.net/pub/scenes/a.tif": "user information",
    "https://user:pw@data.example.com/pub/scenes/a.tif": "user information",
    "https://evil.net#@data.example.com/pub/scenes/a.tif": "not under an allowed URL prefix",
    "https://data.example.com\\@evil.net/pub/scenes/a.tif": "spaces or backslashes",
    "https://evildata.example.com/pub/scenes/a.tif": "not under an allowed URL prefix",
    "https://example.com/pub/scenes/a.tif": "not under an allowed URL prefix",
    # path: segment prefix, not string prefix; no dot segments in any spelling
    "https://data.example.com/pub/scenes-private/a.tif": "not under an allowed URL prefix",
    "https://data.example.com/pub/scenesX": "not under an allowed URL prefix",
    "https://data.example.com/pub/scenes/../../admin": "decodes to '..'",
    "https://data.example.com/pub/scenes/%2e%2E/admin": "decodes to '..'",
    "https://data.example.com/pub/scenes%2f..%2fadmin": "decodes to",
    # scheme and port tricks
    "http://data.example.com/pub/scenes/a.tif": "not under an allowed URL prefix",
    "https://data.example.com:8443/pub/scenes/a.tif": "not under an allowed URL prefix",
    "https://data.example.com:99999/pub/scenes/a.tif": "port",
    "gopher://data.example.com/pub/scenes/a.tif": "scheme 'gopher'",
    "ftp://data.example.com/pub/scenes/a.tif": "scheme 'ftp'",
    "dict://127.0.0.1:11211/stat": "scheme 'dict'",
    "jar:https://data.example.com/pub/scenes/a.zip!/x": "scheme 'jar'",
    "//data.example.com/pub/scenes/a.tif": "scheme '(none)'",
    # loopback, link-local, private, unspecified in every spelling
    "http://127.0.0.1/": "not under an allowed URL prefix",
    "http://127.0.0.1:8124/": "not under an allowed URL prefix",
    "http://localhost:8123/": "not under an allowed URL prefix",
    "http://[::1]:8123/": "not under an allowed URL prefix",
    "http://[::ffff:127.0.0.1]:8123/": "not under an allowed URL prefix",
    "http://0.0.0.0:8123/": "not under an allowed URL prefix",
    "http://127.1:8123/": "not in dotted-quad form",
    "http://2130706433:8123/": "not in dotted-quad form",
    "http://0x7f000001:8123/": "not in dotted-quad form",
    "http://0x7f.0.0.1:8123/": "not in dotted-quad form",
    "http://0177.0.0.1:8123/": "not in dotted-quad form",
    "http://127.000.000.001:8123/": "not in dotted-quad form",
    "http://169.254.169.254/latest/meta-data/": "not under an allowed URL prefix",
    "http://[fe80::1%25eth0]:8123/": "zone ids",
    "http://10.0.0.7/": "not under an allowed URL prefix",
    "http://192.168.1.1/": "not under an allowed URL prefix",
    # buckets: only the node's own object store
    "s3://other-bucket/pub/a.tif": "this node's object store",
    "s3://Bad_Bucket/a.tif": "not an S3 bucket name",
    "s3://bucket/a.tif?endpoint=169.254.169.254:80": "query or fragment",
}


@pytest.mark.parametrize("href", sorted(HOSTILE_URLS))
def test_hostile_urls_are_refused_naming_the_href(tree: Path, href: str) -> None:
    _refused(_policy(tree), href, HOSTILE_URLS[href])


def test_urls_match_by_parsed_scheme_host_port_and_segments(tree: Path) -> None:
    policy = _policy(tree)
    for ok in (
        "https://DATA.Example.COM/pub/scenes/a.tif",
        "https://data.example.com./pub/scenes/a.tif",
        "https://data.example.com:443/pub/scenes/sub/b.tif?x=1",
        "https://ｄａｔａ.example.com/pub/scenes/a.tif",  # fullwidth: IDNA maps it
    ):
        assert policy.url_prefix(parse_href(ok)).raw == ALLOWED
    checked = policy.check("http://127.0.0.1:8123/x.tif")  # the literal is allow-listed
    assert checked.address == ipaddress.ip_address("127.0.0.1")


def test_a_host_name_resolving_to_loopback_is_refused_unless_named(tree: Path) -> None:
    name = socket.gethostname().lower()
    addrs = {i[4][0] for i in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    if all(kind(ipaddress.ip_address(a.split("%")[0])) is None for a in addrs):
        pytest.skip(f"{name} resolves to public addresses {addrs} here")
    policy = _policy(tree, allowed_url_prefixes=(f"http://{name}:8123/",))
    _refused(policy, f"http://{name}:8123/a.tif", "resolves to")
    # "localhost" in the allow-list names loopback explicitly
    local = _policy(tree, allowed_url_prefixes=("http://localhost:8123/",))
    assert local.check("http://localhost:8123/a.tif").address is not None
    assert local.check("http://LOCALHOST.:8123/a.tif").address is not None


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.255.0.9", "::1", "0.0.0.0", "::", "169.254.169.254", "fe80::1",
     "10.1.2.3", "172.16.0.1", "192.168.0.1", "100.64.0.1", "fc00::1", "224.0.0.251",
     "ff02::1", "240.0.0.1", "::ffff:169.254.169.254", "::ffff:127.0.0.1",
     "2002:7f00:1::1", "64:ff9b::a9fe:a9fe"],
)  # fmt: skip
def test_non_public_addresses_are_classified(address: str) -> None:
    assert kind(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert kind(ipaddress.ip_address(address)) is None


def test_s3_hrefs_name_only_the_nodes_own_store(tree: Path) -> None:
    policy = _policy(tree, object_store="s3://gravitas-objects/node-a?endpoint=127.0.0.1:1")
    assert policy.check("s3://gravitas-objects/node-a/assets/c/s/x.tif").key == "assets/c/s/x.tif"
    _refused(policy, "s3://gravitas-objects/node-b/assets/x.tif", "this node's object store")
    _refused(policy, "s3://gravitas-objects-2/node-a/x.tif", "this node's object store")
    _refused(policy, "s3://gravitas-objects/node-a/%2e%2e/node-b/x.tif", "decodes to '..'")


def test_a_bad_allow_list_entry_is_a_config_error(tree: Path) -> None:
    with pytest.raises(ConfigError, match="'http://user@host/'"):
        _policy(tree, allowed_url_prefixes=("http://user@host/",))


# ---------------------------------------------------------------- properties

_label = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12).filter(
    lambda s: not s.startswith("-") and not s.endswith("-")
)
_segment = st.text(string.ascii_letters + string.digits + "._-~%", min_size=1, max_size=10)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    label=_label,
    where=st.sampled_from(["suffix", "prefix", "userinfo", "sibling", "port"]),
    path=st.lists(_segment, max_size=4),
)
def test_no_look_alike_host_passes(tree: Path, label: str, where: str, path: list[str]) -> None:
    host = {
        "suffix": f"data.example.com.{label}",
        "prefix": f"{label}data.example.com" if label else "x",
        "userinfo": f"data.example.com@{label}.net",
        "sibling": f"{label}.example.com",
        "port": f"data.example.com:{len(label) + 1}",
    }[where]
    href = f"https://{host}/pub/scenes/" + "/".join(path)
    with pytest.raises(HrefRefusedError) as info:
        _policy(tree).check(href, resolve=False)
    assert href[:150] in str(info.value)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.lists(_segment, min_size=1, max_size=5))
def test_only_paths_under_the_prefix_segments_pass(tree: Path, path: list[str]) -> None:
    href = "https://data.example.com/" + "/".join(path)
    policy = _policy(tree)
    try:
        parsed = parse_href(href)
    except HrefRefusedError:
        return  # dot segments and encoded slashes: refused at parsing, fine
    try:
        policy.url_prefix(parsed)
    except HrefRefusedError:
        assert parsed.segments[:2] != ("pub", "scenes")
    else:
        assert parsed.segments[:2] == ("pub", "scenes")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=st.lists(st.sampled_from(["..", ".", "sub", "ok.tif", "dir-link", "out-link.tif", ""]),
                   min_size=1, max_size=6),
    as_url=st.booleans(),
)  # fmt: skip
def test_no_path_escapes_the_roots(tree: Path, parts: list[str], as_url: bool) -> None:
    raw = str(tree / "roots") + "/" + "/".join(parts)
    href = Path(raw).as_uri() if as_url and ".." not in parts else raw
    policy = _policy(tree)
    try:
        checked = policy.check(href)
    except HrefRefusedError as exc:
        assert href in str(exc)
        return
    assert checked.path is not None
    assert checked.path.is_relative_to(os.path.realpath(tree / "roots"))


_url_chars = st.sampled_from(list("/:@[]%.#?\\-_~!$&'()*+,;=") + list("aZ09é߀\u200b\uff0e"))


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scheme=st.sampled_from(["http://", "https://", "file://", "s3://", "HTTP://", "", "/"]),
    rest=st.text(_url_chars, max_size=40) | st.text(max_size=40),
)
def test_any_text_is_admitted_or_refused_with_one_line_never_a_traceback(
    tree: Path, scheme: str, rest: str
) -> None:
    href = scheme + rest
    try:
        _policy(tree).check(href, resolve=False)
    except HrefRefusedError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("href ")
