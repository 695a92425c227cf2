"""Service stations: open stations near a point, check-ins and counts, the map page."""

from datetime import time

import pytest

from dispatch.stations import load_station_hours, write_demo_station_hours
from tests.conftest import PROJECT
from tests.dispatch.helpers import report

# T0 is 09:00 in Xi'an: ST001 (07:00-19:00) is open; give ST002 hours that exclude it.


@pytest.fixture
def place(demo):
    """ST001's position."""
    point = demo.layer("stations").set_index("station_id").geometry["ST001"]
    return point.x, point.y


def test_the_demo_hours_are_shipped_as_generated(demo, tmp_path):
    written = write_demo_station_hours(demo, tmp_path / "hours.toml")
    shipped = PROJECT / "data" / "participation" / "station_hours.toml"
    assert written.read_bytes() == shipped.read_bytes()
    hours = load_station_hours()
    assert set(hours) == set(demo.layer("stations")["station_id"])
    assert hours["ST001"] == (time(7), time(19))


def test_open_stations_near_me_with_the_services_i_need(client, app, place):
    lon, lat = place
    found = client.get(f"/api/v1/stations/near?lon={lon}&lat={lat}&radius_m=1500").json
    assert found[0]["station_id"] == "ST001" and found[0]["distance_m"] < 1
    assert all(s["open"] and s["distance_m"] <= 1500 for s in found)
    assert [s["distance_m"] for s in found] == sorted(s["distance_m"] for s in found)
    app.extensions["gridline.stations"].hours["ST001"] = (time(10), time(18))
    later = client.get(f"/api/v1/stations/near?lon={lon}&lat={lat}&radius_m=1500").json
    assert "ST001" not in {s["station_id"] for s in later}
    everything = client.get(f"/api/v1/stations/near?lon={lon}&lat={lat}&radius_m=1500&all=1")
    assert everything.json[0]["station_id"] == "ST001" and not everything.json[0]["open"]
    toilets = client.get(f"/api/v1/stations/near?lon={lon}&lat={lat}&radius_m=5000"
                         "&services=toilet,warm_up&all=1").json
    assert toilets and all({"toilet", "warm_up"} <= set(s["services"]) for s in toilets)


@pytest.mark.parametrize("query, field", [
    ("lat=34.2", "lon"), ("lon=108.9&lat=34.2&radius_m=0", "radius_m"),
    ("lon=108.9&lat=34.2&radius_m=far", "radius_m"),
    ("lon=108.9&lat=34.2&services=spa", "services"), ("lon=108.9&lat=34.2&crs=mars", "crs")])
def test_bad_searches_are_refused(client, query, field):
    answer = client.get(f"/api/v1/stations/near?{query}")
    assert answer.status_code == 400 and answer.json["error"]["field"] == field


def test_check_ins_and_riders_reports_are_counted(client, people, service, demo, clock):
    rider = people["reporter"]["headers"]
    first = client.post("/api/v1/stations/ST001/checkins", headers=rider, json={})
    again = client.post("/api/v1/stations/ST001/checkins", headers=rider, json={})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["repeat"] and again.json["id"] == first.json["id"]  # counted once
    clock.advance(minutes=31)
    later = client.post("/api/v1/stations/ST001/checkins", headers=rider, json={})
    assert later.status_code == 201 and later.json["id"] != first.json["id"]
    assert client.post("/api/v1/stations/ST001/checkins", json={}).status_code == 401
    unknown = client.post("/api/v1/stations/ST999/checkins", headers=rider, json={})
    assert unknown.status_code == 400 and unknown.json["error"]["field"] == "station_id"
    sent = service.submit_report(report(demo, 100, reporter_role="rider"))
    service.submit_report(report(demo, 300, reporter_role="resident"))
    assert client.get("/api/v1/stations/counts", headers=rider).status_code == 403
    counts = {c["station_id"]: c for c in client.get(
        "/api/v1/stations/counts", headers=people["dispatcher"]["headers"]).json}
    assert counts["ST001"]["checkins"] == 2
    assert counts[sent["station_id"]]["mobile_reports"] == 1
    assert sum(c["mobile_reports"] for c in counts.values()) == 1


def test_the_station_map_page(client, people):
    client.post("/api/v1/stations/ST001/checkins", headers=people["reporter"]["headers"],
                json={})
    html = client.get("/stations").get_data(as_text=True)
    assert "红色驿站" in html and "07:00-19:00" in html and "正在开放" in html
    assert 'data-station="ST001" class="open"' in html
    assert "cdn" not in html.lower() and "leaflet.js" in html
    assert "checkins" not in html  # the counts are for staff
    staff_view = client.get("/stations", headers=people["dispatcher"]["headers"])
    assert '<td class="num checkins">1</td>' in staff_view.get_data(as_text=True)


@pytest.mark.parametrize("query, field", [("lon=nan&lat=34.2", "lon"),
                                          ("lon=108.9&lat=95", "lat"),
                                          ("lon=500&lat=34.2", "lon")])
def test_stations_near_a_point_out_of_range_are_refused(client, query, field):
    answer = client.get(f"/api/v1/stations/near?{query}")
    assert answer.status_code == 400 and answer.json["error"]["field"] == field


def test_the_station_map_draws_every_station_in_the_browser(live, page, demo):
    page.goto(f"{live}/stations?lang=en")
    page.wait_for_selector("path.leaflet-interactive")
    assert page.locator("path.leaflet-interactive").count() == len(demo.layer("stations"))
    assert page.text_content("#legend").count("Open now") == 1
    assert page.locator("#stations tbody tr").count() == len(demo.layer("stations"))
