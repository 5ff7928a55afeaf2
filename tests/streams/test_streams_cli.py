"""The CLI by hand, as the README shows it: node + publish + tail + ping, on both transports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gravitas.streams.broker import KafkaBroker, create_topics_sync
from gravitas.streams.topology import Topology

CLI = [sys.executable, "-m", "gravitas.streams.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env.update(extra)
    return env


def gravitas(
    *args: str, env: dict[str, str], stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(params=["memory", "kafka"])
def node_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A running `gravitas node` process and the environment that reaches it."""
    data = tmp_path / "node"
    env = _env(GRAVITAS_DATA_DIR=str(data), GRAVITAS_HTTP_PORT="0", GRAVITAS_NODE_ID="cli-node")
    if request.param == "kafka":
        broker: KafkaBroker = request.getfixturevalue("kafka_broker")
        prefix = f"c{uuid.uuid4().hex[:8]}."
        topology = Topology(prefix=prefix, federation_prefix=prefix)
        create_topics_sync(broker.bootstrap, topology.partition_counts())
        env.update(
            GRAVITAS_BROKER=broker.url,
            GRAVITAS_TOPIC_PREFIX=prefix,
            GRAVITAS_FEDERATION_PREFIX=prefix,  # not the other tests' registrations
            GRAVITAS_GROUP_ID=f"g-{prefix}",
            GRAVITAS_KAFKA_SESSION_TIMEOUT_S="6",
        )
    log = (tmp_path / "node.log").open("wb")
    proc = subprocess.Popen([*CLI, "node"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (data / "node.json").exists():
        assert proc.poll() is None, (tmp_path / "node.log").read_text()
        assert time.monotonic() < deadline, "node did not start"
        time.sleep(0.1)
    try:
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        assert code == 0, (tmp_path / "node.log").read_text()[-3000:]
        assert not (data / "node.json").exists()  # clean shutdown removes it


def test_publish_tail_and_ping_work_together(node_env: dict[str, str], tmp_path: Path) -> None:
    ping = gravitas("ping", "--count", "2", "--timeout", "60", env=node_env)
    assert ping.returncode == 0, ping.stderr
    assert "cli-node" in ping.stdout

    events = tmp_path / "pings.jsonl"
    events.write_text(
        '{"request_id": "cli-1", "payload": "one"}\n'
        '{"request_id": "", "payload": "bad id"}\n'
        "this is not json\n"
        '{"request_id": "cli-2", "payload": "two"}\n'
    )
    pub = gravitas("publish", "ops.ping", str(events), env=node_env)
    assert pub.returncode == 1  # some lines were invalid
    assert "line 2" in pub.stderr and "request_id" in pub.stderr
    assert "line 3" in pub.stderr and "not valid JSON" in pub.stderr
    assert "published 2 event(s)" in pub.stderr

    tail = gravitas(
        "tail",
        "ops.pong",
        "--from-beginning",
        "--json",
        "--limit",
        "4",
        "--idle-timeout",
        "30",
        env=node_env,
    )
    assert tail.returncode == 0, tail.stderr
    pongs = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    assert {"cli-1", "cli-2"} <= {p["request_id"] for p in pongs}
    assert all(p["type"] == "ops.pong" for p in pongs)


def test_publish_from_stdin_rejects_unknown_topic(tmp_path: Path) -> None:
    env = _env(GRAVITAS_DATA_DIR=str(tmp_path))
    res = gravitas("publish", "no.such.topic", "-", env=env, stdin=b'{"a": 1}\n')
    assert res.returncode == 2
    assert "unknown topic 'no.such.topic'" in res.stderr
    assert "Traceback" not in res.stderr


def test_publish_without_a_running_node_says_how_to_start_one(tmp_path: Path) -> None:
    env = _env(GRAVITAS_DATA_DIR=str(tmp_path / "nothing"))
    res = gravitas("publish", "ops.ping", "-", env=env, stdin=b'{"request_id": "x"}\n')
    assert res.returncode == 2
    assert "gravitas node" in res.stderr and "Traceback" not in res.stderr


def test_config_masks_secrets_and_names_bad_settings(tmp_path: Path) -> None:
    toml = tmp_path / "gravitas.toml"
    toml.write_text('node_id = "from-toml"\npartitions = 8\n')
    env = _env(
        GRAVITAS_CONFIG=str(toml), GRAVITAS_API_TOKEN="s3cr3t-token", GRAVITAS_PARTITIONS="6"
    )
    res = gravitas("config", "--json", env=env)
    assert res.returncode == 0, res.stderr
    values = json.loads(res.stdout)
    assert values["node_id"] == "from-toml"  # from the file
    assert values["partitions"] == 6  # the environment wins over the file
    assert values["api_token"] == "*****"
    assert "s3cr3t-token" not in res.stdout

    bad = gravitas("config", env=_env(GRAVITAS_HTTP_HOST="0.0.0.0"))
    assert bad.returncode == 2
    assert "GRAVITAS_HTTP_HOST" in bad.stderr and "0.0.0.0" in bad.stderr
    bad_broker = gravitas("config", "--broker", "redis://x", env=_env())
    assert bad_broker.returncode == 2 and "redis://x" in bad_broker.stderr


@pytest.mark.parametrize(
    "command",
    [
        "node",
        "publish",
        "tail",
        "broker",
        "config",
        "ping",
        "schemas export",
        "keygen",
        "public-key",
    ],
)
def test_every_command_has_help_with_an_example(command: str) -> None:
    res = gravitas(*command.split(), "--help", env=_env())
    assert res.returncode == 0
    assert "Example" in res.stdout


def test_broker_command_reports_a_missing_maven(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = _env(PATH=str(empty), GRAVITAS_CACHE=str(tmp_path / "cache"))
    res = gravitas("broker", "--data", str(tmp_path / "k"), env=env, timeout=60)
    assert res.returncode == 2
    assert "mvn" in res.stderr or "java" in res.stderr
    assert "Traceback" not in res.stderr


def _readme_demo() -> list[str]:
    """The publish/tail/ping commands of the README's "By hand" block, as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## By hand", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    starts = ("echo ", "printf ", "gravitas tail", "gravitas ping", "gravitas publish")
    return [line.strip() for line in block.splitlines() if line.strip().startswith(starts)]


def test_readme_demo_shows_the_dead_letter_reason(node_env: dict[str, str], tmp_path: Path) -> None:
    commands = _readme_demo()
    assert commands[-2].startswith("printf 'not json\\n' | gravitas publish ops.ping -")
    assert commands[-1].startswith("gravitas tail deadletter --from-beginning")
    env = {**node_env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for command in commands[:-1]:
        command = command.split(" || ", 1)[0]  # the README shrugs off the refusal's exit 1
        res = subprocess.run(
            ["bash", "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        if command.startswith("printf 'not json"):
            assert res.returncode == 1, res.stderr
            assert "line 1" in res.stderr and "not valid JSON" in res.stderr
            assert "Traceback" not in res.stderr
        else:
            assert res.returncode == 0, (command, res.stderr)
    # `tail` follows forever: read until the rejection shows, with its reason, on one line
    tail = subprocess.Popen(
        ["bash", "-c", commands[-1]], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        seen: list[str] = []
        assert tail.stdout is not None
        while time.monotonic() < deadline:
            line = tail.stdout.readline()
            seen.append(line)
            if "'not json'" in line:
                break
        assert "'not json'" in seen[-1], "".join(seen)
        assert "deadletter.rejected" in seen[-1] and "ops.ping" in seen[-1]
        assert "not valid JSON" in seen[-1]  # the reason, not cut off
    finally:
        os.killpg(tail.pid, signal.SIGTERM)
        tail.wait(10)
    log = (tmp_path / "node.log").read_text(errors="replace")
    assert "\x1b" not in log, "terminal escape codes in the node's log"
    assert "GroupCoordinatorNotAvailableError" not in log
    assert "Traceback" not in log and "DeprecationWarning" not in log


def test_read_only_commands_do_not_create_a_missing_data_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    for args in (
        ["layers", "--data", str(missing)],
        ["quicklook", "x", "--out", "x.png", "--data", str(missing)],
        ["search", "x", "> 1", "--data", str(missing)],
    ):
        res = gravitas(*args, env=_env())
        assert res.returncode == 2, res.stderr
        assert f"data directory {missing} does not exist" in res.stderr.replace("\n", "")
        assert "Traceback" not in res.stderr
        assert not missing.exists()
