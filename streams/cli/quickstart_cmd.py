"""``gravitas quickstart``: real sample data -> embedded node -> search -> quicklook."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import PixelSearch, Predicate, SceneAnnounced
from gravitas.storage.pixels.sources import guess_datetime
from gravitas.streams.cli.common import DataOpt, console, out, run, settings_from
from gravitas.streams.cli.pixels_cmd import (
    ingest_events,
    print_result,
    render_quicklook,
    search_embedded,
)

FLORENCE_BBOX = (-80.7, 32.3, -74.8, 37.7)
FLORENCE_TIME = TimeRange(
    start=datetime(2018, 9, 13, tzinfo=UTC), end=datetime(2018, 9, 15, tzinfo=UTC)
)


def sample_events(landsat_dates: int) -> list[tuple[str, list[SceneAnnounced]]]:
    """Scene announcements for the quickstart's real sample data (fetched on first use)."""
    from gravitas.storage.sampledata import fetch

    with console.status("fetching sample data (cached after the first run)"):
        stageiv = Path(fetch("stageiv_nc"))
        s2 = Path(fetch("s2_l1c"))
        lsts = Path(fetch("landsat7_series"))
    s2_files = [next(s2.glob(f"*_{b}.jp2")) for b in ("B02", "B03", "B04", "B08")]
    s2_event = SceneAnnounced(
        scene_id="T33UUU_20170216T102101",
        collection="sentinel-2-l1c",
        hrefs=[str(p) for p in s2_files],
        layer="s2",
        datetime=guess_datetime(s2_files[0].name),
    )
    landsat = []
    for d in sorted(p for p in lsts.iterdir() if p.name.startswith("LE7"))[:landsat_dates]:
        landsat.append(
            SceneAnnounced(
                scene_id=d.name,
                collection="landsat-7-sr",
                hrefs=[str(p) for p in sorted(d.glob("*_b[345].tif"))],
                layer="landsat",
                mask_href=str(next(d.glob("*fmask*"))),
                datetime=guess_datetime(d.name),
            )
        )
    return [
        ("Stage IV precipitation (Hurricane Florence)", [
            SceneAnnounced(scene_id="stageiv-florence", collection="stageiv",
                           hrefs=[str(stageiv)], layer="stageiv"),
        ]),
        ("Sentinel-2 L1C bands B02 B03 B04 B08", [s2_event]),
        (f"Landsat 7 series with Fmask ({len(landsat)} dates)", landsat),
    ]  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``quickstart``."""

    @app.command("quickstart")
    def quickstart(
        data: DataOpt = None,
        landsat_dates: Annotated[int, typer.Option(help="Landsat dates to ingest.", min=0)] = 12,
    ) -> None:
        """Fetch real sample data, index it on an embedded node, search it, draw a quicklook.

        Example: gravitas quickstart --data ./gravitas-demo
        """
        started = time.perf_counter()
        settings = settings_from(data=data, http_port=0)
        for label, events in sample_events(landsat_dates):
            _families, errors = run(ingest_events(settings, events, label))
            for e in errors:
                console.print(f"[red]rejected[/] {e}", highlight=False)
        req = PixelSearch(
            request_id=f"quickstart-{uuid.uuid4().hex[:8]}",
            layer="stageiv",
            predicate=Predicate(op=">", value=50.0),
            bbox=FLORENCE_BBOX,
            time=FLORENCE_TIME,
        )
        out.print("[bold]search:[/] Stage IV hourly rain > 50 mm in Hurricane Florence")
        print_result(run(search_embedded(settings, req)))
        png = render_quicklook(
            settings, "stageiv", FLORENCE_BBOX, FLORENCE_TIME,
            settings.data_dir / "quicklook_stageiv.png",
        )  # fmt: skip
        out.print(f"node data:  {settings.data_dir} (blocks/, layers.sqlite)")
        out.print(f"quicklook:  {png}")
        out.print("next:       gravitas layers --data " + str(settings.data_dir))
        out.print(f"done in {time.perf_counter() - started:.1f} s")
