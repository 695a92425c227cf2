"""Notifications: events leave through an outbox table, so none is lost.

Work-order events (assigned, summoned, overdue, state changes ...) are written to ``outbox`` in
the same transaction as the change. :func:`deliver_outbox` then hands each pending event to a
:class:`Notifier`; a failed delivery is retried later with exponential back-off, so a dead
webhook or a crash between commit and delivery delays a notification but never drops it.

Delivery is at least once: a round claims its events first (:mod:`dispatch.outbox`), so two
deliverers never send one event at the same time, but a deliverer that dies after sending and
before recording it leaves the event to be sent again. Every payload therefore carries
``event_id``, the event's outbox row id, the same on every attempt: receivers drop an id they
have already seen.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

log = logging.getLogger("gridline.notify")
BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 3600
# How long a round may take to send what it claimed; it stops sending after half of it and
# gives the rest back, so no other round takes its events while it still sends them.
LEASE_SECONDS = 120


class Notifier:
    """Delivers one event payload; raises on failure (the outbox retries it)."""

    def send(self, payload: dict) -> None:
        raise NotImplementedError


class LogNotifier(Notifier):
    """Writes each event to the ``gridline.notify`` log as one JSON line."""

    def send(self, payload: dict) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(json.dumps(payload, ensure_ascii=False, sort_keys=True))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: followed, it would turn the POST into a GET without the event,
    and the event would count as delivered."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"webhook redirects to {newurl}: "
                                     "configure that address instead", headers, fp)


class WebhookNotifier(Notifier):
    """POSTs each event as JSON to ``url``; any answer but a 2xx (a redirect too) or a network
    error is a failure."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with self._opener.open(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"webhook answered {response.status}")


def notifier_from_settings(webhook_url: str | None) -> Notifier:
    return WebhookNotifier(webhook_url) if webhook_url else LogNotifier()


def deliver_outbox(db, notifier: Notifier, now: datetime, limit: int = 500,
                   lease: float = LEASE_SECONDS) -> dict:
    """Send pending events whose time has come, each with its ``event_id``; returns counts of
    delivered and failed.

    The round claims up to ``limit`` events for ``lease`` seconds (one short transaction),
    sends them, and records the outcomes (another): the events it sends are no other round's
    meanwhile, and if the round never records them they are due again once the lease is over.
    """
    with db.read() as uow:
        if not uow.outbox.any_due(now):
            return {"delivered": 0, "failed": 0}
    until = now + timedelta(seconds=lease)
    with db.unit_of_work() as uow:
        rows = uow.outbox.claim(now, until, limit)
    delivered, failures = [], []
    started = time.monotonic()
    for row in rows:
        if time.monotonic() - started > lease / 2:
            break
        try:
            notifier.send({"event_id": row.id, **row.payload})
        except Exception as exc:  # whatever a receiver does wrong fails this event alone
            log.warning("event %s not delivered: %s", row.id, exc)
            delay = min(BACKOFF_SECONDS * 2 ** row.attempts, MAX_BACKOFF_SECONDS)
            failures.append((row.id, {"attempts": row.attempts + 1,
                                      "last_error": str(exc)[:500],
                                      "next_attempt_at": now + timedelta(seconds=delay)}))
        else:
            delivered.append(row.id)
    released = [row.id for row in rows[len(delivered) + len(failures):]]
    if rows:
        with db.unit_of_work() as uow:
            uow.outbox.finish(now, until, delivered, failures, released)
    return {"delivered": len(delivered), "failed": len(failures)}
