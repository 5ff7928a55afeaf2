#!/bin/sh
# Run SeaweedFS `weed mini` as the S3 store of a gravitas deployment.
#   S3_ACCESS_KEY / S3_SECRET_KEY   the one identity allowed in (required; without any
#                                   credentials weed accepts every key). *_FILE variants
#                                   (S3_ACCESS_KEY_FILE, S3_SECRET_KEY_FILE) read Docker
#                                   secrets instead.
#   S3_BUCKETS                      comma-separated buckets created on start (optional;
#                                   the nodes also create their buckets themselves)
#   S3_PORT                         S3 gateway port (default 8333)
#   WEED_BIND                       bind address (default 0.0.0.0: other containers
#                                   connect; publish nothing on the host)
#   WEED_DATA_DIR                   data folder, a volume (default /data)
# Extra arguments are appended to the weed command line (later flags win).
set -eu

: "${S3_PORT:=8333}"
: "${WEED_BIND:=0.0.0.0}"
: "${WEED_DATA_DIR:=/data}"
: "${S3_BUCKETS:=}"

RUN_DIR="$(mktemp -d)"
export TMPDIR="${RUN_DIR}"
CONFIG="${RUN_DIR}/s3.json"

# Write the identity file (mode 0600) without putting the keys on a command line.
umask 077
python - "${CONFIG}" <<'PY'
import json
import os
import sys


def read(name: str) -> str:
    path = os.environ.get(name + "_FILE")
    value = open(path).read().strip() if path else os.environ.get(name, "")
    if not value:
        sys.exit(f"seaweedfs-entrypoint: set {name} (or {name}_FILE)")
    return value


identity = {
    "name": "admin",
    "credentials": [{"accessKey": read("S3_ACCESS_KEY"), "secretKey": read("S3_SECRET_KEY")}],
    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
}
with open(sys.argv[1], "w") as f:
    json.dump({"identities": [identity]}, f)
PY
umask 022
unset S3_ACCESS_KEY S3_SECRET_KEY AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

mkdir -p "${WEED_DATA_DIR}"
# -ip=127.0.0.1: the master, volume and filer only talk to each other inside this
# process; clients reach the S3 gateway, which proxies the data.
exec weed mini -dir="${WEED_DATA_DIR}" -ip=127.0.0.1 -ip.bind="${WEED_BIND}" \
    -master.telemetry=false \
    -master.port=9333 -master.port.grpc=19333 \
    -volume.port=8080 -volume.port.grpc=18080 \
    -filer.port=8888 -filer.port.grpc=18888 \
    -s3.port="${S3_PORT}" -s3.port.grpc=18333 \
    -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -admin.ui=false \
    -s3.config="${CONFIG}" \
    ${S3_BUCKETS:+-bucket="${S3_BUCKETS}"} \
    "$@"
