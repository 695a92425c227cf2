"""The reporter's pages: the phone form at /report, driven in a real browser, and the order's
status page with its progress, deadline and repair photo."""

import json
import math
import re
from pathlib import Path

import pytest
import shapely
from PIL import Image
from shapely.ops import polylabel
from sqlalchemy import select

from dispatch import schema as t
from dispatch.services import Actor
from geo.crs import from_wgs84
from tests.dispatch.helpers import photo, report
from tests.web.conftest import PASSWORD, wait_until
from web import create_app

WEB = Path(__file__).resolve().parents[2] / "web"
WORKER = Actor("王网格", "gridworker")
STATUS_URL = re.compile(r"/report/\d+(\?joined=1)?$")


def text(html: str) -> str:
    """A page's visible words, tags dropped and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def config(html: str) -> dict:
    return json.loads(re.search(r'id="report-config">(.*?)</script>', html, re.S).group(1))


def mercator_y(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def tap(page, lon: float, lat: float) -> None:
    """Click the map at a point, placed by matching the drawn grid outlines' extent on screen
    to their extent in degrees (Leaflet draws in Web Mercator)."""
    page.wait_for_selector(".leaflet-overlay-pane path")
    box = page.evaluate("""() => {
        const boxes = [...document.querySelectorAll('.leaflet-overlay-pane path')]
            .map(p => p.getBoundingClientRect()).filter(b => b.width > 0);
        return [Math.min(...boxes.map(b => b.left)), Math.min(...boxes.map(b => b.top)),
                Math.max(...boxes.map(b => b.right)), Math.max(...boxes.map(b => b.bottom))];
    }""")
    outlines = shapely.from_geojson(json.dumps(config(page.content())["outlines"]))
    west, south, east, north = outlines.bounds
    x = box[0] + (lon - west) / (east - west) * (box[2] - box[0])
    y = box[1] + ((mercator_y(north) - mercator_y(lat))
                  / (mercator_y(north) - mercator_y(south)) * (box[3] - box[1]))
    page.mouse.click(x, y)


def middle_of(demo, grid_index: int) -> tuple[float, float]:
    """The point of a grid farthest from its edges, so a tap a pixel off still lands in it."""
    point = polylabel(demo.grids.geometry.values[grid_index], tolerance=1e-6)
    return point.x, point.y


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "pothole.jpg"
    Image.new("RGB", (80, 60), (90, 90, 90)).save(path, "JPEG")
    return path


def reports(service) -> list:
    with service.db.read() as uow:
        return uow.execute(select(t.reports).order_by(t.reports.c.id)).all()


def test_a_reporter_taps_the_map_sends_a_photo_and_lands_on_the_status_page(
        page, live, service, demo, picture):
    page.goto(f"{live}/report")
    lon, lat = middle_of(demo, 100)
    tap(page, lon, lat)
    wait_until(page, "document.getElementById('where').textContent.includes('网格')")
    page.select_option("#category", "manhole_cover")
    assert page.locator("fieldset.attributes:visible").count() == 0
    assert page.locator("#needs-contact").is_hidden()
    page.fill("#description", "井盖不见了，很危险")
    page.set_input_files("#photo", str(picture))
    tapped = float(page.input_value("#lon")), float(page.input_value("#lat"))
    assert tapped == pytest.approx((lon, lat), abs=1e-3)
    page.click("#send")
    page.wait_for_url(STATUS_URL)

    [row] = reports(service)
    assert row.category == "manhole_cover" and row.description == "井盖不见了，很危险"
    assert row.grid_code == demo.grids["code"].iloc[100]
    assert (row.lon, row.lat) == pytest.approx(tapped, abs=1e-7)
    assert row.user_id is None and row.reporter_phone is None
    assert row.photo and (service.media / row.photo).is_file()
    assert page.url.endswith(f"/report/{row.work_order_id}")
    assert page.locator("h1").inner_text() == f"工单 #{row.work_order_id}"
    assert page.locator("#category").inner_text() == "井盖缺失"
    assert page.locator("[aria-current=step]").inner_text() == "已派单"
    # The reporter's own photo is shown, served by this app.
    shown = page.locator(".reports img")
    assert shown.evaluate("img => img.complete && img.naturalWidth > 0")


def test_a_category_needing_contact_shows_the_refusal_then_takes_a_phone(
        page, live, service, demo, picture):
    page.goto(f"{live}/report")
    tap(page, *middle_of(demo, 200))
    page.select_option("#category", "elderly_assistance")
    assert page.locator("#needs-contact").is_visible()
    assert page.locator("fieldset.attributes:visible").count() == 1
    page.set_input_files("#photo", str(picture))  # answers and a photo go together
    assert "需留电话或登录" in page.locator("#category option:checked").inner_text()
    page.select_option("select[name='attribute[need]']", "meal")
    page.fill("#description", "独居老人需要送餐")
    page.click("#send")
    error = page.locator("[data-error-for=reporter_phone]")
    error.wait_for()
    assert error.inner_text() == "请留下能联系到您的电话号码（6 至 20 位数字），或先登录。"
    assert reports(service) == [] and page.url == f"{live}/report"

    page.fill("#reporter_phone", "13912345678")
    page.click("#send")
    page.wait_for_url(STATUS_URL)
    [row] = reports(service)
    assert (row.category, row.reporter_phone, row.attributes) == (
        "elderly_assistance", "13912345678", {"need": "meal"})
    assert row.photo and (service.media / row.photo).exists()


def test_a_logged_in_reporter_needs_no_phone(page, live, service, demo, people):
    login = page.request.post(f"{live}/login",
                              data={"username": "reporter", "password": PASSWORD})
    assert login.ok
    page.goto(f"{live}/report?lang=en")
    assert page.locator("#reporting-as").inner_text() == "You are reporting as reporter."
    tap(page, *middle_of(demo, 300))
    page.select_option("#category", "property_dispute")
    page.fill("input[name='attribute[compound]']", "Green Garden")
    page.fill("#description", "The lifts have been broken for a week")
    page.click("#send")
    page.wait_for_url(STATUS_URL)
    [row] = reports(service)
    assert row.user_id == people["reporter"]["user"].id and row.reporter_phone is None
    assert page.locator("#category").inner_text() == "Property management dispute"


def test_a_report_outside_the_district_says_so_and_stays_on_the_form(page, live, service):
    page.goto(f"{live}/report?lang=en")
    page.wait_for_selector(".leaflet-overlay-pane path")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + 8, box["y"] + box["height"] - 8)  # a corner, beyond the grids
    wait_until(page, "document.getElementById('where').textContent.includes('outside')")
    page.select_option("#category", "garbage")
    page.fill("#description", "rubbish")
    page.click("#send")
    wait_until(page, "document.getElementById('form-error').textContent !== ''")
    assert "no work order was made" in page.locator("#form-error").inner_text()
    [row] = reports(service)
    assert row.outcome == "outside" and row.work_order_id is None


def test_the_status_page_shows_the_repair_photo_once_resolved(client, service, demo):
    order_id = service.submit_report(report(demo, 100))["work_order_id"]
    before = client.get(f"/report/{order_id}").get_data(as_text=True)
    assert "处置后照片" not in before
    for step in ("accept", "start"):
        service.act(order_id, step, WORKER)
    service.act(order_id, "resolve", WORKER, feedback="已回填修复", photo=photo())
    repair = service.order(order_id)["repair_photo"]

    html = client.get(f"/report/{order_id}").get_data(as_text=True)
    assert re.search(r'aria-current="step">\s*已处置<', html)
    thumb = f"/api/v1/photos/{repair}?thumb=1"
    assert f'src="{thumb}"' in html and "已回填修复" in text(html)
    with client.get(thumb) as answer:
        assert answer.status_code == 200 and answer.mimetype.startswith("image/")
    assert "接单" in text(html) and "开始处置" in text(html)  # the timeline


def test_the_status_page_shows_no_reporter_details(client, service, demo):
    order_id = service.submit_report(report(demo, 100, reporter_name="张三",
                                            reporter_phone="13812341234"))["work_order_id"]
    html = client.get(f"/report/{order_id}").get_data(as_text=True)
    assert "路面塌陷" in html
    assert "张三" not in html and "1234" not in html


def test_deadlines_overdue_and_rejection_are_shown(client, service, demo, clock):
    order_id = service.submit_report(report(demo, 100))["work_order_id"]
    assert "已超时" not in text(client.get(f"/report/{order_id}").get_data(as_text=True))
    clock.advance(days=2)  # road collapse: resolved within a day
    html = text(client.get(f"/report/{order_id}?lang=en").get_data(as_text=True))
    assert "To be resolved by 2026-11-03 09:00" in html and "Overdue" in html

    service.act(order_id, "reject", Actor("李调度", "dispatcher"), reason="不属于本辖区")
    html = client.get(f"/report/{order_id}?lang=zh").get_data(as_text=True)
    assert "此工单已被驳回：不属于本辖区" in text(html) and "aria-current" not in html
    assert "应于" not in html  # no deadline once the order has stopped


def test_an_unknown_order_is_a_404(client):
    assert client.get("/report/999999").status_code == 404


def test_the_form_in_both_languages(client):
    chinese = text(client.get("/report").get_data(as_text=True))
    english = text(client.get("/report?lang=en").get_data(as_text=True))
    assert "随手拍上报" in chinese and "道路塌陷" in chinese and "提交上报" in chinese
    assert "Report a problem" in english and "Road collapse" in english
    assert "Send report" in english and "道路塌陷" not in english


def test_the_form_loads_nothing_from_off_the_machine(client):
    html = client.get("/report").get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert config(html)["tiles"] is None and config(html)["crs"] == "wgs84"


def test_over_gcj02_tiles_outlines_and_taps_are_in_gcj02(service, demo, tmp_path):
    app = create_app({"INSTANCE": str(tmp_path / "instance"), "TESTING": True,
                      "AUTO_UPGRADE": False, "TILES": "http://127.0.0.1:9/{z}/{x}/{y}.png",
                      "TILES_CRS": "gcj02", "TILES_ATTRIBUTION": "local"}, service=service)
    html = app.test_client().get("/report").get_data(as_text=True)
    settings = config(html)
    assert settings["crs"] == "gcj02" and 'id="crs" name="crs" value="gcj02"' in html
    assert settings["tiles"] == {"url": "http://127.0.0.1:9/{z}/{x}/{y}.png",
                                 "attribution": "local"}
    west, south, east, north = demo.grids.total_bounds
    x, y = from_wgs84([west, east], [south, north], "gcj02")
    drawn = shapely.from_geojson(json.dumps(settings["outlines"])).bounds
    assert drawn == pytest.approx((x[0], y[0], x[1], y[1]), abs=1e-4)
    # A browser fix in WGS84 is drawn with the district's GCJ-02 shift.
    assert settings["offset"] == pytest.approx([x[0] - west, y[0] - south], abs=1e-4)



def test_the_categories_api_says_which_need_contact(client):
    flags = {c["code"]: c["anonymous"] for c in client.get("/api/v1/categories").json}
    assert flags["elderly_assistance"] is False and flags["garbage"] is True
