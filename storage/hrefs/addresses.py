"""Which network addresses an http(s) href may reach.

A host name is resolved and every address it resolves to is checked: loopback,
link-local (169.254.0.0/16, fe80::/10), private, shared (100.64.0.0/10), unspecified,
multicast and reserved addresses are refused unless the allow-list names them
explicitly (an allowed prefix whose host is that IP literal, or ``localhost`` for
loopback). The caller connects to the address checked here (never resolves again), so
a DNS answer that changes between check and connect cannot redirect the request.
"""

from __future__ import annotations

import ipaddress
import socket

from gravitas.storage.hrefs.errors import HrefRefusedError
from gravitas.storage.hrefs.parse import ParsedHref

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolve(href: ParsedHref) -> list[IPAddress]:
    """The addresses of the href's host (the literal itself for an IP host)."""
    literal = href.ip
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(href.host, href.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HrefRefusedError(href.raw, f"host {href.host!r} does not resolve ({exc})") from None
    out: list[IPAddress] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    if not out:
        raise HrefRefusedError(href.raw, f"host {href.host!r} resolves to no address")
    return out


def unwrap(addr: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped or NAT64/6to4-embedded IPv6 address."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.sixtofour is not None:
            return addr.sixtofour
        if addr in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr


def kind(addr: IPAddress) -> str | None:
    """Why ``addr`` is not a public address ("loopback", "link-local", ...), or None."""
    inner = unwrap(addr)
    for name in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(inner, f"is_{name}"):
            return name.replace("_", "-")
    if not inner.is_global:
        return "non-global"
    return None


def explicitly_allowed(addr: IPAddress, prefix: ParsedHref) -> bool:
    """True if the allow-list entry ``prefix`` names ``addr``: its host is that IP
    literal, or ``localhost`` and ``addr`` is a loopback address."""
    inner = unwrap(addr)
    literal = prefix.ip
    if literal is not None:
        return unwrap(literal) == inner
    return prefix.host == "localhost" and inner.is_loopback


def check_addresses(href: ParsedHref, prefix: ParsedHref) -> IPAddress:
    """Resolve ``href`` and check every address; returns the one to connect to."""
    addresses = resolve(href)
    for addr in addresses:
        why = kind(addr)
        if why is not None and not explicitly_allowed(addr, prefix):
            raise HrefRefusedError(
                href.raw,
                f"host {href.host!r} resolves to {why} address {addr}, which only an "
                "allowed URL prefix naming that address (GRAVITAS_ALLOWED_URL_PREFIXES) admits",
            )
    return addresses[0]
