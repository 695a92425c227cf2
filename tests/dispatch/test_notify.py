"""Notifications: a real webhook server that fails, then recovers; nothing is lost."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from dispatch import schema as t
from dispatch.notify import BACKOFF_SECONDS, WebhookNotifier
from tests.dispatch.helpers import report


class Hook(BaseHTTPRequestHandler):
    fail = True
    received: list = []

    def do_POST(self):  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
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
    Hook.fail, Hook.received = True, []
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


def test_an_unreachable_webhook_loses_nothing(service, demo, clock):
    service.notifier = WebhookNotifier("http://127.0.0.1:9/nowhere", timeout=1)
    service.submit_report(report(demo))
    assert len(pending(service)) == 2
    clock.advance(hours=2)
    service.sweep()  # also marks the missed respond deadline: one more event
    attempts = {r.event: r.attempts for r in pending(service)}
    assert attempts == {"assigned": 2, "state_changed": 2, "overdue": 1}


def test_the_background_worker_delivers_without_being_asked(service, demo, webhook):
    import time

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
