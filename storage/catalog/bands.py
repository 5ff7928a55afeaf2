"""Known eo bands of sensors whose files gravitas reads, keyed by file-name band code."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["asset_keys", "band_key", "eo_band_for", "sensor_properties"]

# (common name or None, centre wavelength um, full width half max um), from the ESA and
# USGS band tables.
_SENTINEL2: dict[str, tuple[str | None, float, float]] = {
    "B01": ("coastal", 0.443, 0.027),
    "B02": ("blue", 0.490, 0.098),
    "B03": ("green", 0.560, 0.045),
    "B04": ("red", 0.665, 0.038),
    "B05": ("rededge", 0.704, 0.019),
    "B06": ("rededge", 0.740, 0.018),
    "B07": ("rededge", 0.783, 0.028),
    "B08": ("nir", 0.842, 0.145),
    "B8A": ("nir08", 0.865, 0.033),
    "B09": ("nir09", 0.945, 0.026),
    "B10": ("cirrus", 1.375, 0.075),
    "B11": ("swir16", 1.610, 0.143),
    "B12": ("swir22", 2.190, 0.242),
}
_LANDSAT7: dict[str, tuple[str | None, float, float]] = {
    "b1": ("blue", 0.485, 0.07),
    "b2": ("green", 0.56, 0.08),
    "b3": ("red", 0.66, 0.06),
    "b4": ("nir08", 0.835, 0.13),
    "b5": ("swir16", 1.65, 0.2),
    "b7": ("swir22", 2.22, 0.26),
}
_S2_NAME = re.compile(r"_(B\d[\dA])\.jp2$", re.IGNORECASE)
_LE7_NAME = re.compile(r"^LE7\d{13}.*_(b\d)\.tif$", re.IGNORECASE)


_BAND_SUFFIX = re.compile(r"_([A-Za-z]+\d*[A-Za-z]?)$")


def band_key(name: str) -> str:
    """The asset key of a file: its band code, as ingest names the band's layer
    (``..._B04.jp2`` -> ``b04``, ``..._b3.tif`` -> ``b3``, ``..._fmask.tif`` ->
    ``fmask``), else its lowercase stem."""
    stem = Path(name.rsplit("/", 1)[-1]).stem
    m = _BAND_SUFFIX.search(stem)
    text = (m.group(1) if m else stem).lower()
    return re.sub(r"[^a-z0-9_.-]+", "_", text).strip("_") or "data"


def asset_keys(names: list[str]) -> list[str]:
    """One distinct asset key per file (a repeated band code gets ``_2``, ``_3``, ...)."""
    keys: list[str] = []
    for name in names:
        key, n = band_key(name), 1
        while (key if n == 1 else f"{key}_{n}") in keys:
            n += 1
        keys.append(key if n == 1 else f"{key}_{n}")
    return keys


def eo_band_for(path: Path | str) -> dict[str, object] | None:
    """The eo:bands entry of a single-band Sentinel-2 / Landsat 7 file, from its name."""
    name = Path(path).name
    table, code = None, None
    if m := _S2_NAME.search(name):
        table, code = _SENTINEL2, m.group(1).upper()
    elif m := _LE7_NAME.search(name):
        table, code = _LANDSAT7, m.group(1).lower()
    if table is None or code not in table:
        return None
    common, centre, fwhm = table[code]
    band: dict[str, object] = {
        "name": code,
        "center_wavelength": centre,
        "full_width_half_max": fwhm,
    }
    if common:
        band["common_name"] = common
    return band


def sensor_properties(path: Path | str) -> dict[str, object]:
    """Item properties (platform, constellation, instruments) of a Sentinel-2 / Landsat 7
    band file, from its name; empty for other files."""
    name = Path(path).name
    if _LE7_NAME.search(name):
        return {"platform": "landsat-7", "constellation": "landsat", "instruments": ["etm+"]}
    if _S2_NAME.search(name):
        return {"constellation": "sentinel-2", "instruments": ["msi"]}
    return {}
