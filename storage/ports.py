"""Free TCP ports on 127.0.0.1 for the local servers gravitas starts (Kafka, S3,
PostgreSQL, the pgstac API): bind port 0, read what the kernel gave, close."""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all held open until every one is read)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    """One free port."""
    return free_ports(1)[0]
