"""Coordinate systems: published test vectors, round trips, pyproj systems and CRS names."""

import json
import math

import numpy as np
import pyproj
import pytest

from geo import crs
from geo.errors import CRSError

TOLERANCE_DEG = 1e-6
METRES_PER_DEGREE = 111_320.0


@pytest.fixture(scope="module")
def vectors(realdata):
    return json.loads((realdata / "china_coord_test_vectors.json").read_text(encoding="utf-8"))


def test_eviltransform_wgs84_gcj02_vectors_both_ways(vectors):
    group = vectors["eviltransform_wgs_gcj"]
    assert group["order"] == ["wgsLat", "wgsLng", "gcjLat", "gcjLng"]
    for vector in group["vectors"]:
        wlat, wlon, glat, glon = vector["v"]
        assert np.allclose(crs.wgs84_to_gcj02(wlon, wlat), (glon, glat), atol=TOLERANCE_DEG, rtol=0)
        assert np.allclose(crs.gcj02_to_wgs84(glon, glat), (wlon, wlat), atol=TOLERANCE_DEG, rtol=0)


def test_gcj02_is_the_identity_outside_china(vectors):
    group = vectors["eviltransform_wgs_gcj"]["out_of_china_identity (matlab/test/testSuite.m)"]
    for vector in group:
        wlat, wlon, glat, glon = vector["v"]
        assert crs.wgs84_to_gcj02(wlon, wlat) == (glon, glat)
        assert tuple(map(float, crs.gcj02_to_wgs84(glon, glat))) == (wlon, wlat)


def test_coordtransform_vectors(vectors):
    group = vectors["coordtransform_demo"]
    assert group["order"] == ["lng", "lat"]
    lon, lat = group["input"]
    expected = group["vectors"]
    checks = {"wgs84togcj02": crs.wgs84_to_gcj02, "gcj02tobd09": crs.gcj02_to_bd09,
              "bd09togcj02": crs.bd09_to_gcj02, "gcj02towgs84": crs.gcj02_to_wgs84}
    for name, function in checks.items():
        assert np.allclose(function(lon, lat), expected[name], atol=TOLERANCE_DEG, rtol=0), name


def test_prcoords_vectors(vectors):
    group = vectors["prcoords_proj4_plugin"]
    lon, lat = group["input_wgs84"]["lon"], group["input_wgs84"]["lat"]
    gcj, bd = group["expected"]["GCJ02"], group["expected"]["BD09"]
    assert np.allclose(crs.wgs84_to_gcj02(lon, lat), (gcj["lon"], gcj["lat"]), atol=TOLERANCE_DEG)
    assert np.allclose(crs.wgs84_to_bd09(lon, lat), (bd["lon"], bd["lat"]), atol=TOLERANCE_DEG)
    assert np.allclose(crs.bd09_to_wgs84(bd["lon"], bd["lat"]), (lon, lat), atol=TOLERANCE_DEG)


def test_gcoord_spec_vectors(vectors):
    spec = vectors["gcoord_fixture"]["other_vectors_in_transform_spec"]
    assert np.allclose(crs.wgs84_to_gcj02(*spec["wgs84_to_gcj02"]["in"]),
                       spec["wgs84_to_gcj02"]["out"], atol=1e-5, rtol=0)
    outside = spec["out_of_china_identity"]
    assert np.allclose(crs.wgs84_to_gcj02(*outside["in"]), outside["out"], atol=0, rtol=0)


def test_gcoord_china_cities_fixture(realdata):
    """664 places in three systems; the fixture agrees with the standard formulas to 1e-5°."""
    places = json.loads((realdata / "gcoord_china_cities_fixture.json").read_text("utf-8"))
    coords = {key: np.array([p["coords"][key] for p in places]) for key in ("WGS84", "GCJ02",
                                                                            "BD09")}
    wgs, gcj, bd = coords["WGS84"], coords["GCJ02"], coords["BD09"]
    assert len(wgs) == 664
    assert np.allclose(np.column_stack(crs.wgs84_to_gcj02(*wgs.T)), gcj, atol=1e-5, rtol=0)
    assert np.allclose(np.column_stack(crs.gcj02_to_bd09(*gcj.T)), bd, atol=1e-5, rtol=0)
    assert np.allclose(np.column_stack(crs.bd09_to_wgs84(*bd.T)), wgs, atol=1e-5, rtol=0)
    assert np.allclose(np.column_stack(crs.to_wgs84(*gcj.T, "gcj02")), wgs, atol=1e-5, rtol=0)


def _china_lattice():
    lon, lat = np.meshgrid(np.linspace(73.0, 135.0, 100), np.linspace(18.0, 53.5, 100))
    return lon.ravel(), lat.ravel()


def _error_m(lon, lat, back_lon, back_lat):
    dx = (back_lon - lon) * METRES_PER_DEGREE * np.cos(np.radians(lat))
    dy = (back_lat - lat) * METRES_PER_DEGREE
    return np.hypot(dx, dy)


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_round_trips_stay_below_one_centimetre_on_a_china_lattice(system):
    lon, lat = _china_lattice()
    assert lon.size == 10_000
    shifted = crs.from_wgs84(lon, lat, system)
    assert _error_m(lon, lat, *shifted).min() > 1  # the offset really moved every point
    back = crs.to_wgs84(*shifted, system)
    assert _error_m(lon, lat, *back).max() < 0.01


def test_cgcs2000_and_other_epsg_codes_go_through_pyproj():
    lon, lat = np.array([108.94, 108.90]), np.array([34.26, 34.25])
    x, y = crs.from_wgs84(lon, lat, "EPSG:32649")
    assert np.all(x > 100_000) and np.all(y > 3_000_000)
    assert np.allclose(crs.to_wgs84(x, y, "EPSG:32649"), (lon, lat), atol=1e-9)
    # CGCS2000 and WGS84 coincide to well under a metre.
    back = crs.to_wgs84(lon, lat, "cgcs2000")
    assert _error_m(lon, lat, *back).max() < 1


def test_transformers_are_cached():
    a = crs.transformer(crs.WGS84, pyproj.CRS.from_epsg(32649))
    b = crs.transformer(crs.WGS84, pyproj.CRS.from_epsg(32649))
    assert a is b


@pytest.mark.parametrize("name, expected", [
    ("wgs84", "EPSG:4326"), ("WGS84", "EPSG:4326"), ("4326", "EPSG:4326"),
    ("cgcs2000", "EPSG:4490"), ("EPSG:4490", "EPSG:4490"), ("gcj02", "gcj02"),
    ("GCJ-02", "gcj02"), ("bd09", "bd09"), (32649, "EPSG:32649"), (None, "EPSG:4326"),
])
def test_parse_crs_names(name, expected):
    assert crs.parse_crs(name).name == expected


@pytest.mark.parametrize("name", ["wgs85", "EPSG:999999", "gcj03", ""])
def test_unknown_crs_names_are_refused(name):
    with pytest.raises(CRSError, match="unknown coordinate system"):
        crs.parse_crs(name)


def test_metric_crs_is_the_utm_zone_of_the_point():
    assert crs.metric_crs_for(108.92, 34.26).to_epsg() == 32649
    assert crs.metric_crs_for(-73.95, 40.7).to_epsg() == 32618
    assert crs.metric_crs_for(151.2, -33.9).to_epsg() == 32756


@pytest.mark.parametrize("system", ["gcj02", "bd09", "wgs84", "cgcs2000", "EPSG:32649"])
def test_one_point_conversion_agrees_with_the_vectorised_one(system):
    """to_wgs84_one (plain floats) gives the vectorised answer, point by point, on random
    points over China and around it (where GCJ-02 is the identity)."""
    rng = np.random.default_rng(17)
    lon, lat = rng.uniform(60.0, 150.0, 3000), rng.uniform(-5.0, 60.0, 3000)
    x, y = crs.from_wgs84(lon, lat, system)
    bulk = np.column_stack(crs.to_wgs84(x, y, system))
    one = np.array([crs.to_wgs84_one(a, b, system) for a, b in zip(x.tolist(), y.tolist(),
                                                                   strict=True)])
    assert one.dtype == float and one.shape == bulk.shape
    assert np.abs(one - bulk).max() < 1e-9
    alone = [tuple(map(float, crs.to_wgs84(a, b, system))) for a, b in zip(x[:300], y[:300],
                                                                          strict=True)]
    assert np.abs(one[:300] - np.array(alone)).max() < 1e-9
    assert _error_m(lon, lat, one[:, 0], one[:, 1]).max() < 0.01


def test_one_point_conversion_is_the_identity_outside_china_and_keeps_nan():
    assert crs.to_wgs84_one(2.35, 48.85, "gcj02") == (2.35, 48.85)
    for system in ("gcj02", "bd09"):
        assert all(math.isnan(v) for v in crs.to_wgs84_one(float("nan"), 34.2, system))


@pytest.mark.parametrize("spec, epsg", [("EPSG:4545", 4545), (32649, 32649),
                                        (pyproj.CRS.from_epsg(3857), 3857)])
def test_metric_crs_may_be_any_projected_system_in_metres(spec, epsg):
    assert crs.parse_metric_crs(spec).to_epsg() == epsg


@pytest.mark.parametrize("spec, message", [
    ("EPSG:4326", "EPSG:4326 is not a projected system in metres"),
    ("gcj02", "gcj02 is not a projected system in metres"),
    ("EPSG:2263", "EPSG:2263 is not a projected system in metres"),  # US survey feet
    ("utm49", "unknown metric CRS 'utm49'"),
])
def test_metric_crs_in_degrees_feet_or_unknown_is_refused(spec, message):
    with pytest.raises(CRSError, match=message) as info:
        crs.parse_metric_crs(spec)
    assert info.value.field == "metric_crs"
