"""OGC API – Features read by two real clients over HTTP: OWSLib and GDAL's OAPIF driver."""

import json
import shutil
import subprocess
from datetime import timedelta

import pytest
from owslib.ogcapi.features import Features

from tests.dispatch.helpers import inside, report

COLLECTIONS = {"streets", "communities", "grids", "stations", "orders"}


@pytest.fixture
def orders(service, demo):
    """Twelve open orders and one closed one."""
    ids = [service.submit_report(report(demo, 40 * i + 5, category="garbage"))["work_order_id"]
           for i in range(13)]
    from dispatch.services import Actor
    service.act(ids[-1], "reject", Actor("d", "dispatcher"), reason="不属实")
    return ids


def test_owslib_reads_every_collection_and_pages(live, demo, orders):
    api = Features(f"{live}/ogc/")
    assert COLLECTIONS <= {c["id"] for c in api.collections()["collections"]}
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in (
        api.conformance()["conformsTo"])
    first = api.collection_items("grids", limit=100)
    assert first["numberMatched"] == len(demo.grids) and first["numberReturned"] == 100
    assert any(link["rel"] == "next" for link in first["links"])
    seen = {f["id"] for f in first["features"]}
    second = api.collection_items("grids", limit=100, offset=100)
    assert not seen & {f["id"] for f in second["features"]}
    grid = first["features"][0]
    assert grid["properties"]["gridworkers"] and "phone" not in json.dumps(grid["properties"])
    open_orders = api.collection_items("orders", limit=5)
    assert open_orders["numberMatched"] == 12 and open_orders["numberReturned"] == 5
    assert "reports" not in open_orders["features"][0]["properties"]
    for cid in ("streets", "communities", "stations"):
        assert api.collection_items(cid, limit=500)["numberReturned"] == {
            "streets": 9, "communities": len(demo.communities), "stations": 108}[cid]


def test_owslib_filters_by_bbox(live, demo, orders):
    api = Features(f"{live}/ogc/")
    lon, lat = inside(demo, 100)
    box = [lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002]
    grids = api.collection_items("grids", bbox=box, limit=1000)
    assert demo.grids.iloc[100]["code"] in {f["id"] for f in grids["features"]}
    assert 1 <= grids["numberMatched"] < 20
    item = api.collection_item("grids", demo.grids.iloc[100]["code"])
    assert item["properties"]["community_code"] == demo.grids.iloc[100]["community_code"]


def test_items_are_geojson_by_default_and_html_on_request(client):
    answer = client.get("/ogc/collections/stations/items")
    assert answer.mimetype == "application/geo+json" and answer.json["numberReturned"] == 10
    page = client.get("/ogc/collections?f=html")
    assert page.mimetype == "text/html" and "grids" in page.get_data(as_text=True)


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset"),
    ("bbox=1,2,3", "bbox"), ("bbox=a,b,c,d", "bbox"), ("f=pdf", "f"),
])
def test_bad_item_queries(client, query, field):
    answer = client.get(f"/ogc/collections/grids/items?{query}")
    assert answer.status_code == 400 and answer.json["error"]["field"] == field


def test_orders_filter_by_datetime(client, orders, clock):
    day = clock.now.date().isoformat()
    inside_window = client.get(f"/ogc/collections/orders/items?datetime={day}T00:00:00Z/..")
    assert inside_window.json["numberMatched"] == 12
    before = client.get("/ogc/collections/orders/items?datetime=../2020-01-01T00:00:00Z")
    assert before.json["numberMatched"] == 0
    assert client.get(f"/ogc/collections/orders/items/{orders[-1]}").status_code == 404
    assert client.get("/ogc/collections/rivers/items").status_code == 404


def test_an_order_is_named_by_its_ascii_digits_alone(client, orders):
    fid = str(client.get("/ogc/collections/orders/items?limit=1").json["features"][0]["id"])
    assert client.get(f"/ogc/collections/orders/items/{fid}").status_code == 200
    arabic = "".join(chr(0x660 + int(d)) for d in fid)
    for other in (f"0_{fid}", arabic, f"{fid}.0", "True"):
        assert client.get(f"/ogc/collections/orders/items/{other}").status_code == 404, other


@pytest.mark.parametrize("window, matched", [
    ("0001-01-01T00:00:00%2B14:00/..", 12), ("../9999-12-31T23:59:59.999999Z", 12),
    ("9999-12-31T23:59:59.999999Z", 0), ("9999-12-31T23:59:59-12:00/..", 0),
])
def test_orders_by_datetime_at_the_ends_of_the_calendar(client, orders, window, matched):
    answer = client.get(f"/ogc/collections/orders/items?datetime={window}")
    assert answer.status_code == 200 and answer.json["numberMatched"] == matched
    wrong = client.get("/ogc/collections/orders/items?datetime=yesterday")
    assert wrong.status_code == 400 and wrong.json["error"]["field"] == "datetime"


@pytest.mark.parametrize("window", ["..", "", "/", "../..", "/..", "a/b/c", "yesterday"])
@pytest.mark.parametrize("cid", ["orders", "grids"])
def test_a_datetime_with_no_instant_is_refused(client, orders, cid, window):
    """Both ends open, or nothing at all, is no time; a collection without time checks it
    too."""
    answer = client.get(f"/ogc/collections/{cid}/items?datetime={window}")
    assert answer.status_code == 400 and answer.json["error"]["field"] == "datetime"


def test_an_interval_includes_its_end(client, orders, clock):
    """Orders created at T are matched by an interval ending at T, written in either case."""
    at = clock.now.strftime("%Y-%m-%dT%H:%M:%S")
    just_before = (clock.now - timedelta(microseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for window, matched in [(f"../{at}Z", 12), (f"2020-01-01T00:00:00Z/{at}Z", 12),
                            (f"{at}Z", 12), (f"{at.replace('T', 't')}z", 12),
                            (f"/{at}Z", 12), (f"{at}Z/", 12), (f"../{just_before}", 0),
                            (just_before, 0)]:
        answer = client.get(f"/ogc/collections/orders/items?datetime={window}")
        assert answer.status_code == 200 and answer.json["numberMatched"] == matched, window


def test_gdal_reads_every_collection_and_pages(live, demo, orders):
    assert shutil.which("ogrinfo"), "GDAL's ogrinfo is missing: scripts/test.sh installs gdal-bin"
    source = f"OAPIF:{live}/ogc/"
    listing = subprocess.run(["ogrinfo", "-ro", "-q", source], capture_output=True, text=True,
                             timeout=120, check=True).stdout
    for cid in COLLECTIONS:
        assert cid in listing
    summary = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-oo", "PAGE_SIZE=100", source, "grids"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert f"Feature Count: {len(demo.grids)}" in summary
    counted = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", "-oo", "PAGE_SIZE=100", source, "grids"],
        capture_output=True, text=True, timeout=300, check=True).stdout
    assert len(json.loads(counted)["features"]) == len(demo.grids)  # read across six pages
    lon, lat = inside(demo, 100)
    boxed = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", "-spat", str(lon - 0.002),
         str(lat - 0.002), str(lon + 0.002), str(lat + 0.002), source, "grids"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    codes = {f["properties"]["code"] for f in json.loads(boxed)["features"]}
    assert demo.grids.iloc[100]["code"] in codes and len(codes) < 20
