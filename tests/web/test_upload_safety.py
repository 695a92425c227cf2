"""Uploads that try to make the server read its own files, fetch URLs or run out of memory: a
planner's layer file is read only as the format its suffix names, and a photo declaring a huge
size is a 400 naming the photo on every route that takes one."""

import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from dispatch import schema as t
from dispatch.services import Actor
from geo.errors import BoundaryError
from geo.sources import read_source
from tests.dispatch.helpers import inside, report
from tests.dispatch.test_photo_safety import HUGE, huge_png
from tests.web.test_planner import _draft, _rows

API = "/api/v1/boundary-versions"
PLANNER = Actor("规划员", "planner")
ADMIN = Actor("admin", "admin")


def _vrt(source: str) -> bytes:
    """An OGR VRT with a small grids layer and a stations layer whose station name is the
    first line of ``source`` (any GDAL data source name: a file, a /vsicurl/ URL)."""
    square = json.dumps({"type": "Polygon", "coordinates": [[[108.9, 34.2], [108.91, 34.2],
                                                             [108.91, 34.21], [108.9, 34.2]]]})
    return (f'<OGRVRTDataSource><OGRVRTLayer name="grids"><SrcDataSource>{square}'
            "</SrcDataSource><SrcLayer>OGRGeoJSON</SrcLayer></OGRVRTLayer>"
            f'<OGRVRTLayer name="stations"><SrcDataSource>{source}'
            '</SrcDataSource><OpenOptions><OOI key="HEADERS">NO</OOI></OpenOptions>'
            "<SrcSQL>SELECT 'ST1' AS station_id, field_1 AS name, 'POINT (108.93 34.26)' AS wkt "
            f"FROM {Path(source).stem}</SrcSQL><GeometryType>wkbPoint</GeometryType>"
            '<LayerSRS>EPSG:4326</LayerSRS><GeometryField encoding="WKT" field="wkt"/>'
            "</OGRVRTLayer></OGRVRTDataSource>").encode()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _upload(client, headers, version, layer, data: bytes, name: str):
    return client.post(f"{API}/{version}/layers/{layer}", headers=headers,
                       data={"file": (io.BytesIO(data), name)})


@pytest.mark.parametrize("name", ["stations.json", "stations.geojson", "stations.gpkg",
                                  "stations.fgb", "stations.shp"])
def test_a_vrt_uploaded_under_a_layer_suffix_never_reads_the_secret_key(
        client, app, people, service, tmp_path, name):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    secret = tmp_path / "instance" / "secret_key"  # where the app keeps its session key
    key = secret.read_text().strip()
    before = (_rows(service, t.boundary_features), _rows(service, t.boundary_edits))
    answer = _upload(client, headers, version, "stations", _vrt(f"CSV:{secret}"), name)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["field"] == "file"
    assert name in answer.json["error"]["message"] or "must be one of" in answer.json[
        "error"]["message"]  # .shp: not an upload suffix at all
    assert key not in answer.get_data(as_text=True)
    assert key not in set(service.boundaries(version).stations["name"])
    assert (_rows(service, t.boundary_features), _rows(service, t.boundary_edits)) == before


@pytest.fixture
def listener():
    """A local HTTP server counting the requests it gets: its URL and the list of paths."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"leak\n")

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def test_nothing_in_an_uploaded_layer_makes_the_server_fetch_a_url(client, people, listener):
    url, hits = listener
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    vrt = _upload(client, headers, version, "stations", _vrt(f"/vsicurl/{url}/vrt.csv"),
                  "stations.json")
    assert vrt.status_code == 400 and vrt.json["error"]["field"] == "file"
    linked = {"type": "FeatureCollection",
              "crs": {"type": "link", "properties": {"href": f"{url}/crs.wkt", "type": "ogcwkt"}},
              "features": [{"type": "Feature", "properties": {"station_id": "ST1", "name": "x"},
                            "geometry": {"type": "Point", "coordinates": [108.93, 34.26]}}]}
    answer = _upload(client, headers, version, "stations", json.dumps(linked).encode(),
                     "stations.geojson")
    assert answer.status_code == 400, answer.json  # no CRS it may read: the caller names one
    assert answer.json["error"]["field"] == "crs"
    assert hits == []


@pytest.mark.parametrize("data, message", [
    (b"[1, 2, 3]", "not GeoJSON"),
    (b'{"type": "Topology", "objects": {}}', "not GeoJSON"),
    (b'{"type": "FeatureCollection", "features": {}}', "features are not a list"),
    (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},'
     b' "geometry": {"type": "Polygon", "coordinates": "x"}}]}', "feature #1"),
])
def test_json_that_is_not_geojson_is_refused_naming_the_file(client, people, data, message):
    headers = people["planner"]["headers"]
    answer = _upload(client, headers, _draft(client, headers), "grids", data, "mine.geojson")
    assert answer.status_code == 400
    assert answer.json["error"]["field"] == "file"
    assert message in answer.json["error"]["message"]
    assert "mine.geojson" in answer.json["error"]["message"]


def _grids_layer(demo):
    """The demo grids with one community's grids merged into one new grid."""
    community = demo.communities["code"].iloc[3]
    keep = demo.grids[demo.grids["community_code"] != community]
    whole = demo.communities[demo.communities["code"] == community]
    return community, gpd.GeoDataFrame(
        {"code": [*keep["code"], None], "name": [*keep["name"], "合并网格"],
         "community_code": [*keep["community_code"], community]},
        geometry=[*keep.geometry, *whole.geometry], crs="EPSG:4326")


@pytest.mark.parametrize("suffix, driver", [(".geojson", "GeoJSON"), (".json", "GeoJSON"),
                                            (".gpkg", "GPKG"), (".fgb", "FlatGeobuf")])
def test_each_upload_format_still_replaces_a_layer(client, people, service, demo, tmp_path,
                                                   suffix, driver):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    community, layer = _grids_layer(demo)
    path = tmp_path / f"grids{suffix}"
    layer.to_file(path, driver=driver, engine="pyogrio")
    answer = _upload(client, headers, version, "grids", path.read_bytes(), path.name)
    assert answer.status_code == 200, answer.json
    assert answer.json["summary"]["grids"] == len(layer)
    assert f"{community}001" in set(service.boundaries(version).grids["code"])


def _shapefile_parts(frame, folder: Path, stem: str) -> dict[str, bytes]:
    frame.to_file(folder / f"{stem}.shp", engine="pyogrio")
    return {p.name: p.read_bytes() for p in sorted(folder.glob(f"{stem}.*"))}


def test_a_zipped_shapefile_still_replaces_a_layer(service, demo, tmp_path):
    version = service.start_draft(1, PLANNER)["version"]
    community, layer = _grids_layer(demo)
    (tmp_path / "parts").mkdir()
    layer = layer.rename(columns={"community_code": "community"})  # ten letters at most
    parts = _shapefile_parts(layer, tmp_path / "parts", "grids")
    assert {".shp", ".shx", ".dbf", ".prj"} <= {Path(n).suffix for n in parts}
    archive = tmp_path / "grids.zip"
    archive.write_bytes(_zip({**parts, "grids.shp.xml": b"<metadata/>"}))
    done = service.replace_draft_layer(version, "grids", archive, PLANNER)
    assert done["summary"]["grids"] == len(layer)
    assert f"{community}001" in set(service.boundaries(version).grids["code"])


def test_a_vrt_in_a_zip_or_named_as_a_shapefile_is_refused(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("SECRET-7f3a\n")
    vrt = _vrt(f"CSV:{secret}")
    cases = {"in.zip": _zip({"stations.vrt": vrt}),
             "shp.zip": _zip({"stations.shp": vrt, "stations.shx": vrt, "stations.dbf": vrt}),
             "zip.shp": _zip({"stations.vrt": vrt}), "vrt.shp": vrt}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(BoundaryError) as info:
            read_source(tmp_path / name)
        assert "cannot read" in str(info.value) and "SECRET" not in str(info.value), name
    folder = tmp_path / "folder"
    folder.mkdir()
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.box(108.9, 34.2, 108.91, 34.21)],
                     crs="EPSG:4326").to_file(folder / "grids.geojson", engine="pyogrio")
    (folder / "stations.shp").write_bytes(_zip({"stations.vrt": vrt}))
    with pytest.raises(BoundaryError, match="stations.shp is not a shapefile .shp"):
        read_source(folder)


@pytest.mark.parametrize("members, message", [
    ({"../grids.shp": b""}, "not a plain file name"),
    ({"sub/grids.shp": b""}, "not a plain file name"),
    ({"grids.shp": b"", "grids.vrt": b""}, "not a shapefile part"),
    ({f"g{i}.prj": b"" for i in range(65)}, "at most 64"),
    ({"grids.dbf": b"\x03"}, "holds no .shp"),
])
def test_a_zip_holding_anything_but_shapefile_parts_is_refused(tmp_path, members, message):
    path = tmp_path / "layers.zip"
    path.write_bytes(_zip(members))
    with pytest.raises(BoundaryError, match=message):
        read_source(path)


def test_a_zip_unpacking_past_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("geo.sources.MAX_UNZIPPED_BYTES", 100_000)
    path = tmp_path / "bomb.zip"
    path.write_bytes(_zip({"grids.shp": (9994).to_bytes(4, "big") + bytes(200_000)}))
    assert path.stat().st_size < 2_000
    with pytest.raises(BoundaryError, match="unpacks to 200,004 bytes; at most 100,000"):
        read_source(path)


@pytest.mark.parametrize("size", HUGE, ids=["bomb-error", "bomb-warning"])
def test_a_photo_declaring_huge_dimensions_is_a_400_on_every_route(client, people, service,
                                                                   demo, size):
    data = huge_png(*size)
    assert len(data) < 1000
    fields = {k: str(v) for k, v in report(demo, 100).items()}
    native = client.post("/api/v1/reports", headers=people["reporter"]["headers"],
                         content_type="multipart/form-data",
                         data={**fields, "photo": (io.BytesIO(data), "p.png")})
    assert native.status_code == 400, native.json
    assert native.json["error"]["field"] == "photo"
    assert f"{size[0]}x{size[1]} pixels" in native.json["error"]["message"]

    lon, lat = inside(demo, 100)
    open311 = client.post("/open311/v2/requests.json", content_type="multipart/form-data", data={
        "api_key": people["reporter"]["token"], "service_code": "road_collapse",
        "lat": str(lat), "long": str(lon), "description": "路面塌陷", "phone": "13912345678",
        "media": (io.BytesIO(data), "p.png")})
    assert open311.status_code == 400, open311.json
    assert open311.json[0]["code"] == 400 and "pixels" in open311.json[0]["description"]

    order_id = service.submit_report(report(demo, 100))["work_order_id"]
    for step in ("accept", "start"):
        service.act(order_id, step, ADMIN)
    resolved = client.post(f"/api/v1/orders/{order_id}/resolve",
                           headers=people["admin"]["headers"],
                           content_type="multipart/form-data",
                           data={"feedback": "修好了", "photo": (io.BytesIO(data), "p.png")})
    assert resolved.status_code == 400, resolved.json
    assert resolved.json["error"]["field"] == "photo"
    assert service.order(order_id)["state"] == "in_progress"
