"""Uploads that try to make the server read its own files, fetch URLs or run out of memory: a
planner's layer file is read only as the format its suffix names (a zipped shapefile only after
its listing is checked), and a photo declaring a huge size is a 400 naming the photo on every
route that takes one."""

import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import select

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


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _upload(client, headers, version, layer, data: bytes, name: str):
    return client.post(f"{API}/{version}/layers/{layer}", headers=headers,
                       data={"file": (io.BytesIO(data), name)})


@pytest.mark.parametrize("name", ["stations.json", "stations.geojson", "stations.gpkg",
                                  "stations.fgb", "stations.shp", "stations.zip"])
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


@pytest.mark.parametrize("name, given", [("grids.shp", ".shp"), ("grids.csv", ".csv"),
                                         ("grids", "a file without a suffix")])
def test_an_upload_of_another_kind_is_refused_naming_the_kinds_taken(client, people, name,
                                                                       given):
    """The planner takes what geo.sources reads as one file, less a bare .shp (its .shx and
    .dbf cannot come with it), and says which kinds those are."""
    headers = people["planner"]["headers"]
    answer = _upload(client, headers, _draft(client, headers), "grids", b"", name)
    assert answer.status_code == 400 and answer.json["error"]["field"] == "file"
    assert answer.json["error"]["message"] == (
        f"a layer file must be one of .geojson, .json, .gpkg, .fgb, .zip, not {given}")


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


def _merged(demo, community) -> str:
    """The code the merged grid of ``community`` gets: the next after its grids' codes."""
    last = max(int(c[-3:]) for c in demo.grids["code"] if c.startswith(community))
    return f"{community}{last + 1:03d}"


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
    assert _merged(demo, community) in set(service.boundaries(version).grids["code"])


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
    assert _merged(demo, community) in set(service.boundaries(version).grids["code"])


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
    ({"grids.shp": b"", "grids.dbf": b""}, "grids.shp comes without grids.shx;"),
    ({"grids.shp": b"", "grids.SHX": b""}, "grids.shp comes without grids.dbf;"),
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


def _stations_layer(demo):
    """The demo stations less the first, plus one new station."""
    keep = demo.stations.iloc[1:]
    return gpd.GeoDataFrame(
        {"station_id": [*keep["station_id"], "ST900"], "name": [*keep["name"], "新驿站"],
         "services": [*keep["services"], "drinking_water"]},
        geometry=[*keep.geometry, shapely.Point(108.92, 34.26)], crs="EPSG:4326")


def _stored(service, version) -> list[tuple]:
    """Every stored feature of a version: (layer, code, name, parent, properties, geometry)."""
    with service.db.read() as uow:
        rows = uow.execute(select(t.boundary_features).where(
            t.boundary_features.c.version_id == version)).all()
    return sorted((r.layer, r.code, r.name, r.parent_code, json.dumps(r.properties,
                   sort_keys=True, ensure_ascii=False), shapely.from_wkb(r.geometry))
                  for r in rows)


def _same_features(one: list[tuple], other: list[tuple]) -> bool:
    """Whether two versions store the same features, geometries alike within a millimetre."""
    return len(one) == len(other) and all(
        a[:-1] == b[:-1] and shapely.equals_exact(a[-1], b[-1], tolerance=1e-8)
        for a, b in zip(one, other, strict=True))


@pytest.mark.parametrize("layer, crs", [("grids", "EPSG:4326"), ("grids", "EPSG:4545"),
                                        ("stations", "EPSG:4326")])
def test_a_zipped_shapefile_replaces_a_layer_as_the_same_geojson_does(
        client, people, service, demo, tmp_path, layer, crs):
    headers = people["planner"]["headers"]
    if layer == "grids":  # dBASE field names have ten letters at most
        frame = _grids_layer(demo)[1].rename(columns={"community_code": "community"})
    else:
        frame = _stations_layer(demo)
    frame.to_file(tmp_path / "same.geojson", driver="GeoJSON", engine="pyogrio")
    # The zip's only shapefile is the layer, whatever its name; EPSG:4545 is CGCS2000's
    # Gauss-Kruger zone for Xi'an, declared by the .prj.
    parts = _shapefile_parts(frame.to_crs(crs), tmp_path, "外业导出")
    assert "外业导出.prj" in parts
    by_geojson, by_zip = _draft(client, headers), _draft(client, headers)
    geojson = _upload(client, headers, by_geojson, layer, (tmp_path / "same.geojson").read_bytes(),
                      "same.geojson")
    zipped = _upload(client, headers, by_zip, layer, _zip(parts), "外业.ZIP")
    assert geojson.status_code == 200, geojson.json
    assert zipped.status_code == 200, zipped.json
    assert zipped.json["summary"] == geojson.json["summary"]
    assert zipped.json["summary"][layer] == len(frame)
    stored = _stored(service, by_zip)
    assert _same_features(stored, _stored(service, by_geojson))
    assert not _same_features(stored, _stored(service, 1))  # the layer did change


def test_a_zip_of_several_shapefiles_gives_the_one_named_after_the_layer(
        client, people, service, demo, tmp_path):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    community, layer = _grids_layer(demo)
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = _shapefile_parts(demo.grids[["code", "name", "geometry"]], tmp_path / "old", "old")
    new = _shapefile_parts(layer.rename(columns={"community_code": "community"}),
                           tmp_path / "new", "Grids")
    answer = _upload(client, headers, version, "grids", _zip({**old, **new}), "two.zip")
    assert answer.status_code == 200, answer.json
    assert answer.json["summary"]["grids"] == len(layer)
    assert _merged(demo, community) in set(service.boundaries(version).grids["code"])


def _bad_crc(parts: dict[str, bytes]) -> bytes:
    """A zip of ``parts`` whose .dbf is damaged after its first bytes (its checksum fails)."""
    data = bytearray(_zip(parts, zipfile.ZIP_STORED))
    data[data.find(parts["grids.dbf"]) + len(parts["grids.dbf"]) - 1] ^= 0xFF
    return bytes(data)


def _without(parts: dict[str, bytes], suffix: str) -> dict[str, bytes]:
    return {name: data for name, data in parts.items() if not name.endswith(suffix)}


BAD_ZIPS = {  # how to spoil the parts of grids.shp, and what the answer must say
    "not a zip": (lambda parts: b"grids.shp, honest", "not a readable zip file"),
    "truncated": (lambda parts: _zip(parts)[:-300], "not a readable zip file"),
    "bad checksum": (_bad_crc, "not a readable zip file"),
    "empty": (lambda parts: _zip({}), "holds no .shp file"),
    "vrt member": (lambda parts: _zip({**parts, "grids.vrt": b"<OGRVRTDataSource/>"}),
                   "member 'grids.vrt' is not a shapefile part"),
    "py member": (lambda parts: _zip({**parts, "setup.py": b"import os"}),
                  "member 'setup.py' is not a shapefile part"),
    "path traversal": (lambda parts: _zip({**parts, "../x.shp": parts["grids.shp"]}),
                       "member '../x.shp' is not a plain file name"),
    "absolute path": (lambda parts: _zip({"/tmp/grids.shp": parts["grids.shp"]}),
                      "is not a plain file name"),
    "wrong .shp signature": (lambda parts: _zip({**parts, "grids.shp": _vrt("/etc/passwd")}),
                             "grids.shp is not a shapefile .shp"),
    "wrong .dbf signature": (lambda parts: _zip({**parts, "grids.dbf": b"<x/>"}),
                             "grids.dbf is not a dBASE table"),
    "too many members": (lambda parts: _zip({**parts, **{f"g{i}.prj": b"" for i in range(60)}}),
                         "it holds 65 files; a zipped shapefile may hold at most 64"),
    "no .shp": (lambda parts: _zip(_without(parts, ".shp")), "holds no .shp file"),
    "no .shx": (lambda parts: _zip(_without(parts, ".shx")), "grids.shp comes without grids.shx"),
    "no .dbf": (lambda parts: _zip(_without(parts, ".dbf")), "grids.shp comes without grids.dbf"),
    "several shapefiles": (lambda parts: _zip({**{f"a{n[5:]}": d for n, d in parts.items()},
                                               **{f"b{n[5:]}": d for n, d in parts.items()}}),
                           "several shapefiles (a.shp, b.shp) and none is named grids.shp"),
}


@pytest.mark.parametrize("case", BAD_ZIPS)
def test_a_bad_zip_is_a_400_naming_the_upload_and_changes_nothing(client, people, service, demo,
                                                                  tmp_path, case):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    spoil, message = BAD_ZIPS[case]
    parts = _shapefile_parts(_grids_layer(demo)[1].rename(
        columns={"community_code": "community"}), tmp_path, "grids")
    before = _stored(service, version), service.version_info(version)["revision"]
    answer = _upload(client, headers, version, "grids", spoil(parts), "外业 grids.zip")
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["field"] == "file"
    assert message in answer.json["error"]["message"]
    assert answer.json["error"]["message"].startswith("cannot read 外业 grids.zip: ")
    assert not any(inner in answer.json["error"]["message"]  # the server's own names
                   for inner in ("upload.zip", "gridline-zip-", "/tmp/tmp"))
    assert (_stored(service, version), service.version_info(version)["revision"]) == before


def test_a_zipped_shapefile_without_prj_is_a_400_asking_for_its_crs(client, people, service,
                                                                    demo, tmp_path):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    community, layer = _grids_layer(demo)
    parts = _without(_shapefile_parts(layer.rename(columns={"community_code": "community"}),
                                      tmp_path, "grids"), ".prj")
    before = _stored(service, version)
    answer = _upload(client, headers, version, "grids", _zip(parts), "noprj.zip")
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["field"] == "crs"
    assert "noprj.zip/grids.shp declares no coordinate system" in answer.json["error"]["message"]
    assert _stored(service, version) == before
    named = client.post(f"{API}/{version}/layers/grids", headers=headers, data={
        "file": (io.BytesIO(_zip(parts)), "noprj.zip"), "crs": "wgs84"})
    assert named.status_code == 200, named.json
    assert _merged(demo, community) in set(service.boundaries(version).grids["code"])


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
