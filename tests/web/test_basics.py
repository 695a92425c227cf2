"""Health, point lookup, the error shape, request ids and the OpenAPI document."""

import json
import logging
import sys

import pytest
from openapi_spec_validator import validate
from sqlalchemy import create_engine

from tests.dispatch.helpers import inside


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["boundaries"] is True


def test_not_ready_without_an_active_boundary_version(tmp_path):
    from web import create_app

    app = create_app({"INSTANCE": str(tmp_path), "TESTING": True})
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503 and answer.json["database"] is True
    assert answer.json["boundaries"] is False
    app.extensions["gridline"].db.dispose()


@pytest.mark.parametrize("crs", ["4326", "gcj02", "bd09", "4490"])
def test_point_lookup_in_every_system(client, demo, crs):
    system = {"4326": "wgs84", "4490": "EPSG:4490"}.get(crs, crs)
    lon, lat = inside(demo, 100, system)
    answer = client.get(f"/point/{crs}/{lon},{lat}")
    assert answer.status_code == 200
    grid = demo.grids.iloc[100]
    assert answer.json["grid"]["code"] == grid["code"]
    assert answer.json["community"]["code"] == grid["community_code"]
    assert answer.json["boundary_version"] == 1
    assert answer.json["station"]["distance_m"] > 0
    phones = [w["phone"] for w in answer.json["gridworkers"]]
    assert phones and all("****" in p for p in phones)


def test_point_lookup_shows_phones_to_staff(client, demo, people):
    lon, lat = inside(demo, 100)
    answer = client.get(f"/point/4326/{lon},{lat}", headers=people["dispatcher"]["headers"])
    assert all("*" not in w["phone"] for w in answer.json["gridworkers"])


def test_point_outside_is_a_404_with_status(client, demo):
    west, south, east, north = demo.grids.total_bounds
    answer = client.get(f"/point/4326/{east + 0.05},{(south + north) / 2}")
    assert answer.status_code == 404 and answer.json["status"] == "outside"
    assert answer.json["outside_distance_m"] > 4000


@pytest.mark.parametrize("crs", ["4326", "4490", "gcj02", "bd09"])
def test_a_point_a_quarter_of_the_globe_away_is_outside_too(client, crs):
    answer = client.get(f"/point/{crs}/20,0")  # where the district's UTM zone has no answer
    assert answer.status_code == 404 and answer.json["status"] == "outside"
    assert 9.8e6 < answer.json["outside_distance_m"] < 1.0e7
    assert answer.json["station"]["distance_m"] > answer.json["outside_distance_m"]


@pytest.mark.parametrize("path, field", [
    ("/point/3857/108.9,34.2", "crs"), ("/point/4326/108.9", "coords"),
    ("/point/4326/abc,34.2", "lon"), ("/point/4326/108.9,95", "lat"),
    ("/point/4326/34.26,108.93", "lat"),
])
def test_bad_points_get_the_json_error_shape(client, path, field):
    answer = client.get(path, headers={"X-Request-ID": "req-1"})
    assert answer.status_code == 400
    error = answer.json["error"]
    assert error["field"] == field and error["status"] == 400 and error["message"]
    assert error["request_id"] == "req-1" and answer.headers["X-Request-ID"] == "req-1"


def test_unknown_paths_are_json_404s(client):
    answer = client.get("/nope")
    assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found"


def test_every_request_is_logged_as_json_with_its_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="gridline.http"):
        client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert '"request_id": "abc123"' in caplog.text and '"status": 200' in caplog.text


def test_log_records_that_are_not_json_are_written_as_json():
    from web.logs import JsonLines

    formatter = JsonLines()
    try:
        raise RuntimeError("webhook down")
    except RuntimeError:
        failed = logging.LogRecord("gridline.notify", logging.ERROR, __file__, 1,
                                   "delivery failed after %d tries", (3,), sys.exc_info())
    line = json.loads(formatter.format(failed))
    assert line["level"] == "ERROR" and line["logger"] == "gridline.notify"
    assert line["message"] == "delivery failed after 3 tries"
    assert "RuntimeError: webhook down" in line["error"]
    request = logging.LogRecord("gridline.http", logging.INFO, __file__, 1,
                                '{"request_id": "r1"}', None, None)
    assert formatter.format(request) == '{"request_id": "r1"}'  # JSON already: as it is


def test_oversized_bodies_are_refused(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    answer = client.post("/api/v1/reports", data=b"x" * 5000,
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_the_openapi_document_is_valid_and_describes_every_route(app, client):
    """Every route but the HTML pages and their static files is in the API document."""
    spec = client.get("/openapi.json").json
    validate(spec)
    pages = {"static", "assets.leaflet_file", "maps.live", "maps.hotspots", "maps.coverage",
             "maps.workload", "reporter.form", "reporter.status", "statspage.page",
             "planner.versions_page", "planner.draft_page",
             "participation.page", "stations.page", "auth.login_page"}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in pages:
            continue
        path = rule.rule
        for converter in ("int:", "path:"):
            path = path.replace(f"<{converter}", "<")
        served.add(path.replace("<", "{").replace(">", "}"))
    assert served == set(spec["paths"])


def test_not_ready_when_the_database_is_gone_says_so_without_its_details(app, caplog):
    service = app.extensions["gridline"]
    engine = service.db.engine
    broken = create_engine("postgresql+psycopg://someone@127.0.0.1:9/nowhere")
    try:
        service.db.engine = broken
        answer = app.test_client().get("/readyz")
    finally:
        service.db.engine = engine
        broken.dispose()
    assert answer.status_code == 503 and answer.json["database"] is False
    assert "127.0.0.1" not in answer.get_data(as_text=True)
    assert '"127.0.0.1", port 9 failed' in caplog.text  # the operator finds why in the log
