"""Fixtures for the web service: an app over the seeded database, accounts for every role, and
a real waitress server on a free local port."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from waitress.server import create_server

from web import create_app

PASSWORD = "correct horse"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Hash the test accounts' passwords with a low scrypt cost: the cost is stored with each
    hash, so verification still runs the real code, in a fraction of the time."""
    monkeypatch.setattr("dispatch.accounts.SCRYPT", {"n": 2**4, "r": 8, "p": 1})


@pytest.fixture
def app(service, tmp_path):
    return create_app({"INSTANCE": str(tmp_path / "instance"), "TESTING": True,
                       "AUTO_UPGRADE": False}, service=service)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def people(app, demo):
    """One account and token per role; grid 100's gridworker, its street's dispatcher,
    another street's dispatcher, the zhujian department."""
    from sqlalchemy import select

    from dispatch import schema as t

    accounts = app.extensions["gridline.accounts"]
    service = app.extensions["gridline"]
    grid = demo.grids.iloc[100]
    other_street = next(s for s in demo.streets["code"] if s != grid["street_code"])
    with service.db.unit_of_work() as uow:
        ids = dict(uow.execute(select(t.gridworkers.c.role, t.gridworkers.c.id).join(
            t.gridworker_grids).where(t.gridworker_grids.c.grid_code == grid["code"])).all())
    specs = {
        "reporter": {"role": "reporter"}, "other_reporter": {"role": "reporter"},
        "gridworker": {"role": "gridworker", "gridworker_id": ids["gridworker"]},
        "grid_leader": {"role": "grid_leader", "gridworker_id": ids["grid_leader"]},
        "dispatcher": {"role": "dispatcher", "street_code": grid["street_code"]},
        "other_dispatcher": {"role": "dispatcher", "street_code": other_street},
        "department": {"role": "department", "department": "zhujian"},
        "other_department": {"role": "department", "department": "chengguan"},
        "planner": {"role": "planner"}, "admin": {"role": "admin"},
    }
    people = {}
    for name, spec in specs.items():
        role = spec.pop("role")
        user = accounts.add_user(name, PASSWORD, role, **spec)
        people[name] = {"user": user, "token": accounts.create_token(name),
                        "headers": {"Authorization": "Bearer " + accounts.create_token(name)}}
    return people


@pytest.fixture
def live(app):
    """The app served by waitress on 127.0.0.1: its base URL."""
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    stopping = threading.Event()

    def run():
        try:
            server.run()
        except OSError:
            # Closing the server under a poll that still holds client sockets ends the loop
            # with EBADF; only while stopping is that expected.
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    stopping.set()
    server.close()
    thread.join(timeout=5)


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
LOCAL = {"127.0.0.1"}


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: run scripts/test.sh, which installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


def wait_until(page, condition: str, arg=None, timeout: float = 15) -> None:
    """Poll ``condition`` (a JavaScript expression, or a function of ``arg``) in ``page`` until
    it is true, across navigations. Playwright's own ``wait_for_function`` evaluates a string
    inside the page, which the pages' Content-Security-Policy forbids."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(condition, arg):
                return
        except Error as exc:  # the page is navigating: ask the next one
            if "context was destroyed" not in str(exc):
                raise
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.05)


@pytest.fixture
def page(browser, request):
    """A fresh browser page that records every request it makes; on teardown it saves a
    screenshot under ``test-artifacts/screenshots`` and checks that no request left
    127.0.0.1."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.requested = []
    page.on("request", lambda r: page.requested.append(r.url))
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert_local(page.requested)


def assert_local(urls) -> None:
    """Every URL is on this machine (or inline data)."""
    outside = [u for u in urls if urlsplit(u).scheme not in ("data", "blob", "about")
               and urlsplit(u).hostname not in LOCAL]
    assert not outside, f"requests left the machine: {outside[:5]}"
