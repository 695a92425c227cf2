"""The hotspot page for 100 000 reports: its size, how long the server takes to make it, and
how long headless chromium takes to open it — beside the obvious alternative in the same run,
a Folium heat map fed every report point (aggregation left to the browser).

An instance on a fresh SQLite file gets the demo district and REPORTS archived reports; both
pages are served by waitress on 127.0.0.1 and opened in Debian's chromium via Playwright
("open" = from navigation until the map has drawn its layers). Printed per page: bytes, server
seconds, browser seconds; the last lines are the ratios (heat map / hexagon page).

    python benchmarks/bench_pages.py [--reports 100000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import folium
from flask import Response
from folium.plugins import HeatMap
from playwright.sync_api import sync_playwright
from waitress.server import create_server

from dispatch.overview import report_points
from dispatch.roster import seed_report_history
from web import create_app
from web.maps import new_map

READY = """() => {
    const el = document.querySelector('.folium-map');
    const map = el && window[el.id];
    if (!map) return false;
    let layers = 0;
    map.eachLayer(() => layers++);
    return layers >= 1 && document.readyState === 'complete';
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gridline-bench-pages-"))
    try:
        run(folder, args.reports)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(folder: Path, reports: int) -> None:
    app = create_app({"INSTANCE": str(folder), "DATABASE_URL": f"sqlite:///{folder}/b.db",
                      "TESTING": True})
    service = app.extensions["gridline"]
    service.import_boundaries(Path(__file__).resolve().parents[1] / "data" / "boundaries" /
                              "demo.gpkg", activate=True)
    started = time.perf_counter()
    seed_report_history(service, reports)
    print(f"seeded {reports} reports in {time.perf_counter() - started:.1f} s")

    @app.get("/bench/heatmap")
    def heatmap():
        """The reference: every point shipped to the browser's heat layer."""
        bset = service.active_resolver()[1].boundaries
        lon, lat = report_points(service.db)
        m = new_map(bset.grids.total_bounds)
        heat = HeatMap(list(zip(lat.tolist(), lon.tolist(), strict=True)), radius=12)
        heat.default_js = [("leaflet-heat.js", "/bench/leaflet-heat.js")]
        heat.add_to(m)
        return m.get_root().render()

    @app.get("/bench/leaflet-heat.js")
    def heat_js():
        path = Path(folium.__file__).parent / "templates" / "leaflet_heat.min.js"
        return Response(path.read_text(), mimetype="text/javascript")

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}"
    client = app.test_client()
    client.get("/map/hotspots")  # build the resolver once, outside the timings
    results = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 args=["--no-sandbox"])
            for name, path in (("hexagons", "/map/hotspots?edge=250"),
                               ("heatmap (reference)", "/bench/heatmap")):
                results[name] = measure(client, browser, base, path)
            browser.close()
    finally:
        server.close()
        service.db.dispose()
    for name, (size, server_s, browser_s) in results.items():
        print(f"{name:22s} {size / 1e6:7.2f} MB  server {server_s:6.2f} s  "
              f"browser {browser_s:6.2f} s")
    ours, ref = results["hexagons"], results["heatmap (reference)"]
    print(f"size_ratio={ref[0] / ours[0]:.1f}  (heat map bytes / hexagon page bytes)")
    print(f"open_ratio={ref[2] / ours[2]:.1f}  (heat map browser time / hexagon page time)")


def measure(client, browser, base: str, path: str) -> tuple[int, float, float]:
    """Bytes and server seconds (best of three), and browser seconds to a drawn map (best of
    three)."""
    server_times, size = [], 0
    for _ in range(3):
        started = time.perf_counter()
        answer = client.get(path)
        server_times.append(time.perf_counter() - started)
        size = len(answer.data)
    browser_times = []
    for _ in range(3):
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(base + path)
        page.wait_for_function(READY, timeout=120_000)
        browser_times.append(time.perf_counter() - started)
        page.close()
    return size, min(server_times), min(browser_times)


if __name__ == "__main__":
    main()
