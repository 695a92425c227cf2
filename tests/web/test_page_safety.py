"""Pages stay safe with hostile text in names: map tooltips show it as text, in a real browser;
logins never redirect off the site; report limits count a token however it is padded; every
answer carries the security headers."""

from __future__ import annotations

import pytest

from dispatch.accounts import Accounts
from tests.dispatch.helpers import inside
from tests.web.conftest import PASSWORD, wait_until
from web.maps import map_text

PAYLOAD = "<img src=x onerror=alert(1)>`${alert(2)}`\\</script><script>alert(3)</script>"


def test_map_text_is_inert_as_html_and_inside_a_template_literal():
    shown = map_text(PAYLOAD)
    assert not any(c in shown for c in "<>`$\\")
    assert shown.startswith("&lt;img src=x onerror=alert(1)&gt;&#96;&#36;{alert(2)}&#96;&#92;")


def _watch(page):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs


def test_a_hostile_station_name_stays_text_on_the_stations_page(live, page, app, monkeypatch):
    stations = app.extensions["gridline.stations"]
    table = stations.table()
    table[0]["name"] = PAYLOAD
    monkeypatch.setattr(type(stations), "table", lambda self: table)
    dialogs = _watch(page)
    page.goto(f"{live}/stations?lang=en")
    page.wait_for_selector("path.leaflet-interactive")
    marker = page.locator("path.leaflet-interactive").first
    marker.hover(force=True)
    page.wait_for_selector(".leaflet-tooltip")
    assert PAYLOAD.split("`")[0] in page.text_content(".leaflet-tooltip")
    assert dialogs == [] and page.locator(".leaflet-tooltip img").count() == 0


def test_a_hostile_gridworker_name_stays_text_on_the_live_map(live, page, app, demo, people):
    client = app.test_client()
    lon, lat = inside(demo, 0)
    placed = client.post("/api/v1/mobile-gridworkers", json={
        "name": PAYLOAD[:100], "phone": "13900001111", "lon": lon, "lat": lat},
        headers=people["reporter"]["headers"])
    assert placed.status_code == 201, placed.json
    dialogs = _watch(page)
    page.goto(f"{live}/login?next=/map/live")
    page.fill("input[name=username]", "dispatcher")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live}/map/live")
    grids = page.locator("path.leaflet-interactive")
    grids.first.wait_for()
    code = demo.grids.iloc[0]["code"]
    for i in range(grids.count()):  # the grid of that gridworker: its tooltip names them
        grids.nth(i).hover(force=True)
        tooltip = page.locator(".leaflet-tooltip")
        if tooltip.count() and code in tooltip.first.text_content():
            break
    else:
        pytest.fail(f"no tooltip for grid {code}")
    assert "<img src=x onerror=alert(1)>" in tooltip.first.text_content()
    assert dialogs == [] and page.locator(".leaflet-tooltip img").count() == 0


@pytest.mark.parametrize("next_path", ["/\t/evil.example", "/\r\n/evil.example", "//evil.example",
                                       "/\\evil.example", "https://evil.example/"])
def test_a_login_never_sends_the_visitor_off_the_site(client, people, next_path):
    answer = client.post("/login", data={"username": "dispatcher", "password": PASSWORD,
                                         "next": next_path})
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "evil" not in location
    assert client.get(f"/login?next={next_path}").status_code == 200


def test_a_padded_token_is_the_same_token_to_the_report_limit(app, client, people, demo):
    app.config["REPORT_RATE_LIMIT"] = "3 per minute"
    token = people["reporter"]["token"]
    answers = []
    for n in range(5):
        lon, lat = inside(demo, 400 + n)
        answers.append(client.post(
            "/api/v1/reports", json={"category": "garbage", "description": "x", "lon": lon,
                                     "lat": lat},
            headers={"Authorization": "Bearer " + token + " " * n},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"}).status_code)
    assert answers == [201, 201, 201, 429, 429]


def test_every_answer_carries_the_security_headers(client, people):
    login = client.post("/login", json={"username": "dispatcher", "password": PASSWORD})
    assert "SameSite=Lax" in login.headers["Set-Cookie"]
    for path in ("/healthz", "/map/live", "/open311/v2/services.xml", "/nowhere"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "same-origin", path


def test_a_hostile_grid_name_stays_text_on_the_planner_page(live, page, service):
    Accounts(service.db, service.clock).add_user("plan", PASSWORD, "planner")
    assert page.request.post(f"{live}/login", data={"username": "plan",
                                                    "password": PASSWORD}).ok
    dialogs = _watch(page)
    page.goto(f"{live}/planner?lang=en")
    page.click("button.start-draft")
    page.wait_for_url(f"{live}/planner/2")
    wait_until(page, "document.querySelectorAll('.leaflet-interactive').length > 500")
    # A grid as the draft's API would send one with a hostile name (from an uploaded layer).
    shown = page.evaluate("""(name) => {
        const map = Object.values(window).find(v => v instanceof L.Map);
        const added = map.gridlineGrids.addData({type: "Feature",
            properties: {code: "610104001001999", name: name},
            geometry: {type: "Point", coordinates: [108.9, 34.26]}});
        const layer = added.getLayers().at(-1);
        layer.openTooltip();
        return layer.getTooltip().getElement().innerHTML;
    }""", PAYLOAD)
    assert "<img" not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown
    assert dialogs == []
