"""The resolver: statuses, the shared-edge rule, bulk = one-by-one, and bad input."""

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from geo.boundaries import to_metric
from geo.crs import from_wgs84
from geo.errors import CoordinateError
from geo.locate import NearestPoint, PolygonLocator
from geo.resolver import Resolver

A2W, A2E, A1W, A1E = "610104001001001", "610104001001002", "610104001002001", "610104001002002"
B1W, B1SE = "610104002001001", "610104002001002"


@pytest.fixture
def resolver(toy):
    return Resolver(toy)


def test_a_point_inside_a_grid_gets_the_whole_chain(resolver):
    r = resolver.resolve(108.905, 34.205)
    assert r.status == "ok"
    assert (r.grid_code, r.grid_name) == (A1W, "A1w")
    assert (r.community_code, r.community_name) == ("610104001002", "community A1")
    assert (r.street_code, r.street_name) == ("610104001", "street A")
    assert r.station_id == "S1" and r.station_distance_m < 0.01


def test_station_distance_is_in_metres(resolver):
    # 0.005° of latitude north of station S1 is about 554 m.
    r = resolver.resolve(108.905, 34.210)
    assert r.station_id == "S1"
    assert r.station_distance_m == pytest.approx(554.5, abs=1.5)


def test_a_point_in_a_community_but_in_no_grid_is_a_gap(resolver):
    r = resolver.resolve(108.935, 34.2151)
    assert r.status == "gap" and r.grid_code is None
    assert r.community_code == "610104002001" and r.street_code == "610104002"
    assert r.station_id == "S2"


def test_a_point_outside_gets_its_distance_to_the_nearest_grid(resolver):
    r = resolver.resolve(108.95, 34.205)
    assert r.status == "outside"
    assert r.grid_code is r.community_code is r.street_code is None
    # 0.01° of longitude at 34.2° N is about 921 m.
    assert r.outside_distance_m == pytest.approx(921, abs=3)


@pytest.mark.parametrize("lon, lat, grid", [
    (108.91, 34.205, A1W),    # edge between A1w and A1e: the smaller code
    (108.92, 34.205, A1E),    # edge between A1e and B1w (two streets): the smaller code
    (108.905, 34.21, A2W),    # edge between A1w (south) and A2w (north)
    (108.91, 34.21, A2W),     # vertex shared by four grids
    (108.93, 34.21, B1W),     # vertex where B1w, B1se and the bare quarter meet
    (108.90, 34.20, A1W),     # the district's own corner
])
def test_points_on_shared_edges_and_vertices_go_to_the_smallest_code(resolver, lon, lat, grid):
    assert resolver.resolve(lon, lat).grid_code == grid
    assert resolver.resolve_many([lon], [lat])["grid_code"].tolist() == [grid]


def _sample_points(toy, rng):
    """Random points over and around the toy district, plus every vertex and edge midpoint."""
    west, south, east, north = toy.grids.total_bounds
    lon = rng.uniform(west - 0.005, east + 0.005, 400)
    lat = rng.uniform(south - 0.005, north + 0.005, 400)
    rings = shapely.get_coordinates(shapely.get_exterior_ring(toy.grids.geometry.values))
    mids = (rings[:-1] + rings[1:]) / 2
    edge = np.vstack([rings, mids])
    return np.concatenate([lon, edge[:, 0]]), np.concatenate([lat, edge[:, 1]])


def _one_by_one(resolver, lon, lat):
    return pd.DataFrame([resolver.resolve(x, y).to_dict() for x, y in zip(lon, lat, strict=True)])


def assert_same_answers(bulk, single):
    """Every column of the one-by-one answers equals the bulk one (missing = None or NaN)."""
    for column in single.columns:
        left, right = bulk[column].astype(object), single[column].astype(object)
        left, right = left.where(left.notna(), None), right.where(right.notna(), None)
        pd.testing.assert_series_equal(left, right, check_names=False, obj=column)


def test_bulk_equals_one_by_one_on_random_edge_and_vertex_points(resolver, toy):
    lon, lat = _sample_points(toy, np.random.default_rng(7))
    bulk = resolver.resolve_many(lon, lat)
    single = _one_by_one(resolver, lon, lat)
    assert set(bulk["status"]) == {"ok", "gap", "outside"}
    assert_same_answers(bulk, single)


def test_bulk_equals_one_by_one_on_the_demo_district(demo_resolver, demo):
    rng = np.random.default_rng(11)
    west, south, east, north = demo.grids.total_bounds
    lon, lat = rng.uniform(west, east, 300), rng.uniform(south, north, 300)
    vertices = shapely.get_coordinates(demo.grids.geometry.values[:40])
    lon, lat = np.concatenate([lon, vertices[:, 0]]), np.concatenate([lat, vertices[:, 1]])
    bulk = demo_resolver.resolve_many(lon, lat)
    single = _one_by_one(demo_resolver, lon, lat)
    assert (bulk["status"] == "ok").sum() > 250
    assert_same_answers(bulk, single)


def test_every_point_of_the_district_lands_in_exactly_one_grid(demo_resolver, demo):
    """Points inside the district always get one grid, and it is a grid that covers them."""
    rng = np.random.default_rng(3)
    points = demo.grids.geometry.sample_points(3, rng=rng).explode().values
    lon, lat = shapely.get_x(points), shapely.get_y(points)
    result = demo_resolver.resolve_many(lon, lat)
    assert (result["status"] == "ok").all()
    polygons = demo.grids.set_index("code").geometry
    covered = shapely.covers(polygons.loc[result["grid_code"]].values, points)
    assert covered.all()


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_bulk_equals_one_by_one_for_phone_app_input_inside_and_outside(demo_resolver, demo,
                                                                        system):
    """GCJ-02 and BD-09 points take the one-point conversion in ``resolve`` and the vectorised
    one in ``resolve_many``: same grids, stations and distances, the same WGS84 point."""
    rng = np.random.default_rng(23)
    west, south, east, north = demo.grids.total_bounds
    lon = rng.uniform(west - 0.03, east + 0.03, 300)
    lat = rng.uniform(south - 0.03, north + 0.03, 300)
    x, y = from_wgs84(lon, lat, system)
    bulk = demo_resolver.resolve_many(x, y, crs=system)
    single = pd.DataFrame([demo_resolver.resolve(a, b, crs=system).to_dict()
                           for a, b in zip(x, y, strict=True)])
    assert {"ok", "outside"} <= set(bulk["status"])
    assert np.abs(single[["lon", "lat"]].to_numpy() - np.column_stack([lon, lat])).max() < 1e-9
    assert_same_answers(bulk, single)


def test_one_point_outside_distance_and_station_equal_the_bulk_ones_exactly(demo_resolver, demo):
    rng = np.random.default_rng(29)
    west, south, east, north = demo.grids.total_bounds
    lon, lat = rng.uniform(west - 0.05, east + 0.05, 500), rng.uniform(south - 0.05, north + 0.05,
                                                                      500)
    bulk = demo_resolver.resolve_many(lon, lat)
    single = [demo_resolver.resolve(a, b) for a, b in zip(lon, lat, strict=True)]
    outside = (bulk["status"] == "outside").to_numpy()
    assert outside.sum() > 100
    assert [r.outside_distance_m for r, o in zip(single, outside, strict=True) if o] == list(
        bulk["outside_distance_m"][outside])
    assert [r.station_distance_m for r in single] == list(bulk["station_distance_m"])
    assert [r.station_id for r in single] == list(bulk["station_id"])


@pytest.mark.parametrize("count", [100, NearestPoint.SCAN_MAX + 500])
def test_nearest_point_for_one_point_is_the_bulk_answer(count):
    """Few points are scanned, many go through the KD-tree: both give the bulk answer."""
    rng = np.random.default_rng(count)
    index = NearestPoint(rng.uniform(0, 10_000, (count, 2)))
    x, y = rng.uniform(-2_000, 12_000, 2000), rng.uniform(-2_000, 12_000, 2000)
    distance, which = index.nearest(x, y)
    one = [index.nearest_one(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True)]
    assert [d for d, _ in one] == distance.tolist()
    assert [i for _, i in one] == which.tolist()


@pytest.mark.parametrize("system", ["gcj02", "bd09", "EPSG:32649"])
def test_input_in_other_systems_resolves_to_the_same_grid(resolver, system):
    x, y = from_wgs84(108.915, 34.215, system)
    r = resolver.resolve(float(x), float(y), crs=system)
    assert r.grid_code == A2E
    assert (r.lon, r.lat) == pytest.approx((108.915, 34.215), abs=1e-9)


@pytest.mark.parametrize("lon, lat, message, field", [
    (float("nan"), 34.2, "finite numbers", "lon"),
    (108.9, float("inf"), "finite numbers", "lon"),
    ("abc", 34.2, "lon must be a number", "lon"),
    (108.9, None, "lat must be a number", "lat"),
    (True, 34.2, "lon must be a number", "lon"),
    (108.9, 95.0, "latitude 95.0 is beyond ±90", "lat"),
    (-190.0, 34.2, "longitude -190.0 is beyond ±180", "lon"),
])
def test_bad_single_points_are_refused(resolver, lon, lat, message, field):
    with pytest.raises(CoordinateError, match=message) as info:
        resolver.resolve(lon, lat)
    assert info.value.field == field


@pytest.mark.parametrize("system, x, y, field", [
    ("EPSG:4547", 1e9, 3.8e6, "lon"), ("EPSG:3857", 1e30, 1e30, "lon"),
    ("EPSG:3857", 1e6, 1e30, "lat"), ("EPSG:3857", 3e7, 4e6, "lon"),
])
def test_projected_points_beyond_their_system_are_refused_alike_one_by_one_and_in_bulk(
        resolver, system, x, y, field):
    """A projected point that leaves the Earth, or that the way back (``from_wgs84``) does not
    return to, gets the same reason from ``resolve`` and ``resolve_many``; a good point beside
    it still resolves."""
    with pytest.raises(CoordinateError, match=system) as info:
        resolver.resolve(x, y, crs=system)
    assert info.value.field == field
    good_x, good_y = from_wgs84(108.915, 34.215, system)
    bulk = resolver.resolve_many([x, float(good_x)], [y, float(good_y)], crs=system,
                                 errors="mark")
    assert bulk["status"].tolist() == ["invalid", "ok"]
    assert bulk["reason"][0] == str(info.value) and bulk["grid_code"][1] == A2E


def test_swapped_order_is_detected(resolver):
    with pytest.raises(CoordinateError, match="order looks swapped"):
        resolver.resolve(34.205, 108.905)


def test_swapped_order_is_detected_for_points_in_range_too():
    """NYC-like coordinates: the swapped pair is in range but outside, the real one inside."""
    import geopandas as gpd

    from geo.boundaries import build_boundaries
    from geo.sources import RawLayers

    grids = gpd.GeoDataFrame({"code": ["X"]}, geometry=[shapely.box(-74.0, 40.6, -73.9, 40.7)],
                             crs="EPSG:4326")
    bset = build_boundaries(RawLayers({"grids": grids}, single_layer=True))
    with pytest.raises(CoordinateError, match="order looks swapped"):
        Resolver(bset).resolve(40.65, -73.95)


def test_bulk_marks_bad_rows_and_resolves_the_rest(resolver):
    lon = [108.905, np.nan, 34.205, 108.905, 300.0]
    lat = [34.205, 34.2, 108.905, 95.0, 34.2]
    result = resolver.resolve_many(lon, lat, errors="mark")
    assert result["status"].tolist() == ["ok", "invalid", "invalid", "invalid", "invalid"]
    assert pd.isna(result["reason"][0])
    assert "finite" in result["reason"][1] and "swapped" in result["reason"][2]
    assert "latitude" in result["reason"][3] and "longitude" in result["reason"][4]
    assert result.loc[1:, "grid_code"].isna().all()
    assert result.loc[1:, "station_distance_m"].isna().all()


def test_bulk_raises_on_the_first_bad_point_by_default(resolver):
    with pytest.raises(CoordinateError, match="point 1: latitude"):
        resolver.resolve_many([108.905, 108.905], [34.205, -91])
    with pytest.raises(CoordinateError, match="same length"):
        resolver.resolve_many([108.905, 108.9], [34.205])
    with pytest.raises(CoordinateError, match="numbers only"):
        resolver.resolve_many(["x"], [34.2])


def test_a_resolver_is_immutable_and_independent_of_later_loads(toy, resolver):
    before = resolver.resolve(108.905, 34.205)
    other = Resolver(toy)
    assert other.resolve(108.905, 34.205) == before
    with pytest.raises(AttributeError):
        before.grid_code = "x"


def test_the_cell_locator_agrees_with_a_plain_covers_test(demo):
    """The cell shortcut answers exactly what testing every polygon would, edges included."""
    polygons = np.asarray(demo.grids.geometry.values)
    locator = PolygonLocator(polygons)
    rng = np.random.default_rng(5)
    west, south, east, north = demo.grids.total_bounds
    vertices = shapely.get_coordinates(polygons[::5])
    x = np.concatenate([rng.uniform(west - 0.01, east + 0.01, 20_000), vertices[:, 0]])
    y = np.concatenate([rng.uniform(south - 0.01, north + 0.01, 20_000), vertices[:, 1]])
    point_idx, poly_idx = shapely.STRtree(polygons).query(shapely.points(x, y),
                                                          predicate="intersects")
    expected = np.full(len(x), len(polygons))
    np.minimum.at(expected, point_idx, poly_idx)
    expected[expected == len(polygons)] = -1
    assert np.array_equal(locator.locate(x, y), expected)
    assert [locator.locate_one(a, b) for a, b in zip(x[-300:], y[-300:], strict=True)] == list(
        expected[-300:])


def test_outside_distances_are_exact(demo, demo_resolver):
    rng = np.random.default_rng(9)
    west, south, east, north = demo.grids.total_bounds
    lon = rng.uniform(west - 0.05, east + 0.05, 4000)
    lat = rng.uniform(south - 0.05, north + 0.05, 4000)
    result = demo_resolver.resolve_many(lon, lat)
    outside = (result["status"] == "outside").to_numpy()
    assert outside.sum() > 1000
    district = to_metric([shapely.union_all(demo.grids.geometry.values)], demo.metric_crs)[0]
    points = to_metric(shapely.points(lon[outside], lat[outside]), demo.metric_crs)
    expected = shapely.distance(points, district)
    assert np.allclose(result["outside_distance_m"][outside], expected, atol=1e-3, rtol=0)


def test_far_away_points_are_measured_on_the_ellipsoid(demo, demo_resolver):
    """Beyond the district's surroundings its UTM zone stretches distances (or, a quarter of
    the globe away, gives none): distances to the nearest station and to the district are
    then geodesic, one point or many alike."""
    geod = Geod(ellps="WGS84")
    stations = shapely.get_coordinates(demo.stations.geometry.values)
    district = shapely.union_all(demo.grids.geometry.values)
    lon = np.array([20.0, 0.0, -150.0, 110.5, 108.9 - 180, -70.0])
    lat = np.array([0.0, 0.0, 10.0, 34.3, -34.3, 89.9])
    bulk = demo_resolver.resolve_many(lon, lat)
    assert list(bulk["status"]) == ["outside"] * len(lon)
    for i, (a, b) in enumerate(zip(lon, lat, strict=True)):
        one = demo_resolver.resolve(a, b)
        to_stations = geod.inv(np.full(len(stations), a), np.full(len(stations), b),
                               stations[:, 0], stations[:, 1])[2]
        assert one.station_distance_m == pytest.approx(to_stations.min(), rel=1e-9)
        assert one.station_id == demo.stations["station_id"].iloc[to_stations.argmin()]
        vertices = shapely.get_coordinates(district.boundary)
        to_district = geod.inv(np.full(len(vertices), a), np.full(len(vertices), b),
                               vertices[:, 0], vertices[:, 1])[2].min()
        assert one.outside_distance_m == pytest.approx(to_district, rel=1e-4)
        assert (one.station_id, one.station_distance_m, one.outside_distance_m) == (
            bulk["station_id"][i], bulk["station_distance_m"][i], bulk["outside_distance_m"][i])


def test_near_points_keep_the_metric_answer_across_the_far_threshold(demo, demo_resolver):
    """At the edge of the surroundings the two measures agree to well under a metre per km."""
    west, south, east, north = demo.grids.total_bounds
    lon = east + np.linspace(0.5, 3.0, 60)  # about 45 to 275 km east of the district
    lat = np.full(60, (south + north) / 2)
    found = demo_resolver.resolve_many(lon, lat)
    step = np.diff(found["outside_distance_m"].to_numpy())
    assert (step > 0).all()  # no jump back where the measure changes
    assert np.allclose(step, step.mean(), rtol=0.02)
