"""The demo district: deterministic, shipped as generated, and shaped like Lianhu."""

import filecmp

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.boundaries import load_boundaries
from geo.codes import reading_order
from geo.demo import default_source, generate, sample_reports, write_demo, write_sample_reports

LIANHU_STREETS = {"青年路街道", "北院门街道", "北关街道", "红庙坡街道", "环城西路街道", "西关街道",
                  "土门街道", "桃园路街道", "枣园街道"}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    written = write_demo(folder / "boundaries")
    bset = load_boundaries(written[0])
    reports = write_sample_reports(folder / "samples" / "reports.csv", bset)
    return folder, bset, reports


def _same_layers(a, b):
    for name in ("streets", "communities", "grids", "stations"):
        left, right = a.layer(name), b.layer(name)
        assert len(left) == len(right), name
        key = "station_id" if name == "stations" else "code"
        assert left[key].tolist() == right[key].tolist(), name
        assert left["name"].tolist() == right["name"].tolist(), name
        assert shapely.equals_exact(left.geometry.values, right.geometry.values, 1e-12).all()


def test_generation_is_deterministic():
    first, second = generate(), generate()
    _same_layers(first, second)
    assert first.buildings["households"].tolist() == second.buildings["households"].tolist()


def test_the_shipped_files_are_what_the_generator_makes(fresh, demo):
    folder, bset, reports = fresh
    _same_layers(bset, demo)
    assert demo.grids["households"].tolist() == bset.grids["households"].tolist()
    shipped_geojson = default_source().parent / "demo"
    _same_layers(load_boundaries(shipped_geojson), load_boundaries(folder / "boundaries" / "demo"))
    _same_layers(load_boundaries(shipped_geojson), demo)
    assert filecmp.cmp(reports, sample_reports(), shallow=False)
    for source in (default_source(), shipped_geojson / "buildings.geojson"):
        layer = "buildings" if source.suffix == ".gpkg" else None
        shipped = gpd.read_file(source, layer=layer)
        made = gpd.read_file(folder / "boundaries" / source.relative_to(
            default_source().parent), layer=layer)
        assert shipped["households"].tolist() == made["households"].tolist()
        assert shapely.equals_exact(shipped.geometry.values, made.geometry.values, 1e-9).all()


def test_the_demo_looks_like_lianhu(demo):
    assert set(demo.streets["name"]) == LIANHU_STREETS
    assert 120 <= len(demo.communities) <= 140
    assert 300 <= len(demo.grids) <= 1000
    assert len(demo.stations) == 108
    assert demo.summary()["grid_area_km2"] == pytest.approx(40, rel=0.05)
    west, south, east, north = demo.grids.total_bounds
    assert 108.87 <= west < east <= 108.97 and 34.23 <= south < north <= 34.30


def test_grids_hold_roughly_300_to_500_households(demo):
    households = demo.grids["households"]
    assert households.sum() > 200_000
    assert ((households >= 300) & (households <= 500)).mean() > 0.95
    assert households.median() == pytest.approx(400, abs=25)


def test_codes_are_15_digits_under_their_parents(demo):
    codes = demo.grids["code"]
    assert codes.str.fullmatch(r"610104\d{9}").all() and codes.is_unique
    assert (codes.str[:12] == demo.grids["community_code"]).all()
    assert (demo.communities["code"].str[:9] == demo.communities["street_code"]).all()


def test_grids_are_numbered_in_reading_order_within_their_community(demo):
    metric = demo.metric("grids")
    centroids = shapely.centroid(metric)
    frame = pd.DataFrame({"community": demo.grids["community_code"], "code": demo.grids["code"],
                          "x": shapely.get_x(centroids), "y": shapely.get_y(centroids),
                          "area": shapely.area(metric)})
    for _, grids in frame.groupby("community"):
        order = reading_order(grids["x"], grids["y"], grids["area"])
        numbers = grids["code"].str[-3:].astype(int).to_numpy()
        assert numbers[order].tolist() == list(range(1, len(grids) + 1))


def test_sample_reports_mix_systems_and_include_bad_rows(demo_resolver):
    reports = pd.read_csv(sample_reports(), dtype=str, keep_default_na=False)
    assert len(reports) == 200
    assert set(reports["crs"]) == {"gcj02", "wgs84"}
    assert (reports["crs"] == "gcj02").mean() > 0.4
    outcome = pd.concat([
        demo_resolver.resolve_frame(group, crs=crs, errors="mark")
        for crs, group in reports.groupby("crs")])
    assert outcome["status"].value_counts().to_dict() == {"ok": 192, "outside": 5, "invalid": 3}


def test_stations_are_near_where_people_live(demo, demo_resolver):
    centroids = demo.grids.geometry.representative_point()
    result = demo_resolver.resolve_many(centroids.x, centroids.y)
    assert result["station_distance_m"].median() < 500
    assert result["station_id"].nunique() > 90  # most stations are some grid's nearest
