"""``gridline serve`` on a fresh install: waitress serves the demo district with no set-up."""

import os
import shutil
import socket
import subprocess
import time

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
        answer = requests.get(f"{base}/point/4326/108.93,34.26", timeout=10)
        assert answer.status_code == 200 and answer.json()["grid"]["code"].startswith("610104")
        assert answer.headers["Server"] == "gridline"
        assert requests.get(f"{base}/open311/v2/services.json", timeout=10).json()
    finally:
        server.terminate()
        server.communicate(timeout=30)  # also closes the pipe
    assert (tmp_path / "instance" / "gridline.db").exists()
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o077 == 0
