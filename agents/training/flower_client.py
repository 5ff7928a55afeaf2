"""A Flower participant of one training request (run in Flower's interpreter).

    python flower_client.py --server HOST:PORT --data local.npz --node NODE ...

``local.npz`` holds ``x_train, y_train, x_test, y_test`` (pixel features and labels of the
node's own datacube) and ``items`` (the STAC item ids they came from): the node writes it
next to its data and nothing of it leaves the node but model parameters and metrics.
Imports only flwr, numpy and scikit-learn (see flower_models.py).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import flwr as fl
import numpy as np
from flower_models import (
    accuracy,
    get_params,
    initialise,
    log_loss,
    make_model,
    set_params,
    train_local,
)


class Participant(fl.client.NumPyClient):  # type: ignore[misc]
    def __init__(self, a: argparse.Namespace) -> None:
        data = np.load(a.data)
        self.x_train, self.y_train = data["x_train"], data["y_train"]
        self.x_test, self.y_test = data["x_test"], data["y_test"]
        self.items = [str(i) for i in data["items"]]
        self.classes = np.array([int(c) for c in a.classes.split(",")], np.int64)
        self.hyper = json.loads(a.hyper)
        self.node, self.seed = a.node, a.seed
        self.model = initialise(
            make_model(a.family, self.hyper, a.seed), self.x_train.shape[1], self.classes
        )

    def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
        return get_params(self.model)

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
        set_params(self.model, parameters)
        train_local(
            self.model,
            self.x_train,
            self.y_train,
            self.classes,
            epochs=int(config.get("local_epochs", 1)),
            seed=self.seed + int(config.get("round", 0)),
            proximal_mu=float(config.get("proximal_mu", 0.0)),
            learning_rate=float(config.get("learning_rate", 0.05)),
        )
        metrics = {
            "node": self.node,
            "train_accuracy": accuracy(self.model, self.x_train, self.y_train),
            "items": json.dumps(self.items),
        }
        return get_params(self.model), len(self.y_train), metrics

    def evaluate(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
        set_params(self.model, parameters)
        loss = log_loss(self.model, self.x_test, self.y_test)
        acc = accuracy(self.model, self.x_test, self.y_test)
        return loss, len(self.y_test), {"accuracy": acc, "node": self.node}


def wait_for_server(address: str, seconds: float) -> None:
    """Block until the server accepts TCP connections (it may still be starting)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"Flower server {address} did not answer within {seconds} s"
                ) from None
            time.sleep(0.5)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--family", required=True)
    ap.add_argument("--hyper", default="{}")
    ap.add_argument("--classes", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-wait", type=float, default=120.0)
    a = ap.parse_args()
    wait_for_server(a.server, a.max_wait)
    fl.client.start_client(
        server_address=a.server,
        client=Participant(a).to_client(),
        max_wait_time=a.max_wait,  # the server may still be starting, or restarting
    )
    print(json.dumps({"kind": "left", "node": a.node}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
