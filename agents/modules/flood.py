"""Pluvial flood screening: rain in excess of infiltration, routed into a DEM's depressions.

1. Fill the DEM's depressions by priority flood from its outlets (the raster edge and
   cells next to nodata); each cell records the neighbour it was reached from, which
   gives a drainage tree over the filled surface.
2. Depressions are the 8-connected groups of cells where filled > DEM.
3. Every cell's excess rain (``rain_mm - infiltration_mm``, as a volume over the cell's
   area) runs down the tree into the first depression it meets (or leaves the raster).
4. Each depression fills to the level whose stored volume equals its inflow, at most its
   spill level; the rest is reported as spilled.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from scipy import ndimage

from gravitas.agents.modules.context import ModuleContext
from gravitas.agents.modules.model import Module, schema
from gravitas.agents.modules.outputs import save_array

EARTH_M_PER_DEG = 111_320.0
NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


@dataclass(frozen=True)
class FloodResult:
    """The flood depth (m, NaN outside the DEM) and the volumes."""

    depth: np.ndarray
    filled: np.ndarray
    labels: np.ndarray
    stored_m3: float
    spilled_m3: float
    excess_m3: float


def priority_flood(dem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filled DEM and, per cell, the flat index of the cell it drains to (-1: outlet)."""
    ny, nx = dem.shape
    valid = np.isfinite(dem)
    filled = np.where(valid, dem, np.nan)
    parent = np.full(dem.size, -1, dtype=np.int64)
    seen = ~valid.copy()
    heap: list[tuple[float, int, int]] = []
    counter = 0
    for y in range(ny):
        for x in range(nx):
            if not valid[y, x]:
                continue
            edge = y in (0, ny - 1) or x in (0, nx - 1)
            if not edge:
                edge = any(not valid[y + dy, x + dx] for dy, dx in NEIGHBOURS)
            if edge:
                heapq.heappush(heap, (float(dem[y, x]), counter, y * nx + x))
                counter += 1
                seen[y, x] = True
    while heap:
        level, _, idx = heapq.heappop(heap)
        y, x = divmod(idx, nx)
        for dy, dx in NEIGHBOURS:
            v, u = y + dy, x + dx
            if 0 <= v < ny and 0 <= u < nx and not seen[v, u]:
                seen[v, u] = True
                filled[v, u] = max(float(dem[v, u]), level)
                parent[v * nx + u] = idx
                heapq.heappush(heap, (float(filled[v, u]), counter, v * nx + u))
                counter += 1
    return filled, parent


def fill_level(z: np.ndarray, area: np.ndarray, spill: float, volume: float) -> float:
    """The water level in a depression of cells ``z`` (areas ``area``) holding ``volume``."""
    order = np.argsort(z)
    zs, a = z[order], area[order]
    breaks = np.append(zs, spill)
    cum_area = np.cumsum(a)
    stored = np.concatenate([[0.0], np.cumsum(cum_area * np.diff(breaks))])
    if volume >= stored[-1]:
        return spill
    return float(np.interp(volume, stored, np.append(zs[:1], breaks[1:])))


def screen(
    dem: np.ndarray,
    lat: np.ndarray,
    res_deg: tuple[float, float],
    rain_mm: float,
    infiltration_mm: float,
) -> FloodResult:
    """Flood depth of every cell for one rain event."""
    nx = dem.shape[1]
    filled, parent = priority_flood(dem)
    valid = np.isfinite(dem)
    in_dep = valid & (filled > dem)
    labels, count = ndimage.label(in_dep, structure=np.ones((3, 3), dtype=bool))
    area = (
        (res_deg[1] * EARTH_M_PER_DEG)
        * (res_deg[0] * EARTH_M_PER_DEG * np.cos(np.radians(lat))[:, None])
        * np.ones((1, nx))
    )
    excess = max(rain_mm - infiltration_mm, 0.0) / 1000.0 * area * valid
    flat_labels = labels.ravel()
    target = np.zeros(dem.size, dtype=np.int64)  # depression each cell drains into
    for idx in range(dem.size):
        if not valid.flat[idx] or target[idx]:
            continue
        path = []
        cur = idx
        found = 0
        while cur >= 0:
            if flat_labels[cur]:
                found = int(flat_labels[cur])
                break
            if target[cur]:
                found = int(target[cur])
                break
            path.append(cur)
            cur = int(parent[cur])
        for p in path:
            target[p] = found if found else -1
        if flat_labels[idx]:
            target[idx] = flat_labels[idx]
    inflow = np.bincount(np.maximum(target, 0), weights=excess.ravel(), minlength=count + 1)
    depth = np.zeros_like(dem, dtype=np.float64)
    stored = spilled = 0.0
    for lab in range(1, count + 1):
        cells = labels == lab
        spill = float(filled[cells].max())
        level = fill_level(dem[cells], area[cells], spill, float(inflow[lab]))
        d = np.maximum(level - dem[cells], 0.0)
        depth[cells] = d
        held = float((d * area[cells]).sum())
        stored += held
        spilled += float(inflow[lab]) - held
    depth[~valid] = np.nan
    return FloodResult(depth, filled, labels, stored, max(spilled, 0.0), float(excess.sum()))


def read_dem(path: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """DEM (float, NaN for nodata), latitudes of the rows and (dx, dy) in degrees."""
    with rasterio.open(path) as src:
        band = src.read(1, masked=True)
        dem = np.asarray(band.astype(np.float64).filled(np.nan), dtype=np.float64)
        t = src.transform
        lat = t.f + t.e * (np.arange(src.height) + 0.5)
        return dem, lat, (abs(t.a), abs(t.e))


def run(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """The module function."""
    from gravitas.storage.sampledata import fetch

    dem, lat, res = read_dem(str(fetch(str(inputs["sample"]))))
    result = screen(dem, lat, res, float(inputs["rain_mm"]), float(inputs["infiltration_mm"]))
    wet = np.nan_to_num(result.depth) >= float(inputs["min_depth_m"])
    key, digest = save_array(ctx, result.depth)
    cell_km2 = float(
        (
            res[0]
            * EARTH_M_PER_DEG
            * np.cos(np.radians(lat))[:, None]
            * res[1]
            * EARTH_M_PER_DEG
            * np.ones((1, dem.shape[1]))
        )[wet].sum()
        / 1e6
    )
    max_depth = float(np.nanmax(result.depth)) if np.isfinite(result.depth).any() else 0.0
    return {
        "flooded_cells": int(wet.sum()),
        "flooded_km2": cell_km2,
        "max_depth_m": max_depth if math.isfinite(max_depth) else 0.0,
        "stored_m3": result.stored_m3,
        "spilled_m3": result.spilled_m3,
        "excess_m3": result.excess_m3,
        "depressions": int(result.labels.max()),
        "array_key": key,
        "sha256": digest,
    }


MODULE = Module(
    name="flood-screen",
    version="1.0.0",
    description="Pluvial flood screening: rain above infiltration routed over the "
    "priority-flood drainage tree of a DEM into its depressions, each filled to the level "
    "that holds its inflow (at most its spill level).",
    author="gravitas",
    lifecycle="published",
    kind="python",
    target="gravitas.agents.modules.flood:run",
    inputs=schema(
        {
            "sample": {"type": "string", "enum": ["lux_dem"], "default": "lux_dem"},
            "rain_mm": {"type": "number", "minimum": 0, "maximum": 2000},
            "infiltration_mm": {"type": "number", "minimum": 0, "maximum": 2000, "default": 10},
            "min_depth_m": {"type": "number", "minimum": 0, "default": 0.05},
        },
        ["rain_mm"],
    ),
    outputs=schema(
        {
            "flooded_cells": {"type": "integer"},
            "flooded_km2": {"type": "number"},
            "max_depth_m": {"type": "number"},
            "stored_m3": {"type": "number"},
            "spilled_m3": {"type": "number"},
            "excess_m3": {"type": "number"},
            "depressions": {"type": "integer"},
            "array_key": {"type": "string"},
            "sha256": {"type": "string"},
        }
    ),
    provenance={"source": "built-in", "package": "gravitas"},
)
