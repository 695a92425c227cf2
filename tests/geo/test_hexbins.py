"""Hexagon bins: every point is counted once, in the hexagon that holds it."""

import numpy as np
import pytest
import shapely

from geo.crs import WGS84, transformer
from geo.errors import InputError
from geo.hexbins import hexbin


@pytest.fixture
def points(demo):
    rng = np.random.default_rng(7)
    west, south, east, north = demo.grids.total_bounds
    return west + rng.random(5000) * (east - west), south + rng.random(5000) * (north - south)


@pytest.mark.parametrize("edge", [100, 250, 500])
def test_each_point_is_counted_in_the_hexagon_that_holds_it(demo, points, edge):
    lon, lat = points
    bins = hexbin(lon, lat, demo.metric_crs, edge)
    assert bins["count"].sum() == len(lon)
    assert not bins[["q", "r"]].duplicated().any()
    # Count again by containment in the returned (WGS84) hexagons: the same numbers.
    tree = shapely.STRtree(bins.geometry.values)
    point_index, hexagon_index = tree.query(shapely.points(lon, lat), predicate="intersects")
    assert len(np.unique(point_index)) == len(lon)
    first = np.unique(point_index, return_index=True)[1]
    recount = np.bincount(hexagon_index[first], minlength=len(bins))
    assert (recount == bins["count"].to_numpy()).mean() > 0.995  # edge points may touch two
    metric = shapely.transform(bins.geometry.values, lambda xy: np.column_stack(
        transformer(WGS84, demo.metric_crs).transform(xy[:, 0], xy[:, 1])))
    assert shapely.area(metric) == pytest.approx(3 * np.sqrt(3) / 2 * edge**2, rel=1e-6)


def test_a_dense_cluster_makes_the_busiest_hexagon(demo, points):
    lon, lat = points
    centre = demo.grids.geometry.values[100].representative_point()
    lon = np.concatenate([lon, np.full(300, centre.x)])
    lat = np.concatenate([lat, np.full(300, centre.y)])
    bins = hexbin(lon, lat, demo.metric_crs, 250)
    busiest = bins.loc[bins["count"].idxmax()]
    assert busiest["count"] >= 300 and busiest.geometry.contains(centre)


def test_no_points_no_hexagons_and_bad_edges(demo):
    assert len(hexbin([], [], demo.metric_crs)) == 0
    for edge in (0, -5, float("nan")):
        with pytest.raises(InputError, match="positive"):
            hexbin([108.9], [34.25], demo.metric_crs, edge)
