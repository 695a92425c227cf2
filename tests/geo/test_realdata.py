"""Proof on real public data (see ../shared/realdata/SOURCES.md)."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.boundaries import load_boundaries
from geo.bulk import resolve_table
from geo.resolver import Resolver
from geo.validation import validate

EARTH_RADIUS_M = 6_371_008.8


@pytest.fixture(scope="module")
def nyc(realdata):
    bset = load_boundaries(realdata / "nyc_community_districts_dcp.geojson",
                           code_field="label_311", stations=realdata / "nyc_fdny_firehouses.csv")
    return bset, Resolver(bset)


@pytest.fixture(scope="module")
def nyc311(realdata, nyc):
    requests = pd.read_csv(realdata / "nyc311_2011_subset_2000.csv", dtype=str,
                           keep_default_na=False)
    result = resolve_table(nyc[1], requests, lon_col="Longitude", lat_col="Latitude")
    return requests, result


def test_nyc_districts_load_and_validate(nyc):
    bset, _ = nyc
    assert len(bset.grids) == 71 and len(bset.stations) == 218
    assert bset.metric_crs.to_epsg() == 32618
    assert validate(bset).ok


def test_nyc_311_requests_land_in_their_community_board(nyc311):
    requests, result = nyc311
    labelled = (requests["Latitude"] != "") & ~requests["Community Board"].str.contains(
        "Unspecified")
    assert labelled.sum() == 1401
    hits = (result.loc[labelled, "grid_code"] == requests.loc[labelled, "Community Board"]).sum()
    assert hits >= 1381
    assert (result.loc[requests["Latitude"] == "", "resolve_status"] == "invalid").all()


def test_no_nyc_request_falls_in_two_districts(nyc, nyc311):
    bset, _ = nyc
    requests, _ = nyc311
    located = requests[requests["Latitude"] != ""]
    points = shapely.points(located["Longitude"].astype(float), located["Latitude"].astype(float))
    point_idx, _ = shapely.STRtree(bset.grids.geometry.values).query(points, predicate="covered_by")
    assert np.bincount(point_idx, minlength=len(points)).max() == 1


def _great_circle_m(lon1, lat1, lon2, lat2):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def test_nearest_firehouse_distances_agree_with_great_circle(realdata, nyc311):
    requests, result = nyc311
    firehouses = pd.read_csv(realdata / "nyc_fdny_firehouses.csv")
    ok = requests["Latitude"] != ""
    lon = requests.loc[ok, "Longitude"].astype(float).to_numpy()[:, None]
    lat = requests.loc[ok, "Latitude"].astype(float).to_numpy()[:, None]
    distances = _great_circle_m(lon, lat, firehouses["Longitude"].to_numpy()[None, :],
                                firehouses["Latitude"].to_numpy()[None, :])
    expected = distances.min(axis=1)
    ours = result.loc[ok, "station_distance_m"].to_numpy(float)
    assert np.all(np.abs(ours - expected) <= 0.005 * expected + 0.1)  # 0.1 m for rounding
    assert np.median(ours) == pytest.approx(571, rel=0.01)
    assert ours.max() == pytest.approx(3484, rel=0.005)


def test_all_but_one_firehouse_lie_inside_a_district(nyc):
    bset, resolver = nyc
    points = bset.stations.geometry
    result = resolver.resolve_many(points.x, points.y, errors="mark")
    assert (result["status"] == "ok").sum() == 217


@pytest.fixture(scope="module")
def lianhu(realdata):
    return load_boundaries(realdata / "lianhu_610104_amap_fence.json", crs="gcj02")


def test_lianhu_fence_declared_gcj02_converts_and_measures_about_41_km2(realdata, lianhu):
    assert lianhu.summary()["grid_area_km2"] == pytest.approx(41, abs=1)
    assert any("converted from gcj02 to WGS84" in note for note in lianhu.notes)
    # The GCJ-02 offset in Xi'an is a few hundred metres: the converted outline has moved.
    raw = gpd.read_file(realdata / "lianhu_610104_amap_fence.json")
    shift = np.subtract(raw.total_bounds, lianhu.grids.total_bounds)
    assert np.all((np.abs(shift) > 0.001) & (np.abs(shift) < 0.01))


def test_lianhu_admin_centres_fall_inside_the_converted_fence(realdata, lianhu):
    centres = gpd.read_file(realdata / "lianhu_610104_admin_centers_gcj02.geojson")
    assert len(centres) == 37
    result = Resolver(lianhu).resolve_many(centres.geometry.x, centres.geometry.y, crs="gcj02")
    assert (result["status"] == "ok").all()
