"""The Flower aggregator of one training request (run in Flower's interpreter).

    python flower_server.py --address 127.0.0.1:PORT --rounds 5 --family linear ...

It runs Flower's server with FedAvg or FedProx, excludes updates of the wrong shape or
with non-finite values (naming the participant and the reason), and prints one JSON
object per line on stdout: ``round`` (metrics of the round), ``excluded``, ``failures``,
``done`` (final metrics and where the parameters were written). The node reads them.
Imports only flwr, numpy and scikit-learn (see flower_models.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import flwr as fl
import numpy as np
from flower_models import (
    check_update,
    get_params,
    initialise,
    make_model,
    round_learning_rate,
)
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg, FedProx


def emit(kind: str, **data: Any) -> None:
    print(json.dumps({"kind": kind, **data}), flush=True)


def weighted(metrics: list[tuple[int, dict[str, Any]]], key: str) -> float:
    total = sum(n for n, _ in metrics)
    return float(sum(n * float(m.get(key, 0.0)) for n, m in metrics) / total) if total else 0.0


def strategy_class(name: str) -> type[FedAvg]:
    base: type[FedAvg] = FedProx if name == "fedprox" else FedAvg

    class Checked(base):  # type: ignore[valid-type, misc]
        """The strategy, with every update checked before it is averaged."""

        expected: list[tuple[int, ...]]
        current: list[np.ndarray]
        param_bytes: int
        moved: int = 0
        excluded_cids: set[str]

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            kept = []
            for proxy, res in results:
                arrays = parameters_to_ndarrays(res.parameters)
                reason = check_update(arrays, self.expected)
                node = str(res.metrics.get("node", proxy.cid))
                self.moved += 2 * self.param_bytes  # parameters down, update up
                if reason:
                    emit("excluded", round=server_round, node=node, reason=reason)
                    self.excluded_cids.add(proxy.cid)
                    continue
                kept.append((proxy, res))
            if failures:
                emit(
                    "failures",
                    round=server_round,
                    count=len(failures),
                    reasons=[
                        type(f).__name__ if isinstance(f, BaseException) else "failed"
                        for f in failures
                    ],
                )
            if not kept:
                return None, {}
            params, metrics = super().aggregate_fit(server_round, kept, [])
            if params is not None:
                self.current = parameters_to_ndarrays(params)
            metrics = dict(metrics or {})
            metrics["fit_nodes"] = ",".join(sorted(str(r.metrics.get("node", "")) for _, r in kept))
            metrics["items"] = json.dumps(
                sorted({i for _, r in kept for i in json.loads(str(r.metrics.get("items", "[]")))})
            )
            self.last_fit = metrics
            return params, metrics

        def aggregate_evaluate(self, server_round: int, results: Any, failures: Any) -> Any:
            # a participant whose update was refused does not grade the model either
            results = [(p, r) for p, r in results if p.cid not in self.excluded_cids]
            pairs = [(r.num_examples, r.metrics) for _, r in results]
            loss = weighted([(r.num_examples, {"l": r.loss}) for _, r in results], "l")
            acc = weighted(pairs, "accuracy")
            per_node = {str(m.get("node", "")): float(m.get("accuracy", 0.0)) for _, m in pairs}
            fit = getattr(self, "last_fit", {})
            emit(
                "round",
                round=server_round,
                loss=loss,
                accuracy=acc,
                per_node=per_node,
                fit_nodes=str(fit.get("fit_nodes", "")).split(","),
                bytes_moved=self.moved,
                items=json.loads(str(fit.get("items", "[]"))),
            )
            self.last_eval = {"accuracy": acc, "loss": loss, "per_node": per_node}
            return loss, {"accuracy": acc}

    return Checked


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--strategy", choices=("fedavg", "fedprox"), default="fedavg")
    ap.add_argument("--mu", type=float, default=0.0)
    ap.add_argument("--min-participants", type=int, default=1)
    ap.add_argument("--family", required=True)
    ap.add_argument("--hyper", default="{}")
    ap.add_argument("--classes", required=True)
    ap.add_argument("--n-features", type=int, required=True)
    ap.add_argument("--local-epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--round-timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    hyper = json.loads(a.hyper)
    classes = np.array([int(c) for c in a.classes.split(",")], np.int64)
    model = initialise(make_model(a.family, hyper, a.seed), a.n_features, classes)
    init = get_params(model)
    cls = strategy_class(a.strategy)
    kwargs: dict[str, Any] = dict(
        fraction_fit=1.0,
        fraction_evaluate=1.0,
        min_fit_clients=a.min_participants,
        min_evaluate_clients=a.min_participants,
        min_available_clients=a.min_participants,
        initial_parameters=ndarrays_to_parameters(init),
        on_fit_config_fn=lambda r: {
            "round": r,
            "local_epochs": a.local_epochs,
            "learning_rate": round_learning_rate(hyper, r),
        },
        accept_failures=True,
    )
    if a.strategy == "fedprox":
        kwargs["proximal_mu"] = a.mu
    strategy = cls(**kwargs)
    strategy.expected = [p.shape for p in init]
    strategy.current = init
    strategy.param_bytes = int(sum(p.nbytes for p in init))
    strategy.excluded_cids = set()
    emit("started", address=a.address, param_bytes=strategy.param_bytes)
    fl.server.start_server(
        server_address=a.address,
        config=fl.server.ServerConfig(num_rounds=a.rounds, round_timeout=a.round_timeout),
        strategy=strategy,
    )
    a.out.mkdir(parents=True, exist_ok=True)
    np.savez(a.out / "final.npz", *strategy.current)
    emit(
        "done",
        params=str(a.out / "final.npz"),
        bytes_moved=strategy.moved,
        param_bytes=strategy.param_bytes,
        **getattr(strategy, "last_eval", {}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
