"""Loading boundary sources: formats, CRS handling, hierarchy and codes."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.boundaries import load_boundaries
from geo.crs import from_wgs84
from geo.errors import BoundaryError, CRSError
from tests.conftest import toy_layers, write_gpkg, write_toy_grids_in

TOY_CODES = {"A2w": "610104001001001", "A2e": "610104001001002", "A1w": "610104001002001",
             "A1e": "610104001002002", "B1w": "610104002001001", "B1se": "610104002001002"}


def test_geopackage_codes_follow_reading_order_and_hierarchy_is_spatial(toy):
    assert dict(zip(toy.grids["name"], toy.grids["code"], strict=True)) == TOY_CODES
    assert list(toy.streets["code"]) == ["610104001", "610104002"]
    assert dict(zip(toy.communities["name"], toy.communities["code"], strict=True)) == {
        "community A2": "610104001001", "community A1": "610104001002",
        "community B1": "610104002001"}
    assert list(toy.grids["street_code"]) == ["610104001"] * 4 + ["610104002"] * 2
    assert "grids -> communities: 6 by spatial containment (largest overlap)" in toy.notes
    assert toy.metric_crs.to_epsg() == 32649
    assert list(toy.grids["code"]) == sorted(toy.grids["code"])  # layers sorted by code


def test_parent_code_fields_win_over_geometry(tmp_path):
    layers = toy_layers()
    layers["streets"]["code"] = ["610104005", "610104006"]
    # Community B1 claims street A (610104005) although it lies in street B.
    layers["communities"]["code"] = ["610104005001", "610104005002", "610104005003"]
    layers["communities"]["street_code"] = ["610104005", "610104005", "610104005"]
    bset = load_boundaries(write_gpkg(tmp_path / "t.gpkg", layers))
    assert bset.district_code == "610104"
    assert list(bset.communities["street_code"]) == ["610104005"] * 3
    assert "communities -> streets: 3 from the parent-code field" in bset.notes


def test_existing_codes_are_kept_and_missing_ones_numbered_after_them(tmp_path):
    layers = toy_layers()
    layers["grids"]["code"] = [None, "610104001002009", None, None, None, None]
    bset = load_boundaries(write_gpkg(tmp_path / "t.gpkg", layers), district_code="610104")
    codes = dict(zip(bset.grids["name"], bset.grids["code"], strict=True))
    assert codes["A1e"] == "610104001002009"
    assert codes["A1w"] == "610104001002010"


def test_folder_of_geojson_files_and_csv_stations(tmp_path):
    layers = toy_layers()
    for name in ("streets", "communities", "grids"):
        layers[name].to_file(tmp_path / f"{name}.geojson", driver="GeoJSON", engine="pyogrio")
    stations = layers["stations"]
    (tmp_path / "stations.csv").write_text(
        "id,name,lon,lat\n" + "".join(f"{i},{n},{p.x},{p.y}\n" for i, n, p in zip(
            stations["station_id"], stations["name"], stations.geometry, strict=True)))
    bset = load_boundaries(tmp_path, district_code="610104")
    assert len(bset.grids) == 6 and len(bset.stations) == 2
    assert list(bset.stations["station_id"]) == ["S1", "S2"]


def test_single_polygon_file_is_the_grid_layer_with_free_codes(tmp_path):
    frame = toy_layers()["grids"].assign(ref=[f"G-{i}" for i in range(6)])
    path = tmp_path / "grids_only.geojson"
    frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    bset = load_boundaries(path, code_field="ref", name_field="name")
    assert not bset.hierarchical
    assert sorted(bset.grids["code"]) == [f"G-{i}" for i in range(6)]
    assert len(bset.streets) == len(bset.communities) == 0


def test_gcj02_must_be_declared_and_is_converted(tmp_path):
    path = write_toy_grids_in("gcj02", tmp_path / "gcj.geojson")
    bset = load_boundaries(path, crs="gcj02")
    original = toy_layers()["grids"].geometry.values[0]
    loaded = bset.grids.set_index("name").geometry["A1w"]
    assert shapely.hausdorff_distance(original, loaded) < 1e-8
    assert any("converted from gcj02" in n for n in bset.notes)


def test_projected_file_is_read_in_its_own_crs(tmp_path):
    frame = toy_layers()["grids"].to_crs("EPSG:32649")
    frame.to_file(tmp_path / "utm.gpkg", driver="GPKG", engine="pyogrio")
    bset = load_boundaries(tmp_path / "utm.gpkg")
    assert np.allclose(bset.grids.total_bounds, (108.90, 34.20, 108.94, 34.22), atol=1e-7)


def write_without_crs(frame, path):
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        frame.set_crs(None, allow_override=True).to_file(path, engine="pyogrio")


def test_file_without_crs_is_refused_unless_one_is_given(tmp_path):
    write_without_crs(toy_layers()["grids"].to_crs("EPSG:32649"), tmp_path / "noprj.shp")
    assert not (tmp_path / "noprj.prj").exists()
    with pytest.raises(CRSError, match="declares no coordinate system"):
        load_boundaries(tmp_path / "noprj.shp")
    bset = load_boundaries(tmp_path / "noprj.shp", crs="EPSG:32649")
    assert np.allclose(bset.grids.total_bounds, (108.90, 34.20, 108.94, 34.22), atol=1e-7)


def test_wrong_declared_crs_is_refused(tmp_path):
    frame = toy_layers()["grids"].to_crs("EPSG:32649")
    frame.to_file(tmp_path / "utm.gpkg", driver="GPKG", engine="pyogrio")
    with pytest.raises(CRSError, match="declares EPSG:32649 but EPSG:4326 was given"):
        load_boundaries(tmp_path / "utm.gpkg", crs="wgs84")
    with pytest.raises(CRSError, match="projected system"):
        load_boundaries(tmp_path / "utm.gpkg", crs="gcj02")
    write_without_crs(frame, tmp_path / "noprj.shp")
    with pytest.raises(CRSError, match="out of range"):
        load_boundaries(tmp_path / "noprj.shp", crs="wgs84")


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"not a geofile at all", "cannot read"),
])
def test_unreadable_sources_are_refused(tmp_path, content, message):
    path = tmp_path / "thing.geojson"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BoundaryError, match=message):
        load_boundaries(path)


def test_folder_without_grids_is_refused(tmp_path):
    toy_layers()["streets"].to_file(tmp_path / "streets.geojson", driver="GeoJSON")
    with pytest.raises(BoundaryError, match="no grids layer"):
        load_boundaries(tmp_path)


def test_wrong_geometry_type_is_refused(tmp_path):
    layers = toy_layers()
    layers["grids"] = gpd.GeoDataFrame({"name": ["p"]}, geometry=[shapely.Point(108.9, 34.2)],
                                       crs="EPSG:4326")
    with pytest.raises(BoundaryError, match="grids feature #1 has Point"):
        load_boundaries(write_gpkg(tmp_path / "t.gpkg", layers))


def test_station_csv_without_coordinates_is_refused(tmp_path, toy_gpkg):
    (tmp_path / "s.csv").write_text("name,where\nA,here\n")
    with pytest.raises(BoundaryError, match="longitude and latitude columns"):
        load_boundaries(toy_gpkg, stations=tmp_path / "s.csv")
    (tmp_path / "s.csv").write_text("name,lon,lat\nA,108.9,\n")
    with pytest.raises(BoundaryError, match="line 2"):
        load_boundaries(toy_gpkg, stations=tmp_path / "s.csv")


@pytest.mark.parametrize("option, field", [("code_field", "ref"), ("name_field", "title")])
def test_a_named_code_or_name_field_that_is_missing_is_refused(tmp_path, option, field):
    frame = toy_layers()["grids"].assign(ref=[f"G-{i}" for i in range(6)])
    path = tmp_path / "grids_only.geojson"
    frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    with pytest.raises(BoundaryError, match=f"no property '{field}x'") as info:
        load_boundaries(path, **{option: field + "x"})
    assert info.value.field == option
    assert "its properties are: name, ref" in str(info.value)


def test_a_named_field_must_be_in_every_polygon_layer(toy_gpkg):
    """In a GeoPackage the grids have no 'ref' either, but the streets come first."""
    with pytest.raises(BoundaryError, match="the streets layer has no property 'ref'"):
        load_boundaries(toy_gpkg, code_field="ref")


def _gcj02_grids_and_wgs84_stations(tmp_path):
    """The toy grids as a GCJ-02 file (as Amap draws them) and the stations as a WGS84 CSV."""
    stations = tmp_path / "stations.csv"
    stations.write_text("id,name,lon,lat\nS1,one,108.905,34.205\nS2,two,108.935,34.215\n")
    return write_toy_grids_in("gcj02", tmp_path / "grids_gcj.geojson"), stations


def test_a_stations_csv_is_wgs84_whatever_the_boundaries_crs(tmp_path):
    grids, stations = _gcj02_grids_and_wgs84_stations(tmp_path)
    bset = load_boundaries(grids, crs="gcj02", stations=stations)
    xy = shapely.get_coordinates(bset.stations.geometry.values)
    assert np.abs(xy - [(108.905, 34.205), (108.935, 34.215)]).max() < 1e-12
    assert not any("stations.csv: converted" in n for n in bset.notes)
    # Both grids and stations are back in WGS84: S1 is in the middle of grid A1w.
    a1w = bset.grids.set_index("name").geometry["A1w"]
    assert shapely.distance(shapely.centroid(a1w), bset.stations.geometry.values[0]) < 1e-8


def test_stations_crs_declares_the_stations_own_system(tmp_path):
    grids, _ = _gcj02_grids_and_wgs84_stations(tmp_path)
    x, y = (a.tolist() for a in from_wgs84([108.905, 108.935], [34.205, 34.215], "bd09"))
    (tmp_path / "bd.csv").write_text(f"id,lon,lat\nS1,{x[0]!r},{y[0]!r}\nS2,{x[1]!r},{y[1]!r}\n")
    bset = load_boundaries(grids, crs="gcj02", stations=tmp_path / "bd.csv", stations_crs="bd09")
    xy = shapely.get_coordinates(bset.stations.geometry.values)
    assert np.abs(xy - [(108.905, 34.205), (108.935, 34.215)]).max() < 1e-9
    assert "bd.csv: converted from bd09 to WGS84" in bset.notes


def test_a_stations_file_without_crs_names_the_stations_option(tmp_path, toy_gpkg):
    write_without_crs(toy_layers()["stations"].to_crs("EPSG:32649"), tmp_path / "st.shp")
    with pytest.raises(CRSError, match="name one with --stations-crs") as info:
        load_boundaries(toy_gpkg, stations=tmp_path / "st.shp")
    assert info.value.field == "stations_crs"
    bset = load_boundaries(toy_gpkg, stations=tmp_path / "st.shp", stations_crs="EPSG:32649")
    assert np.allclose(shapely.get_coordinates(bset.stations.geometry.values),
                       [(108.905, 34.205), (108.935, 34.215)], atol=1e-9)


def test_stations_crs_also_declares_a_stations_layer_inside_the_source(tmp_path):
    layers = toy_layers()
    layers["stations"] = layers["stations"].set_geometry(shapely.points(np.column_stack(
        from_wgs84([108.905, 108.935], [34.205, 34.215], "gcj02"))))
    path = write_gpkg(tmp_path / "t.gpkg", layers)
    bset = load_boundaries(path, stations_crs="gcj02")
    assert np.allclose(shapely.get_coordinates(bset.stations.geometry.values),
                       [(108.905, 34.205), (108.935, 34.215)], atol=1e-9)
    assert np.allclose(bset.grids.total_bounds, (108.90, 34.20, 108.94, 34.22), atol=1e-12)


def test_metric_crs_can_be_chosen_and_measures_the_same(toy_gpkg):
    utm = load_boundaries(toy_gpkg)
    gk = load_boundaries(toy_gpkg, metric_crs="EPSG:4545")
    assert gk.metric_crs.to_epsg() == 4545 and gk.summary()["metric_crs"] == "EPSG:4545"
    utm_areas, gk_areas = (shapely.area(b.metric("grids")) for b in (utm, gk))
    assert not np.array_equal(utm_areas, gk_areas)
    assert np.allclose(gk_areas, utm_areas, rtol=2e-4, atol=0)
    with pytest.raises(CRSError, match="not a projected system in metres"):
        load_boundaries(toy_gpkg, metric_crs="EPSG:4490")


@pytest.mark.parametrize("geojson", [
    '{"type": "FeatureCollection", "features": []}',
    '{"type": "Polygon", "coordinates": []}',
])
def test_a_source_without_grids_is_refused(tmp_path, geojson):
    path = tmp_path / "empty.geojson"
    path.write_text(geojson)
    for metric_crs in (None, "EPSG:4545"):
        with pytest.raises(BoundaryError, match="the grids layer has no features"):
            load_boundaries(path, metric_crs=metric_crs)
