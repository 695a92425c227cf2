"""Notifications: a real webhook server that fails, then recovers; nothing is lost, and two
deliverers send each event once."""

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from dispatch import schema as t
from dispatch.notify import BACKOFF_SECONDS, LEASE_SECONDS, WebhookNotifier
from tests.dispatch.helpers import report
from tests.dispatch.test_processes import finish, spawn


class Hook(BaseHTTPRequestHandler):
    fail = True
    delay = 0.0  # seconds each delivery takes
    received: list = []

    def do_POST(self):  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(Hook.delay)
        if Hook.fail:
            self.send_response(503)
        else:
            Hook.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Hook.fail, Hook.delay, Hook.received = True, 0.0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/events"
    server.shutdown()
    server.server_close()


def pending(service):
    with service.db.unit_of_work() as uow:
        return uow.execute(select(t.outbox).where(t.outbox.c.delivered_at.is_(None))).all()


def test_failed_deliveries_are_retried_with_back_off_until_they_arrive(service, demo, clock,
                                                                      webhook):
    service.notifier = WebhookNotifier(webhook, timeout=2)
    order_id = service.submit_report(report(demo))["work_order_id"]
    waiting = pending(service)
    assert len(waiting) == 2 and all(r.attempts == 1 for r in waiting)
    assert "503" in waiting[0].last_error
    assert service.deliver() == {"delivered": 0, "failed": 0}  # backing off: not due yet
    clock.advance(seconds=BACKOFF_SECONDS + 1)
    assert service.deliver() == {"delivered": 0, "failed": 2}
    assert {r.attempts for r in pending(service)} == {2}
    Hook.fail = False
    clock.advance(seconds=2 * BACKOFF_SECONDS + 1)
    assert service.deliver() == {"delivered": 2, "failed": 0}
    assert pending(service) == []
    assert {e["event"] for e in Hook.received} == {"assigned", "state_changed"}
    assert all(e["work_order_id"] == order_id for e in Hook.received)


class Odd(BaseHTTPRequestHandler):
    """A receiver that answers a POST with a broken status line or a redirect."""

    mode = "garbage"
    fetched: list = []  # paths asked for with GET (where a followed redirect would go)

    def do_POST(self):  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        if Odd.mode == "garbage":
            self.wfile.write(b"NONSENSE\r\n\r\n")
            return
        self.send_response(301)
        self.send_header("Location", "/moved")
        self.end_headers()

    def do_GET(self):  # noqa: N802
        Odd.fetched.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def odd():
    Odd.fetched = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/events"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode, error", [("garbage", "NONSENSE"), ("redirect", "redirects to")])
def test_a_receiver_that_misbehaves_fails_its_events_and_the_report_stands(service, demo, clock,
                                                                           odd, mode, error):
    Odd.mode = mode
    service.notifier = WebhookNotifier(odd, timeout=2)
    answer = service.submit_report(report(demo))  # delivered at once, inline
    assert answer["outcome"] == "created"
    waiting = pending(service)
    assert len(waiting) == 2 and all(r.attempts == 1 and error in r.last_error for r in waiting)
    assert Odd.fetched == []  # a redirect is not followed: the event would be lost in a GET
    clock.advance(seconds=BACKOFF_SECONDS + 1)
    assert service.deliver() == {"delivered": 0, "failed": 2}


def test_an_unreachable_webhook_loses_nothing(service, demo, clock):
    service.notifier = WebhookNotifier("http://127.0.0.1:9/nowhere", timeout=1)
    service.submit_report(report(demo))
    assert len(pending(service)) == 2
    clock.advance(hours=2)
    service.sweep()  # also marks the missed respond deadline: one more event
    attempts = {r.event: r.attempts for r in pending(service)}
    assert attempts == {"assigned": 2, "state_changed": 2, "overdue": 1}


def test_the_background_worker_delivers_without_being_asked(service, demo, webhook):
    Hook.fail = False
    service.notifier = WebhookNotifier(webhook, timeout=2)
    worker = service.start_delivery_worker(interval=0.2)
    try:
        service.submit_report(report(demo))
        deadline = time.monotonic() + 10
        while pending(service) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.stop_delivery_worker(worker)
    assert not worker.is_alive()
    assert pending(service) == []
    assert {e["event"] for e in Hook.received} == {"assigned", "state_changed"}


def test_two_deliverers_send_each_event_once_with_its_id(service, database, clock, webhook,
                                                         tmp_path, demo):
    service.deliver_inline = False
    for i in range(25):
        service.submit_report(report(demo, 20 * i + 5))
    events = {r.id: r.payload for r in pending(service)}
    Hook.fail, Hook.delay = False, 0.005
    job = {"url": webhook, "now": clock.now.isoformat(), "limit": 4}
    start = time.time() + 6
    sent = finish([spawn("deliver", database, tmp_path / "media", job, start)
                   for _ in range(2)])
    assert sorted(e["event_id"] for e in Hook.received) == sorted(events)  # each one once
    assert sum(sent) == len(events) and min(sent) > 0  # both took part
    assert {e["event_id"]: {k: v for k, v in e.items() if k != "event_id"}
            for e in Hook.received} == events
    assert pending(service) == []


def test_events_claimed_by_a_deliverer_that_died_go_out_when_its_lease_ends(
        service, database, clock, webhook, tmp_path, demo):
    service.deliver_inline = False
    service.submit_report(report(demo))
    events = sorted(r.id for r in pending(service))
    Hook.fail = False
    job = {"now": clock.now.isoformat(), "limit": 10, "die": True}
    child = spawn("deliver", database, tmp_path / "media", job)
    _, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    assert all(r.claimed_until is not None for r in pending(service))
    service.notifier = WebhookNotifier(webhook, timeout=2)
    assert service.deliver() == {"delivered": 0, "failed": 0}  # still claimed: not sent twice
    clock.advance(seconds=LEASE_SECONDS - 1)
    assert service.deliver() == {"delivered": 0, "failed": 0}
    clock.advance(seconds=2)
    assert service.deliver() == {"delivered": len(events), "failed": 0}
    assert sorted(e["event_id"] for e in Hook.received) == events
    assert pending(service) == []
