"""What standard product file names say: acquisition time, band, scene, fill value.

The product naming conventions of the missions a node sees most:

- Landsat Collection 1/2 product ids ``LC08_L1TP_044034_20200114_20200824_02_T1_B4.TIF``
  (``LXSS_LLLL_PPPRRR_YYYYMMDD_yyyymmdd_CC_TX``, the first date is the acquisition) and
  pre-collection scene ids ``LE70350322008118EDC00`` (year + day of year);
- Sentinel-2 SAFE names ``S2B_MSIL2A_20190629T212529_N0212_R043_T06VVN_20201006T080531``,
  granule band files ``T33UUU_20170216T102101_B04.jp2`` and the COG ids
  ``S2A_28QCH_20200714_0_L2A``;
- MODIS ``MOD09GA.A2019001.h08v05.061.2020...hdf`` (``AYYYYDDD``, swaths add ``.HHMM``);
- HLS ``HLS.S30.T17SLU.2020209T160031.v2.0.B04.tif`` (year, day of year, time);
- EMIT ``EMIT_L2B_CH4ENH_001_20230805T121000_2321708_002.tif``.

Nothing here opens a file: names only. Every function returns None when the name is
not one it knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePath

__all__ = [
    "CATEGORICAL_BANDS",
    "BandName",
    "band_of",
    "is_categorical_band",
    "mask_convention_of",
    "product_nodata",
    "product_time",
]

_LANDSAT_ID = re.compile(
    r"(?<![A-Za-z0-9])L[COTEM]0\d_L[12][A-Z0-9]{2}_\d{6}_(\d{8})_\d{8}_\d{2}_(?:T1|T2|RT|A1|A2)"
)
_LANDSAT_SCENE = re.compile(r"(?<![A-Za-z0-9])L[COTEM]\d\d{6}(\d{4})(\d{3})[A-Z]{3}\d{2}")
_S2_SAFE = re.compile(r"(?<![A-Za-z0-9])S2[A-D]_MSI(?:L1C|L2A)_(\d{8}T\d{6})_")
_S2_TILE = re.compile(r"(?<![A-Za-z0-9])T\d{2}[A-Z]{3}_(\d{8}T\d{6})")
_S2_COG = re.compile(r"(?<![A-Za-z0-9])S2[A-D]_\d{1,2}[A-Z]{3}_(\d{8})_\d+_L[12][AC]")
_MODIS = re.compile(r"(?<![A-Za-z0-9])M[OY]D\w*\.A(\d{4})(\d{3})(?:\.(\d{4})(?=\.))?")
_HLS = re.compile(r"(?<![A-Za-z0-9])HLS\.[LS]30\.T\w{5}\.(\d{4})(\d{3})T(\d{6})\.v")
_EMIT = re.compile(r"(?<![A-Za-z0-9])EMIT_L\w+?_\d{3}_(\d{8}T\d{6})_")
_COMPACT = re.compile(r"(?<!\d)(\d{8})T(\d{6})(?!\d)")


def _ymd(text: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def _doy(year: str, doy: str, hms: str = "000000") -> datetime | None:
    y, d = int(year), int(doy)
    if not 1 <= d <= 366 or not 1900 <= y <= 2200:
        return None
    hhmmss = _ymd(hms.ljust(6, "0"), "%H%M%S")
    if hhmmss is None:
        return None
    start = datetime(y, 1, 1, tzinfo=UTC) + timedelta(days=d - 1)
    if start.year != y:
        return None
    return start.replace(hour=hhmmss.hour, minute=hhmmss.minute, second=hhmmss.second)


def product_time(name: str | PurePath) -> datetime | None:
    """Acquisition time (UTC) from a standard product, scene, granule or file name."""
    text = PurePath(name).name if isinstance(name, PurePath) else str(name)
    if m := _LANDSAT_ID.search(text):
        return _ymd(m.group(1), "%Y%m%d")
    if m := _LANDSAT_SCENE.search(text):
        return _doy(m.group(1), m.group(2))
    if m := _HLS.search(text):
        return _doy(m.group(1), m.group(2), m.group(3))
    if m := _MODIS.search(text):
        return _doy(m.group(1), m.group(2), (m.group(3) or "0000") + "00")
    if m := _S2_COG.search(text):
        return _ymd(m.group(1), "%Y%m%d")
    for pattern in (_S2_SAFE, _S2_TILE, _EMIT):
        if m := pattern.search(text):
            return _ymd(m.group(1), "%Y%m%dT%H%M%S")
    if m := _COMPACT.search(text):
        return _ymd(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    return None


# --- bands -------------------------------------------------------------------------

_LANDSAT_BANDS = (
    r"SR_B\d{1,2}|ST_B\d{1,2}|B\d{1,2}|QA_PIXEL|QA_RADSAT|SR_QA_AEROSOL|QA_AEROSOL|ST_QA|"
    r"ST_TRAD|ST_URAD|ST_DRAD|ST_ATRAN|ST_EMIS|ST_EMSD|ST_CDIST|BQA|VAA|VZA|SAA|SZA|"
    r"sr_band\d|pixel_qa|radsat_qa|cfmask|b\d{1,2}|fmask"
)
_S2_BANDS = r"B\d{2}|B8A|SCL|AOT|WVP|TCI|CLD|SNW"
_HLS_BANDS = r"B\d{2}|B8A|Fmask|SZA|SAA|VZA|VAA"
_BAND_PATTERNS = (
    re.compile(rf"^(?P<scene>HLS\..+?\.v\d\.\d)\.(?P<band>{_HLS_BANDS})$"),
    re.compile(rf"^(?P<scene>.+?)_(?P<band>{_S2_BANDS})(?:_\d{{2}}m)?$"),
    re.compile(rf"^(?P<scene>.+?)_(?P<band>{_LANDSAT_BANDS})$", re.IGNORECASE),
)

CATEGORICAL_BANDS = frozenset(
    {"fmask", "cfmask", "qa_pixel", "bqa", "pixel_qa", "qa_radsat", "radsat_qa", "scl", "cld",
     "snw", "qa_aerosol", "sr_qa_aerosol", "st_qa", "mask", "label", "labels", "lulc",
     "landcover", "classification"}
)  # fmt: skip
"""Bands holding classes or bit flags: indexed with nearest resampling, integer values."""


@dataclass(frozen=True)
class BandName:
    """A file's band, as its product naming gives it, and the scene the file belongs to."""

    band: str
    """Lower case: ``b04``, ``sr_b4``, ``fmask``, ``qa_pixel``."""
    scene: str
    """The file name without the band and extension: the files of one scene share it."""


def band_of(name: str | PurePath) -> BandName | None:
    """The band named by a product file name (``..._B04.jp2``, ``..._SR_B4.TIF``,
    ``..._fmask.tif``, ``HLS....v2.0.Fmask.tif``); None when the name names no band."""
    stem = PurePath(name).name
    for suffix in (".tif", ".tiff", ".jp2", ".TIF", ".TIFF", ".JP2"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for pattern in _BAND_PATTERNS:
        if m := pattern.match(stem):
            return BandName(m.group("band").lower(), m.group("scene"))
    return None


def is_categorical_band(band: str) -> bool:
    """Whether a band holds classes or flags (masks, QA, labels)."""
    return band.lower() in CATEGORICAL_BANDS


def mask_convention_of(band: str, scene: str = "") -> str | None:
    """The mask convention of a quality band, from its name (None: not a known mask)."""
    b = band.lower()
    if b == "fmask" and scene.startswith("HLS."):
        return "hls_fmask"
    return {
        "fmask": "fmask",
        "cfmask": "fmask",
        "qa_pixel": "qa_pixel",
        "pixel_qa": "qa_pixel",
        "scl": "scl",
    }.get(b)


def product_nodata(name: str | PurePath) -> float | None:
    """The fill value a product's convention uses without writing a nodata tag:
    0 for Landsat Collection 1/2 bands and Sentinel-2 JPEG2000/COG bands; 1 for Landsat
    ``QA_PIXEL`` (its fill bit alone)."""
    text = PurePath(name).name if isinstance(name, PurePath) else str(name)
    band = band_of(text)
    if _LANDSAT_ID.search(text):
        if band is not None and band.band == "qa_pixel":
            return 1.0
        if band is not None and band.band in CATEGORICAL_BANDS:
            return None
        return 0.0
    if (_S2_TILE.search(text) or _S2_SAFE.search(text) or _S2_COG.search(text)) and (
        band is not None and band.band not in CATEGORICAL_BANDS
    ):
        return 0.0
    return None
