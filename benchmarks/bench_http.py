"""Report ingestion over HTTP against the real server, beside a bare JSON echo on the same stack.

For each database (SQLite in a fresh instance folder, and PostgreSQL + PostGIS in a fresh
database (``--database``, default ``gridline_bench``) on the server of ``GRIDLINE_TEST_DATABASE_URL``, default
127.0.0.1:5432), ``gridline serve`` (waitress) is started and a separate load process keeps
CONNECTIONS keep-alive connections posting reports for DURATION seconds; then the same load
posts to a Flask ``/echo`` endpoint served by waitress with the same thread count. Printed:
requests per second, p50 and p99 latency, failures, and whether every acknowledged report is
in the database; the last line is ``ingest_ratio=<ours/echo>`` (the lower of the two databases).

    python benchmarks/bench_http.py [--seconds 20] [--connections 32] [--database NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import shapely
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
THREADS = 8
LOAD = textwrap.dedent('''
    import json, random, sys, threading, time
    import requests
    url, seconds, connections, kind = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    points = json.loads(sys.stdin.read())
    categories = ["garbage", "noise", "streetlight", "water_leak", "illegal_parking"]
    results, lock = [], threading.Lock()
    stop_at = time.perf_counter() + seconds
    def worker(n):
        rng = random.Random(n)
        session = requests.Session()
        mine, i = [], 0
        while time.perf_counter() < stop_at:
            lon, lat = points[rng.randrange(len(points))]
            body = {"category": categories[rng.randrange(5)], "description": "bench",
                    "lon": lon, "lat": lat, "idempotency_key": f"{kind}-{n}-{i}"}
            started = time.perf_counter()
            try:
                status = session.post(url, json=body, timeout=30).status_code
            except requests.RequestException:
                status = 0
            mine.append((time.perf_counter() - started, status))
            i += 1
        with lock:
            results.extend(mine)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads: thread.start()
    for thread in threads: thread.join()
    print(json.dumps(results))
''')
ECHO = textwrap.dedent('''
    import sys
    from flask import Flask, jsonify, request
    from waitress import serve
    app = Flask(__name__)
    @app.post("/echo")
    def echo():
        return jsonify(request.get_json()), 201
    serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]))
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, seconds: float = 120) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become ready")


def load(url, seconds, connections, kind, points) -> list[tuple[float, int]]:
    done = subprocess.run([sys.executable, "-c", LOAD, url, str(seconds), str(connections),
                           kind], input=json.dumps(points), capture_output=True, text=True,
                          check=True)
    return [tuple(r) for r in json.loads(done.stdout)]


def summary(name, results, seconds) -> dict:
    latencies = sorted(r[0] for r in results)
    ok = [r for r in results if r[1] in (200, 201)]
    figures = {"name": name, "requests": len(results), "acknowledged": len(ok),
               "failed": len(results) - len(ok), "rps": len(ok) / seconds,
               "p50_ms": 1000 * latencies[len(latencies) // 2],
               "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}
    print(f"{name:22} {figures['rps']:8.1f} req/s   p50 {figures['p50_ms']:7.1f} ms   "
          f"p99 {figures['p99_ms']:7.1f} ms   failed {figures['failed']}")
    return figures


def sample_points(n=500) -> list[list[float]]:
    from geo.boundaries import load_boundaries
    from geo.demo import default_source

    grids = load_boundaries(default_source()).grids
    points = grids.geometry.sample_points(1, rng=7).iloc[:n]
    return shapely.get_coordinates(points.values).tolist()


def postgres_url(name: str) -> str:
    base = os.environ.get("GRIDLINE_TEST_DATABASE_URL",
                          "postgresql://postgres@127.0.0.1:5432/gridline_test")
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = base.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    return url


def stored_reports(url: str) -> int:
    from dispatch import schema as t

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(t.reports)).scalar_one()
    engine.dispose()
    return count


def run_backend(name, database_url, seconds, connections, points) -> dict:
    instance = tempfile.mkdtemp(prefix="gridline-bench-")
    database_url = database_url or f"sqlite:///{instance}/gridline.db"
    port = free_port()
    env = {**os.environ, "GRIDLINE_INSTANCE": instance, "GRIDLINE_DATABASE_URL": database_url,
           "GRIDLINE_REPORT_RATE_LIMIT": "100000000 per minute"}
    server = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port),
                               "--threads", str(THREADS)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        results = load(f"http://127.0.0.1:{port}/api/v1/reports", seconds, connections, name,
                       points)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = summary(f"gridline ({name})", results, seconds)
    stored = stored_reports(database_url)
    figures["all_stored"] = stored >= figures["acknowledged"]
    print(f"{'':22} acknowledged {figures['acknowledged']}, in the database {stored}")
    return figures


def run_echo(seconds, connections, points) -> dict:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", ECHO, str(port), str(THREADS)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        results = load(f"http://127.0.0.1:{port}/echo", seconds, connections, "echo", points)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return summary("echo (Flask+waitress)", results, seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", default="gridline_bench",
                        help="PostgreSQL database to (re)create for the run")
    args = parser.parse_args()
    points = sample_points()
    echo = run_echo(args.seconds, args.connections, points)
    ours = [run_backend("sqlite", None, args.seconds, args.connections, points),
            run_backend("postgresql", postgres_url(args.database), args.seconds, args.connections, points)]
    for figures in ours:
        print(f"{figures['name']}: ingest_ratio={figures['rps'] / echo['rps']:.3f} "
              f"failed={figures['failed']} all_stored={str(figures['all_stored']).lower()}")
    worst = min(f["rps"] for f in ours) / echo["rps"]
    print(f"ingest_ratio={worst:.3f}")


if __name__ == "__main__":
    main()
