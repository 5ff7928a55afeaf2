"""Assets built from real files and from GeoTIFFs written here: keys by band, roles,
raster:bands (data type, nodata given or declared, scale/offset, statistics), eo:bands
for known sensors and for multi-band files, gsd, and sensor properties."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine

from gravitas.storage.catalog.bands import asset_keys, band_key
from gravitas.storage.catalog.items import add_file_asset, item_from_file
from gravitas.storage.sampledata import fetch


def _tif(path: Path, bands: int = 1, **profile: object) -> Path:
    data = np.arange(bands * 20 * 30, dtype="uint16").reshape(bands, 20, 30)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=30,
        height=20,
        count=bands,
        dtype="uint16",
        crs="EPSG:32633",
        transform=Affine(10, 0, 500000, 0, -10, 5800000),
        **profile,
    ) as dst:
        dst.write(data)
        return path


def _item(path: Path) -> pystac.Item:
    return item_from_file(path, "test", "it", when=datetime(2020, 1, 1, tzinfo=UTC), checksum=False)


def test_asset_keys_follow_the_band_codes() -> None:
    assert band_key("T33UUU_20170216T102101_B8A.jp2") == "b8a"
    assert band_key("https://h/x/LE70350322008118EDC00_fmask.tif") == "fmask"
    assert asset_keys(["/a/s_b3.tif", "/b/s_b3.tif", "/c/era5.nc"]) == ["b3", "b3_2", "era5"]


def test_scale_offset_and_nodata_of_a_written_geotiff(tmp_path: Path) -> None:
    path = _tif(tmp_path / "scaled_b1.tif", nodata=0)
    with rasterio.open(path, "r+") as dst:
        dst.scales = (0.0001,)
        dst.offsets = (-0.1,)
    item = _item(path)
    asset = add_file_asset(item, path, "b1", statistics=True)
    band = asset.extra_fields["raster:bands"][0]
    assert band["data_type"] == "uint16" and band["nodata"] == 0
    assert band["scale"] == pytest.approx(0.0001) and band["offset"] == pytest.approx(-0.1)
    assert band["statistics"]["minimum"] == 1.0  # 0 is nodata
    assert asset.extra_fields["gsd"] == 10.0
    assert asset.roles == ["data"]


def test_declared_nodata_fills_in_or_overrides(tmp_path: Path) -> None:
    bare = _tif(tmp_path / "bare_b2.tif")  # no nodata tag
    item = _item(bare)
    filled = add_file_asset(item, bare, "filled", default_nodata=0)
    assert filled.extra_fields["raster:bands"][0]["nodata"] == 0
    tagged = _tif(tmp_path / "tagged_b2.tif", nodata=65535)
    kept = add_file_asset(item, tagged, "kept", default_nodata=0)
    assert kept.extra_fields["raster:bands"][0]["nodata"] == 65535
    forced = add_file_asset(item, tagged, "forced", nodata=7)
    assert forced.extra_fields["raster:bands"][0]["nodata"] == 7


def test_multiband_files_name_each_band(tmp_path: Path) -> None:
    path = _tif(tmp_path / "stack.tif", bands=3)
    with rasterio.open(path, "r+") as dst:
        dst.descriptions = ("red", "green", None)
    asset = add_file_asset(_item(path), path, "stack")
    assert [b["name"] for b in asset.extra_fields["eo:bands"]] == ["red", "green", "stack_3"]
    assert len(asset.extra_fields["raster:bands"]) == 3


def test_known_sensor_files_get_eo_bands_and_platform() -> None:
    band = sorted(fetch("landsat7_series").glob("*/*_b4.tif"))[0]
    item = item_from_file(band, "ls7", asset_key="b4", checksum=False)
    assert item.properties["platform"] == "landsat-7"
    assert item.properties["instruments"] == ["etm+"]
    asset = item.assets["b4"]
    assert asset.extra_fields["eo:bands"][0]["common_name"] == "nir08"
    assert asset.title == "Band b4 (nir08)"
    mask = add_file_asset(item, next(band.parent.glob("*_fmask.tif")), "mask", roles=("mask",))
    assert mask.roles == ["mask"] and "eo:bands" not in mask.extra_fields
