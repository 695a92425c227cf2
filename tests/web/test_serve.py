"""``gridline serve`` on a fresh install: waitress serves the demo district with no set-up."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import PROJECT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_main_command_serves_the_demo_district(tmp_path):
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert "pip install . && gridline serve" in readme
    gridline = shutil.which("gridline")
    assert gridline, "the gridline script is not installed (pip install -e .)"
    port = free_port()
    env = {**os.environ, "GRIDLINE_INSTANCE": str(tmp_path / "instance")}
    env.pop("GRIDLINE_DATABASE_URL", None)
    server = subprocess.Popen([gridline, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, ready = time.monotonic() + 120, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = requests.get(f"{base}/readyz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, "the server did not start"
        answer = requests.get(f"{base}/point/4326/108.93,34.26", timeout=10,
                              headers={"X-Request-ID": "served-1"})
        assert answer.status_code == 200 and answer.json()["grid"]["code"].startswith("610104")
        assert answer.headers["Server"] == "gridline"
        assert requests.get(f"{base}/open311/v2/services.json", timeout=10).json()
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)  # also closes the pipe
    # Every request is logged on stderr as one JSON line; so is anything else logged.
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    [served] = [line for line in lines if line.get("request_id") == "served-1"]
    assert served["path"] == "/point/4326/108.93,34.26" and served["status"] == 200
    assert any(line.get("path") == "/open311/v2/services.json" for line in lines)
    assert (tmp_path / "instance" / "gridline.db").exists()
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o077 == 0


def test_several_workers_share_the_port_and_lose_no_report(tmp_path, demo):
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine, func, select

    from dispatch import schema as t
    from tests.dispatch.helpers import report

    port = free_port()
    instance = tmp_path / "instance"
    env = {**os.environ, "GRIDLINE_INSTANCE": str(instance), "PYTHONPATH": str(PROJECT),
           "GRIDLINE_REPORT_RATE_LIMIT": "1000 per minute"}
    env.pop("GRIDLINE_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port),
                               "--workers", "2", "--threads", "4"], env=env, cwd=PROJECT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    engine = create_engine(f"sqlite:///{instance / 'gridline.db'}")
    try:
        wait_until_ready(base, server)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) == 2

        def post(i):
            return requests.post(f"{base}/api/v1/reports", timeout=30, json=report(
                demo, 7 * i, category="garbage", idempotency_key=f"w{i}")).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(post, range(40)))
        assert codes == [201] * 40
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(t.reports)).scalar() == 40
            deadline = time.monotonic() + 20  # the first worker sends every worker's events
            while time.monotonic() < deadline and connection.execute(
                    select(func.count()).select_from(t.outbox).where(
                        t.outbox.c.delivered_at.is_(None))).scalar():
                connection.rollback()
                time.sleep(0.2)
            pending = connection.execute(select(func.count()).select_from(t.outbox).where(
                t.outbox.c.delivered_at.is_(None))).scalar()
        assert pending == 0
    finally:
        engine.dispose()
        server.terminate()
        server.communicate(timeout=30)
    assert server.returncode is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/readyz", timeout=2)


def test_workers_take_even_shares_of_the_connections(tmp_path):
    """A keep-alive connection stays with the worker that took it; on one shared socket a burst
    of new connections went mostly to one worker (30 of 32 was seen) while the other idled."""
    port = free_port()
    env = {**os.environ, "GRIDLINE_INSTANCE": str(tmp_path / "instance"),
           "PYTHONPATH": str(PROJECT)}
    env.pop("GRIDLINE_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port),
                               "--workers", "2", "--threads", "2"], env=env, cwd=PROJECT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connections = []
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", server)
        workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        connections = [socket.create_connection(("127.0.0.1", port), timeout=60)
                       for _ in range(64)]
        for connection in connections:  # an answer on each: every one has been taken
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        shares = _connections_held(workers, port)
        # Spread at random, 64 connections leave fewer than 12 with a worker once in 10^7.
        assert sum(shares.values()) >= 64 and min(shares.values()) >= 12, shares
    finally:
        for connection in connections:
            connection.close()
        server.terminate()
        server.wait(timeout=30)


def test_port_0_serves_on_a_free_port_and_says_which(tmp_path):
    env = {**os.environ, "GRIDLINE_INSTANCE": str(tmp_path / "instance")}
    env.pop("GRIDLINE_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", "0"],
                              env=env, cwd=PROJECT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        for line in server.stdout:  # a line for the demo district's set-up comes first
            if "serving on" in line:
                break
        url = line.split("serving on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
        assert requests.get(f"{url}healthz", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_a_port_in_use_is_refused_though_workers_share_theirs():
    """Workers' sockets may join each other on one port; another server's may not, though its
    sockets allow it too (as another gridline's workers' do)."""
    with socket.create_server(("127.0.0.1", 0), reuse_port=True) as taken:
        port = taken.getsockname()[1]
        refused = subprocess.run(
            [sys.executable, "-c", "import sys; from web.serving import serve; "
             "serve(lambda n: None, '127.0.0.1', int(sys.argv[1]), 1, workers=2)", str(port)],
            cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)}, capture_output=True,
            text=True, timeout=60)
    assert refused.returncode != 0 and "Address already in use" in refused.stderr


def _connections_held(pids: list[str], port: int) -> dict[str, int]:
    """How many established connections to ``port`` each process holds (from /proc)."""
    inodes = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # ESTABLISHED
            inodes[fields[9]] = 0
    held = {}
    for pid in pids:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()
                 if os.path.islink(fd)]
        held[pid] = sum(link[8:-1] in inodes for link in links if link.startswith("socket:"))
    return held


def wait_until_ready(base: str, server) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still busy starting
            pass
        time.sleep(0.3)
    raise AssertionError("the server did not start")


def test_a_log_level_that_does_not_exist_is_refused(tmp_path):
    env = {**os.environ, "GRIDLINE_INSTANCE": str(tmp_path / "instance"),
           "GRIDLINE_LOG_LEVEL": "chatty"}
    env.pop("GRIDLINE_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "web.cli", "serve", "--port",
                           str(free_port())], env=env, cwd=PROJECT, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 2
    assert "GRIDLINE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR" in done.stderr
