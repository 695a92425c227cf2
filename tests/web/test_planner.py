"""Planners over HTTP: boundary versions, drafts and their edits, the impact preview as JSON,
CSV and a page, activation under load, and the planner page in a real browser."""

import csv
import io
import json
import threading
import time
from datetime import timedelta

import geopandas as gpd
import pytest
import requests
import shapely
from shapely.geometry import LineString, mapping
from shapely.ops import polylabel
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.accounts import Accounts
from dispatch.roster import seed_report_history
from dispatch.services import Actor, Service
from geo.crs import from_wgs84
from tests.dispatch.helpers import report
from tests.web.conftest import PASSWORD, wait_until

API = "/api/v1/boundary-versions"


def _split_params(bset, index=100, crs=None):
    grid = bset.grids.iloc[index]
    x0, y0, x1, y1 = grid.geometry.bounds
    xs, ys = [(x0 + x1) / 2] * 2, [y0 - 0.001, y1 + 0.001]
    if crs:
        xs, ys = from_wgs84(xs, ys, crs)
    line = LineString(zip(map(float, xs), map(float, ys), strict=True))
    return grid["code"], {"operation": "split", "grid": grid["code"], "line": mapping(line)}


def _draft(client, headers) -> int:
    answer = client.post(f"{API}/1/drafts", json={"name": "redraw"}, headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json["version"]


def _rows(service, table):
    with service.db.read() as uow:
        return uow.execute(select(func.count()).select_from(table)).scalar()


@pytest.mark.parametrize("role, status", [
    (None, 401), ("reporter", 403), ("gridworker", 403), ("dispatcher", 403),
    ("department", 403), ("planner", 200), ("admin", 200)])
def test_only_planners_and_administrators_see_and_change_versions(client, people, role,
                                                                  status):
    headers = people[role]["headers"] if role else {}
    assert client.get(API, headers=headers).status_code == status
    drafted = client.post(f"{API}/1/drafts", json={}, headers=headers)
    assert drafted.status_code == (201 if status == 200 else status)
    if status != 200:
        assert drafted.json["error"]["code"] in ("unauthorized", "forbidden")


def test_a_draft_is_edited_previewed_and_activated_over_http(client, people, service, demo):
    headers = people["planner"]["headers"]
    seed_report_history(service, 12_000, days=60)
    version = _draft(client, headers)
    code, edit = _split_params(demo)
    done = client.post(f"{API}/{version}/edits", json={**edit, "expected_revision": 0},
                       headers=headers)
    assert done.status_code == 200, done.json
    assert done.json["revision"] == 1 and done.json["grids"][0] == code
    added = done.json["grids"][1]
    stale = client.post(f"{API}/{version}/edits", json={**edit, "expected_revision": 0},
                        headers=headers)
    assert stale.status_code == 409

    impact = client.get(f"{API}/{version}/impact?months=3", headers=headers)
    assert impact.status_code == 200
    grids = {g["code"]: g for g in impact.json["grids"]}
    assert grids[added]["change"] == "added" and grids[code]["change"] == "reshaped"
    assert impact.json["summary"]["reports"] == 12_000
    table = client.get(f"{API}/{version}/impact.csv?months=3", headers=headers)
    text = table.get_data(as_text=True)
    assert table.mimetype == "text/csv" and text.startswith("\ufeff")
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))}
    assert rows[added]["change"] == "added"
    assert float(rows[code]["reports_per_month_before"]) == grids[code][
        "reports_per_month_before"]
    shapes = client.get(f"{API}/{version}/grids.geojson", headers=headers)
    assert shapes.mimetype == "application/geo+json"
    assert added in {f["properties"]["code"] for f in shapes.json["features"]}
    today = service.local_time(service.clock()).date()
    moved = client.get(f"{API}/{version}/reresolve.csv?since={today - timedelta(days=61)}"
                       f"&until={today}", headers=headers)
    changed = [r for r in csv.DictReader(io.StringIO(moved.get_data(as_text=True)
                                                     .lstrip("\ufeff")))
               if r["changes_grid"] == "True"]
    assert changed and {r["draft_grid_code"] for r in changed} == {added}
    assert len(changed) == round(grids[added]["reports_per_month_after"] * 3)
    page = client.get(f"/planner/{version}", headers=headers)
    assert page.status_code == 200 and "planner.js" in page.get_data(as_text=True)

    activated = client.post(f"{API}/{version}/activate", json={}, headers=headers)
    assert activated.status_code == 200 and activated.json["state"] == "active"
    spot = service.boundaries(version).grids.set_index("code").geometry[added]
    spot = spot.representative_point()
    assert demo.grids.geometry.iloc[100].covers(spot)
    answer = client.get(f"/point/4326/{spot.x},{spot.y}").json
    assert answer["boundary_version"] == version and answer["grid"]["code"] == added


@pytest.mark.parametrize("payload, status, field", [
    ({"operation": "split", "grid": "610104999999001", "line": {
        "type": "LineString", "coordinates": [[108.9, 34.2], [108.91, 34.21]]}}, 400, "grid"),
    ({"operation": "merge", "grids": "a,b"}, 400, "grids"),
    ({"operation": "split", "grid": "x", "line": {"type": "LineString"}}, 400, "line"),
    ({"operation": "split", "colour": "red"}, 400, "colour"),
    ({"operation": "split", "expected_revision": "one"}, 400, "expected_revision"),
    ({"operation": "split", "crs": "EPSG:999999"}, 400, "crs"),
    ({"operation": "station", "station": "ST001", "services": "rest"}, 400, "services"),
    ({"operation": "station", "station": "ST001", "point": {
        "type": "Point", "coordinates": [109.5, 35.0]}}, 400, "point"),
    # integers too large for a float
    ({"operation": "partition", "communities": ["610104003005"], "target": 10**400}, 400,
     "target"),
    ({"operation": "station", "station": "ST001", "name": "x", "point": {
        "type": "Point", "coordinates": [10**400, 34.2]}}, 400, "point"),
    ({"operation": "split", "grid": "610104003005001", "line": {
        "type": "LineString", "coordinates": [[10**400, 34.2], [108.9, 34.3]]}}, 400, "line"),
])
def test_bad_edits_are_refused_and_change_nothing(client, people, service, payload, status,
                                                  field):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    before = (_rows(service, t.boundary_features), _rows(service, t.boundary_edits))
    answer = client.post(f"{API}/{version}/edits", json=payload, headers=headers)
    assert answer.status_code == status and answer.json["error"]["field"] == field
    assert (_rows(service, t.boundary_features), _rows(service, t.boundary_edits)) == before
    assert client.post(f"{API}/{version}/edits", data="{not json", headers={
        **headers, "Content-Type": "application/json"}).status_code == 400
    assert client.post(f"{API}/77/edits", json={"operation": "merge", "grids": []},
                       headers=headers).status_code == 404
    assert client.post(f"{API}/1/edits", json={"operation": "merge", "grids": []},
                       headers=headers).json["error"]["message"].endswith("start a draft "
                                                                           "from it")


def test_a_line_drawn_in_gcj02_splits_the_same_grid(client, people, demo):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    code, edit = _split_params(demo, crs="gcj02")
    done = client.post(f"{API}/{version}/edits", json={**edit, "crs": "gcj02"}, headers=headers)
    assert done.status_code == 200, done.json
    params = done.json["edits"][-1]["params"]
    x = [c[0] for c in params["line"]["coordinates"]]
    grid = demo.grids[demo.grids["code"] == code].geometry.iloc[0]
    assert abs(x[0] - (grid.bounds[0] + grid.bounds[2]) / 2) < 1e-6  # stored back in WGS84


def test_a_station_placed_in_gcj02_is_stored_in_wgs84(client, people, service):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    x, y = from_wgs84(108.92, 34.26, "gcj02")
    done = client.post(f"{API}/{version}/edits", headers=headers, json={
        "operation": "station", "station": "ST900", "name": "新驿站", "services": ["rest"],
        "point": {"type": "Point", "coordinates": [float(x), float(y)]}, "crs": "gcj02"})
    assert done.status_code == 200, done.json
    assert done.json["edit"] == "added station ST900"
    station = service.boundaries(version).stations.set_index("station_id").loc["ST900"]
    assert abs(station.geometry.x - 108.92) < 1e-7 and abs(station.geometry.y - 34.26) < 1e-7
    assert len(service.boundaries(1).stations) == 108  # the version drafted from is untouched


def test_a_layer_file_replaces_a_draft_layer_and_bad_files_are_refused(client, people, service,
                                                                     demo, tmp_path):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    community = demo.communities["code"].iloc[3]
    keep = demo.grids[demo.grids["community_code"] != community]
    whole = demo.communities[demo.communities["code"] == community]
    layer = gpd.GeoDataFrame(
        {"code": [*keep["code"], None], "name": [*keep["name"], "合并网格"],
         "community_code": [*keep["community_code"], community]},
        geometry=[*keep.geometry, *whole.geometry], crs="EPSG:4326")
    good = tmp_path / "grids.geojson"
    layer.to_file(good, driver="GeoJSON")
    url = f"{API}/{version}/layers/grids"
    with good.open("rb") as f:
        answer = client.post(url, data={"file": (f, "grids.geojson")}, headers=headers)
    assert answer.status_code == 200, answer.json
    assert answer.json["summary"]["grids"] == len(keep) + 1
    last = max(int(c[-3:]) for c in demo.grids["code"] if c.startswith(community))
    assert f"{community}{last + 1:03d}" in set(service.boundaries(version).grids["code"])

    before = (_rows(service, t.boundary_features), _rows(service, t.boundary_edits))
    bow = layer.copy()
    bow.loc[0, "geometry"] = shapely.Polygon([(108.9, 34.2), (108.91, 34.21), (108.91, 34.2),
                                              (108.9, 34.21)])
    broken = tmp_path / "broken.geojson"
    bow.to_file(broken, driver="GeoJSON")
    cases = [(broken, "broken.geojson", "refused"), (good, "grids.txt", "must be one of"),
             (None, "garbage.geojson", "garbage.geojson")]
    for path, name, message in cases:
        data = path.read_bytes() if path else b"{ this is not geojson"
        answer = client.post(url, data={"file": (io.BytesIO(data), name)}, headers=headers)
        assert answer.status_code == 400, (name, answer.json)
        assert message in answer.json["error"]["message"]
    assert client.post(url, data={}, headers=headers).json["error"]["field"] == "file"
    assert client.post(f"{API}/{version}/layers/rivers", data={
        "file": (io.BytesIO(b"{}"), "r.geojson")}, headers=headers).status_code == 400
    assert (_rows(service, t.boundary_features), _rows(service, t.boundary_edits)) == before


def test_activation_under_load_answers_every_request_from_exactly_one_version(
        live, app, people, service, demo, http):
    """Threads resolve a point on the moving edge while a new version is activated: every
    answer is complete and consistent with the version it names, none fails."""
    headers = people["planner"]["headers"]
    draft = http.post(f"{live}{API}/1/drafts", json={}, headers=headers).json()["version"]
    code, edit = _split_params(demo)
    done = http.post(f"{live}{API}/{draft}/edits", json=edit, headers=headers)
    added = done.json()["grids"][1]
    new_grids = service.boundaries(draft).grids.set_index("code")
    inside_new = new_grids.geometry[added].representative_point()
    expected = {1: code, draft: added}
    service.active_ttl = 0.2
    answers, failures, stop = [], [], threading.Event()

    def hammer():
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    r = session.get(f"{live}/point/4326/{inside_new.x},{inside_new.y}",
                                    timeout=10)
                    body = r.json()
                    answers.append((r.status_code, body["boundary_version"],
                                    body["grid"]["code"]))
                except Exception as exc:  # any failure is what this test looks for
                    failures.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert http.post(f"{live}{API}/{draft}/activate", json={}, headers=headers).ok
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures
    assert all(status == 200 for status, _, _ in answers)
    assert all(grid == expected[version] for _, version, grid in answers)
    seen = [version for _, version, _ in answers]
    assert seen[0] == 1 and seen[-1] == draft


def test_another_process_picks_up_an_activation_within_its_ttl(service, demo):
    other = Service(service.db, service.catalogue, service.media, active_ttl=1.0)
    assert other.active_resolver()[0] == 1
    version = service.start_draft(1, Actor("planner", "planner"))["version"]
    service.activate_version(version)
    started = time.monotonic()
    while other.active_resolver()[0] != version:
        assert time.monotonic() - started < 3, "the activation was not picked up in time"
        time.sleep(0.05)
    assert other.active_resolver()[1].boundaries.grids["code"].equals(
        service.boundaries(version).grids["code"])


def test_a_planner_splits_a_grid_on_the_page_sees_the_preview_and_activates(
        page, live, service, demo):
    Accounts(service.db, service.clock).add_user("plan", PASSWORD, "planner")
    seed_report_history(service, 1500, days=60)
    login = page.request.post(f"{live}/login", data={"username": "plan", "password": PASSWORD})
    assert login.ok
    page.goto(f"{live}/planner?lang=en")
    page.click("button.start-draft")
    page.wait_for_url(f"{live}/planner/2")
    wait_until(page, "document.querySelectorAll('.leaflet-interactive').length > 500")
    code = demo.grids["code"].iloc[100]
    grid = demo.grids.geometry.iloc[100]
    x0, y0, x1, y1 = grid.bounds
    spot = polylabel(grid, tolerance=1e-6)
    # Zoom to the grid as a planner would, then work in screen pixels.
    to_screen = """([lon, lat]) => {
        const map = Object.values(window).find(v => v instanceof L.Map);
        const box = map.getContainer().getBoundingClientRect();
        const p = map.latLngToContainerPoint([lat, lon]);
        return [box.left + p.x, box.top + p.y];
    }"""
    page.evaluate("""([w, s, e, n]) => {
        const map = Object.values(window).find(v => v instanceof L.Map);
        map.fitBounds([[s, w], [n, e]], {animate: false});
    }""", [x0, y0, x1, y1])
    page.mouse.click(*page.evaluate(to_screen, [spot.x, spot.y]))
    wait_until(page, f"document.getElementById('selection').textContent === '{code}'")
    page.click("#tool-split")
    middle = (x0 + x1) / 2
    for lat in (y0 - 0.0003, y1 + 0.0003):
        page.mouse.click(*page.evaluate(to_screen, [middle, lat]))
    page.click("#tool-finish")
    wait_until(page, "document.getElementById('impact-grids_added')?.textContent === '1'")
    assert page.locator("#impact-grids tbody tr").count() == 2
    assert "split grid" in page.locator("#message").inner_text()
    page.click("#activate")
    # activating reloads the page: while the next one loads it has no body yet
    wait_until(page, "(document.body?.textContent || '').includes('active ·')")
    assert service.active_resolver()[0] == 2
    assert len(service.boundaries(2).grids) == len(demo.grids) + 1
    assert json.loads(json.dumps(service.version_info(2)["edits"][-1]))["operation"] == "split"


def test_activation_over_http_checks_the_revision_and_moves_open_orders(client, people,
                                                                       service, demo):
    headers = people["planner"]["headers"]
    version = _draft(client, headers)
    added = client.post(f"{API}/{version}/edits", json=_split_params(demo)[1],
                        headers=headers).json["grids"][1]
    spot = service.boundaries(version).grids.set_index("code").geometry[added]
    spot = spot.representative_point()
    order_id = service.submit_report({**report(demo, 100), "lon": spot.x, "lat": spot.y}
                                     )["work_order_id"]
    url = f"{API}/{version}/activate"
    stale = client.post(url, json={"expected_revision": 0}, headers=headers)
    assert stale.status_code == 409 and "revision 1, not 0" in stale.json["error"]["message"]
    wrong = client.post(url, json={"expected_revision": "one"}, headers=headers)
    assert wrong.status_code == 400 and wrong.json["error"]["field"] == "expected_revision"
    assert service.version_info(version)["state"] == "draft"

    done = client.post(url, json={"expected_revision": 1}, headers=headers)
    assert done.status_code == 200 and done.json["state"] == "active"
    assert done.json["activation"]["orders"]["moved"] == 1
    assert service.order(order_id)["grid_code"] == added
    page = client.get(f"/report/{order_id}").get_data(as_text=True)
    assert "网格边界调整后已归入新网格" in page


def test_a_draft_others_started_from_is_not_deleted_over_http(client, people, service):
    headers = people["planner"]["headers"]
    parent = _draft(client, headers)
    child = client.post(f"{API}/{parent}/drafts", json={"name": "on top"}, headers=headers)
    assert child.status_code == 201
    refused = client.delete(f"{API}/{parent}", headers=headers)
    assert refused.status_code == 409
    assert f"version {child.json['version']} was started from it" in refused.json["error"][
        "message"]
    assert service.version_info(parent)["state"] == "draft"


def test_a_planner_partitions_a_community_by_households_or_by_reports(client, people, service,
                                                                      demo):
    headers = people["planner"]["headers"]
    seed_report_history(service, 6000, days=90)
    version = _draft(client, headers)
    community = demo.communities["code"].iloc[10]
    url = f"{API}/{version}/edits"
    done = client.post(url, json={"operation": "partition", "communities": [community],
                                  "target": 400, "min": 300, "max": 500}, headers=headers)
    assert done.status_code == 200, done.json
    assert done.json["edit"].startswith(f"partitioned {community} into")
    grids = service.boundaries(version).grids
    assert grids.loc[grids["community_code"] == community, "households"].between(300, 500).all()
    by_reports = client.post(url, json={"operation": "partition", "communities": [community],
                                        "target": 2, "weight": "reports"}, headers=headers)
    assert by_reports.status_code == 200, by_reports.json
    assert "reports per grid" in by_reports.json["edit"]
    before = _rows(service, t.boundary_edits)
    for payload, field in (({"weight": "cars", "target": 400}, "weight"),
                           ({"target": 0}, "target"),
                           ({"target": 400, "min": 500, "max": 300}, "min"),
                           ({"target": 400, "communities": "all"}, "communities")):
        body = {"operation": "partition", "communities": [community], **payload}
        answer = client.post(url, json=body, headers=headers)
        assert answer.status_code == 400 and answer.json["error"]["field"] == field, answer.json
    assert _rows(service, t.boundary_edits) == before


def test_a_visitor_is_sent_to_the_login_form_and_back(page, live, service, client):
    Accounts(service.db, service.clock).add_user("plan", PASSWORD, "planner")
    page.goto(f"{live}/planner?lang=en")
    assert page.url.startswith(f"{live}/login?next=")
    page.fill("#username", "plan")
    page.fill("#password", "wrong")
    page.click("#login")
    assert page.locator("#login-error").inner_text() == "Wrong username or password."
    page.fill("#username", "plan")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{live}/planner?lang=en")
    assert page.locator("table#versions tbody tr").count() == 1
    # The form only ever sends its visitor back to a page of this site.
    sent = client.post("/login", data={"username": "plan", "password": PASSWORD,
                                       "next": "https://elsewhere.example/"})
    assert sent.status_code == 303 and sent.headers["Location"] == "/map/live"
    assert client.get("/planner").status_code == 200
