"""The SeaweedFS S3 server helper: real process, own credentials, loopback only, clean stop."""

from __future__ import annotations

import socket

import pytest
from minio import Minio
from minio.error import S3Error

from gravitas.storage.s3server import SeaweedS3


@pytest.mark.s3
def test_server_lifecycle() -> None:
    server = SeaweedS3()
    with server:
        host, port = server.endpoint.split(":")
        assert host == "127.0.0.1"
        ok = Minio(server.endpoint, server.access_key, server.secret_key, secure=False)
        ok.make_bucket("lifecycle")
        assert "lifecycle" in [b.name for b in ok.list_buckets()]
        bad = Minio(server.endpoint, server.access_key, "wrong-secret", secure=False)
        with pytest.raises(S3Error):
            bad.list_buckets()
        proc = server._proc
        assert proc is not None and proc.poll() is None
    assert proc.poll() is not None  # stopped
    assert not server.root.exists()  # temp dir removed
    with socket.socket() as s:
        assert s.connect_ex((host, int(port))) != 0  # nothing listens any more
