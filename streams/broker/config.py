"""The files of a local broker's data dir: ports, cluster id and ``server.properties``.

Layout of ``DATA_DIR``::

    broker.json        ports and cluster id, kept so a restart reuses them
    server.properties  the KRaft settings (rewritten on every start)
    log4j2.xml         the logging config (WARN+ to logs/server.log)
    kafka-logs/        log.dirs: topic data and the KRaft metadata log (meta.properties)
    logs/server.log    the broker's own log
    broker.out         the JVM's stdout and stderr
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from gravitas.schemas.errors import BrokerError

STATE_FILE = "broker.json"
PROPERTIES_FILE = "server.properties"
LOG4J_FILE = "log4j2.xml"
LOG_DIRS = "kafka-logs"
LOGS_DIR = "logs"
OUT_FILE = "broker.out"


@dataclass(frozen=True)
class BrokerState:
    """What must survive a restart on the same data dir."""

    port: int
    """The client (PLAINTEXT) listener port on 127.0.0.1."""
    controller_port: int
    """The KRaft controller listener port on 127.0.0.1 (part of the quorum voters)."""
    cluster_id: str
    """The 22-character base64url cluster id the storage was formatted with."""


def new_cluster_id() -> str:
    """A fresh 22-character base64url uuid, never starting with '-' (as Kafka's own)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


def is_formatted(data_dir: Path) -> bool:
    """True when ``kafka-logs/meta.properties`` exists (the storage was formatted)."""
    return (data_dir / LOG_DIRS / "meta.properties").is_file()


def formatted_cluster_id(data_dir: Path) -> str | None:
    """The ``cluster.id`` in ``kafka-logs/meta.properties``, or None when not formatted."""
    path = data_dir / LOG_DIRS / "meta.properties"
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    return None


def load_state(data_dir: Path) -> BrokerState | None:
    """The persisted :class:`BrokerState`, or None for a fresh data dir."""
    path = data_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return BrokerState(int(raw["port"]), int(raw["controller_port"]), str(raw["cluster_id"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BrokerError(
            f"{path} is not a valid broker state file ({exc}); delete the data dir "
            f"{data_dir} to start a fresh broker"
        ) from exc


def save_state(data_dir: Path, state: BrokerState) -> None:
    """Write :class:`BrokerState` to ``broker.json`` (atomically)."""
    tmp = data_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    tmp.replace(data_dir / STATE_FILE)


def server_properties(data_dir: Path, state: BrokerState) -> str:
    """The ``server.properties`` of a one-node KRaft broker+controller on 127.0.0.1."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{state.controller_port}",
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{state.port},CONTROLLER://127.0.0.1:{state.controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{state.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir / LOG_DIRS),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.dedupe.buffer.size": "2097152",
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
    }
    lines = ["# Written by gravitas.streams.broker; rewritten on every start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def write_config(data_dir: Path, state: BrokerState) -> Path:
    """Write ``server.properties`` and ``log4j2.xml`` into ``data_dir``; return the former."""
    (data_dir / LOGS_DIR).mkdir(parents=True, exist_ok=True)
    log4j = resources.files(__package__).joinpath(LOG4J_FILE).read_bytes()
    (data_dir / LOG4J_FILE).write_bytes(log4j)
    path = data_dir / PROPERTIES_FILE
    path.write_text(server_properties(data_dir, state))
    return path
