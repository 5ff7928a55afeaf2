"""ENVI raster files: header parsing, memory-mapped reading and writing.

An ENVI file is a plain-text ``.hdr`` (``key = value``, braces for lists) beside a raw
binary file. We parse the header ourselves (samples/lines/bands, data type, byte order,
interleave, wavelengths, fwhm) and return the data as (lines, samples, bands) whatever
the interleave (BSQ, BIL, BIP), as a read-only memory map view where possible.
Used for AVIRIS-NG radiance and for the mag1c CH4 look-up table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gravitas.kernels.ch4_target import MAG1C_ENHANCEMENTS, AbsorptionLut
from gravitas.storage.readers.errors import EnviHeaderError, NotHyperspectralFileError
from gravitas.storage.readers.scene import HyperspectralScene

# ENVI "data type" codes -> numpy kinds (byte order applied separately).
ENVI_DTYPES: dict[int, str] = {
    1: "u1",
    2: "i2",
    3: "i4",
    4: "f4",
    5: "f8",
    6: "c8",
    9: "c16",
    12: "u2",
    13: "u4",
    14: "i8",
    15: "u8",
}
_INTERLEAVES = ("bsq", "bil", "bip")
_DATA_SUFFIXES = ("", ".img", ".dat", ".bin", ".raw", ".bsq", ".bil", ".bip", ".lut", ".sli")
MIN_HYPERSPECTRAL_BANDS = 10


@dataclass(frozen=True)
class EnviHeader:
    """The parsed fields of an ENVI header that the readers need, plus all raw fields."""

    samples: int
    lines: int
    bands: int
    dtype: np.dtype
    interleave: str
    header_offset: int
    wavelengths: np.ndarray | None
    fwhm: np.ndarray | None
    wavelength_units: str | None
    bbl: np.ndarray | None
    fields: dict[str, str] = field(default_factory=dict)


def _parse_fields(text: str, path: Path) -> dict[str, str]:
    if not text.lstrip().startswith("ENVI"):
        raise EnviHeaderError(f"{path}: not an ENVI header (first line must be 'ENVI')")
    fields: dict[str, str] = {}
    body = text.lstrip()[4:]
    pos = 0
    pattern = re.compile(r"\s*([^=\n]+?)\s*=\s*")
    while pos < len(body):
        m = pattern.match(body, pos)
        if m is None:
            nxt = body.find("\n", pos)
            if nxt < 0:
                break
            pos = nxt + 1
            continue
        key = " ".join(m.group(1).lower().split())
        pos = m.end()
        if body.startswith("{", pos):
            end = body.find("}", pos)
            if end < 0:
                raise EnviHeaderError(f"{path}: unclosed '{{' in header field '{key}'")
            fields[key] = body[pos + 1 : end].strip()
            pos = end + 1
        else:
            end = body.find("\n", pos)
            end = len(body) if end < 0 else end
            fields[key] = body[pos:end].strip()
            pos = end + 1
    return fields


def _floats(value: str | None, n: int, key: str, path: Path) -> np.ndarray | None:
    if value is None:
        return None
    try:
        arr = np.array([float(v) for v in value.replace("\n", " ").split(",") if v.strip()])
    except ValueError as exc:
        raise EnviHeaderError(f"{path}: header field '{key}' is not a list of numbers") from exc
    if arr.size != n:
        raise EnviHeaderError(f"{path}: header field '{key}' has {arr.size} values, bands = {n}")
    return arr


def _int_field(fields: dict[str, str], key: str, path: Path, default: int | None = None) -> int:
    raw = fields.get(key)
    if raw is None:
        if default is None:
            raise EnviHeaderError(f"{path}: header lacks required field '{key}'")
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise EnviHeaderError(f"{path}: header field '{key}' = {raw!r} is not an integer") from exc


def read_envi_header(path: str | Path) -> EnviHeader:
    """Parse an ENVI ``.hdr``; raise :class:`EnviHeaderError` naming the file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise EnviHeaderError(f"{path}: cannot read ENVI header ({exc})") from exc
    fields = _parse_fields(text, path)
    samples = _int_field(fields, "samples", path)
    lines = _int_field(fields, "lines", path)
    bands = _int_field(fields, "bands", path)
    code = _int_field(fields, "data type", path)
    if code not in ENVI_DTYPES:
        raise EnviHeaderError(f"{path}: unknown ENVI data type {code}; known {sorted(ENVI_DTYPES)}")
    order = _int_field(fields, "byte order", path, default=0)
    if order not in (0, 1):
        raise EnviHeaderError(f"{path}: byte order must be 0 (little) or 1 (big), got {order}")
    dtype = np.dtype(("<" if order == 0 else ">") + ENVI_DTYPES[code])
    interleave = fields.get("interleave", "bsq").lower()
    if interleave not in _INTERLEAVES:
        raise EnviHeaderError(f"{path}: interleave {interleave!r} is not one of {_INTERLEAVES}")
    bbl = _floats(fields.get("bbl"), bands, "bbl", path)
    return EnviHeader(
        samples=samples,
        lines=lines,
        bands=bands,
        dtype=dtype,
        interleave=interleave,
        header_offset=_int_field(fields, "header offset", path, default=0),
        wavelengths=_floats(fields.get("wavelength"), bands, "wavelength", path),
        fwhm=_floats(fields.get("fwhm"), bands, "fwhm", path),
        wavelength_units=fields.get("wavelength units"),
        bbl=None if bbl is None else bbl > 0,
        fields=fields,
    )


def find_envi_pair(path: str | Path) -> tuple[Path, Path]:
    """Return (header, data) for either file of an ENVI pair."""
    path = Path(path)
    if path.suffix.lower() == ".hdr":
        header = path
        stem = path.with_suffix("")
        for suffix in _DATA_SUFFIXES:
            cand = Path(str(stem) + suffix)
            if cand.is_file() and cand != header:
                return header, cand
        raise EnviHeaderError(f"{path}: no data file beside the header (tried {stem}.*)")
    for header in (Path(str(path) + ".hdr"), path.with_suffix(".hdr")):
        if header.is_file():
            return header, path
    raise EnviHeaderError(f"{path}: no ENVI header found (expected {path}.hdr or {path.stem}.hdr)")


def read_envi(path: str | Path, *, memmap: bool = True) -> tuple[np.ndarray, EnviHeader]:
    """Read an ENVI raster as (lines, samples, bands), in native dtype (memmap view)."""
    header_path, data_path = find_envi_pair(path)
    hdr = read_envi_header(header_path)
    expected = hdr.header_offset + hdr.samples * hdr.lines * hdr.bands * hdr.dtype.itemsize
    size = data_path.stat().st_size
    if size < expected:
        raise EnviHeaderError(
            f"{data_path}: file has {size} bytes but the header promises {expected} "
            f"({hdr.lines} lines x {hdr.samples} samples x {hdr.bands} bands x {hdr.dtype})"
        )
    shapes = {
        "bsq": (hdr.bands, hdr.lines, hdr.samples),
        "bil": (hdr.lines, hdr.bands, hdr.samples),
        "bip": (hdr.lines, hdr.samples, hdr.bands),
    }
    axes = {"bsq": (1, 2, 0), "bil": (0, 2, 1), "bip": (0, 1, 2)}
    shape = shapes[hdr.interleave]
    raw: np.ndarray
    if memmap:
        raw = np.memmap(data_path, dtype=hdr.dtype, mode="r", offset=hdr.header_offset, shape=shape)
    else:
        count = int(np.prod(shape))
        raw = np.fromfile(data_path, dtype=hdr.dtype, count=count, offset=hdr.header_offset)
        raw = raw.reshape(shape)
    return raw.transpose(axes[hdr.interleave]), hdr


def _nanometres(values: np.ndarray | None, units: str | None) -> np.ndarray | None:
    if values is None:
        return None
    unit = (units or "").strip().lower()
    if unit in ("micrometers", "micrometer", "microns", "micron", "um") or (
        not unit and np.nanmax(values) < 100.0
    ):
        return values * 1000.0
    return values


def read_envi_scene(path: str | Path) -> HyperspectralScene:
    """Read an AVIRIS-NG style ENVI radiance file as a :class:`HyperspectralScene`.

    Wavelengths/FWHM are converted to nanometres. Files with fewer than
    ``MIN_HYPERSPECTRAL_BANDS`` bands or without wavelengths are rejected.
    """
    cube, hdr = read_envi(path)
    if hdr.bands < MIN_HYPERSPECTRAL_BANDS:
        raise NotHyperspectralFileError(
            f"{path}: {hdr.bands} bands; a hyperspectral radiance file needs at least "
            f"{MIN_HYPERSPECTRAL_BANDS} (is this a multispectral or RGB image?)"
        )
    wl = _nanometres(hdr.wavelengths, hdr.wavelength_units)
    if wl is None:
        raise NotHyperspectralFileError(
            f"{path}: the header has no 'wavelength' list; add band centres to the .hdr"
        )
    fwhm = _nanometres(hdr.fwhm, hdr.wavelength_units)
    good = hdr.bbl if hdr.bbl is not None else np.ones(hdr.bands, dtype=bool)
    return HyperspectralScene(
        radiance=cube,
        wavelengths=wl,
        fwhm=fwhm,
        good_bands=good,
        path=Path(path),
        metadata={"format": "ENVI", "interleave": hdr.interleave, **hdr.fields},
    )


def _envi_code(dtype: np.dtype) -> int:
    kind = dtype.newbyteorder("<").str.lstrip("<|")
    for code, name in ENVI_DTYPES.items():
        if name == kind:
            return code
    raise EnviHeaderError(f"dtype {dtype} has no ENVI data type code")


def write_envi(
    path: str | Path,
    cube: np.ndarray,
    *,
    interleave: str = "bil",
    wavelengths: np.ndarray | None = None,
    fwhm: np.ndarray | None = None,
    byte_order: int = 0,
    wavelength_units: str = "Nanometers",
    extra: dict[str, str] | None = None,
) -> Path:
    """Write a (lines, samples, bands) array as ENVI; the header goes to ``path + '.hdr'``."""
    path = Path(path)
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise EnviHeaderError(f"{path}: write_envi needs (lines, samples, bands), got {cube.shape}")
    if interleave not in _INTERLEAVES:
        raise EnviHeaderError(f"{path}: interleave {interleave!r} is not one of {_INTERLEAVES}")
    order = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    dtype = cube.dtype.newbyteorder("<" if byte_order == 0 else ">")
    np.ascontiguousarray(cube.transpose(order), dtype=dtype).tofile(path)
    lines = [
        "ENVI",
        f"samples = {cube.shape[1]}",
        f"lines = {cube.shape[0]}",
        f"bands = {cube.shape[2]}",
        "header offset = 0",
        "file type = ENVI Standard",
        f"data type = {_envi_code(cube.dtype)}",
        f"interleave = {interleave}",
        f"byte order = {byte_order}",
    ]
    if wavelengths is not None:
        lines.append(f"wavelength units = {wavelength_units}")
        lines.append("wavelength = {" + ", ".join(f"{w:.6f}" for w in wavelengths) + "}")
    if fwhm is not None:
        lines.append("fwhm = {" + ", ".join(f"{w:.6f}" for w in fwhm) + "}")
    for key, value in (extra or {}).items():
        lines.append(f"{key} = {value}")
    Path(str(path) + ".hdr").write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def read_ch4_lut(path: str | Path) -> AbsorptionLut:
    """Read mag1c's CH4 LUT (``ch4.hdr`` + ``ch4.lut``, or their directory).

    The header stores 7 samples x 1 line x N wavelengths; the enhancement levels are
    mag1c's fixed ones (:data:`MAG1C_ENHANCEMENTS`), which the header does not carry.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "ch4.hdr"
    cube, hdr = read_envi(path, memmap=False)
    if hdr.wavelengths is None:
        raise EnviHeaderError(f"{path}: LUT header has no 'wavelength' list")
    spectra = np.asarray(cube, dtype=np.float64).reshape(-1, hdr.bands)
    levels = np.asarray(MAG1C_ENHANCEMENTS, dtype=np.float64)
    if spectra.shape[0] != levels.size:
        raise EnviHeaderError(
            f"{path}: LUT has {spectra.shape[0]} spectra, expected {levels.size} "
            f"(mag1c levels {MAG1C_ENHANCEMENTS} ppm·m)"
        )
    return AbsorptionLut(wavelengths=hdr.wavelengths, spectra=spectra, enhancements=levels)
