"""Draft boundary versions on both databases: started from a version, edited revision by
revision, refused edits change nothing, activation freezes a draft, history stays true."""

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, mapping
from shapely.ops import split as split_polygon
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.errors import Conflict, InputError, NotFound
from dispatch.roster import seed_report_history
from dispatch.services import Actor, Service
from geo.boundaries import to_metric
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
    with service.db.read() as uow:  # the report keeps the version it was resolved against
        stored = uow.execute(select(t.reports.c.boundary_version).where(
            t.reports.c.id == first["report_id"])).scalar()
    assert stored == 1
    # the open order is now placed under the active version
    assert service.order(first["work_order_id"])["boundary_version"] == version


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


def test_a_draft_of_a_set_with_warnings_can_be_edited(service, toy_gpkg):
    imported = service.import_boundaries(toy_gpkg, district_code="610104")
    assert imported["warnings"] == 1  # a gap in street 610104002, kept from the source
    version = service.start_draft(imported["version"], PLANNER)["version"]
    grid = service.boundaries(version).grids.iloc[0]
    x0, y0, x1, y1 = grid.geometry.bounds
    line = LineString([((x0 + x1) / 2, y0 - 0.001), ((x0 + x1) / 2, y1 + 0.001)])
    edited = service.edit_draft(version, "split", {"grid": grid["code"],
                                                   "line": mapping(line)}, PLANNER)
    assert edited["revision"] == 1
    assert [f["check"] for f in edited["report"]["findings"]] == ["gap"]


def _layer_file(tmp_path, frame, name) -> str:
    path = tmp_path / f"{name}.geojson"
    frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    return str(path)


def test_an_edit_that_leaves_a_community_without_grids_is_refused(service, tmp_path):
    version = service.start_draft(1, PLANNER)["version"]
    grids = service.boundaries(version).grids
    community = grids["community_code"].iloc[100]
    before = _state(service, version)
    rest = grids[grids["community_code"] != community][["code", "name", "geometry"]]
    with pytest.raises(InputError, match=f"{community}: no grids belong to it"):
        service.replace_draft_layer(version, "grids", _layer_file(tmp_path, rest, "rest"),
                                    PLANNER)
    assert _state(service, version) == before


def test_a_station_off_the_district_is_refused_in_an_uploaded_layer(service, tmp_path):
    version = service.start_draft(1, PLANNER)["version"]
    stations = service.boundaries(version).stations[["station_id", "name", "geometry"]]
    far = stations.copy()
    far.loc[far.index[0], "geometry"] = shapely.Point(0, 0)
    before = _state(service, version)
    with pytest.raises(InputError, match="outside the district"):
        service.replace_draft_layer(version, "stations", _layer_file(tmp_path, far, "far"),
                                    PLANNER)
    assert _state(service, version) == before
    same = service.replace_draft_layer(version, "stations",
                                       _layer_file(tmp_path, stations, "same"), PLANNER)
    assert same["revision"] == before[0] + 1


def test_a_split_leaving_a_sliver_is_refused(service):
    version = service.start_draft(1, PLANNER)["version"]
    bset = service.boundaries(version)
    grid = bset.grids.iloc[100]
    x0, y0, x1, y1 = grid.geometry.bounds
    for offset in np.geomspace(2e-5, 5e-4, 40):  # the first cut giving a part of 10-900 m²
        line = LineString([(x0 + offset, y0 - 0.001), (x0 + offset, y1 + 0.001)])
        parts = shapely.get_parts(split_polygon(grid.geometry, line).geoms)
        areas = shapely.area(to_metric(parts, bset.metric_crs))
        if len(parts) == 2 and 10 < areas.min() < 900:
            break
    else:
        raise AssertionError("no cut gives a sliver")
    before = _state(service, version)
    with pytest.raises(InputError, match="under 1,000 m²"):
        service.edit_draft(version, "split", {"grid": grid["code"], "line": mapping(line)},
                           PLANNER)
    assert _state(service, version) == before


def test_a_new_grid_never_takes_a_code_an_older_grid_had(service):
    version = service.start_draft(1, PLANNER)["version"]
    grids = service.boundaries(version).grids
    # the highest-numbered grid of a community, merged into a lower-numbered neighbour
    for _, members in grids.groupby("community_code"):
        last = members.sort_values("code").iloc[-1]
        shared = shapely.length(shapely.intersection(members.geometry.boundary,
                                                     last.geometry.boundary))
        neighbours = members[(shared > 0) & (members["code"] != last["code"])]
        if len(neighbours):
            break
    kept = neighbours["code"].iloc[0]
    service.edit_draft(version, "merge", {"grids": [kept, last["code"]]}, PLANNER)
    _, params = _split(service, version, int(np.flatnonzero(
        service.boundaries(version).grids["code"] == kept)[0]))
    new_code = service.edit_draft(version, "split", params, PLANNER)["grids"][1]
    assert new_code.startswith(last["community_code"])
    assert new_code not in set(service.boundaries(1).grids["code"])
    assert new_code > last["code"]


def test_a_draft_is_not_activated_over_a_newer_version(service):
    older = service.start_draft(1, PLANNER)["version"]
    newer = service.start_draft(1, PLANNER)["version"]
    service.edit_draft(older, "split", _split(service, older, 100)[1], PLANNER)
    service.edit_draft(newer, "split", _split(service, newer, 200)[1], PLANNER)
    service.activate_version(newer)
    with pytest.raises(Conflict, match=f"version {newer} was activated after draft {older}"):
        service.activate_version(older)
    assert service.active_resolver()[0] == newer
    assert _state(service, older)[1:3] == (True, False)  # still a draft, not active
    follow_up = service.start_draft(newer, PLANNER)["version"]
    service.activate_version(follow_up)
    assert service.active_resolver()[0] == follow_up


def test_activation_can_insist_on_the_revision_previewed(service):
    version = service.start_draft(1, PLANNER)["version"]
    service.edit_draft(version, "split", _split(service, version)[1], PLANNER)
    with pytest.raises(Conflict, match="revision 1, not 0"):
        service.activate_version(version, expected_revision=0)
    assert _state(service, version)[1:3] == (True, False)
    service.activate_version(version, expected_revision=1)
    assert service.active_resolver()[0] == version


def test_a_draft_others_started_from_is_not_deleted(service):
    parent = service.start_draft(1, PLANNER)["version"]
    child = service.start_draft(parent, PLANNER)["version"]
    with pytest.raises(Conflict, match=f"version {child} was started from it"):
        service.discard_draft(parent)
    assert service.version_info(parent)["state"] == "draft"
    service.discard_draft(child)
    service.discard_draft(parent)
    assert [v["version"] for v in service.versions()] == [1]


def test_a_partition_numbers_its_grids_after_every_earlier_code(service):
    version = service.start_draft(1, PLANNER)["version"]
    grids = service.boundaries(1).grids
    community = grids["community_code"].iloc[100]
    old = sorted(grids.loc[grids["community_code"] == community, "code"])
    service.edit_draft(version, "partition", {"communities": [community], "target": 400},
                       PLANNER)
    redrawn = service.boundaries(version).grids
    new = sorted(redrawn.loc[redrawn["community_code"] == community, "code"])
    assert new and min(new) > old[-1]  # none names a place an earlier grid was
    numbers = [int(c[-3:]) for c in new]
    assert numbers == list(range(numbers[0], numbers[0] + len(new)))
    names = redrawn.set_index("code").loc[new, "name"]
    assert all(name.endswith(f"第{int(code[-3:])}网格") for code, name in names.items())
    # Activation then tells whose grid went where, or that nobody took over from it.
    done = service.activate_version(version)
    assert set(done["grids_followed"]) | set(done["grids_unplaced"]) == set(old)
    assert set(done["grids_followed"].values()) <= set(new)
