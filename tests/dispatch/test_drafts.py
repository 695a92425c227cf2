"""Draft boundary versions on both databases: started from a version, edited revision by
revision, refused edits change nothing, activation freezes a draft, history stays true."""

import pytest
import shapely
from shapely.geometry import LineString, mapping
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.errors import Conflict, InputError, NotFound
from dispatch.roster import seed_report_history
from dispatch.services import Actor, Service
from tests.dispatch.helpers import report

PLANNER = Actor("planner", "planner")


def _split(service, version, index=100):
    grid = service.boundaries(version).grids.iloc[index]
    x0, y0, x1, y1 = grid.geometry.bounds
    line = LineString([((x0 + x1) / 2, y0 - 0.001), ((x0 + x1) / 2, y1 + 0.001)])
    return grid["code"], {"grid": grid["code"], "line": mapping(line)}


def _state(service, version):
    with service.db.read() as uow:
        head = uow.execute(select(t.boundary_versions).where(
            t.boundary_versions.c.id == version)).one()
        features = uow.execute(select(func.count()).select_from(t.boundary_features).where(
            t.boundary_features.c.version_id == version)).scalar()
        edits = uow.execute(select(func.count()).select_from(t.boundary_edits).where(
            t.boundary_edits.c.version_id == version)).scalar()
    return head.revision, head.draft, head.active, features, edits


def test_a_draft_is_a_copy_that_edits_change_revision_by_revision(service, demo):
    draft = service.start_draft(1, PLANNER, name="spring redraw")
    version = draft["version"]
    assert draft["state"] == "draft" and draft["base_version"] == 1 and draft["revision"] == 0
    copy = service.boundaries(version)
    assert list(copy.grids["code"]) == list(demo.grids["code"])
    assert len(copy.buildings) == len(demo.buildings)

    code, params = _split(service, version)
    edited = service.edit_draft(version, "split", params, PLANNER)
    assert edited["revision"] == 1 and edited["grids"][0] == code
    assert [e["operation"] for e in edited["edits"]] == ["start", "split"]
    assert edited["summary"]["grids"] == len(demo.grids) + 1
    # A fresh service (another process) reads the same draft from the database.
    other = Service(service.db, service.catalogue, service.media)
    reloaded = other.boundaries(version)
    assert list(reloaded.grids["code"]) == list(service.boundaries(version).grids["code"])
    assert all(shapely.equals(a, b) for a, b in zip(
        reloaded.grids.geometry, service.boundaries(version).grids.geometry, strict=True))
    # The base version is untouched.
    assert len(service.boundaries(1).grids) == len(demo.grids)


def test_refused_edits_change_nothing(service):
    version = service.start_draft(1, PLANNER)["version"]
    service.edit_draft(version, "split", _split(service, version)[1], PLANNER)
    before = _state(service, version)
    grids = service.boundaries(version).grids
    members = list(grids[grids["community_code"] == grids["community_code"].value_counts()
                         .index[0]].itertuples())
    apart = next((a.code, b.code) for a in members for b in members
                 if a.code < b.code and not a.geometry.intersects(b.geometry))
    bad = [
        ("merge", {"grids": list(apart)}, "not adjacent"),
        ("split", {"grid": grids["code"].iloc[0], "line": mapping(LineString(
            [(100, 30), (100.1, 30.1)]))}, "does not cut"),
        ("split", {"grid": "610104999999001", "line": mapping(LineString(
            [(100, 30), (100.1, 30.1)]))}, "no grid"),
        ("explode", {}, "operation must be"),
    ]
    for operation, params, message in bad:
        with pytest.raises(InputError, match=message):
            service.edit_draft(version, operation, params, PLANNER)
    with pytest.raises(Conflict, match="revision"):
        service.edit_draft(version, "merge", {"grids": []}, PLANNER, expected_revision=0)
    assert _state(service, version) == before


def test_an_edit_that_would_leave_a_gap_is_refused(service):
    version = service.start_draft(1, PLANNER)["version"]
    grid = service.boundaries(version).grids.iloc[50]
    x, y = grid.geometry.representative_point().coords[0]
    hole = shapely.box(x - 1e-4, y - 1e-4, x + 1e-4, y + 1e-4)
    before = _state(service, version)
    with pytest.raises(InputError, match="gap"):
        service.edit_draft(version, "reshape", {"grid": grid["code"], "polygon": mapping(
            shapely.difference(grid.geometry, hole))}, PLANNER)
    assert _state(service, version) == before


def test_activation_freezes_a_draft_and_history_keeps_its_version(service, demo):
    first = service.submit_report(report(demo, 100))
    version = service.start_draft(1, PLANNER)["version"]
    code, params = _split(service, version)
    service.edit_draft(version, "split", params, PLANNER)
    service.activate_version(version)
    assert service.active_resolver()[0] == version
    revision, draft, active, *_ = _state(service, version)
    assert (draft, active) == (False, True)
    with pytest.raises(InputError, match="not a draft"):
        service.edit_draft(version, "split", params, PLANNER)
    with pytest.raises(InputError, match="not a draft"):
        service.discard_draft(version)
    second = service.submit_report(report(demo, 100, description="again, after the redraw"))
    assert first["boundary_version"] == 1 and second["boundary_version"] == version
    assert service.order(first["work_order_id"])["boundary_version"] == 1


def test_unknown_versions_and_non_drafts_are_refused(service):
    with pytest.raises(NotFound):
        service.start_draft(99, PLANNER)
    with pytest.raises(NotFound):
        service.edit_draft(99, "merge", {"grids": []}, PLANNER)
    with pytest.raises(InputError, match="not a draft"):
        service.edit_draft(1, "merge", {"grids": []}, PLANNER)
    with pytest.raises(InputError, match="name"):
        service.start_draft(1, PLANNER, name="")


def test_a_discarded_draft_is_gone(service):
    version = service.start_draft(1, PLANNER)["version"]
    service.discard_draft(version)
    with pytest.raises(NotFound):
        service.version_info(version)
    assert [v["version"] for v in service.versions()] == [1]


def test_impact_and_re_resolution_against_a_draft_change_nothing_stored(service, demo):
    seed_report_history(service, 3000, days=60)
    service.submit_report(report(demo, 100))
    version = service.start_draft(1, PLANNER)["version"]
    code, params = _split(service, version)
    added = service.edit_draft(version, "split", params, PLANNER)["grids"][1]
    with service.db.read() as uow:
        stored = uow.execute(select(t.reports.c.id, t.reports.c.grid_code)).all()

    impact = service.planning.impact(version, months=3)
    s = impact["summary"]
    assert s["reports"] == 3001 and s["active_version"] == 1 and s["version"] == version
    table = {g["code"]: g for g in impact["grids"]}
    assert table[added]["change"] == "added" and table[code]["change"] == "reshaped"
    assert s["reports_changing_grid"] == round(table[added]["reports_per_month_after"] * 3)
    assert s["open_orders"] == 1
    names = {w["name"] for w in impact["gridworkers"]}
    assert names and all(code in w["grids"] for w in impact["gridworkers"])
    assert all(w["change_per_month"] < 0 for w in impact["gridworkers"])

    frame = service.planning.reresolve(version)
    moved = frame[frame["changes_grid"]]
    assert len(frame) == 3001
    assert set(moved["draft_grid_code"]) == {added} and set(moved["grid_code"]) == {code}
    assert len(moved) == s["reports_changing_grid"]
    with service.db.read() as uow:
        assert uow.execute(select(t.reports.c.id, t.reports.c.grid_code)).all() == stored

    # New reports are picked up by the next preview.
    service.submit_report(report(demo, 10, description="another"))
    assert service.planning.impact(version, months=3)["summary"]["reports"] == 3002
    with pytest.raises(InputError, match="months"):
        service.planning.impact(version, months=0)


def test_a_moved_station_serves_reports_once_its_version_is_active(service, demo):
    data = report(demo, 100)
    before = service.submit_report(data)
    version = service.start_draft(1, PLANNER)["version"]
    point = {"type": "Point", "coordinates": [data["lon"], data["lat"]]}
    edited = service.edit_draft(version, "station", {"station": "ST050", "point": point,
                                                     "name": "新址驿站"}, PLANNER)
    assert edited["edit"] == "changed station ST050" and edited["revision"] == 1
    assert len(service.boundaries(version).stations) == len(demo.stations)
    service.activate_version(version)
    after = service.submit_report({**data, "description": "again, near the moved station"})
    assert after["station_id"] == "ST050" and before["station_id"] != "ST050"
    with service.db.read() as uow:
        kept = uow.execute(select(t.reports.c.station_id).where(
            t.reports.c.id == before["report_id"])).scalar_one()
    assert kept == before["station_id"]  # history keeps the station it was resolved to
    assert service.boundaries(1).stations.set_index("station_id").loc["ST050"].geometry.equals(
        demo.stations.set_index("station_id").loc["ST050"].geometry)
