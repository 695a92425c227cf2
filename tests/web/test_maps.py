"""The map pages: live map, hotspots, coverage and workload — served, filtered, translated,
offline, and driven in a real browser."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from weakref import WeakKeyDictionary

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.roster import seed_report_history
from dispatch.services import Actor
from geo.coverage import station_coverage
from geo.crs import from_wgs84
from geo.errors import InputError
from geo.hexbins import hexbin
from tests.dispatch.helpers import report
from tests.web.conftest import wait_until
from web import create_app, mappages
from web.maps import display_geometries

DISPATCHER = Actor("王调度", "dispatcher")
HUNDRED_THOUSAND = 100_000


def _feed(client, **args):
    answer = client.get("/map/live/orders.geojson", query_string=args)
    assert answer.status_code == 200, answer.json
    assert answer.mimetype == "application/geo+json"
    return answer.json


def _map_name(page) -> str:
    return page.eval_on_selector(".folium-map", "element => element.id")


def _count_layers(page, kind: str) -> int:
    """How many Leaflet layers on the page's map are grid polygons or order markers."""
    return page.evaluate("""([name, kind]) => {
        let n = 0;
        window[name].eachLayer(layer => {
            const p = layer.feature && layer.feature.properties;
            if (!p) return;
            if (kind === "grid" && p.code && layer instanceof L.Polygon) n++;
            if (kind === "order" && p.id !== undefined && layer instanceof L.CircleMarker) n++;
        });
        return n;
    }""", [_map_name(page), kind])


# --- live map -----------------------------------------------------------------------------------


def test_live_map_draws_grids_and_orders_and_shows_new_reports_without_reloading(
        service, demo, live, page, http):
    for i, category in enumerate(["garbage", "noise", "road_collapse"]):
        service.submit_report(report(demo, 50 + 150 * i, category=category))
    page.goto(f"{live}/map/live?lang=en")
    wait_until(page, "Number(document.body.dataset.refreshes || 0) >= 1")
    assert _count_layers(page, "grid") == len(demo.grids)
    assert _count_layers(page, "order") == 3
    assert page.locator("path.order").count() == 3
    assert page.text_content("#order-count") == "3"
    page.evaluate("window.stillTheSamePage = true")

    answer = http.post(f"{live}/api/v1/reports", json=report(demo, 400, category="streetlight"))
    assert answer.status_code == 201, answer.text
    wait_until(page, "document.querySelectorAll('path.order').length === 4", timeout=15)
    assert page.evaluate("window.stillTheSamePage") is True
    assert page.text_content("#order-count") == "4"
    assert _count_layers(page, "order") == 4


def test_live_map_filters_in_the_browser(service, demo, live, page):
    service.submit_report(report(demo, 10, category="garbage"))
    service.submit_report(report(demo, 300, category="noise"))
    page.goto(f"{live}/map/live")
    wait_until(page, "Number(document.body.dataset.refreshes || 0) >= 1")
    assert page.locator("path.order").count() == 2
    page.select_option("#filter-category", "noise")
    wait_until(page, "document.querySelectorAll('path.order').length === 1")
    assert "category=noise" in page.url


def test_the_feed_filters_by_category_state_and_time(service, demo, client, clock):
    garbage = service.submit_report(report(demo, 10, category="garbage"))["work_order_id"]
    service.submit_report(report(demo, 300, category="noise"))
    assert {f["id"] for f in _feed(client)["features"]} >= {garbage}
    assert [f["id"] for f in _feed(client, category="garbage")["features"]] == [garbage]
    state = service.order(garbage)["state"]
    assert all(f["properties"]["state"] == state for f in _feed(client, state=state)["features"])
    clock.advance(hours=48)
    assert _feed(client, hours=24)["features"] == []
    assert len(_feed(client, hours=0)["features"]) == 2


def test_the_feed_marks_overdue_orders_and_whistles(service, demo, client, clock):
    order_id = service.submit_report(report(demo, 10, category="road_collapse"))["work_order_id"]
    other = service.submit_report(report(demo, 300, category="garbage"))["work_order_id"]
    first = {f["id"]: f["properties"] for f in _feed(client)["features"]}
    assert not first[order_id]["overdue"] and not first[order_id]["whistle"]
    assert first[order_id]["urgency"] == "emergency" and first[other]["urgency"] == "normal"
    service.blow_whistle(order_id, ["chengguan", "zhujian"], 30, DISPATCHER, "塌陷")
    clock.advance(hours=3)
    service.sweep()
    after = {f["id"]: f["properties"] for f in _feed(client)["features"]}
    assert after[order_id]["whistle"] and not after[other]["whistle"]
    assert after[order_id]["overdue"]  # road collapse: respond within 30 minutes
    assert after[order_id]["url"] == f"/report/{order_id}"


def test_the_feed_names_categories_in_the_page_language(service, demo, client):
    service.submit_report(report(demo, 10, category="garbage"))
    garbage = service.catalogue.category("garbage")
    zh = _feed(client, lang="zh")["features"][0]["properties"]
    en = _feed(client, lang="en")["features"][0]["properties"]
    assert zh["category_name"] == garbage.name and en["category_name"] == garbage.name_en


@pytest.mark.parametrize("args, field", [
    ({"state": "closed"}, "state"), ({"state": "dispatched,nonsense"}, "state"),
    ({"category": "nope"}, "category"), ({"hours": "x"}, "hours"), ({"hours": "-1"}, "hours")])
def test_the_feed_refuses_bad_filters(client, args, field):
    answer = client.get("/map/live/orders.geojson", query_string=args)
    assert answer.status_code == 400 and answer.json["error"]["field"] == field


# --- hotspots -----------------------------------------------------------------------------------


def test_hotspots_for_100_000_reports_make_a_page_under_2_mb(service, demo, client):
    seed_report_history(service, HUNDRED_THOUSAND)
    with service.db.read() as uow:
        lon, lat = np.array(uow.execute(select(t.reports.c.lon, t.reports.c.lat).where(
            t.reports.c.resolve_status == "ok")).all()).T
    assert len(lon) > 0.98 * HUNDRED_THOUSAND  # a few points jittered out of the district
    started = time.perf_counter()
    answer = client.get("/map/hotspots?edge=250&lang=en")
    seconds = time.perf_counter() - started
    assert answer.status_code == 200
    size = len(answer.data)
    print(f"hotspot page for {HUNDRED_THOUSAND} reports: {size / 1e6:.2f} MB in {seconds:.2f} s")
    assert size < 2_000_000
    html = answer.get_data(as_text=True)
    assert re.search(rf'id="report-total">\s*{len(lon)}<', html)
    expected = hexbin(lon, lat, demo.metric_crs, 250)
    assert re.search(rf'id="hexagon-total">\s*{len(expected)}<', html)
    counts = sorted(int(c) for c in re.findall(r'"count": (\d+)', html))
    assert counts == sorted(expected["count"].tolist())


def test_hotspots_count_only_the_chosen_period(service, demo, client, clock):
    service.submit_report(report(demo, 10, category="garbage"))
    clock.advance(days=40)
    service.submit_report(report(demo, 300, category="noise"))
    today = service.local_time(clock()).date()
    recent = client.get(f"/map/hotspots?since={today - timedelta(days=7)}&until={today}")
    assert re.search(r'id="report-total">\s*1<', recent.get_data(as_text=True))
    everything = client.get(f"/map/hotspots?since={today - timedelta(days=60)}")
    assert re.search(r'id="report-total">\s*2<', everything.get_data(as_text=True))


@pytest.mark.parametrize("args, field", [
    ({"since": "2026-13-01"}, "since"), ({"until": "yesterday"}, "until"),
    ({"since": "2026-11-20", "until": "2026-11-01"}, "since"), ({"edge": "7"}, "edge"),
    ({"edge": "ten"}, "edge")])
def test_hotspots_refuse_bad_periods_and_edges(client, args, field):
    answer = client.get("/map/hotspots", query_string=args)
    assert answer.status_code == 400 and answer.json["error"]["field"] == field


# --- coverage and workload ---------------------------------------------------------------------


def test_coverage_page_shows_the_covered_share(service, live, page):
    expected = station_coverage(service.resolver(1).boundaries, (300, 500)).summary
    page.goto(f"{live}/map/coverage?radius=300,500&lang=en")
    for row in expected:
        radius = int(row["radius_m"])
        shown = page.text_content(f'tr[data-radius="{radius}"] .households-share')
        assert shown.strip() == f"{row['households_share'] * 100:.1f} %"
        items = page.locator(f'ul.uncovered[data-radius="{radius}"] li:not(.muted)')
        assert items.count() == len(row["uncovered_grids"])
    assert expected[0]["uncovered_grids"], "a 300 m radius leaves some grids uncovered"
    assert _count_layers(page, "grid") == len(service.resolver(1).boundaries.grids)


@pytest.mark.parametrize("radius", ["abc", "0", "0.4", "500,20000", "1,2,3,4,5", "nan",
                                    "inf", "1e400"])
def test_coverage_refuses_bad_radii(client, radius):
    answer = client.get("/map/coverage", query_string={"radius": radius})
    assert answer.status_code == 400 and answer.json["error"]["field"] == "radius"


def test_coverage_keeps_only_the_last_few_radii_asked_for(service, client, monkeypatch):
    monkeypatch.setattr(mappages, "_COVERAGE", WeakKeyDictionary())  # other tests' radii
    bset = service.active_resolver()[1].boundaries
    for radius in ("400.2", "399.6", "400"):  # all 400 m
        assert client.get(f"/map/coverage?radius={radius}").status_code == 200
    assert list(mappages._COVERAGE[bset]) == [(400,)]
    for metres in range(401, 401 + mappages.KEPT_COVERAGES + 3):
        assert client.get(f"/map/coverage?radius={metres}").status_code == 200
    kept = list(mappages._COVERAGE[bset])
    assert len(kept) == mappages.KEPT_COVERAGES
    assert kept[-1] == (400 + mappages.KEPT_COVERAGES + 3,)


def test_workload_by_reports_per_month_and_by_households(service, demo, client):
    busy = demo.grids.iloc[200]
    for i in range(3):
        service.submit_report(report(demo, 200, category=["garbage", "noise", "streetlight"][i]))
    html = client.get("/map/workload?by=reports&months=1&lang=en").get_data(as_text=True)
    first = re.search(r'<table id="busiest">\s*<tr><td>(\d+)</td><td>[^<]*</td>'
                      r'<td class="num">([\d.]+)</td>', html)
    assert first.groups() == (busy["code"], "3.0")
    html = client.get("/map/workload?by=households").get_data(as_text=True)
    most = demo.grids.loc[demo.grids["households"].idxmax()]
    first = re.search(r'<table id="busiest">\s*<tr><td>(\d+)</td>', html)
    assert first.group(1) == most["code"]


@pytest.mark.parametrize("args, field", [({"by": "x"}, "by"), ({"months": "0"}, "months")])
def test_workload_refuses_bad_input(client, args, field):
    answer = client.get("/map/workload", query_string=args)
    assert answer.status_code == 400 and answer.json["error"]["field"] == field


# --- languages, offline assets and tiles ------------------------------------------------------


def test_pages_follow_the_browser_language_and_the_switch(client):
    english = client.get("/map/live", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "<h1>Live map</h1>" in english.get_data(as_text=True)
    chinese = client.get("/map/live", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "<h1>实时地图</h1>" in chinese.get_data(as_text=True)
    switched = client.get("/map/coverage?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "<h1>Station coverage</h1>" in switched.get_data(as_text=True)
    remembered = client.get("/map/workload", headers={"Accept-Language": "zh-CN"})
    assert "<h1>Grid workload</h1>" in remembered.get_data(as_text=True)  # the cookie holds


@pytest.mark.parametrize("path", ["/map/live", "/map/hotspots", "/map/coverage",
                                  "/map/workload"])
def test_pages_load_nothing_from_off_the_machine(client, path):
    html = client.get(path).get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(s.endswith("/assets/leaflet/leaflet.js") for s in sources)
    assert not [s for s in sources if re.match(r"(https?:)?//", s)]
    with client.get("/assets/leaflet/leaflet.js") as leaflet:
        assert leaflet.status_code == 200 and b"Leaflet" in leaflet.data


def test_gcj02_tiles_shift_the_overlays(service, demo, tmp_path):
    app = create_app({"INSTANCE": str(tmp_path / "i"), "TESTING": True, "AUTO_UPGRADE": False,
                      "TILES": "amap"}, service=service)
    client = app.test_client()
    order_id = service.submit_report(report(demo, 10, category="garbage"))["work_order_id"]
    order = service.order(order_id)
    feature = _feed(client)["features"][0]
    x, y = from_wgs84(order["lon"], order["lat"], "gcj02")
    assert feature["geometry"]["coordinates"] == pytest.approx([float(x), float(y)], abs=1e-9)
    assert abs(feature["geometry"]["coordinates"][0] - order["lon"]) > 1e-3  # a real shift
    html = client.get("/map/live").get_data(as_text=True)
    assert "autonavi.com" in html
    corner = demo.grids.geometry.values[0].exterior.coords[0]
    with app.test_request_context():
        shifted = display_geometries(demo.grids.geometry.values[:1])[0].exterior.coords[0]
    assert shifted == pytest.approx(from_wgs84(*corner, "gcj02"), abs=1e-9)
    drawn = json.loads(shapely.to_geojson(shapely.Point(shifted)))["coordinates"]
    assert f"[{drawn[0]!r}, {drawn[1]!r}]" in html
    assert f"[{corner[0]!r}, {corner[1]!r}]" not in html


@pytest.mark.parametrize("config, field", [({"TILES": "bing"}, "TILES"),
                                           ({"TILES": "tianditu"}, "TIANDITU_KEY"),
                                           ({"TILES": "https://t/{z}/{x}/{y}.png",
                                             "TILES_CRS": "bd09"}, "TILES_CRS")])
def test_bad_tile_settings_stop_the_app_with_a_clear_error(service, tmp_path, config, field):
    with pytest.raises(InputError) as error:
        create_app({"INSTANCE": str(tmp_path / "i"), "TESTING": True, "AUTO_UPGRADE": False,
                    **config}, service=service)
    assert error.value.field == field


def test_the_boundary_version_keeps_its_household_points(service, demo):
    stored = service.resolver(1).boundaries.buildings
    assert len(stored) == len(demo.buildings) > 0
    assert stored["households"].sum() == demo.buildings["households"].sum()
    with service.db.read() as uow:
        count = uow.execute(select(func.count()).select_from(t.boundary_features).where(
            t.boundary_features.c.layer == "buildings")).scalar_one()
    assert count == len(demo.buildings)


def test_pages_without_an_active_version_say_so(tmp_path):
    app = create_app({"INSTANCE": str(tmp_path), "TESTING": True})
    answer = app.test_client().get("/map/live")
    assert answer.status_code == 400 and "no boundary version is active" in \
        answer.json["error"]["message"]
    app.extensions["gridline"].db.dispose()

