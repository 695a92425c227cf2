"""Validation: every check finds what it should, names the feature, and passes clean data."""

import json

import geopandas as gpd
import shapely

from geo.boundaries import load_boundaries
from geo.validation import validate
from tests.conftest import toy_layers, write_gpkg

BOWTIE = shapely.Polygon([(108.91, 34.20), (108.92, 34.21), (108.92, 34.20), (108.91, 34.21)])


def load(tmp_path, layers, **kwargs):
    return load_boundaries(write_gpkg(tmp_path / "t.gpkg", layers), district_code="610104",
                           **kwargs)


def findings(report, check):
    return [f for f in report.findings if f.check == check]


def replace_grid(layers, name, geometry):
    grids = layers["grids"]
    grids.loc[grids["name"] == name, "geometry"] = geometry
    return layers


def test_the_toy_district_has_only_its_deliberate_gap(toy):
    report = validate(toy)
    assert report.ok
    assert [(f.check, f.feature) for f in report.findings] == [("gap", "610104002001")]


def test_the_gap_is_measured_in_square_metres(toy):
    gap = findings(validate(toy), "gap")[0]
    area = float(gap.message.split(" m²")[0].replace(",", ""))
    # The bare quarter is 0.01° x 0.01° at 34.2° N: about 920 m x 1109 m.
    assert 1.0e6 < area < 1.04e6


def test_invalid_geometry_is_reported_with_its_reason_and_only_repaired_on_request(tmp_path):
    layers = replace_grid(toy_layers(), "A1e", BOWTIE)
    report = validate(load(tmp_path, layers))
    [bad] = findings(report, "invalid_geometry")
    assert not report.ok
    assert bad.layer == "grids" and "Self-intersection" in bad.message
    fixed = load(tmp_path, layers, fix=True)
    assert all(shapely.is_valid(fixed.grids.geometry.values))
    assert any(n.startswith("repaired grids") and "Self-intersection" in n for n in fixed.notes)
    assert not findings(validate(fixed), "invalid_geometry")


def test_empty_and_zero_area_polygons_are_errors(tmp_path):
    layers = replace_grid(toy_layers(), "A1e", shapely.Polygon())
    tiny = shapely.box(108.9150, 34.2050, 108.91500001, 34.20500001)
    layers["grids"] = gpd.GeoDataFrame(
        {"name": [*layers["grids"]["name"], "tiny"]},
        geometry=[*layers["grids"].geometry, tiny], crs="EPSG:4326")
    report = validate(load(tmp_path, layers))
    assert len(findings(report, "empty_geometry")) == 1
    [zero] = findings(report, "zero_area")
    assert zero.layer == "grids" and zero.feature.startswith("610104001")


def test_overlapping_siblings_are_errors_with_the_area(tmp_path):
    layers = replace_grid(toy_layers(), "A1e", shapely.box(108.909, 34.20, 108.92, 34.21))
    bset = load(tmp_path, layers)
    [overlap] = findings(validate(bset), "overlap")
    assert overlap.feature == "610104001002001" and "610104001002002" in overlap.message
    area = float(overlap.message.split("by ")[1].split(" m²")[0].replace(",", ""))
    assert 95_000 < area < 110_000  # 0.001° x 0.01°: about 92 m x 1109 m
    assert not findings(validate(bset, tolerance_m2=200_000), "overlap")


def test_a_grid_sticking_out_of_its_community_is_an_error(tmp_path):
    layers = replace_grid(toy_layers(), "A1e", shapely.box(108.91, 34.20, 108.921, 34.21))
    report = validate(load(tmp_path, layers))
    [out] = findings(report, "not_within_parent")
    assert out.feature == "610104001002002" and "610104001002" in out.message


def test_duplicate_malformed_and_missing_names(tmp_path):
    layers = toy_layers()
    layers["grids"]["code"] = ["610104001002001", "610104001002001", "12345", None, None,
                               "610104002009001"]
    layers["grids"]["community_code"] = ["610104001002", "610104001002", "610104001001",
                                         None, None, "610104002001"]
    layers["communities"]["code"] = ["610104001002", "610104001001", "610104002001"]
    layers["grids"].loc[3, "name"] = None
    report = validate(load(tmp_path, layers))
    assert [f.feature for f in findings(report, "duplicate_code")] == ["610104001002001"]
    malformed = {f.feature: f.message for f in findings(report, "malformed_code")}
    assert "12345" in malformed and "15 digits" in malformed["12345"]
    assert "does not start with its parent's code" in malformed["610104002009001"]
    [unnamed] = findings(report, "missing_name")
    assert unnamed.severity == "warning"


def test_grids_directly_under_a_street_are_errors(tmp_path):
    layers = toy_layers()
    del layers["communities"]
    report = validate(load(tmp_path, layers))
    under = findings(report, "grid_under_street")
    assert len(under) == 6 and "every grid must belong to a community" in under[0].message
    assert not report.ok


def test_a_grid_whose_parent_field_names_a_street_or_nothing_known(tmp_path):
    layers = toy_layers()
    layers["streets"]["code"] = ["610104001", "610104002"]
    layers["communities"]["code"] = ["610104001001", "610104001002", "610104002001"]
    layers["grids"]["community_code"] = ["610104001", "610104009009", None, None, None, None]
    report = validate(load(tmp_path, layers))
    assert len(findings(report, "grid_under_street")) == 1
    [unknown] = findings(report, "unknown_parent")
    assert "610104009009" in unknown.message


def test_duplicate_station_ids(tmp_path):
    layers = toy_layers()
    layers["stations"]["station_id"] = ["S1", "S1"]
    [dup] = findings(validate(load(tmp_path, layers)), "duplicate_station_id")
    assert dup.feature == "S1"


def test_report_as_text_and_json(tmp_path):
    layers = replace_grid(toy_layers(), "A1e", BOWTIE)
    report = validate(load(tmp_path, layers))
    data = json.loads(report.to_json())
    assert data["ok"] is False and data["errors"] == len(report.errors) >= 1
    assert {"severity", "layer", "feature", "check", "message"} <= set(data["findings"][0])
    text = report.to_text()
    assert "invalid_geometry" in text and text.splitlines()[-1].startswith("INVALID")


def test_the_demo_district_validates_with_no_errors_or_warnings(demo):
    report = validate(demo)
    assert report.findings == []
    assert report.ok
