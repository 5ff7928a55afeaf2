"""A weather-generator downscaling model: a coarse field (ERA5, 3 deg) to a finer grid.

1. Interpolate the coarse field bilinearly onto a grid ``factor`` times finer.
2. Quantile mapping: map each interpolated value through the empirical CDF of the
   interpolated field onto the empirical quantiles of the coarse field (interpolation
   smooths the extremes away; the mapping restores the coarse distribution).
3. Stochastic disaggregation: add seeded Gaussian noise whose standard deviation is
   ``noise`` times the coarse field's mean absolute neighbour difference, made zero-mean
   inside every coarse cell's ``factor x factor`` block, so the block means of step 2
   are kept exactly. Same seed, same field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from gravitas.agents.modules.context import ModuleContext
from gravitas.agents.modules.errors import ModuleError
from gravitas.agents.modules.model import Module, schema
from gravitas.agents.modules.outputs import save_array

SAMPLES = ("era5_nc",)


def fine_axis(coarse: np.ndarray, factor: int) -> np.ndarray:
    """``factor`` points per coarse interval, centred like cell subdivisions."""
    step = (coarse[1] - coarse[0]) / factor
    offsets = (np.arange(factor) - (factor - 1) / 2.0) * step
    return (coarse[:, None] + offsets[None, :]).ravel()


def quantile_map(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Empirical quantile mapping of ``values`` onto the distribution of ``reference``."""
    flat = values.ravel()
    ranks = np.argsort(np.argsort(flat, kind="stable"), kind="stable")
    probs = (ranks + 0.5) / flat.size
    mapped = np.quantile(reference.ravel(), probs)
    return mapped.reshape(values.shape)


def downscale(
    coarse: np.ndarray, lat: np.ndarray, lon: np.ndarray, factor: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fine field with its latitude and longitude axes."""
    flat, flon = fine_axis(lat, factor), fine_axis(lon, factor)
    flat = np.clip(flat, min(lat[0], lat[-1]), max(lat[0], lat[-1]))
    flon = np.clip(flon, min(lon[0], lon[-1]), max(lon[0], lon[-1]))
    order = np.argsort(lat)
    interp = RegularGridInterpolator((lat[order], lon), coarse[order], method="linear")
    grid = np.stack(np.meshgrid(flat, flon, indexing="ij"), axis=-1)
    smooth = interp(grid)
    mapped = quantile_map(smooth, coarse)
    rng = np.random.default_rng(seed)
    roughness = (
        float(np.mean(np.abs(np.diff(coarse, axis=0))) + np.mean(np.abs(np.diff(coarse, axis=1))))
        / 2.0
    )
    eps = rng.normal(0.0, noise * roughness, size=mapped.shape)
    ny, nx = coarse.shape
    blocks = eps.reshape(ny, factor, nx, factor)
    blocks = blocks - blocks.mean(axis=(1, 3), keepdims=True)
    return mapped + blocks.reshape(mapped.shape), flat, flon


def read_era5(
    path: str, variable: str, member: int, time_index: int, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ERA5 field (lat, lon) of the sample file."""
    with xr.open_dataset(path) as ds:
        if variable not in ds.data_vars:
            raise ModuleError(
                f"variable {variable!r} is not in the ERA5 sample; use one of "
                f"{sorted(str(v) for v in ds.data_vars)}"
            )
        da = ds[variable]
        if member not in da["number"].values:
            raise ModuleError(f"member {member} is not in the ERA5 sample (0..9)")
        if not 0 <= time_index < da.sizes["time"]:
            raise ModuleError(f"time_index {time_index} is outside 0..{da.sizes['time'] - 1}")
        if level not in da["isobaricInhPa"].values:
            raise ModuleError(f"level {level} hPa is not in the ERA5 sample (850, 500)")
        field = da.sel(number=member, isobaricInhPa=level).isel(time=time_index)
        return (
            np.asarray(field.values, dtype=np.float64),
            np.asarray(field["latitude"].values, dtype=np.float64),
            np.asarray(field["longitude"].values, dtype=np.float64),
        )


def run(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """The module function: read the sample, downscale, store the fine field."""
    from gravitas.storage.sampledata import fetch

    path = fetch(str(inputs["sample"]))
    coarse, lat, lon = read_era5(
        str(path),
        inputs["variable"],
        int(inputs["member"]),
        int(inputs["time_index"]),
        float(inputs["level"]),
    )
    fine, _, _ = downscale(
        coarse, lat, lon, int(inputs["factor"]), float(inputs["noise"]), int(inputs["seed"])
    )
    key, digest = save_array(ctx, fine)
    return {
        "mean": float(fine.mean()),
        "std": float(fine.std()),
        "min": float(fine.min()),
        "max": float(fine.max()),
        "shape": list(fine.shape),
        "array_key": key,
        "sha256": digest,
        "bytes": int(fine.nbytes),
    }


MODULE = Module(
    name="downscale",
    version="1.0.0",
    description="Weather-generator downscaling of an ERA5 field to a finer grid: bilinear "
    "interpolation, empirical quantile mapping onto the coarse distribution, seeded "
    "stochastic disaggregation that keeps every coarse cell's block mean.",
    author="gravitas",
    lifecycle="published",
    kind="python",
    target="gravitas.agents.modules.downscale:run",
    inputs=schema(
        {
            "sample": {"type": "string", "enum": list(SAMPLES), "default": "era5_nc"},
            "variable": {"type": "string", "enum": ["t", "z"], "default": "t"},
            "level": {"type": "number", "enum": [850, 500], "default": 850},
            "member": {"type": "integer", "minimum": 0, "maximum": 9},
            "time_index": {"type": "integer", "minimum": 0, "maximum": 3, "default": 0},
            "factor": {"type": "integer", "minimum": 2, "maximum": 8, "default": 3},
            "noise": {"type": "number", "minimum": 0, "maximum": 2, "default": 0.25},
            "seed": {"type": "integer", "minimum": 0, "default": 0},
        },
        ["member"],
    ),
    outputs=schema(
        {
            "mean": {"type": "number"},
            "std": {"type": "number"},
            "min": {"type": "number"},
            "max": {"type": "number"},
            "shape": {"type": "array"},
            "array_key": {"type": "string"},
            "sha256": {"type": "string"},
            "bytes": {"type": "integer"},
        }
    ),
    provenance={"source": "built-in", "package": "gravitas"},
)
