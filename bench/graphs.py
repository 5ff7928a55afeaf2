"""Process-graph engine: one graph threaded vs a 2-worker LocalCluster, and whole-block
zonal mean / sd served from the overview pyramids vs computed from the raw blocks.

Data: the Sentinel-2 L1C sample's B04 and B08 (10 m, level 22) ingested into a SeaweedFS
S3 block store started here. The graph loads about 10^7 pixels (2 bands), computes
NDVI and its mean over a polygon (every pixel read). Usage:
``.venv/bin/python bench/graphs.py``; the last line is one JSON object.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from gravitas.agents import graphs
from gravitas.agents.graphs.scheduler import close_clients
from gravitas.agents.services import NodeServices
from gravitas.kernels.grid import bbox_to_block_range, block_bounds
from gravitas.schemas.settings import load_settings
from gravitas.storage.pixels.index import prepare_scene, write_scene
from gravitas.storage.pixels.overviews import update_pyramid
from gravitas.storage.s3server import SeaweedS3
from gravitas.storage.sampledata import fetch

BOX = (12.35, 52.40, 12.75, 52.58)


def _node(pid: str, **arguments: Any) -> dict[str, Any]:
    return {"process_id": pid, "arguments": arguments}


def _reducer(pid: str) -> dict[str, Any]:
    args = {"data": {"from_parameter": "data"}}
    return {"process_graph": {"r": {"process_id": pid, "arguments": args, "result": True}}}


def _graph(geometry: dict[str, Any], red: str, ndvi: bool) -> dict[str, Any]:
    w, s, e, n = BOX
    g: dict[str, Any] = {
        "load": _node("load_collection", id="s2", temporal_extent=None, bands=["B04", "B08"],
                      spatial_extent={"west": w, "south": s, "east": e, "north": n}),
    }  # fmt: skip
    src = "load"
    if ndvi:
        g["ndvi"] = _node("ndvi", data={"from_node": "load"})
        src = "ndvi"
    g["zonal"] = _node("aggregate_spatial", data={"from_node": src}, geometries=geometry,
                       reducer=_reducer(red))  # fmt: skip
    g["save"] = {**_node("save_result", data={"from_node": "zonal"}, format="JSON"),
                 "result": True}  # fmt: skip
    return g


def _best(fn: Any, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    with SeaweedS3() as s3, tempfile.TemporaryDirectory() as tmp:
        url = f"s3://gravitas-pixels/bench?endpoint={s3.endpoint}"
        keys = {"s3_access_key": s3.access_key, "s3_secret_key": s3.secret_key}
        settings = load_settings(data_dir=Path(tmp), block_store=url, **keys)
        services = NodeServices(settings)
        root = Path(fetch("s2_l1c"))
        plan = prepare_scene("T33UUU_20170216T102101", "s2",
                             sorted(root.glob("*_B0[48].jp2")), layer="s2")  # fmt: skip
        for fam in write_scene(services.block_store, services.layers, plan):
            info = services.layers.get(fam.layer)
            update_pyramid(services.block_store, info, fam.timestamp, fam.mortons)
        level = services.layers.get("s2_b04").native_level
        w, s, e, n = BOX
        poly = {"type": "Polygon", "coordinates": [[[w + 0.01, s + 0.01], [e - 0.01, s + 0.02],
                [e - 0.02, n - 0.01], [w + 0.02, n - 0.02], [w + 0.01, s + 0.01]]]}  # fmt: skip
        pixels = 2 * 10**7  # refined below from the loaded cube
        graphs.execute(_graph(poly, "mean", True), services)  # warm: imports
        threaded = _best(lambda: graphs.execute(_graph(poly, "mean", True), services))
        graphs.execute(_graph(poly, "mean", True), services, scheduler="local-cluster:2")
        cluster = _best(lambda: graphs.execute(_graph(poly, "mean", True), services,
                                               scheduler="local-cluster:2"))  # fmt: skip
        a = graphs.execute(_graph(poly, "mean", True), services).data
        b = graphs.execute(_graph(poly, "mean", True), services, scheduler="local-cluster:2").data
        close_clients()
        from gravitas.agents.graphs.collection import load

        cube = load(services.block_store, services.layers, "load", "s2",
                    dict(zip(("west", "south", "east", "north"), BOX, strict=True)),
                    None, ["B04", "B08"])  # fmt: skip
        pixels = int(cube.size)
        # whole blocks inside BOX: the largest block-aligned rectangle
        bx0, by0, bx1, by1 = bbox_to_block_range(level, BOX)
        rw, rs, _, _ = block_bounds(level, bx0 + 1, by0 + 1)
        _, _, re_, rn = block_bounds(level, bx1 - 1, by1 - 1)
        eps = 1e-9
        rect = {"type": "Polygon", "coordinates": [[[rw + eps, rs + eps], [re_ - eps, rs + eps],
                [re_ - eps, rn - eps], [rw + eps, rn - eps], [rw + eps, rs + eps]]]}  # fmt: skip
        raw_services = NodeServices(settings.model_copy(update={"graph_overviews": False}))
        figures: dict[str, Any] = {}
        for red in ("mean", "sd"):
            g = _graph(rect, red, False)
            fast = graphs.execute(g, services)
            assert fast.details["served_from_overviews"] == 1
            slow = graphs.execute(g, raw_services)
            fa = json.loads(fast.data)["data"][0][0]
            sa = json.loads(slow.data)["data"][0][0]
            rel = max(abs(x - y) / abs(y) for x, y in zip(fa, sa, strict=True))
            t_fast = _best(lambda g=g: graphs.execute(g, services), 5)
            t_slow = _best(lambda g=g: graphs.execute(g, raw_services), 3)
            figures[red] = {"overviews_s": round(t_fast, 4), "raw_s": round(t_slow, 3),
                            "speedup": round(t_slow / t_fast, 1), "max_rel_diff": rel}  # fmt: skip
        blocks = (bx1 - bx0 - 1) * (by1 - by0 - 1)
        print(f"graph ndvi+zonal mean over {pixels:.2e} px: threads {threaded:.2f} s, "
              f"LocalCluster(2 procs) {cluster:.2f} s, ratio {threaded / cluster:.2f}, "
              f"same bytes: {a == b}")  # fmt: skip
        for red, f in figures.items():
            print(f"whole-block {red} over {blocks} blocks x 2 bands: overviews "
                  f"{f['overviews_s'] * 1000:.1f} ms vs raw {f['raw_s']:.2f} s -> "
                  f"{f['speedup']}x (max rel diff {f['max_rel_diff']:.1e})")  # fmt: skip
        services.close()
        raw_services.close()
        print(json.dumps({
            "bench": "graphs", "pixels": pixels, "threads_s": round(threaded, 3),
            "local_cluster_2_s": round(cluster, 3), "threads_over_cluster": round(
                threaded / cluster, 2), "same_bytes": a == b, "whole_blocks": blocks,
            "overviews": figures,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
