"""The statistics page and its CSV export show the service's own figures for the chosen period
and grouping, refuse bad queries by field, speak both languages, and draw their charts as inline
SVG that a real browser finds (without fetching anything from elsewhere)."""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import lxml.html
import pytest

from dispatch.services import Actor
from tests.conftest import T0
from tests.dispatch.helpers import photo, report
from web import charts, formats, statspage

WORKER, DISPATCHER = Actor("w", "gridworker"), Actor("d", "dispatcher")
WEB = Path(statspage.__file__).parent
TODAY = date(2026, 11, 4)  # T0 + 2 days, in Xi'an
DEFAULT_SINCE = TODAY - timedelta(days=89)


def close(service, order_id):
    for action in ("accept", "start"):
        service.act(order_id, action, WORKER)
    service.act(order_id, "resolve", WORKER, feedback="修好了", photo=photo())
    service.act(order_id, "verify", DISPATCHER)
    service.act(order_id, "close", DISPATCHER)


@pytest.fixture
def orders(service, demo, clock):
    """Five orders: one 100 days old, then four over two days in three streets and four
    departments: one closed in time, one closed late, one rejected, one still open. The clock
    ends at ``TODAY``."""
    def submit(grid, category):
        return service.submit_report(report(demo, grid, category=category))["work_order_id"]

    clock.now = T0 - timedelta(days=100)
    old = submit(10, "garbage")
    clock.now = T0
    on_time, late = submit(10, "road_collapse"), submit(300, "garbage")
    close(service, on_time)
    clock.advance(days=1)
    rejected, open_ = submit(500, "noise"), submit(10, "streetlight")
    service.act(rejected, "reject", DISPATCHER, reason="不属实")
    clock.advance(days=1)
    close(service, late)
    return {"old": old, "on_time": on_time, "late": late, "rejected": rejected, "open": open_}


def bounds(service, since: date, until: date):
    """The UTC instants the page should count between, as the service takes them."""
    return tuple(datetime.combine(d, time(), tzinfo=service.timezone).astimezone(UTC)
                 for d in (since, until + timedelta(days=1)))


def html(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return lxml.html.fromstring(response.get_data(as_text=True))


def shown(value) -> str:
    """A figure as the page and the CSV write it in their machine-readable places."""
    return "" if value is None else str(value)


def table(doc) -> dict:
    """The page's table: group code → {"name", field → data-value}."""
    rows = {}
    for tr in doc.xpath("//table[@id='stats-table']/tbody/tr"):
        cells = tr.xpath("./td")
        rows[tr.get("data-code")] = {"name": cells[0].text_content(),
                                     **{td.get("data-field"): td.get("data-value")
                                        for td in cells[1:]}}
    return rows


def test_page_shows_the_service_figures(client, service, demo, orders):
    doc = html(client.get("/stats?lang=en"))
    since, until = bounds(service, DEFAULT_SINCE, TODAY)
    expected = service.stats(by="street", since=since, until=until)
    assert {r["street"] for r in expected} == set(demo.grids["street_code"].iloc[[10, 300, 500]])
    names = dict(zip(demo.streets["code"], demo.streets["name"], strict=True))
    rows = table(doc)
    assert set(rows) == {r["street"] for r in expected}
    for figures in expected:
        row = rows[figures["street"]]
        assert row["name"] == names[figures["street"]]
        assert {f: row[f] for f in statspage.FIELDS} == {f: shown(figures[f])
                                                         for f in statspage.FIELDS}
    [overall] = service.stats(since=since, until=until)
    assert overall["reported"] == 4 and overall["closed"] == 3  # the old order is outside
    assert overall["closure_rate"] == 0.75 and overall["on_time_rate"] == 0.5
    for field in ("reported", "closed", "closure_rate", "on_time_rate"):
        assert doc.get_element_by_id(f"figure-{field}").get("data-value") == shown(overall[field])
    assert doc.get_element_by_id("figure-closure_rate").text_content().endswith("75.0%")
    total = {td.get("data-field"): td.get("data-value")
             for td in doc.xpath("//tr[@id='total']/td")[1:]}
    assert total == {f: shown(overall[f]) for f in statspage.FIELDS}


def test_charts_hold_one_bar_per_value(client, service, orders):
    doc = html(client.get("/stats"))
    since, until = bounds(service, DEFAULT_SINCE, TODAY)
    per_day = {r["day"]: r for r in service.stats(by="day", since=since, until=until)}
    assert set(per_day) == {"2026-11-02", "2026-11-03"}
    for kind in ("reported", "closed"):
        bars = doc.xpath(f"//*[@id='volume-chart']//rect[@class='bar {kind}']")
        assert len(bars) == 90
        assert bars[0].get("data-day") == DEFAULT_SINCE.isoformat()
        assert {b.get("data-day"): int(b.get("data-value")) for b in bars if
                b.get("data-value") != "0"} == {d: r[kind] for d, r in per_day.items() if r[kind]}
    by_street = service.stats(by="street", since=since, until=until)
    for chart, field in (("closure-chart", "closure_rate"), ("on-time-chart", "on_time_rate")):
        bars = doc.xpath(f"//*[@id='{chart}']//rect[@class='bar']")
        assert [b.get("data-value") for b in bars] == [shown(r[field]) for r in by_street]


def test_by_department_names_departments_in_the_page_language(client, service, orders):
    since, until = bounds(service, DEFAULT_SINCE, TODAY)
    expected = service.stats(by="department", since=since, until=until)
    assert [r["department"] for r in expected] == ["chengguan", "huanwei", "shengtai", "zhujian"]
    catalogue = service.catalogue.departments
    for language, attribute in (("en", "name_en"), ("zh", "name")):
        doc = html(client.get(f"/stats?by=department&lang={language}"))
        rows = table(doc)
        assert list(rows) == [r["department"] for r in expected]
        for figures in expected:
            row = rows[figures["department"]]
            assert row["name"] == getattr(catalogue[figures["department"]], attribute)
            assert row["closure_rate"] == shown(figures["closure_rate"])
        labels = [t.text_content()
                  for t in doc.xpath("//*[@id='closure-chart']//text[@class='label']")]
        assert labels == [getattr(catalogue[r["department"]], attribute) for r in expected]


def test_csv_holds_the_same_figures(client, service, orders):
    answer = client.get("/stats.csv?by=department&since=2026-11-01&until=2026-11-30")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == (
        "attachment; filename=gridline-stats-department-2026-11-01-2026-11-30.csv")
    rows = list(csv.reader(io.StringIO(answer.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["department", "name", *statspage.FIELDS]
    since, until = bounds(service, date(2026, 11, 1), date(2026, 11, 30))
    expected = service.stats(by="department", since=since, until=until)
    assert rows[1:] == [[r["department"], service.catalogue.departments[r["department"]].name,
                         *(shown(r[f]) for f in statspage.FIELDS)] for r in expected]
    assert sum(int(r[2]) for r in rows[1:]) == 4


def test_page_links_to_the_csv_of_what_it_shows(client):
    doc = html(client.get("/stats?by=department&since=2026-10-01&until=2026-10-31"))
    assert doc.get_element_by_id("csv-link").get("href") == (
        "/stats.csv?by=department&since=2026-10-01&until=2026-10-31")


def test_the_period_filter_counts_local_days(client, service, demo, clock, orders):
    doc = html(client.get("/stats?since=2026-07-20&until=2026-07-31"))
    assert doc.get_element_by_id("figure-reported").get("data-value") == "1"  # the old one
    assert list(table(doc)) == [demo.grids["street_code"].iloc[10]]
    assert len(doc.xpath("//*[@id='volume-chart']//rect[@class='bar reported']")) == 12
    clock.now = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 23:30 on 1 December in Xi'an
    service.submit_report(report(demo, 200, category="noise"))
    clock.advance(hours=1)  # already 2 December in Xi'an
    service.submit_report(report(demo, 400, category="garbage"))
    rows = list(csv.reader(io.StringIO(client.get(
        "/stats.csv?since=2026-12-01&until=2026-12-01").get_data().decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == [demo.grids["street_code"].iloc[200]]
    doc = html(client.get("/stats?since=2026-12-05&until=2026-12-06"))
    assert doc.get_element_by_id("no-data") is not None
    assert doc.get_element_by_id("figure-reported").get("data-value") == "0"


@pytest.mark.parametrize("query, field", [
    ("by=grid", "by"),
    ("since=2026-13-01", "since"),
    ("until=yesterday", "until"),
    ("since=2026-11-05&until=2026-11-04", "since"),
    ("since=2025-01-01&until=2026-01-02", "since"),
    ("until=9999-12-31", "until"),
])
@pytest.mark.parametrize("path", ["/stats", "/stats.csv"])
def test_bad_queries_are_refused_by_field(client, path, query, field):
    answer = client.get(f"{path}?{query}")
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_input" and error["field"] == field


def test_headings_follow_the_language(client, orders):
    english = html(client.get("/stats?lang=en"))
    assert english.xpath("//h1")[0].text_content() == "Statistics"
    assert [h.text_content() for h in english.xpath("//section/h2")] == [
        "Closure rate by street", "On-time rate by street"]
    chinese = html(client.get("/stats?lang=zh"))
    assert chinese.xpath("//h1")[0].text_content() == "统计"
    assert [h.text_content() for h in chinese.xpath("//section/h2")] == [
        "各街道办结率", "各街道按时办结率"]
    assert [th.text_content() for th in chinese.xpath("//table[@id='stats-table']//th")][:2] == [
        "街道", "工单数"]


def test_a_browser_sees_the_charts(page, live, orders):
    page.goto(f"{live}/stats?lang=en")
    assert page.locator("h1").inner_text() == "Statistics"
    assert page.locator("#volume-chart rect.bar").count() == 2 * 90
    assert page.locator("#closure-chart rect.bar").count() == 3
    assert page.locator("#on-time-chart rect.bar").count() == 3
    assert page.locator("#closure-chart").bounding_box()["width"] > 200
    with page.expect_navigation():
        page.click("#period button")  # the form asks for the period it shows again
    assert "since=" + DEFAULT_SINCE.isoformat() in page.url
    assert page.locator("#stats-table tbody tr").count() == 3


def test_column_chart_draws_and_escapes():
    svg = lxml.html.fromstring(charts.columns(
        "c", ["2026-11-01", "2026-11-02"],
        [("all", "<all>", [4, 2]), ("done", "done", [0, 2])], caption="a & b"))
    bars = svg.xpath("//rect[starts-with(@class, 'bar')]")
    assert [(b.get("class"), b.get("data-value")) for b in bars] == [
        ("bar all", "4"), ("bar all", "2"), ("bar done", "0"), ("bar done", "2")]
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == pytest.approx(2 * heights[1]) and heights[2] == 0
    assert bars[0].xpath("./title")[0].text_content() == "2026-11-01 · <all>: 4"


def test_rate_bars_scale_to_the_rate_and_mark_missing_ones():
    svg = lxml.html.fromstring(charts.rate_bars(
        "r", [("甲", 1.0), ("乙", 0.25), ("丙", None)], caption="rates", missing="n/a"))
    widths = [float(b.get("width")) for b in svg.xpath("//rect[starts-with(@class, 'bar')]")]
    assert widths[0] == pytest.approx(4 * widths[1]) and widths[2] == 0
    values = [t.text_content() for t in svg.xpath("//text[@class='value']")]
    assert values == ["100.0%", "25.0%", "n/a"]


def test_csv_cells_never_start_a_formula():
    assert formats._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert formats._cell("枣园街道") == "枣园街道"


def test_the_page_reads_its_period_once(client, monkeypatch, orders):
    from dispatch import stats

    reads = []
    period = stats._period
    monkeypatch.setattr(stats, "_period", lambda *a: reads.append(a) or period(*a))
    assert client.get("/stats?by=department").status_code == 200
    assert len(reads) == 1
