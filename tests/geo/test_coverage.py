"""Station coverage measured in metres, on a hand-made district and on the demo."""

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from geo.boundaries import build_boundaries
from geo.coverage import station_coverage
from geo.crs import WGS84, transformer
from geo.errors import InputError
from geo.sources import RawLayers

UTM49 = "EPSG:32649"


def _wgs(geoms):
    back = transformer(pyproj.CRS(UTM49), WGS84)
    return shapely.transform(np.asarray(geoms), lambda xy: np.column_stack(
        back.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture
def toy():
    """Two 1 km grids side by side; one station at the west grid's centre; in the west grid
    10 households 200 m east of it and 20 households 450 m south; in the east grid 50 households
    1 400 m east."""
    x0, y0 = 500_000, 3_790_000
    grids = [shapely.box(x0, y0, x0 + 1000, y0 + 1000),
             shapely.box(x0 + 1000, y0, x0 + 2000, y0 + 1000)]
    station = shapely.Point(x0 + 500, y0 + 500)
    homes = [shapely.Point(x0 + 700, y0 + 500), shapely.Point(x0 + 500, y0 + 50),
             shapely.Point(x0 + 1900, y0 + 500)]
    community = shapely.box(x0, y0, x0 + 2000, y0 + 1000)
    raw = RawLayers({
        "streets": gpd.GeoDataFrame({"code": ["001"], "name": ["S"]},
                                    geometry=_wgs([community]), crs=WGS84),
        "communities": gpd.GeoDataFrame({"code": ["001001"], "name": ["C"]},
                                        geometry=_wgs([community]), crs=WGS84),
        "grids": gpd.GeoDataFrame({"name": ["W", "E"], "households": [30, 50]},
                                  geometry=_wgs(grids), crs=WGS84),
        "stations": gpd.GeoDataFrame({"name": ["站"]}, geometry=_wgs([station]), crs=WGS84),
        "buildings": gpd.GeoDataFrame({"households": [10, 20, 50]}, geometry=_wgs(homes),
                                      crs=WGS84),
    }, single_layer=False)
    return build_boundaries(raw, district_code="610104", metric_crs=UTM49)


def test_distances_and_shares_in_metres(toy):
    result = station_coverage(toy, radii=(250, 1000))
    west, east = result.grids.iloc[0], result.grids.iloc[1]
    assert west["households"] == 30 and east["households"] == 50
    assert west["mean_m"] == pytest.approx((10 * 200 + 20 * 450) / 30, abs=0.5)
    assert west["max_m"] == pytest.approx(450, abs=0.5)
    assert east["mean_m"] == pytest.approx(1400, abs=0.5)
    assert west["within_250"] == pytest.approx(1 / 3, abs=1e-3)
    assert west["within_1000"] == 1.0 and east["within_1000"] == 0.0
    small, large = result.summary
    assert small["households_covered"] == 10 and small["households_share"] == pytest.approx(
        10 / 80, abs=1e-4)
    assert small["grids_covered"] == 0 and len(small["uncovered_grids"]) == 2
    assert large["grids_covered"] == 1 and large["uncovered_grids"] == [east["code"]]
    # The 1 km circle round the station covers all of the west grid and part of the east one.
    assert large["area_share"] == pytest.approx(
        (shapely.area(shapely.intersection(shapely.Point(0, 0).buffer(1000, quad_segs=16),
                                           shapely.box(-500, -500, 1500, 500)))) / 2e6,
        abs=1e-3)


def test_without_buildings_each_grid_counts_at_a_point_inside(toy):
    from dataclasses import replace

    bare = replace(toy, buildings=toy.buildings.iloc[0:0])
    result = station_coverage(bare, radii=(100,))
    assert result.grids["households"].tolist() == [30, 50]
    assert result.summary[0]["households_covered"] == 30  # the west grid's point is the station's


def test_the_demo_is_mostly_covered_at_500_m(demo):
    result = station_coverage(demo, radii=(300, 500))
    assert result.grids["households"].sum() == demo.buildings["households"].sum()
    tight, wide = result.summary
    assert 0 < tight["households_share"] < wide["households_share"] <= 1
    assert set(wide["uncovered_grids"]) <= set(tight["uncovered_grids"])


def test_bad_radii_and_no_stations(toy):
    from dataclasses import replace

    for radii in ((), (0,), (-1, 500), (float("nan"),)):
        with pytest.raises(InputError, match="radii"):
            station_coverage(toy, radii=radii)
    with pytest.raises(InputError, match="no stations"):
        station_coverage(replace(toy, stations=toy.stations.iloc[0:0]))
