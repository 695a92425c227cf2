"""Boundary versions keep history; orders are listed by bbox and filters on both databases."""

import threading
import time

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import event, select

from dispatch import schema as t
from dispatch.errors import InputError, NotFound
from dispatch.services import Actor, Service
from geo.demo import default_source
from tests.dispatch.helpers import inside, report


def _roster(service, *codes):
    with service.db.read() as uow:
        rows = uow.execute(select(t.gridworker_grids).where(
            t.gridworker_grids.c.grid_code.in_(codes))).all()
    return {(r.gridworker_id, r.grid_code) for r in rows}


def test_activating_a_new_version_keeps_history_and_moves_what_is_open(service, demo,
                                                                       tmp_path):
    old = service.submit_report(report(demo, 100))
    assert old["boundary_version"] == 1
    # Version 2: grid 100 and its western neighbour merged into one, under a new code.
    layers = {name: gpd.read_file(default_source(), layer=name)
              for name in ("streets", "communities", "grids", "stations")}
    grids = layers["grids"]
    target = grids.iloc[100]
    neighbours = grids[(grids["community_code"] == target["community_code"])
                       & grids.geometry.touches(target.geometry)]
    merged_geometry = shapely.union_all([target.geometry, neighbours.geometry.iloc[0]])
    keep = ~grids["code"].isin([target["code"], neighbours["code"].iloc[0]])
    grids = gpd.GeoDataFrame(
        [*grids[keep].to_dict("records"),
         {**target.to_dict(), "code": target["code"][:12] + "900", "geometry": merged_geometry}],
        crs=grids.crs)
    layers["grids"] = grids
    path = tmp_path / "v2.gpkg"
    for name, frame in layers.items():
        frame.to_file(path, layer=name, driver="GPKG")
    merged = target["code"][:12] + "900"
    staff = _roster(service, target["code"], neighbours["code"].iloc[0])
    assert staff and not _roster(service, merged)
    imported = service.import_boundaries(path, activate=True, name="merged")
    assert imported["version"] == 2 and imported["active"] and imported["grids"] == 558

    new = service.submit_report(report(demo, 100, category="garbage"))
    assert new["boundary_version"] == 2 and new["grid_code"] == merged
    # The report keeps where it was resolved; its open order moves to the merged grid.
    with service.db.unit_of_work() as uow:
        first = uow.execute(select(t.reports).where(t.reports.c.id == old["report_id"])).one()
    assert (first.boundary_version, first.grid_code) == (1, target["code"])
    order = service.order(old["work_order_id"])
    assert (order["boundary_version"], order["grid_code"]) == (2, merged)
    assert order["audit"][-1]["action"] in ("regrid", "reassign")
    # Both grids' people now serve the merged grid, and nobody the old codes.
    assert _roster(service, merged) == {(person, merged) for person, _ in staff}
    assert not _roster(service, target["code"], neighbours["code"].iloc[0])


def test_a_version_with_errors_is_stored_but_never_activated(service, tmp_path, demo):
    grids = gpd.read_file(default_source(), layer="grids")
    grids.loc[0, "geometry"] = shapely.Polygon(
        [(108.91, 34.20), (108.92, 34.21), (108.92, 34.20), (108.91, 34.21)])
    path = tmp_path / "bad.gpkg"
    grids.to_file(path, layer="grids", driver="GPKG")
    result = service.import_boundaries(path, activate=True)
    assert not result["valid"] and not result["active"] and result["errors"] >= 1
    with pytest.raises(InputError, match="validation errors"):
        service.activate_version(result["version"])
    with pytest.raises(NotFound):
        service.activate_version(12345)
    assert service.submit_report(report(demo))["boundary_version"] == 1


def test_orders_are_listed_by_bbox_and_filters(service, demo):
    ids = {}
    for index, category in ((10, "garbage"), (200, "noise"), (400, "garbage")):
        ids[index] = service.submit_report(report(demo, index, category=category))[
            "work_order_id"]
    service.act(ids[200], "accept", Actor("w", "gridworker"))
    lon, lat = inside(demo, 200)
    box = (lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    assert [o["id"] for o in service.list_orders(bbox=box)["orders"]] == [ids[200]]
    garbage = service.list_orders(category="garbage")
    assert garbage["total"] == 2 and {o["id"] for o in garbage["orders"]} == {ids[10], ids[400]}
    assert service.list_orders(states=["accepted"])["orders"][0]["id"] == ids[200]
    page = service.list_orders(limit=1, offset=1)
    assert page["total"] == 3 and len(page["orders"]) == 1
    assert "reports" not in page["orders"][0]  # summaries carry no personal data
    street = demo.grids.iloc[400]["street_code"]
    assert ids[400] in [o["id"] for o in service.list_orders(street_code=street)["orders"]]


@pytest.mark.parametrize("kwargs, field", [
    ({"bbox": (1, 2, 3)}, "bbox"), ({"bbox": (10, 5, 0, 6)}, "bbox"),
    ({"bbox": ("a", 1, 2, 3)}, "bbox"), ({"states": ["lost"]}, "state"),
    ({"category": "ufo"}, "category"), ({"limit": 0}, "limit"), ({"limit": 10_001}, "limit"),
    ({"offset": -1}, "offset"),
])
def test_bad_list_filters_are_refused(service, kwargs, field):
    with pytest.raises(InputError) as info:
        service.list_orders(**kwargs)
    assert info.value.field == field


def test_departments_are_seeded_from_the_catalogue_and_editable(service):
    service.update_department("chengguan", contact="12319")
    with service.db.unit_of_work() as uow:
        row = uow.execute(select(t.departments).where(t.departments.c.code == "chengguan")).one()
    assert (row.name, row.contact) == ("城管局", "12319")
    with pytest.raises(NotFound):
        service.update_department("nasa", contact="x")
    with pytest.raises(InputError):
        service.update_department("chengguan")


def test_once_the_active_version_is_due_for_a_look_one_thread_looks_it_up(service):
    """Threads arriving while the lookup runs go on with the version they know instead of
    each querying (and opening a connection) at once."""
    version, resolver = service.active_resolver()
    service._active = (version, time.monotonic() - 3600)  # due for a look
    looking, go_on, lookups = threading.Event(), threading.Event(), []

    def slow_lookup(_conn, _cursor, statement, *_):
        if "boundary_versions" in statement and "active" in statement:
            lookups.append(statement)
            looking.set()
            assert go_on.wait(30)

    event.listen(service.db.engine, "before_cursor_execute", slow_lookup)
    try:
        first = threading.Thread(target=service.active_resolver)
        first.start()
        assert looking.wait(30)
        answers = []
        others = [threading.Thread(target=lambda: answers.append(service.active_resolver()))
                  for _ in range(8)]
        for thread in others:
            thread.start()
        for thread in others:
            thread.join(timeout=30)
        assert answers == [(version, resolver)] * 8  # answered while the lookup still waits
        go_on.set()
        first.join(timeout=30)
    finally:
        go_on.set()
        event.remove(service.db.engine, "before_cursor_execute", slow_lookup)
    assert len(lookups) == 1
    assert time.monotonic() - service._active[1] < 60  # looked up afresh


def test_a_version_keeps_the_metric_crs_it_was_imported_with(service, seeded, tmp_path):
    imported = service.import_boundaries(default_source(), metric_crs="EPSG:4545")
    assert imported["metric_crs"] == "EPSG:4545"
    # Another process (no caches) builds the stored version again with the same CRS ...
    fresh = Service(service.db, seeded["catalogue"], tmp_path / "media", clock=service.clock)
    stored = fresh.boundaries(imported["version"])
    assert stored.metric_crs.to_epsg() == 4545
    # ... and so does a draft made from it.
    draft = fresh.start_draft(imported["version"], Actor("规划", "planner"))["version"]
    assert fresh.boundaries(draft).metric_crs.to_epsg() == 4545
    assert fresh.boundaries(1).metric_crs.to_epsg() == 32649  # the seeded one: UTM 49N
