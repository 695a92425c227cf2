"""OGC API – Features: what the query parameters accept (and refuse), which properties a layer
publishes, and the links between a document's JSON and HTML forms."""

import html
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import numpy as np
import pytest

from dispatch.checks import check_datetime
from geo.demo import default_source
from tests.conftest import write_gpkg
from tests.dispatch.helpers import inside, report

PUBLISHED = {"streets": {"code", "name"}, "communities": {"code", "name", "street_code"},
             "grids": {"code", "name", "community_code", "street_code", "households",
                       "gridworkers"},
             "stations": {"station_id", "name", "services"}}
LINK = re.compile(r'<a href="([^"]*)"\s+rel="([^"]*)"\s+type="([^"]*)"')


@pytest.fixture
def three_orders(service, demo):
    """Open orders in grids 100, 300 and 500."""
    return [service.submit_report(report(demo, i))["work_order_id"] for i in (100, 300, 500)]


def test_a_lowercase_t_and_z_are_rfc_3339():
    assert check_datetime("2000-01-01t08:00:00z", "since", UTC) == datetime(
        2000, 1, 1, 8, tzinfo=UTC) == check_datetime("2000-01-01T08:00:00Z", "since", UTC)


def test_layers_publish_their_listed_properties_only(service, client, tmp_path):
    """Columns a source adds (phones, say) stay out of the features."""
    layers = {name: gpd.read_file(default_source(), layer=name) for name in PUBLISHED}
    for frame in layers.values():
        frame["manager_phone"] = "13800000000"
    layers["grids"]["gridworker_phone"] = "13900000000"
    assert service.import_boundaries(write_gpkg(tmp_path / "phones.gpkg", layers),
                                     activate=True)["active"]
    for cid, published in PUBLISHED.items():
        page = client.get(f"/ogc/collections/{cid}/items?limit=10000")
        assert {frozenset(f["properties"]) for f in page.json["features"]} == {frozenset(published)}
        one = client.get(f"/ogc/collections/{cid}/items/{page.json['features'][0]['id']}")
        assert set(one.json["properties"]) == published
        shown = page.get_data(as_text=True) + one.get_data(as_text=True)
        assert "_phone" not in shown and "1380000" not in shown and "1390000" not in shown


@pytest.mark.parametrize("limit", ["10001", "99999999999999999999999"])
def test_a_limit_above_the_maximum_is_the_maximum(client, demo, limit):
    answer = client.get(f"/ogc/collections/grids/items?limit={limit}")
    assert answer.status_code == 200 and answer.json["numberReturned"] == len(demo.grids)
    assert "limit=10000" in next(link["href"] for link in answer.json["links"]
                                 if link["rel"] == "self")


@pytest.mark.parametrize("cid", ["grids", "orders"])
@pytest.mark.parametrize("box, everything", [
    ("-200,-90,200,90", True), ("-180,-90,180,90", True), ("108,30,0,109.5,40,10", True),
    ("108,30,-179,40", True), ("179,30,109.5,40", True), ("170,30,100,40", False),
    ("100,30,108,40", False),
])
def test_bbox_forms_alike_on_layers_and_orders(client, demo, three_orders, cid, box,
                                               everything):
    """Six numbers (z ignored), boxes across the antimeridian (either side matches) and
    longitudes beyond ±180 (held to ±180) mean the same on every collection."""
    total = {"grids": len(demo.grids), "orders": len(three_orders)}[cid]
    answer = client.get(f"/ogc/collections/{cid}/items?bbox={box}&limit=1000")
    assert answer.status_code == 200
    assert answer.json["numberMatched"] == (total if everything else 0)


# A bbox from 108.93 east round the Earth to 108.92 crosses 180° and holds the district but a
# strip: as two boxes, 108.93 to 180 (the district's east) and -180 to 108.92 (its west).
ROUND_THE_WORLD = "108.93,34.2,108.92,34.3"


@pytest.mark.parametrize("limit", [2, 3, 5])
def test_orders_page_across_the_two_boxes_of_an_antimeridian_bbox(client, service, demo, clock,
                                                                  limit):
    """Pages run through the first box's orders, then the second's, newest first in each; a
    page may end one box and start the other. Every order is on one page, none twice, and the
    next and prev links step by ``limit`` and keep the bbox."""
    lons = demo.grids.geometry.representative_point().x.to_numpy()
    east, west = np.flatnonzero(lons > 108.933), np.flatnonzero(lons < 108.917)
    gap = np.flatnonzero((lons > 108.922) & (lons < 108.928))[:1]  # matched by neither box
    # Five orders in the east and four in the west, made in turn: the boxes order them, not time.
    turns = np.ravel(np.column_stack([east[::20][:5], west[::20][:5]]))[:9]
    ids = {}
    for grid in map(int, [*turns, *gap]):
        ids[grid] = service.submit_report(report(demo, grid))["work_order_id"]
        clock.advance(minutes=1)
    in_east = [ids[g] for g in ids if g in east][::-1]  # newest first
    in_west = [ids[g] for g in ids if g in west][::-1]
    assert (len(in_east), len(in_west), len(ids)) == (5, 4, 10)
    href, pages = f"/ogc/collections/orders/items?bbox={ROUND_THE_WORLD}&limit={limit}", []
    while href:
        offset = limit * len(pages)
        page = client.get(href).json
        pages.append([f["id"] for f in page["features"]])
        assert page["numberMatched"] == 9
        assert page["numberReturned"] == len(pages[-1]) == min(limit, 9 - offset)
        links = {link["rel"]: parse_qs(urlsplit(link["href"]).query) for link in page["links"]}
        assert links.get("prev") == (None if offset == 0 else _query(max(offset - limit, 0),
                                                                       limit))
        assert links.get("next") == (_query(offset + limit, limit) if offset + limit < 9
                                     else None)
        href = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert [i for page in pages for i in page] == in_east + in_west
    spanning = [p for p in pages if set(p) & set(in_east) and set(p) & set(in_west)]
    assert len(spanning) == (1 if 5 % limit else 0)


def _query(offset, limit) -> dict:
    """The query string of a link to the page at ``offset`` of ROUND_THE_WORLD's orders."""
    return {"bbox": [ROUND_THE_WORLD], "offset": [str(offset)], "limit": [str(limit)]}


@pytest.mark.parametrize("cid", ["grids", "orders"])
def test_a_zero_area_bbox_matches_what_it_touches(client, demo, three_orders, cid):
    lon, lat = inside(demo, 100)
    answer = client.get(f"/ogc/collections/{cid}/items?bbox={lon},{lat},{lon},{lat}")
    ids = {f["id"] for f in answer.json["features"]}
    assert answer.status_code == 200
    assert ids == ({demo.grids.iloc[100]["code"]} if cid == "grids" else {three_orders[0]})


@pytest.mark.parametrize("cid", ["grids", "orders"])
@pytest.mark.parametrize("box", ["-200,-100,200,100", "0,91,1,92", "nan,0,1,1", "0,0,inf,1",
                                 "0,2,1,1", "1,2,3,4,5", "0,0,0,1,91,1", "0,0,nan,1,1,1"])
def test_bad_bboxes_are_refused_alike(client, cid, box):
    answer = client.get(f"/ogc/collections/{cid}/items?bbox={box}")
    assert answer.status_code == 400 and answer.json["error"]["field"] == "bbox"


@pytest.mark.parametrize("path, unknown", [
    ("/ogc/?limit=5", "limit"), ("/ogc/conformance?bbox=1,2,3,4", "bbox"),
    ("/ogc/collections?offset=1", "offset"), ("/ogc/collections/grids?datetime=..", "datetime"),
    ("/ogc/collections/grids/items?sortby=name", "sortby"),
    ("/ogc/collections/orders/items?f=json&state=dispatched", "state"),
    ("/ogc/collections/streets/items/610104001?limit=1", "limit"),
])
def test_unknown_parameters_are_refused(client, path, unknown):
    answer = client.get(path)
    assert answer.status_code == 400 and answer.json["error"]["field"] == unknown


DOCUMENTS = [("/ogc/", "application/json"), ("/ogc/conformance", "application/json"),
             ("/ogc/collections", "application/json"),
             ("/ogc/collections/grids", "application/json"),
             ("/ogc/collections/grids/items?limit=2&offset=2", "application/geo+json"),
             ("/ogc/collections/streets/items/610104001", "application/geo+json")]


@pytest.mark.parametrize("path, kind", DOCUMENTS)
def test_json_documents_link_their_html_form(client, path, kind):
    links = client.get(path).json["links"]
    own = {link["rel"]: link for link in links if link["rel"] in ("self", "alternate")}
    assert own["self"]["type"] == kind and "f=html" not in own["self"]["href"]
    assert own["alternate"]["type"] == "text/html" and "f=html" in own["alternate"]["href"]
    assert all(link["type"] == kind for link in links if link["rel"] in ("next", "prev"))


@pytest.mark.parametrize("path, kind", DOCUMENTS)
def test_html_pages_link_themselves_as_html_and_their_json_form(client, path, kind):
    page = client.get(path + ("&" if "?" in path else "?") + "f=html")
    assert page.mimetype == "text/html"
    links = {rel: (html.unescape(href), type_)
             for href, rel, type_ in LINK.findall(page.get_data(as_text=True))}
    for rel in ("self", "next", "prev"):
        if rel in links or rel == "self":
            assert links[rel][1] == "text/html" and "f=html" in links[rel][0], rel
    assert links["alternate"][1] == kind and "f=html" not in links["alternate"][0]


def test_the_openapi_document_describes_the_items_parameters(client):
    operation = client.get("/openapi.json").json["paths"]["/ogc/collections/{cid}/items"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10000,
                                         "default": 10}
    assert params["bbox"]["schema"]["type"] == "array"
    assert params["bbox"]["schema"]["items"] == {"type": "number"}
    assert [(o["minItems"], o["maxItems"]) for o in params["bbox"]["schema"]["oneOf"]] == [
        (4, 4), (6, 6)]
    assert (params["bbox"]["style"], params["bbox"]["explode"]) == ("form", False)
    assert params["datetime"]["schema"] == {"type": "string"}
