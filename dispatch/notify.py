"""Notifications: events leave through an outbox table, so none is lost.

Work-order events (assigned, summoned, overdue, state changes ...) are written to ``outbox`` in
the same transaction as the change. :func:`deliver_outbox` then hands each pending event to a
:class:`Notifier`; a failed delivery is retried later with exponential back-off, so a dead
webhook or a crash between commit and delivery delays a notification but never drops it.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from sqlalchemy import select, update

from dispatch import schema as t

log = logging.getLogger("gridline.notify")
BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 3600


class Notifier:
    """Delivers one event payload; raises on failure (the outbox retries it)."""

    def send(self, payload: dict) -> None:
        raise NotImplementedError


class LogNotifier(Notifier):
    """Writes each event to the ``gridline.notify`` log as one JSON line."""

    def send(self, payload: dict) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(json.dumps(payload, ensure_ascii=False, sort_keys=True))


class WebhookNotifier(Notifier):
    """POSTs each event as JSON to ``url``; any non-2xx answer or network error is a failure."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url
        self.timeout = timeout

    def send(self, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"webhook answered {response.status}")


def notifier_from_settings(webhook_url: str | None) -> Notifier:
    return WebhookNotifier(webhook_url) if webhook_url else LogNotifier()


def deliver_outbox(db, notifier: Notifier, now: datetime, limit: int = 500) -> dict:
    """Send pending events whose time has come; returns counts of delivered and failed."""
    with db.read() as uow:
        rows = uow.execute(select(t.outbox).where(
            t.outbox.c.delivered_at.is_(None), t.outbox.c.next_attempt_at <= now)
            .order_by(t.outbox.c.id).limit(limit)).all()
    delivered, failures = [], []
    for row in rows:
        try:
            notifier.send(row.payload)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            delay = min(BACKOFF_SECONDS * 2 ** row.attempts, MAX_BACKOFF_SECONDS)
            failures.append((row.id, {"attempts": row.attempts + 1,
                                      "last_error": str(exc)[:500],
                                      "next_attempt_at": now + timedelta(seconds=delay)}))
        else:
            delivered.append(row.id)
    if delivered or failures:
        with db.unit_of_work() as uow:  # one write for the whole round
            # Lock this round's rows in id order first, so concurrent rounds (other threads or
            # processes) wait for each other instead of deadlocking on PostgreSQL.
            uow.execute(select(t.outbox.c.id)
                        .where(t.outbox.c.id.in_(delivered + [i for i, _ in failures]))
                        .order_by(t.outbox.c.id).with_for_update())
            if delivered:
                uow.execute(update(t.outbox).where(t.outbox.c.id.in_(delivered)).values(
                    attempts=t.outbox.c.attempts + 1, delivered_at=now, last_error=None))
            for row_id, values in failures:
                uow.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(values))
    return {"delivered": len(delivered), "failed": len(failures)}
