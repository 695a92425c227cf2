"""The gridline command line, driven through click and, once, as the installed script."""

import json
import shutil
import subprocess

import click
import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from geo.boundaries import load_boundaries
from geo.cli import reports_errors
from geo.crs import from_wgs84
from geo.demo import sample_reports
from geo.validation import validate
from tests.conftest import PROJECT, toy_layers, write_gpkg, write_toy_grids_in
from web.cli import main

BOWTIE = shapely.Polygon([(108.91, 34.20), (108.92, 34.21), (108.92, 34.20), (108.91, 34.21)])


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def broken_gpkg(tmp_path):
    layers = toy_layers()
    layers["grids"].loc[layers["grids"]["name"] == "A1e", "geometry"] = BOWTIE
    return write_gpkg(tmp_path / "broken.gpkg", layers)


def test_validate_the_demo_district():
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "valid: 0 errors, 0 warnings (tolerance 1 m²)"


def test_validate_reports_errors_as_json_and_exits_1(broken_gpkg):
    result = run("validate", broken_gpkg, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert any(f["check"] == "invalid_geometry" and "Self-intersection" in f["message"]
               for f in report["findings"])


def test_validate_fix_repairs_reports_and_writes(broken_gpkg, tmp_path):
    out = tmp_path / "fixed.gpkg"
    result = run("validate", broken_gpkg, "--fix", "--output", out)
    assert "repaired grids" in result.output and "invalid_geometry" not in result.output
    fixed = load_boundaries(out)
    assert all(shapely.is_valid(fixed.grids.geometry.values))
    assert not [f for f in validate(fixed).findings if f.check == "invalid_geometry"]


def test_validate_a_gcj02_fence(realdata):
    result = run("validate", realdata / "lianhu_610104_amap_fence.json", "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    assert "41." in result.output.splitlines()[0] and "converted from gcj02" in result.output


@pytest.mark.parametrize("args, message", [
    (("validate", "/nonexistent/x.gpkg"), "does not exist"),
    (("validate", "--crs", "wgs85"), "unknown coordinate system 'wgs85'"),
    (("resolve", "abc", "34.2"), "lon must be a number"),
    (("resolve", "108.93", "91"), "latitude 91.0 is beyond ±90"),
    (("resolve", "34.26", "108.93"), "order looks swapped"),
    (("resolve", "108.93", "34.26", "--crs", "gcj03"), "unknown coordinate system 'gcj03'"),
])
def test_bad_input_is_a_one_line_error_with_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output


def test_resolve_prints_json():
    result = run("resolve", "108.93", "34.26")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["status"] == "ok" and len(answer["grid_code"]) == 15
    assert answer["grid_code"].startswith(answer["community_code"])
    assert answer["station_id"].startswith("ST") and answer["station_distance_m"] > 0


def test_resolve_gcj02_input_gives_the_same_grid():
    wgs = json.loads(run("resolve", "108.93", "34.26").output)
    x, y = from_wgs84(108.93, 34.26, "gcj02")
    gcj = json.loads(run("resolve", f"{float(x):.9f}", f"{float(y):.9f}", "--crs", "gcj02").output)
    assert gcj["grid_code"] == wgs["grid_code"]
    assert gcj["lon"] == pytest.approx(108.93, abs=1e-8)


def test_resolve_against_an_invalid_boundary_set_is_refused(broken_gpkg):
    result = run("resolve", "108.905", "34.205", "--boundaries", broken_gpkg)
    assert result.exit_code == 1
    assert "the boundary set has 1 errors" in result.output and "--fix" in result.output


def test_resolve_file_keeps_columns_appends_answers_and_marks_bad_rows(tmp_path):
    out = tmp_path / "out.csv"
    result = run("resolve-file", sample_reports(), out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "resolved 200 rows" in result.output
    assert "ok            192" in result.output and "invalid         3" in result.output
    source = pd.read_csv(sample_reports(), dtype=str, keep_default_na=False)
    resolved = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(resolved.columns) == list(source.columns) + [
        "grid_code", "community_code", "street_code", "station_id", "station_distance_m",
        "resolve_status", "resolve_reason"]
    pd.testing.assert_frame_equal(resolved[source.columns], source)
    invalid = resolved[resolved["resolve_status"] == "invalid"]
    assert len(invalid) == 3 and (invalid["resolve_reason"] != "").all()
    assert (invalid["grid_code"] == "").all()


def test_resolve_file_honours_each_rows_crs(tmp_path, demo_resolver):
    x, y = from_wgs84(108.93, 34.26, "bd09")
    pd.DataFrame({"x": [108.93, float(x)], "y": [34.26, float(y)], "crs": ["", "bd09"]}).to_csv(
        tmp_path / "in.csv", index=False)
    result = run("resolve-file", tmp_path / "in.csv", tmp_path / "out.csv", "--lon-col", "x",
                 "--lat-col", "y", "--quiet")
    assert result.exit_code == 0, result.output
    codes = pd.read_csv(tmp_path / "out.csv", dtype=str)["grid_code"]
    assert codes[0] == codes[1] == demo_resolver.resolve(108.93, 34.26).grid_code


def test_resolve_file_with_unknown_row_crs_marks_the_row(tmp_path):
    pd.DataFrame({"lon": [108.93, 108.93], "lat": [34.26, 34.26], "crs": ["wgs84", "mars"]}
                 ).to_csv(tmp_path / "in.csv", index=False)
    assert run("resolve-file", tmp_path / "in.csv", tmp_path / "out.csv", "--quiet").exit_code == 0
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out["resolve_status"].tolist() == ["ok", "invalid"]
    assert "unknown coordinate system 'mars'" in out["resolve_reason"][1]


def test_resolve_file_on_nyc_with_a_single_polygon_file(realdata, tmp_path):
    out = tmp_path / "nyc.csv"
    result = run("resolve-file", realdata / "nyc311_2011_subset_2000.csv", out,
                 "--boundaries", realdata / "nyc_community_districts_dcp.geojson",
                 "--code-field", "label_311", "--stations", realdata / "nyc_fdny_firehouses.csv",
                 "--lon-col", "Longitude", "--lat-col", "Latitude", "--quiet")
    assert result.exit_code == 0, result.output
    resolved = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert (resolved["grid_code"] == resolved["Community Board"]).sum() >= 1381


@pytest.mark.parametrize("content, message", [
    ("lon,lat\n", "has no rows"),
    ("", "not a readable CSV"),
    ("x,y\n1,2\n", "no column 'lon'"),
])
def test_resolve_file_bad_tables_are_refused_and_write_nothing(tmp_path, content, message):
    (tmp_path / "in.csv").write_text(content)
    result = run("resolve-file", tmp_path / "in.csv", tmp_path / "out.csv", "--quiet")
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out.csv").exists()
    assert not list(tmp_path.glob("*.part"))


def test_demo_data_regenerates_the_shipped_district(tmp_path):
    result = run("demo-data", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("valid: 0 errors")
    assert (tmp_path / "boundaries" / "demo.gpkg").exists()
    layers = gpd.list_layers(tmp_path / "boundaries" / "demo.gpkg")["name"].tolist()
    assert {"streets", "communities", "grids", "stations", "buildings"} <= set(layers)


def test_the_readme_resolve_file_example_runs_as_the_installed_script(tmp_path):
    gridline = shutil.which("gridline")
    assert gridline, "the gridline script is not installed (pip install -e .)"
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert "gridline resolve-file data/samples/reports.csv resolved.csv" in readme
    done = subprocess.run([gridline, "resolve-file", "data/samples/reports.csv",
                           str(tmp_path / "resolved.csv")], cwd=PROJECT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "resolved 200 rows" in done.stdout
    assert len(pd.read_csv(tmp_path / "resolved.csv")) == 200


@pytest.mark.parametrize("option", ["--code-field", "--name-field"])
def test_a_missing_code_or_name_field_is_a_clear_error(realdata, option):
    result = run("validate", realdata / "nyc_community_districts_dcp.geojson", option, "cb_code")
    assert result.exit_code == 2
    assert result.output.startswith("error: the grids layer has no property 'cb_code'")
    assert "its properties are: boro_cd, borough, cd_number" in result.output
    assert "label_311" in result.output


def test_validate_json_reports_a_loading_error_as_json(tmp_path):
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.box(0, 0, 1000, 1000)])
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        frame.to_file(tmp_path / "noprj.shp", engine="pyogrio")
    result = run("validate", tmp_path / "noprj.shp", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["field"] == "crs" and "declares no coordinate system" in error["error"]
    bad_crs = run("validate", "--crs", "wgs85", "--json")
    assert bad_crs.exit_code == 2
    assert json.loads(bad_crs.stdout) == {
        "error": "unknown coordinate system 'wgs85': use wgs84, gcj02, bd09, cgcs2000 or "
                 "EPSG:<code>", "field": "crs"}


def test_wgs84_stations_with_gcj02_boundaries_land_where_they_are(tmp_path):
    """The stations CSV is WGS84 unless --stations-crs says otherwise, whatever the boundaries'
    CRS: resolving a station's own WGS84 position finds it 0 m away."""
    grids = write_toy_grids_in("gcj02", tmp_path / "grids_gcj.geojson")
    (tmp_path / "st.csv").write_text("id,lon,lat\nS1,108.905,34.205\nS2,108.935,34.215\n")
    x, y = (float(v) for v in from_wgs84(108.905, 34.205, "gcj02"))
    (tmp_path / "st_gcj.csv").write_text(f"id,lon,lat\nS1,{x!r},{y!r}\n")
    for stations, extra in (("st.csv", ()), ("st_gcj.csv", ("--stations-crs", "gcj02"))):
        result = run("resolve", "108.905", "34.205", "--boundaries", grids, "--boundaries-crs",
                     "gcj02", "--stations", tmp_path / stations, *extra)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert answer["station_id"] == "S1" and answer["station_distance_m"] < 1e-3
        assert answer["grid_name"] == "A1w"


def test_metric_crs_option_changes_the_crs_measured_in(realdata):
    utm = json.loads(run("validate", "--json").output)["summary"]
    gk = json.loads(run("validate", "--json", "--metric-crs", "EPSG:4545").output)["summary"]
    assert (utm["metric_crs"], gk["metric_crs"]) == ("EPSG:32649", "EPSG:4545")
    assert gk["grid_area_km2"] == pytest.approx(utm["grid_area_km2"], rel=2e-4)
    near = [json.loads(run("resolve", "108.93", "34.26", *extra).output)["station_distance_m"]
            for extra in ((), ("--metric-crs", "EPSG:4545"))]
    assert near[0] != near[1] and near[1] == pytest.approx(near[0], rel=1e-4)
    refused = run("resolve", "108.93", "34.26", "--metric-crs", "EPSG:4326")
    assert refused.exit_code == 2 and "not a projected system in metres" in refused.output


@pytest.fixture
def empty_geojson(tmp_path):
    path = tmp_path / "empty.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    return path


def test_a_source_without_grids_is_a_one_line_error_for_every_command(empty_geojson, tmp_path):
    points = tmp_path / "in.csv"
    points.write_text("lon,lat\n108.93,34.26\n")
    for args in (("validate", empty_geojson),
                 ("resolve", "108.93", "34.26", "--boundaries", empty_geojson),
                 ("resolve-file", points, tmp_path / "out.csv", "--boundaries", empty_geojson),
                 ("partition", empty_geojson, "--target-households", 400, "--out",
                  tmp_path / "p.gpkg")):
        result = run(*args)
        assert result.exit_code == 2, args
        assert result.output == "error: the grids layer has no features\n", args
    answer = run("validate", empty_geojson, "--json")
    assert answer.exit_code == 2
    assert json.loads(answer.output) == {"error": "the grids layer has no features",
                                         "field": "grids"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.geojson", "in.csv"]


def test_outputs_in_missing_folders_are_refused_before_any_work(broken_gpkg, tmp_path):
    points = tmp_path / "in.csv"
    points.write_text("lon,lat\n108.93,34.26\n")
    for args in (("resolve-file", points, tmp_path / "nodir" / "o.csv", "--quiet"),
                 ("validate", broken_gpkg, "--fix", "--output", points / "x.gpkg"),
                 ("partition", "--target-households", 400, "--out", points / "x.gpkg")):
        result = run(*args)
        assert result.exit_code == 2, args
        assert result.output.startswith("error: ") and "is not an existing folder" in result.output
        assert len(result.output.splitlines()) == 1
    assert not (tmp_path / "nodir").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.gpkg", "in.csv"]


def test_validate_writes_only_with_fix(broken_gpkg, tmp_path):
    result = run("validate", broken_gpkg, "--output", tmp_path / "out.gpkg")
    assert result.exit_code == 2 and "--output writes the repaired set" in result.output
    assert not (tmp_path / "out.gpkg").exists()


def test_files_that_cannot_be_written_are_a_one_line_error():
    @click.command()
    @click.option("--json", "as_json", is_flag=True)
    @reports_errors
    def write(as_json):
        raise PermissionError(13, "Permission denied", "/srv/out.csv")

    plain = CliRunner().invoke(write, [])
    assert plain.exit_code == 2 and plain.output == "error: /srv/out.csv: Permission denied\n"
    as_json = CliRunner().invoke(write, ["--json"])
    assert json.loads(as_json.output)["error"] == "/srv/out.csv: Permission denied"
