"""Edits to a draft boundary set: each keeps the community tiled, and each bad edit is refused
with its reason, leaving the set it was given as it was."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Polygon, box, mapping

from geo.boundaries import to_metric
from geo.edits import EditError, apply_edit, replace_layer
from geo.validation import validate


def _grid(bset, code):
    return bset.grids[bset.grids["code"] == code].iloc[0]


def _across(geometry, fraction=0.5):
    """A north-south line across ``geometry`` at ``fraction`` of its width."""
    x0, y0, x1, y1 = geometry.bounds
    x = x0 + (x1 - x0) * fraction
    return LineString([(x, y0 - 0.001), (x, y1 + 0.001)])


def _tiles_community(bset, community_code):
    """The community's grids cover it with no gap or overlap above 1 m²."""
    grids = bset.grids[bset.grids["community_code"] == community_code].geometry.values
    community = bset.communities[bset.communities["code"] == community_code].geometry.iloc[0]
    union = shapely.union_all(grids)
    gap, spill = shapely.difference(community, union), shapely.difference(union, community)
    overlap = sum(shapely.area(to_metric([shapely.intersection(a, b)], bset.metric_crs))[0]
                  for i, a in enumerate(grids) for b in grids[i + 1:])
    areas = shapely.area(to_metric([gap, spill], bset.metric_crs))
    return areas[0] < 1 and areas[1] < 1 and overlap < 1


def _neighbours(bset):
    """Two grids of one community that share an edge, and one grid of another community."""
    grids = bset.grids
    for i, row in grids.iterrows():
        for j in range(i + 1, len(grids)):
            other = grids.iloc[j]
            if other["community_code"] != row["community_code"]:
                break
            if shapely.length(shapely.intersection(row.geometry.boundary,
                                                   other.geometry.boundary)) > 1e-4:
                return row["code"], other["code"]
    raise AssertionError("no adjacent grids in the demo")


def test_split_cuts_a_grid_in_two_and_numbers_the_new_part(demo):
    before = demo.grids.copy()
    code = demo.grids["code"].iloc[100]
    grid = _grid(demo, code)
    edited = apply_edit(demo, "split", {"grid": code, "line": mapping(_across(grid.geometry))})
    after = edited.boundaries
    community = grid["community_code"]
    siblings = before[before["community_code"] == community]["code"]
    new_code = f"{community}{max(int(c[-3:]) for c in siblings) + 1:03d}"
    assert edited.grids == (code, new_code)
    assert len(after.grids) == len(demo.grids) + 1
    parts = [_grid(after, code).geometry, _grid(after, new_code).geometry]
    assert shapely.area(to_metric(parts, demo.metric_crs)).sum() == pytest.approx(
        shapely.area(to_metric([grid.geometry], demo.metric_crs))[0], rel=1e-6)
    assert _grid(after, code).geometry.area >= _grid(after, new_code).geometry.area
    assert _grid(after, new_code)["name"].endswith(f"第{int(new_code[-3:])}网格")
    households = after.grids.set_index("code")["households"]
    assert households[code] + households[new_code] == pytest.approx(
        _buildings_in(demo, grid.geometry))
    assert _tiles_community(after, community)
    assert validate(after).ok
    assert demo.grids.equals(before)  # the given set is untouched


def _buildings_in(bset, geometry):
    inside = shapely.covers(geometry, bset.buildings.geometry.values)
    return int(bset.buildings["households"].to_numpy()[inside].sum())


@pytest.mark.parametrize("line, reason", [
    ("outside", "does not cut grid"),
    ("inside", "does not cut grid"),
    ("zigzag", "pieces"),
])
def test_a_split_line_that_does_not_cut_the_grid_in_two_is_refused(demo, line, reason):
    code = demo.grids["code"].iloc[100]
    g = _grid(demo, code).geometry
    x0, y0, x1, y1 = g.bounds
    w = x1 - x0
    lines = {
        "outside": LineString([(x1 + 0.01, y0), (x1 + 0.01, y1)]),
        "inside": LineString([((x0 + x1) / 2, (y0 + y1) / 2),
                              ((x0 + x1) / 2 + 1e-5, (y0 + y1) / 2 + 1e-5)]),
        "zigzag": LineString([(x0 + w * 0.3, y0 - 0.001), (x0 + w * 0.3, y1 + 0.001),
                              (x0 + w * 0.6, y1 + 0.001), (x0 + w * 0.6, y0 - 0.001)]),
    }
    with pytest.raises(EditError, match=reason) as caught:
        apply_edit(demo, "split", {"grid": code, "line": mapping(lines[line])})
    assert caught.value.field == "line"


def test_merge_joins_adjacent_grids_under_the_smallest_code(demo):
    a, b = _neighbours(demo)
    edited = apply_edit(demo, "merge", {"grids": [b, a]})
    after = edited.boundaries
    assert set(after.grids["code"]) == set(demo.grids["code"]) - {b}
    union = shapely.union(_grid(demo, a).geometry, _grid(demo, b).geometry)
    assert shapely.equals(_grid(after, a).geometry, union)
    assert _grid(after, a)["households"] == _buildings_in(demo, union)
    assert _tiles_community(after, _grid(demo, a)["community_code"])
    assert validate(after).ok


def test_merging_grids_that_do_not_touch_or_lie_in_different_communities_is_refused(demo):
    grids = demo.grids
    community = grids["community_code"].value_counts().index[0]
    members = grids[grids["community_code"] == community]
    apart = next((a, b) for a in members.itertuples() for b in members.itertuples()
                 if a.code < b.code and not a.geometry.intersects(b.geometry))
    with pytest.raises(EditError, match="not adjacent"):
        apply_edit(demo, "merge", {"grids": [apart[0].code, apart[1].code]})
    other = grids[grids["community_code"] != community]["code"].iloc[0]
    with pytest.raises(EditError, match="different communities"):
        apply_edit(demo, "merge", {"grids": [members["code"].iloc[0], other]})
    with pytest.raises(EditError, match="at least two"):
        apply_edit(demo, "merge", {"grids": [other, other]})
    with pytest.raises(EditError, match="no grid 123"):
        apply_edit(demo, "merge", {"grids": [other, "123"]})


def test_reshape_moves_a_shared_edge_and_the_neighbour_follows(demo):
    a, b = _neighbours(demo)
    ga, gb = _grid(demo, a).geometry, _grid(demo, b).geometry
    # Grow a into b by a strip along their shared edge.
    strip = shapely.intersection(shapely.buffer(shapely.intersection(ga.boundary, gb.boundary),
                                                0.0002), gb)
    grown = shapely.union(ga, strip)
    edited = apply_edit(demo, "reshape", {"grid": a, "polygon": mapping(grown)})
    after = edited.boundaries
    assert b in edited.grids
    assert shapely.area(to_metric([_grid(after, a).geometry], demo.metric_crs))[0] > \
        shapely.area(to_metric([ga], demo.metric_crs))[0]
    assert _tiles_community(after, _grid(demo, a)["community_code"])
    assert validate(after).ok
    # And back: shrinking a gives the strip to b again, with no gap.
    back = apply_edit(after, "reshape", {"grid": a, "polygon": mapping(ga)}).boundaries
    assert _tiles_community(back, _grid(demo, a)["community_code"])
    assert shapely.area(to_metric([shapely.symmetric_difference(
        _grid(back, b).geometry, gb)], demo.metric_crs))[0] < 1


def test_a_reshape_that_would_leave_a_gap_or_leave_the_community_is_refused(demo):
    a, _ = _neighbours(demo)
    ga = _grid(demo, a).geometry
    community = demo.communities.set_index("code").geometry[_grid(demo, a)["community_code"]]
    with pytest.raises(EditError, match="leaves its community"):
        apply_edit(demo, "reshape", {"grid": a, "polygon": mapping(
            shapely.buffer(community, 0.002).intersection(shapely.buffer(ga, 0.003)))})
    # A hole cut out of the middle touches no neighbour: it would be a gap.
    x, y = ga.representative_point().coords[0]
    holed = Polygon(ga.exterior.coords, [box(x - 1e-4, y - 1e-4, x + 1e-4, y + 1e-4)
                                         .exterior.coords])
    assert holed.is_valid and ga.contains(box(x - 1e-4, y - 1e-4, x + 1e-4, y + 1e-4))
    with pytest.raises(EditError, match="gap"):
        apply_edit(demo, "reshape", {"grid": a, "polygon": mapping(holed)})
    with pytest.raises(EditError, match="not a valid polygon"):
        bow = Polygon([(x, y), (x + 1e-3, y + 1e-3), (x + 1e-3, y), (x, y + 1e-3)])
        apply_edit(demo, "reshape", {"grid": a, "polygon": mapping(bow)})


def test_reassign_moves_a_grid_to_a_neighbouring_community_with_a_new_code(demo):
    grids, communities = demo.grids, demo.communities.set_index("code")
    grid, target = next(
        (g, c) for g in grids.itertuples() for c in communities.index
        if c != g.community_code and (grids["community_code"] == g.community_code).sum() > 1
        and shapely.length(shapely.intersection(g.geometry.boundary,
                                                communities.geometry[c].boundary)) > 1e-4)
    edited = apply_edit(demo, "reassign", {"grid": grid.code, "community": target})
    after = edited.boundaries
    new_code = edited.grids[1]
    assert new_code.startswith(target) and grid.code not in set(after.grids["code"])
    moved = _grid(after, new_code)
    assert moved["community_code"] == target and shapely.equals(moved.geometry, grid.geometry)
    assert _tiles_community(after, target) and _tiles_community(after, grid.community_code)
    assert validate(after).ok
    far = next(c for c in communities.index if communities.geometry[c].distance(
        grid.geometry) > 0.01)
    with pytest.raises(EditError, match="does not border"):
        apply_edit(demo, "reassign", {"grid": grids["code"].iloc[0], "community": far})
    with pytest.raises(EditError, match="no community"):
        apply_edit(demo, "reassign", {"grid": grid.code, "community": "610104999999"})


@pytest.mark.parametrize("operation, params, field", [
    ("explode", {}, "operation"),
    ("split", {"grid": 5}, "grid"),
    ("split", {"grid": "x", "line": "not geojson"}, "line"),
    ("split", {"grid": "x", "line": {"type": "Point", "coordinates": [1, 2]}}, "line"),
    ("split", {"grid": "x", "line": {"type": "LineString", "coordinates": [[1, 2]]}}, "line"),
    ("merge", {"grids": "a,b"}, "grids"),
    ("reshape", {"grid": "x", "polygon": {"type": "Polygon", "coordinates": []}}, "polygon"),
    ("reassign", {"grid": "x"}, "community"),
])
def test_malformed_edits_name_the_field(demo, operation, params, field):
    with pytest.raises(EditError) as caught:
        apply_edit(demo, operation, params)
    assert caught.value.field == field


def test_replace_layer_recodes_like_an_import_after_every_earlier_code(demo):
    community = demo.communities["code"].iloc[0]
    grids = demo.grids[demo.grids["community_code"] != community]
    whole = demo.communities[demo.communities["code"] == community]
    frame = np.concatenate([grids.geometry.values, whole.geometry.values])
    layer = gpd.GeoDataFrame({"code": [*grids["code"], None],
                              "community_code": [*grids["community_code"], community]},
                             geometry=frame, crs=demo.grids.crs)
    edited = replace_layer(demo, "grids", layer)
    after = edited.boundaries
    assert len(after.grids) == len(grids) + 1
    last = max(int(c[-3:]) for c in demo.grids["code"] if c.startswith(community))
    assert set(after.grids["code"]) - set(grids["code"]) == {f"{community}{last + 1:03d}"}
    retired = {f"{community}{last + 7:03d}"}  # a code an earlier version had
    again = replace_layer(demo, "grids", layer, retired).boundaries
    assert set(again.grids["code"]) - set(grids["code"]) == {f"{community}{last + 8:03d}"}
    assert validate(after).ok
    with pytest.raises(EditError, match="layer must be"):
        replace_layer(demo, "rivers", layer)


def test_partition_redraws_whole_communities_as_an_edit(demo):
    codes = list(demo.communities["code"][5:7])
    edited = apply_edit(demo, "partition", {"communities": codes, "target": 400, "min": 300,
                                            "max": 500})
    after = edited.boundaries
    new = after.grids[after.grids["community_code"].isin(codes)]
    assert new["households"].between(300, 500).all()
    assert all(_tiles_community(after, c) for c in codes)
    assert validate(after).ok
    old = set(demo.grids.loc[demo.grids["community_code"].isin(codes), "code"])
    assert set(edited.grids) == old | set(new["code"])
    assert edited.summary.startswith(f"partitioned {', '.join(codes)} into {len(new)} grids")
    for params, field in (({"communities": "x", "target": 400}, "communities"),
                          ({"communities": [], "target": 400}, "communities"),
                          ({"communities": codes, "target": -1}, "target"),
                          ({"communities": ["610104999999"], "target": 400}, "communities")):
        with pytest.raises(EditError) as caught:
            apply_edit(demo, "partition", params)
        assert caught.value.field == field


def test_a_station_is_added_changed_and_removed(demo):
    point = {"type": "Point", "coordinates": [108.92, 34.26]}
    added = apply_edit(demo, "station", {"station": "ST900", "name": "新驿站", "point": point,
                                         "services": ["rest", "toilet", "rest"]})
    new = added.boundaries.stations.set_index("station_id").loc["ST900"]
    assert (new["name"], new["services"]) == ("新驿站", "rest;toilet")
    assert (new.geometry.x, new.geometry.y) == (108.92, 34.26)
    assert len(added.boundaries.stations) == len(demo.stations) + 1
    changed = apply_edit(demo, "station", {"station": "ST001", "name": "改名驿站"})
    row = changed.boundaries.stations.set_index("station_id").loc["ST001"]
    before = demo.stations.set_index("station_id").loc["ST001"]
    assert row["name"] == "改名驿站" and row["services"] == before["services"]
    assert row.geometry.equals(before.geometry)
    removed = apply_edit(demo, "station", {"station": "ST002", "remove": True})
    assert "ST002" not in set(removed.boundaries.stations["station_id"])
    assert len(removed.boundaries.stations) == len(demo.stations) - 1
    assert len(demo.stations) == 108  # the set edited is left as it was
    assert added.grids == changed.grids == removed.grids == ()


@pytest.mark.parametrize("params, field", [
    ({"station": "ST900", "name": "only a name"}, "station"),
    ({"station": "ST001"}, "remove"),
    ({"station": "ST001", "point": {"type": "Point", "coordinates": [109.5, 35.0]}}, "point"),
    ({"station": "ST001", "point": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}},
     "point"),
    ({"station": "ST001", "services": "rest"}, "services"),
    ({"station": "ST001", "services": ["rest;toilet"]}, "services"),
    ({"station": "ST001", "name": "  "}, "name"),
    ({"station": 7, "name": "x"}, "station"),
    ({"station": "NOPE", "remove": True}, "station"),
])
def test_bad_station_edits_are_refused(demo, params, field):
    with pytest.raises(EditError) as refused:
        apply_edit(demo, "station", params)
    assert refused.value.field == field
