"""Download an admitted http(s) href: every hop checked, bounded in size and time.

Redirects are not followed by the client: each ``Location`` is checked by the policy
like a new href (allow-list and addresses) before it is requested, at most
:data:`MAX_REDIRECTS` times. The connection goes to the address the policy checked
(the ``Host`` header and TLS server name stay the URL's host), so DNS cannot answer
differently between check and connect. Proxies from the environment are not used.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import httpx

from gravitas.schemas.errors import InputError
from gravitas.storage.hrefs.errors import HrefFetchError, HrefRefusedError
from gravitas.storage.hrefs.parse import DEFAULT_PORTS, parse_href
from gravitas.storage.hrefs.policy import CheckedHref, HrefPolicy

MAX_REDIRECTS = 5
MAX_DOWNLOAD_BYTES = 2 * 1024**3
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def download(
    policy: HrefPolicy, href: str, target: Path, *, max_bytes: int = MAX_DOWNLOAD_BYTES
) -> int:
    """Write the body of ``href`` to ``target``; returns its size in bytes."""
    url = href
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
        for hop in range(MAX_REDIRECTS + 1):
            if not parse_href(url).is_url:
                raise HrefRefusedError(url, f"a redirect from {href!r} must lead to an http(s) URL")
            checked = policy.check(url)
            location = _get(client, checked, target, max_bytes)
            if isinstance(location, int):
                return location
            if hop == MAX_REDIRECTS:
                break
            url = urljoin(url, location)
    raise HrefRefusedError(href, f"more than {MAX_REDIRECTS} redirects")


def _get(client: httpx.Client, checked: CheckedHref, target: Path, max_bytes: int) -> int | str:
    """GET one hop: the body's size, or the redirect's ``Location``."""
    href = checked.href
    assert checked.address is not None
    host = href.host if ":" not in href.host else f"[{href.host}]"
    port = "" if href.port == DEFAULT_PORTS[href.scheme] else f":{href.port}"
    url = httpx.URL(href.raw.split("#", 1)[0]).copy_with(host=str(checked.address))
    extensions = {"sni_hostname": href.host} if href.scheme == "https" else {}
    try:
        with client.stream(
            "GET", url, headers={"Host": host + port}, extensions=extensions
        ) as resp:
            if resp.status_code in REDIRECTS:
                location = resp.headers.get("location")
                if not location:
                    raise InputError(f"GET {href.raw} answered {resp.status_code} without Location")
                return location
            if resp.status_code != 200:
                raise InputError(f"GET {href.raw} answered {resp.status_code}; check the href")
            declared = int(resp.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise InputError(f"{href.raw} is {declared} bytes, more than {max_bytes}")
            size = 0
            with target.open("wb") as fh:
                for chunk in resp.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InputError(f"{href.raw} is larger than {max_bytes} bytes")
                    fh.write(chunk)
            return size
    except httpx.HTTPError as exc:
        raise HrefFetchError(f"GET {href.raw} failed: {type(exc).__name__}: {exc}") from exc
