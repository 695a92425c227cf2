"""Report ingestion over HTTP against the real server, beside a bare JSON echo on the same stack.

First a Flask ``/echo`` endpoint, then ``gridline serve`` on SQLite (a fresh instance folder)
and on PostgreSQL + PostGIS (a fresh database, ``--database``, on the server of
``GRIDLINE_TEST_DATABASE_URL``, default 127.0.0.1:5432) are served by the same serving code
(:mod:`web.serving`: waitress, THREADS threads in each of ``--workers`` processes) and loaded
for ``--seconds`` by CONNECTIONS keep-alive connections, each posting its next report as soon as
the last is answered. Printed for each: acknowledged requests per second, p50 and p99 latency,
failures (by status), CPU time per request — the server's processes, a PostgreSQL on this
machine (its ``postgres`` processes) and the whole machine, load generator included — and how
busy the machine was, and whether every acknowledged report is in the database; the last line
is ``ingest_ratio=<ours/echo>`` (the lower of the two databases). When the machine is near
100 % busy, its CPU per request is what decides throughput: the ratio then comes close to the
echo's machine CPU per request over ours. gridline runs with
``GRIDLINE_LOG_LEVEL=WARNING``: like the echo, it writes no line per request.

    python benchmarks/bench_http.py [--seconds 20] [--connections 32] [--workers 2]
                                    [--database gridline_bench]
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
from collections import Counter
from pathlib import Path

import shapely
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
THREADS = 16
WORKERS = 2
PROCESSES = 4
# The load generator shares the machine with the server, so it is kept light: a few processes,
# each driving its share of keep-alive connections from one selector loop, with every request's
# bytes built before the clock starts. Each connection sends its next report as soon as the
# answer to the last one is in (a closed loop), and every answer is read whole.
LOAD = textwrap.dedent('''
    import json, random, selectors, socket, sys, time
    host, port, path, seconds, connections, kind, first = sys.argv[1:8]
    seconds, connections, first = float(seconds), int(connections), int(first)
    points = json.loads(sys.stdin.read())
    categories = ["garbage", "noise", "streetlight", "water_leak", "illegal_parking"]
    def request(n, i, rng):
        lon, lat = points[rng.randrange(len(points))]
        body = json.dumps({"category": categories[rng.randrange(5)], "description": "bench",
                           "lon": lon, "lat": lat, "idempotency_key": f"{kind}-{n}-{i}"})
        return (f"POST {path} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\n"
                f"Content-Type: application/json\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n"
                f"{body}").encode()
    class Connection:
        def __init__(self, n):
            self.n, self.i, self.rng = n, 0, random.Random(n)
            self.sock = socket.create_connection((host, int(port)))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.queue = [request(n, i, self.rng) for i in range(QUEUE)]
        def send(self):
            self.buffer, self.started = b"", time.perf_counter()
            self.sock.sendall(self.queue[self.i])
            self.i += 1
        def answer(self):
            """(status, seconds) once a whole answer is in, else None."""
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buffer += chunk
            head, sep, body = self.buffer.partition(b"\\r\\n\\r\\n")
            if not sep:
                return None
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\\r\\n")
                          if line.lower().startswith(b"content-length:"))
            if len(body) < length:
                return None
            return int(head.split(b" ", 2)[1]), time.perf_counter() - self.started
    # Distinct requests per connection (keys stay unique): enough for 20 s at 25 000 req/s
    # over 32 connections; a connection that runs out before the time is up fails the run.
    QUEUE = 16000
    open_ = [Connection(n) for n in range(first, first + connections)]
    selector = selectors.DefaultSelector()
    for c in open_:
        selector.register(c.sock, selectors.EVENT_READ, c)
    results, stop_at = [], time.perf_counter() + seconds
    for c in open_:
        c.send()
    busy = len(open_)
    while busy:
        for key, _ in selector.select(timeout=30):
            c = key.data
            try:
                done = c.answer()
            except OSError:
                done = (0, time.perf_counter() - c.started)
            if done is None:
                continue
            results.append(done)
            if c.i >= QUEUE and time.perf_counter() < stop_at:
                sys.exit(f"a connection sent all its {QUEUE} requests before the time was up")
            if done[0] == 0 or time.perf_counter() >= stop_at:
                selector.unregister(c.sock)
                c.sock.close()
                busy -= 1
            else:
                c.send()
    print(json.dumps(results))
''')
ECHO = textwrap.dedent('''
    import sys
    from flask import Flask, jsonify, request
    from web.serving import serve
    def make_app(_number):
        app = Flask(__name__)
        @app.get("/echo")
        def ready():
            return jsonify({})
        @app.post("/echo")
        def echo():
            return jsonify(request.get_json()), 201
        return app
    serve(make_app, "127.0.0.1", int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
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


def load(port, path, seconds, connections, kind, points) -> list[tuple[float, int]]:
    """(seconds, status) of every request, from PROCESSES generator processes sharing the
    connections."""
    share = [connections // PROCESSES + (i < connections % PROCESSES) for i in range(PROCESSES)]
    starts = [sum(share[:i]) for i in range(PROCESSES)]
    runs = [subprocess.Popen([sys.executable, "-c", LOAD, "127.0.0.1", str(port), path,
                              str(seconds), str(n), kind, str(first)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for n, first in zip(share, starts, strict=True) if n]
    for run in runs:
        run.stdin.write(json.dumps(points))
        run.stdin.close()
    results = []
    for run in runs:
        out = run.stdout.read()
        if run.wait() != 0:
            raise RuntimeError("a load process failed")
        results += [(r[1], r[0]) for r in json.loads(out)]
    return results


def process_cpu(pids) -> dict[int, float]:
    """CPU seconds used so far by each of the processes ``pids`` still running."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def cpu_since(before: dict[int, float], now: dict[int, float]) -> float:
    """CPU seconds used between two :func:`process_cpu` readings (a process started in
    between counts whole)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())


def server_pids(pid: int) -> list[int]:
    """Process ``pid`` and its children (the server's workers)."""
    return [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]


def postgres_pids() -> list[int]:
    """The processes of a PostgreSQL server on this machine (none if it runs elsewhere)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                pids.append(int(entry.name))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return pids


def machine_ticks() -> tuple[int, int]:
    """(idle, all) CPU ticks of the whole machine so far."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def measured_load(server, port, path, seconds, connections, kind, points):
    """:func:`load`, and what it cost: CPU per request of the server, of the database's
    processes and of the whole machine, and how busy the machine was (the load generator
    shares it)."""
    cpu, db_cpu = process_cpu(server_pids(server.pid)), process_cpu(postgres_pids())
    idle, ticks = machine_ticks()
    results = load(port, path, seconds, connections, kind, points)
    cpu = cpu_since(cpu, process_cpu(server_pids(server.pid)))
    db_cpu = cpu_since(db_cpu, process_cpu(postgres_pids()))
    idle, ticks = (now - then for now, then in zip(machine_ticks(), (idle, ticks), strict=True))
    per_request = 1000 / max(len(results), 1)
    return results, {"cpu_ms": cpu * per_request, "db_cpu_ms": db_cpu * per_request,
                     "machine_cpu_ms": (ticks - idle) / os.sysconf("SC_CLK_TCK") * per_request,
                     "busy": 1 - idle / max(ticks, 1)}


def summary(name, results, seconds, usage) -> dict:
    latencies = sorted(r[0] for r in results)
    ok = [r for r in results if r[1] in (200, 201)]
    figures = {"name": name, "requests": len(results), "acknowledged": len(ok),
               "failed": len(results) - len(ok), "rps": len(ok) / seconds,
               "p50_ms": 1000 * latencies[len(latencies) // 2],
               "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
               **usage}
    failures = Counter(r[1] for r in results if r[1] not in (200, 201))
    print(f"{name:22} {figures['rps']:8.1f} req/s   p50 {figures['p50_ms']:7.1f} ms   "
          f"p99 {figures['p99_ms']:7.1f} ms   failed {figures['failed']}"
          + "".join(f", {n} × {'no answer' if s == 0 else s}" for s, n in failures.items()))
    print(f"{'':22} CPU per request: server {usage['cpu_ms']:.2f} ms, database "
          f"{usage['db_cpu_ms']:.2f} ms, machine {usage['machine_cpu_ms']:.2f} ms "
          f"({100 * usage['busy']:.0f} % busy)")
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


def run_backend(name, database_url, seconds, connections, workers, points) -> dict:
    instance = tempfile.mkdtemp(prefix="gridline-bench-")
    database_url = database_url or f"sqlite:///{instance}/gridline.db"
    port = free_port()
    env = {**os.environ, "GRIDLINE_INSTANCE": instance, "GRIDLINE_DATABASE_URL": database_url,
           "GRIDLINE_REPORT_RATE_LIMIT": "100000000 per minute",
           "GRIDLINE_LOG_LEVEL": "WARNING"}  # no access log lines, as the echo writes none
    server = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port),
                               "--threads", str(THREADS), "--workers", str(workers)],
                              env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        results, usage = measured_load(server, port, "/api/v1/reports", seconds, connections,
                                       name, points)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = summary(f"gridline ({name})", results, seconds, usage)
    stored = stored_reports(database_url)
    figures["all_stored"] = stored >= figures["acknowledged"]
    print(f"{'':22} acknowledged {figures['acknowledged']}, in the database {stored}")
    return figures


def run_echo(seconds, connections, workers, points) -> dict:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", ECHO, str(port), str(THREADS),
                               str(workers)], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/echo")
        results, usage = measured_load(server, port, "/echo", seconds, connections, "echo",
                                       points)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return summary("echo (Flask+waitress)", results, seconds, usage)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help="server processes, for gridline and the echo alike")
    parser.add_argument("--database", default="gridline_bench",
                        help="PostgreSQL database to (re)create for the run")
    args = parser.parse_args()
    points = sample_points()
    echo = run_echo(args.seconds, args.connections, args.workers, points)
    ours = [run_backend("sqlite", None, args.seconds, args.connections, args.workers, points),
            run_backend("postgresql", postgres_url(args.database), args.seconds,
                        args.connections, args.workers, points)]
    for figures in ours:
        print(f"{figures['name']}: ingest_ratio={figures['rps'] / echo['rps']:.3f} "
              f"failed={figures['failed']} all_stored={str(figures['all_stored']).lower()}")
    worst = min(f["rps"] for f in ours) / echo["rps"]
    print(f"ingest_ratio={worst:.3f}")


if __name__ == "__main__":
    main()
