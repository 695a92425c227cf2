"""Partitioning communities into balanced grids, and measuring a partition."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

import geo.partition
from geo.boundaries import load_boundaries
from geo.codes import reading_order
from geo.errors import InputError
from geo.partition import partition, quality
from geo.validation import validate
from tests.conftest import toy_layers, write_gpkg
from web.cli import main

LOW, TARGET, HIGH = 300, 400, 500
A1, A2, B1 = "610104001002", "610104001001", "610104002001"  # the toy's communities


@pytest.fixture(scope="module")
def demo_partition(demo):
    return partition(demo, target=TARGET, min_households=LOW, max_households=HIGH)


def grids_of(bset, code):
    return bset.grids[bset.grids["community_code"] == code]


def metric_of(bset, code, layer="grids"):
    frame = bset.layer(layer)
    column = "community_code" if layer == "grids" else "code"
    return bset.metric(layer)[(frame[column] == code).to_numpy()]


def toy_with_buildings(tmp_path, buildings):
    """The toy district with building points ``{(lon, lat): households}``."""
    layers = toy_layers()
    layers["buildings"] = gpd.GeoDataFrame(
        {"households": list(buildings.values())},
        geometry=shapely.points(list(buildings)), crs="EPSG:4326")
    return load_boundaries(write_gpkg(tmp_path / "toy.gpkg", layers), district_code="610104")


def naive_strips(community, k):
    """The naive baseline: k strips of equal width, west to east, ignoring households."""
    west, south, east, north = community.bounds
    edges = np.linspace(west, east, k + 1)
    return shapely.intersection(community, shapely.box(edges[:-1], south - 1, edges[1:],
                                                       north + 1))


# --- the demo district ---------------------------------------------------------------------------


def test_every_community_is_tiled_without_gap_or_overlap(demo, demo_partition):
    new = demo_partition.boundaries
    report = validate(new)
    assert report.ok, report.errors[:3]
    assert not [f for f in report.findings if f.check == "gap"]
    assert len(new.communities) == len(demo.communities)
    for code in demo.communities["code"]:
        community = metric_of(new, code, "communities")[0]
        grids = metric_of(new, code)
        union = shapely.union_all(grids)
        assert shapely.area(shapely.symmetric_difference(union, community)) < 1.0, code
        assert shapely.area(grids).sum() - shapely.area(union) < 1.0, code  # no overlap


def test_every_grid_is_one_polygon_and_reasonably_compact(demo_partition):
    metric = demo_partition.boundaries.metric("grids")
    assert set(shapely.get_type_id(metric)) == {3}  # Polygon
    assert demo_partition.quality.overall["contiguous"] is True
    pp = 4 * np.pi * shapely.area(metric) / shapely.length(metric) ** 2
    assert pp.min() > 0.3 and pp.mean() > 0.65


def test_households_stay_within_limits_where_the_community_allows(demo_partition):
    q = demo_partition.quality
    bad = q.grids[~q.grids["within_limits"]]
    assert set(bad["community_code"]) <= set(q.communities.loc[q.communities["note"] != "",
                                                               "code"])
    feasible = q.communities[q.communities["note"] == ""]
    assert len(feasible) >= 120
    assert feasible["min"].min() >= LOW and feasible["max"].max() <= HIGH
    assert q.overall["weight"] == demo_partition.boundaries.buildings["households"].sum()
    # The new grids carry their household counts as an attribute, as the shipped ones do.
    grids = demo_partition.boundaries.grids.set_index("code")
    assert list(grids.loc[q.grids["code"], "households"]) == list(q.grids["weight"])


def test_a_community_that_cannot_meet_the_limits_is_noted(demo_partition):
    q = demo_partition.quality.communities.set_index("code")
    # 572 households: one grid is over 500, two are under 300.
    assert q.loc["610104006016", "weight"] == 572 and q.loc["610104006016", "grids"] == 2
    assert "no grid count keeps 572 within 300–500" in q.loc["610104006016", "note"]
    assert "note 610104006016: no grid count keeps 572" in demo_partition.quality.to_text()


def test_balance_beats_the_naive_baseline_and_the_shipped_grids(demo, demo_partition):
    ours = demo_partition.quality.communities.set_index("code")["ratio"]
    shipped = quality(demo).communities.set_index("code")["ratio"]
    xy = shapely.get_coordinates(demo.buildings.to_crs(demo.metric_crs).geometry.values)
    households = demo.buildings["households"].to_numpy(float)
    naive = []
    for code, k in demo_partition.quality.communities[["code", "grids"]].itertuples(index=False):
        if k > 1:
            strips = naive_strips(metric_of(demo, code, "communities")[0], k)
            inside = shapely.contains_xy(strips[:, None], xy[:, 0], xy[:, 1])
            loads = inside @ households
            naive.append(loads.max() / max(loads.min(), 1))
    assert ours.median() < 1.05 < np.median(naive)
    assert ours.max() < 1.1 < shipped.max()
    assert ours.median() < shipped.median()


def test_codes_are_15_digits_under_the_community_in_reading_order(demo_partition):
    new = demo_partition.boundaries
    assert new.grids["code"].is_unique
    for code in new.communities["code"]:
        grids = grids_of(new, code)
        assert all(c.isdigit() and len(c) == 15 and c.startswith(code) for c in grids["code"])
        assert sorted(int(c[-3:]) for c in grids["code"]) == list(range(1, len(grids) + 1))
        metric = metric_of(new, code)
        xy = shapely.get_coordinates(shapely.centroid(metric))
        order = reading_order(xy[:, 0], xy[:, 1], shapely.area(metric))
        assert list(grids["code"].iloc[order]) == sorted(grids["code"])
    assert new.grids["name"].notna().all()


def test_other_communities_keep_their_grids_and_the_input_is_unchanged(demo):
    before = demo.grids.copy()
    chosen = ["610104001001", "610104003002"]
    result = partition(demo, chosen, target=TARGET, min_households=LOW, max_households=HIGH)
    others = ~before["community_code"].isin(chosen)
    kept = result.boundaries.grids[~result.boundaries.grids["community_code"].isin(chosen)]
    assert list(kept["code"]) == list(before.loc[others, "code"])
    assert all(shapely.equals_exact(kept.geometry.values, before.loc[others].geometry.values,
                                    tolerance=0))
    assert list(result.quality.communities["code"]) == chosen
    assert demo.grids.equals(before)
    assert validate(result.boundaries).ok


# --- small hand-made communities -------------------------------------------------------------


def test_quality_numbers_match_an_independent_computation(tmp_path):
    # A1w (108.90–108.91) holds 10+20+30 households, A1e (108.91–108.92) holds 40.
    toy = toy_with_buildings(tmp_path, {(108.902, 34.202): 10, (108.905, 34.205): 20,
                                        (108.908, 34.208): 30, (108.915, 34.205): 40})
    q = quality(toy, [A1], min_households=45, max_households=100)
    row = q.communities.iloc[0]
    assert (row["grids"], row["min"], row["max"], row["weight"]) == (2, 40, 60, 100)
    assert row["ratio"] == pytest.approx(1.5) and row["outside"] == 1
    boxes = toy.grids[toy.grids["community_code"] == A1].to_crs(toy.metric_crs)
    expected = 4 * np.pi * boxes.area / boxes.length ** 2
    assert list(q.grids["polsby_popper"]) == pytest.approx(list(expected), abs=1e-4)
    # By hand: a box of 0.01° is about 920 m wide and 1109 m high at 34.2° N.
    assert row["pp_mean"] == pytest.approx(4 * np.pi * 920 * 1109 / (2 * (920 + 1109)) ** 2,
                                           abs=5e-3)
    assert list(q.grids["within_limits"]) == [True, False]  # A1w (code 001) first, then A1e
    assert q.to_dict()["communities"][0]["ratio"] == pytest.approx(1.5)


def test_hand_made_community_is_split_evenly(tmp_path):
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(108.9005, 108.9195, 300), rng.uniform(34.2005, 34.2095, 300)
    points = zip(lon, lat, strict=True)
    toy = toy_with_buildings(tmp_path, dict(zip(points, rng.integers(10, 41, 300), strict=True)))
    total = int(toy.buildings["households"].sum())
    result = partition(toy, [A1], target=total / 6)
    q = result.quality.communities.iloc[0]
    assert q["grids"] == 6 and q["ratio"] < 1.1 and q["contiguous"]
    assert validate(result.boundaries).ok


@pytest.fixture
def u_shaped(tmp_path):
    """The toy district whose community A1 is a U open to the north, with 10-household points."""
    layers = toy_layers()
    u_shape = shapely.difference(shapely.box(108.90, 34.20, 108.92, 34.21),
                                 shapely.box(108.905, 34.203, 108.915, 34.21))
    layers["communities"].loc[0, "geometry"] = u_shape
    layers["grids"] = layers["grids"].iloc[[1, 2, 3, 4, 5]]  # A1's old grids no longer fit
    layers["grids"].loc[1, "geometry"] = u_shape
    rng = np.random.default_rng(2)
    points = shapely.points(rng.uniform(108.90, 108.92, 4000), rng.uniform(34.20, 34.21, 4000))
    points = points[shapely.contains(u_shape, points)]
    layers["buildings"] = gpd.GeoDataFrame({"households": np.full(len(points), 10)},
                                           geometry=points, crs="EPSG:4326")
    return load_boundaries(write_gpkg(tmp_path / "u.gpkg", layers), district_code="610104")


@pytest.mark.parametrize("only_horizontal_cuts", [False, True])
def test_a_u_shaped_community_still_gets_one_polygon_per_grid(u_shaped, monkeypatch,
                                                              only_horizontal_cuts):
    if only_horizontal_cuts:  # every cut through the arms leaves a side in two parts
        monkeypatch.setattr(geo.partition, "_directions", lambda region: np.array([[0.0, 1.0]]))
    households = u_shaped.buildings["households"].sum()
    result = partition(u_shaped, [A1], target=households / 7)
    grids = metric_of(result.boundaries, A1)
    assert len(grids) == 7 and set(shapely.get_type_id(grids)) == {3}
    assert shapely.area(shapely.symmetric_difference(
        shapely.union_all(grids), metric_of(result.boundaries, A1, "communities")[0])) < 1.0
    assert validate(result.boundaries).ok
    assert result.quality.overall["contiguous"] is True
    if not only_horizontal_cuts:
        assert result.quality.communities.iloc[0]["ratio"] < 1.1


def test_small_and_empty_communities_stay_one_grid_with_a_note(tmp_path):
    toy = toy_with_buildings(tmp_path, {(108.905, 34.205): 40, (108.915, 34.215): 30})
    result = partition(toy, target=400, min_households=300, max_households=500)
    notes = result.quality.communities.set_index("code")["note"]
    assert "40 in all, fewer than the minimum 300: kept as one grid" in notes[A1]
    assert notes[B1] == "no weighted points: kept as one grid"
    assert (result.quality.communities["grids"] == 1).all()
    assert len(result.boundaries.grids) == 3 and validate(result.boundaries).ok


def test_reports_as_the_second_weight(tmp_path):
    rng = np.random.default_rng(3)
    toy = toy_with_buildings(tmp_path, {(108.905, 34.205): 40})
    # Reports crowd into the west of A2; each weighs 2 (reports per month).
    lon = np.r_[rng.uniform(108.900, 108.905, 300), rng.uniform(108.905, 108.920, 100)]
    lat = rng.uniform(34.2101, 34.2199, 400)
    result = partition(toy, [A2], target=200, points=(lon, lat), weights=np.full(400, 2.0),
                       weight_name="reports")
    q = result.quality
    assert q.weight_name == "reports" and q.communities.iloc[0]["grids"] == 4
    assert q.grids["weight"].sum() == 800 and q.communities.iloc[0]["ratio"] < 1.1
    # The crowded west gets smaller grids than the quiet east.
    areas = shapely.area(metric_of(result.boundaries, A2))
    assert areas.min() < 0.5 * areas.max()
    assert "reports per grid" in q.to_text()
    # Shapely points and an (n, 2) array give the same grids.
    same = partition(toy, [A2], target=200, points=shapely.points(lon, lat),
                     weights=np.full(400, 2.0))
    assert list(same.quality.grids["weight"]) == list(q.grids["weight"])


@pytest.mark.parametrize("kwargs, field, message", [
    ({"communities": ["610104009999"]}, "communities", "unknown community code: 610104009999"),
    ({"target": 0}, "target_households", "target_households must be greater than 0"),
    ({"target": -5}, "target_households", "must be greater than 0"),
    ({"target": "many"}, "target_households", "target_households must be a number"),
    ({"target": float("nan")}, "target_households", "must be a finite number"),
    ({"min_households": 500, "max_households": 300}, "min_households",
     "min_households (500) is greater than max_households (300)"),
    ({"target": 600, "min_households": 300, "max_households": 500}, "target_households",
     "target_households (600) lies outside [min_households, max_households] = [300, 500]"),
    ({"min_households": "x"}, "min_households", "min_households must be a number"),
    ({"weights": [1, 2]}, "weights", "weights must have one value per building point (1), not 2"),
    ({"points": (np.array([108.91]), np.array([34.21])), "weights": [-1]}, "weights",
     "weights must not be negative (weight #1 is -1)"),
    ({"points": (np.array([108.91]), np.array([34.21])), "weights": ["a"]}, "weights",
     "weights must hold numbers only"),
    ({"points": (np.array([108.91]), np.array([94.21]))}, "points", "latitude 94.21 is beyond"),
])
def test_bad_input_is_refused_naming_the_field(tmp_path, kwargs, field, message):
    toy = toy_with_buildings(tmp_path, {(108.905, 34.205): 40})
    arguments = {"target": 400, **kwargs}
    with pytest.raises(InputError) as caught:
        partition(toy, **arguments)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_an_invalid_community_polygon_is_refused(tmp_path):
    layers = toy_layers()
    layers["communities"].loc[0, "geometry"] = shapely.Polygon(
        [(108.90, 34.20), (108.92, 34.21), (108.92, 34.20), (108.90, 34.21)])  # a bow-tie
    toy = load_boundaries(write_gpkg(tmp_path / "bad.gpkg", layers), district_code="610104")
    code = toy.communities["code"][~shapely.is_valid(toy.communities.geometry.values)].iloc[0]
    with pytest.raises(InputError, match=f"community {code} has an empty or invalid polygon"):
        partition(toy, target=400)


def test_a_community_with_a_malformed_code_is_refused(tmp_path):
    layers = toy_layers()
    layers["communities"]["code"] = ["6101040010011", None, None]  # 13 digits
    toy = load_boundaries(write_gpkg(tmp_path / "odd.gpkg", layers), district_code="610104")
    with pytest.raises(InputError, match="community 6101040010011 has a malformed code"):
        partition(toy, ["6101040010011"], target=400)


# --- the command line ----------------------------------------------------------------------------


def test_cli_partitions_writes_a_loadable_geopackage_and_reports(tmp_path, demo):
    out = tmp_path / "partitioned.gpkg"
    result = CliRunner().invoke(main, ["partition", "--target-households", "400", "--min", "300",
                                       "--max", "500", "--communities",
                                       "610104001001,610104006016", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "note 610104006016" in result.output and f"wrote {out}" in result.output
    assert result.output.splitlines()[0].startswith("households per grid (limits 300–500)")
    back = load_boundaries(out)
    assert validate(back).ok and len(back.buildings) == len(demo.buildings)
    assert len(grids_of(back, "610104001001")) == 4
    assert len(back.grids) == len(demo.grids) - 5 + 6


def test_cli_weighs_by_reports_and_prints_json(tmp_path):
    import json

    from geo.demo import sample_reports

    out = tmp_path / "r.gpkg"
    result = CliRunner().invoke(
        main, ["partition", "--target-households", "3", "--weight", "reports", "--reports",
               str(sample_reports()), "--communities", "610104001001,610104001002", "--json",
               "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["weight"] == "reports" and report["overall"]["communities"] == 2
    assert report["notes"] == ["5 weighted points (reports) lie in no community and were not "
                               "counted"]
    assert "skipped 3 reports without usable coordinates" in result.stderr
    assert out.exists()


@pytest.mark.parametrize("args, message", [
    (["--target-households", "0"], "target_households must be greater than 0"),
    (["--target-households", "400", "--communities", "123"], "unknown community code: 123"),
    (["--target-households", "400", "--weight", "reports"],
     "--weight reports and --reports CSV go together"),
])
def test_cli_bad_input_is_a_one_line_error(tmp_path, args, message):
    result = CliRunner().invoke(main, ["partition", *args, "--out", str(tmp_path / "x.gpkg")])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert not (tmp_path / "x.gpkg").exists()
