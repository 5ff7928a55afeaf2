"""stac-api-validator 0.6.8 against a live node edge (offline schemas), on items built
from real files: Sentinel-2 L1C JP2 bands, a Landsat 7 GeoTIFF series, ERA5 NetCDF."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pystac
import pytest

from gravitas.storage.catalog.items import add_raster_asset, collection_from_items, item_from_file
from gravitas.storage.sampledata import fetch
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.stac_api import offline_schemas, running_node, schema_dir

pytestmark = pytest.mark.skipif(
    not (schema_dir() / "schemas.stacspec.org").is_dir(),
    reason="offline STAC schemas not found; set GRAVITAS_STAC_SCHEMAS",
)


def real_file_items() -> dict[str, list[pystac.Item]]:
    """Collections of items from real files (12 Landsat dates, 1 S2 tile, 1 ERA5 file)."""
    scenes = sorted(p for p in fetch("landsat7_series").iterdir() if p.is_dir())[:12]
    landsat = []
    for scene in scenes:
        item = item_from_file(
            scene / f"{scene.name}_b3.tif",
            "landsat-7-sr",
            scene.name,
            asset_key="b3",
            checksum=False,
        )
        for band in ("b4", "b5"):
            add_raster_asset(item, scene / f"{scene.name}_{band}.tif", band, checksum=False)
        item.properties["eo:cloud_cover"] = float(len(landsat) * 7 % 100)
        landsat.append(item)
    jp2 = sorted(fetch("s2_l1c").glob("*.jp2"))
    s2 = item_from_file(jp2[1], "sentinel-2-l1c", "T33UUU_20170216T102101", asset_key="B02")
    s2.properties["eo:cloud_cover"] = 12.5
    era5 = item_from_file(fetch("era5_nc"), "era5-levels")
    return {"landsat-7-sr": landsat, "sentinel-2-l1c": [s2], "era5-levels": [era5]}


@pytest.fixture(scope="module", params=["sqlite", "pgstac"])
def stac_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedNode]:
    """A live node whose STAC API runs over the embedded catalog or PostgreSQL + pgstac."""
    extra = {}
    if request.param == "pgstac":
        from tests.fixtures.pgstac import fresh_pgstac_dsn

        extra["catalog"] = fresh_pgstac_dsn(request.getfixturevalue("pg_cluster"))
    with running_node(tmp_path_factory.mktemp("validator"), node_id="val", **extra) as node:
        cat = node.services.catalog
        for cid, items in real_file_items().items():
            cat.upsert_collection(collection_from_items(cid, items, license="other").to_dict())
            for item in items:
                cat.upsert_item(item.to_dict())
        yield node


def test_stac_api_validator_passes(stac_node: EmbeddedNode) -> None:
    from stac_api_validator.validations import QueryConfig, validate_api

    geometry = {
        "type": "Polygon",
        "coordinates": [
            [[-107.0, 40.2], [-106.8, 40.2], [-106.8, 40.4], [-107.0, 40.4], [-107.0, 40.2]]
        ],
    }
    query = QueryConfig(
        None, None, None, None, None, None, None, None, None, None, None, None, None
    )
    with offline_schemas():
        warnings, errors = validate_api(
            root_url=f"{stac_node.edge_url}/stac",
            ccs_to_validate=["core", "collections", "features", "item-search", "filter"],
            collection="landsat-7-sr",
            geometry=json.dumps(geometry),
            auth_bearer_token=None,
            auth_query_parameter=None,
            fields_nested_property=None,
            validate_pagination=True,
            query_config=query,
            transaction_collection=None,
            headers=None,
            open_assets_urls=False,
        )
    assert list(errors) == [], "\n".join(str(e) for e in errors)
    Path(stac_node.settings.data_dir / "validator-warnings.txt").write_text(
        "\n".join(str(w) for w in warnings)
    )
