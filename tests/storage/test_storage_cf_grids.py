"""Gridded files in every common layout land on the same grid pixels.

Data: the real ERA5 NetCDF (cfgrib's twin of the GRIB sample) and the real OSTIA SST
NetCDF, rewritten with xarray into the layouts seen in the wild: rows south to north
(latitude increasing with the row index), longitudes -180..180 instead of 0..360,
coordinates named anything but carrying CF ``units`` / ``standard_name`` / ``axis``, and
float32 longitudes whose spacing sums to 360.003 degrees. The real ERA5 GRIB cut into
single messages with eccodes: the GRIB's own valid time, two level types in one file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gravitas.schemas.errors import InputError
from gravitas.storage.pixels.index import ScenePlan, prepare_scene
from gravitas.storage.readers.names import band_of, product_nodata, product_time
from gravitas.storage.sampledata import fetch


@pytest.fixture(scope="module")
def era5_t850() -> xr.Dataset:
    with xr.open_dataset(fetch("era5_nc")) as ds:
        return ds[["t"]].isel(number=0).sel(isobaricInhPa=850.0).load()


def _write(ds: xr.Dataset, path: Path) -> Path:
    ds.to_netcdf(path)
    return path


def _flip(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(latitude=slice(None, None, -1))


def _roll(ds: xr.Dataset) -> xr.Dataset:
    lon = ((ds.longitude + 180.0) % 360.0) - 180.0
    return ds.assign_coords(longitude=lon).sortby("longitude")


def _cf_units_only(ds: xr.Dataset) -> xr.Dataset:
    out = ds.rename({"latitude": "row_c", "longitude": "col_c"})
    out["row_c"].attrs = {"units": "degrees_north"}
    out["col_c"].attrs = {"units": "degrees_east"}
    return out


def _cf_standard_name_only(ds: xr.Dataset) -> xr.Dataset:
    out = ds.rename({"latitude": "j", "longitude": "i"})
    out["j"].attrs = {"standard_name": "latitude"}
    out["i"].attrs = {"standard_name": "longitude"}
    return out


def _cf_axis_only(ds: xr.Dataset) -> xr.Dataset:
    out = _flip(ds).rename({"latitude": "gy", "longitude": "gx"})
    out["gy"].attrs = {"axis": "Y", "units": "degrees"}
    out["gx"].attrs = {"axis": "X", "units": "degrees"}
    return out


def _float32_lon(ds: xr.Dataset) -> xr.Dataset:
    lon = (np.arange(ds.sizes["longitude"]) * 3.000025).astype(np.float32)
    assert abs(float(lon[1] - lon[0]) * len(lon) - 360.0) > 2e-3  # sums to 360.003
    return ds.assign_coords(longitude=lon)


LAYOUTS: dict[str, Callable[[xr.Dataset], xr.Dataset]] = {
    "south_to_north": _flip,
    "lon_-180_180": _roll,
    "south_to_north_and_-180_180": lambda ds: _roll(_flip(ds)),
    "cf_units_only": _cf_units_only,
    "cf_standard_name_only": _cf_standard_name_only,
    "cf_axis_only_south_to_north": _cf_axis_only,
    "float32_lon_360.003": _float32_lon,
}


def _plan(path: Path, level: int | None = None) -> ScenePlan:
    return prepare_scene("era5", "era5", [path], layer="era5", level=level)


def _same(a: ScenePlan, b: ScenePlan) -> None:
    assert [w.layer for w in a.layers] == [w.layer for w in b.layers]
    for wa, wb in zip(a.layers, b.layers, strict=True):
        assert wa.timestamp == wb.timestamp
        assert (wa.warped.level, wa.warped.bx0, wa.warped.by1) == (
            wb.warped.level, wb.warped.bx0, wb.warped.by1,
        )  # fmt: skip
        assert np.array_equal(wa.warped.array, wb.warped.array, equal_nan=True)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_global_layouts_give_the_same_pixels(
    tmp_path: Path, era5_t850: xr.Dataset, layout: str
) -> None:
    base = _plan(_write(era5_t850, tmp_path / "base.nc"))
    assert len(base.layers) == 4 and np.isfinite(base.layers[0].warped.array).mean() > 0.3
    other = _plan(_write(LAYOUTS[layout](era5_t850), tmp_path / f"{layout}.nc"))
    _same(base, other)


@pytest.mark.parametrize("layout", ["south_to_north", "cf_axis_only_south_to_north"])
def test_regional_grid_keeps_every_row(tmp_path: Path, era5_t850: xr.Dataset, layout: str) -> None:
    """A regional grid (30-60 N, 0-60 E) at a level with several block rows: stored
    south to north it used to keep only its first block row."""
    region = era5_t850.sel(latitude=slice(60, 30), longitude=slice(0, 60))
    native = _plan(_write(region, tmp_path / "n.nc")).layers[0].warped.level
    base = _plan(tmp_path / "n.nc", level=native + 4)
    assert base.layers[0].warped.shape_blocks[0] > 1
    _same(base, _plan(_write(LAYOUTS[layout](region), tmp_path / "s.nc"), level=native + 4))
    w = base.layers[0].warped
    rows = np.nonzero(np.isfinite(w.array).any(axis=1))[0]
    from gravitas.kernels.grid import pixel_to_lonlat
    from gravitas.schemas.grid import BLOCK_SIZE

    top = w.by1 * BLOCK_SIZE + BLOCK_SIZE - 1
    _, lat_n = pixel_to_lonlat(w.level, np.array([0]), np.array([top - rows[0]]))
    _, lat_s = pixel_to_lonlat(w.level, np.array([0]), np.array([top - rows[-1]]))
    assert lat_n[0] == pytest.approx(61.5, abs=0.5) and lat_s[0] == pytest.approx(28.5, abs=0.5)


def test_real_ostia_south_to_north_0_360_grid(tmp_path: Path) -> None:
    """OSTIA as shipped stores latitude -5..4.4 increasing and float32 longitudes 0..359.2;
    it lands on the same pixels as its north-up twin, over its whole latitude range."""
    src = Path(fetch("ostia_nc"))
    with xr.open_dataset(src) as ds:
        assert float(ds.latitude[0]) < float(ds.latitude[-1])
        twin = ds.isel(time=slice(0, 2), latitude=slice(None, None, -1)).load()
        first = ds.isel(time=slice(0, 2)).load()
    a = prepare_scene("ostia", "ostia", [_write(first, tmp_path / "a.nc")], layer="sst")
    b = prepare_scene("ostia", "ostia", [_write(twin, tmp_path / "b.nc")], layer="sst")
    _same(a, b)
    assert {w.layer for w in a.layers} == {"sst"} and len(a.layers) == 2
    arr = a.layers[0].warped.array
    assert np.isfinite(arr).sum() > 0.5 * 18 * 432


def test_a_grid_that_is_not_evenly_spaced_is_refused(tmp_path: Path, era5_t850: xr.Dataset) -> None:
    lat = era5_t850.latitude.values.copy()
    lat[5] += 1.0
    bad = _write(era5_t850.assign_coords(latitude=lat), tmp_path / "bad.nc")
    with pytest.raises(InputError, match="not evenly spaced"):
        _plan(bad)


# --- GRIB ------------------------------------------------------------------------


def _messages(out: Path, edit: Callable[[int, int], None] | None = None, count: int = 1) -> Path:
    """The first ``count`` messages of the real ERA5 GRIB, each passed to ``edit``."""
    import eccodes

    with open(fetch("era5_grib"), "rb") as f, out.open("wb") as o:
        first = eccodes.codes_grib_new_from_file(f)
        for i in range(count):
            h = eccodes.codes_clone(first)
            if edit is not None:
                edit(i, h)
            eccodes.codes_write(h, o)
            eccodes.codes_release(h)
        eccodes.codes_release(first)
    return out


def test_grib_message_carries_its_own_time(tmp_path: Path) -> None:
    """One GRIB message (time, step and valid_time are scalar coordinates): its valid time
    is the layer's time, no --datetime needed; a 6-hour forecast step is honoured."""
    import eccodes

    one = _messages(tmp_path / "one.grib")
    plan = prepare_scene("one", "era5", [one], layer="z500")
    assert [w.layer for w in plan.layers] == ["z500"]
    assert plan.layers[0].timestamp == int(datetime(2017, 1, 1, tzinfo=UTC).timestamp())

    def step6(_i: int, h: int) -> None:
        eccodes.codes_set(h, "stepRange", "6")

    fc = _messages(tmp_path / "fc.grib", step6)
    plan = prepare_scene("fc", "era5", [fc], layer="z500")
    assert plan.layers[0].timestamp == int(datetime(2017, 1, 1, 6, tzinfo=UTC).timestamp())


def test_grib_second_message_on_another_level_type_is_kept(tmp_path: Path) -> None:
    import eccodes

    def surface_second(i: int, h: int) -> None:
        if i == 1:
            eccodes.codes_set(h, "typeOfLevel", "surface")

    two = _messages(tmp_path / "two.grib", surface_second, count=2)
    plan = prepare_scene("two", "era5", [two], layer="era5")
    assert sorted(w.layer for w in plan.layers) == ["era5_z", "era5_z_surface"]
    from gravitas.storage.catalog.items import item_from_file

    item = item_from_file(two, "era5", checksum=False)  # its STAC item lists both
    assert set(item.properties["cube:variables"]) == {"z", "z_surface"}


def test_grib_duplicate_messages_are_refused(tmp_path: Path) -> None:
    dup = _messages(tmp_path / "dup.grib", count=2)
    with pytest.raises(InputError, match="same field"):
        prepare_scene("dup", "era5", [dup], layer="era5")


# --- product names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "when"),
    [
        ("LC08_L1TP_044034_20200114_20200824_02_T1_B4.TIF", datetime(2020, 1, 14)),
        ("LE07_L2SP_044033_20210329_20210424_02_T1_SR_B4.TIF", datetime(2021, 3, 29)),
        ("LC08_L1TP_044034_20170110_20170311_01_T1_BQA.TIF", datetime(2017, 1, 10)),
        ("LE70350322008118EDC00_fmask.tif", datetime(2008, 4, 27)),
        ("T33UUU_20170216T102101_B04.jp2", datetime(2017, 2, 16, 10, 21, 1)),
        ("S2B_MSIL2A_20190629T212529_N0212_R043_T06VVN_20201006T080531.SAFE",
         datetime(2019, 6, 29, 21, 25, 29)),
        ("S2A_28QCH_20200714_0_L2A", datetime(2020, 7, 14)),
        ("MOD09GA.A2019001.h08v05.061.2020345.hdf", datetime(2019, 1, 1)),
        ("MYD021KM.A2019032.1435.061.2019033.hdf", datetime(2019, 2, 1, 14, 35)),
        ("HLS.S30.T17SLU.2020209T160031.v2.0.B04.tif", datetime(2020, 7, 27, 16, 0, 31)),
        ("EMIT_L2B_CH4ENH_001_20230805T121000_2321708_002.tif", datetime(2023, 8, 5, 12, 10)),
    ],
)  # fmt: skip
def test_product_names_give_the_acquisition_time(name: str, when: datetime) -> None:
    assert product_time(name) == when.replace(tzinfo=UTC)


def test_product_names_give_bands_and_fill() -> None:
    l1 = "LC08_L1TP_044034_20200114_20200824_02_T1_B4.TIF"
    assert band_of(l1) is not None and band_of(l1).band == "b4"  # type: ignore[union-attr]
    assert product_nodata(l1) == 0.0
    assert product_nodata(l1.replace("_B4", "_QA_PIXEL")) == 1.0
    assert band_of("HLS.L30.T17SLU.2020209T160031.v2.0.Fmask.tif").band == "fmask"  # type: ignore[union-attr]
    assert band_of("test_stageiv_xyt.nc") is None and product_time("test_stageiv_xyt.nc") is None
    assert product_time("LE70350322008400EDC00") is None  # day 400 does not exist


def _lambert_grib(tmp_path: Path, era5_t850: xr.Dataset) -> Path:
    """A GRIB2 message on a Lambert conformal grid (60 x 40 cells of 50 km over the US)
    holding the real ERA5 850 hPa temperature at those points (nearest)."""
    import eccodes

    def write(values: np.ndarray, path: Path) -> None:
        h = eccodes.codes_grib_new_from_samples("GRIB2")
        eccodes.codes_set(h, "gridType", "lambert")
        keys = {
            "Nx": 60, "Ny": 40, "latitudeOfFirstGridPointInDegrees": 30.0,
            "longitudeOfFirstGridPointInDegrees": 250.0, "LaDInDegrees": 38.5,
            "LoVInDegrees": 262.5, "Latin1InDegrees": 38.5, "Latin2InDegrees": 38.5,
            "DxInMetres": 50000, "DyInMetres": 50000, "dataDate": 20170101, "dataTime": 0,
        }  # fmt: skip
        for key, value in keys.items():
            eccodes.codes_set(h, key, value)
        eccodes.codes_set_values(h, values)
        with path.open("wb") as out:
            eccodes.codes_write(h, out)
        eccodes.codes_release(h)

    probe = tmp_path / "probe.grib"
    write(np.zeros(2400), probe)
    with xr.open_dataset(probe, engine="cfgrib", backend_kwargs={"indexpath": ""}) as ds:
        lat, lon = ds.latitude.values, ds.longitude.values % 360.0
    t = era5_t850.t.isel(time=0).sel(
        latitude=xr.DataArray(lat, dims=("y", "x")),
        longitude=xr.DataArray(lon, dims=("y", "x")),
        method="nearest",
    )
    path = tmp_path / "lambert.grib"
    write(np.asarray(t.values, np.float64).ravel(), path)
    return path


def test_lambert_grib_is_indexed_on_its_projection_and_described_in_metres(
    tmp_path: Path, era5_t850: xr.Dataset
) -> None:
    """A projected GRIB: read with its Lambert CRS and affine transform (not pixel indices
    labelled EPSG:4326); its STAC item has proj: fields and cube:dimensions in metres."""
    from gravitas.storage.catalog.items import item_from_file
    from gravitas.storage.pixels.sources import read_rasters
    from gravitas.storage.pixels.warp import source_bounds

    path = _lambert_grib(tmp_path, era5_t850)
    (r,) = read_rasters(path, "grib", False)
    assert r.geoloc is None and r.transform is not None and "Lambert" in (r.crs_wkt or "")
    w, s, e, n = source_bounds(r)
    assert -116 < w < -110 and -80 < e < -72 and 28 < s < 30.5 and 46 < n < 50
    plan = prepare_scene("lam", "era5", [path], layer="lam")
    warped = plan.layers[0].warped.array
    assert np.isfinite(warped).sum() > 1000
    assert np.nanmin(warped) > 240 and np.nanmax(warped) < 300  # kelvin at 850 hPa
    item = item_from_file(path, "era5", checksum=False).to_dict()
    dims = item["properties"]["cube:dimensions"]
    assert dims["x"]["reference_system"] != 4326 and "Lambert" in json_name(dims["x"])
    assert dims["x"]["extent"][1] - dims["x"]["extent"][0] == pytest.approx(59 * 50000)
    assert item["properties"]["proj:shape"] == [40, 60] and "proj:wkt2" in item["properties"]


def json_name(dim: dict[str, object]) -> str:
    ref = dim["reference_system"]
    return (
        str(ref.get("name", "")) + str(ref.get("conversion", "")) if isinstance(ref, dict) else ""
    )


@pytest.mark.parametrize("layout", ["cf_units_only", "cf_axis_only_south_to_north"])
def test_cf_attribute_only_coordinates_give_the_item_its_extent(
    tmp_path: Path, era5_t850: xr.Dataset, layout: str
) -> None:
    """The STAC item of a file whose coordinates are found only by CF attributes has the
    same bbox and spatial cube dimensions as the plainly named original (it used to be
    refused after its pixels were indexed)."""
    from gravitas.storage.catalog.items import item_from_file

    base = item_from_file(_write(era5_t850, tmp_path / "b.nc"), "era5", checksum=False)
    other = item_from_file(
        _write(LAYOUTS[layout](era5_t850), tmp_path / "o.nc"), "era5", checksum=False
    )
    assert other.bbox == base.bbox
    dims = other.properties["cube:dimensions"]
    assert sorted(d["axis"] for d in dims.values() if d["type"] == "spatial") == ["x", "y"]
