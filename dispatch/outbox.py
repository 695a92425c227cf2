"""The outbox table: events wait there until delivered, each taken by one deliverer at a time.

A delivery round claims the due rows it will send for a while (a lease, ``claimed_until``),
sends them outside any transaction, then records how each went. The claim keeps two deliverers
— a server's worker and ``gridline sweep``, say — from sending one event twice: on PostgreSQL
the claim locks the rows it takes and skips the rows another claim is taking (``FOR UPDATE SKIP
LOCKED``); on SQLite the writer lock runs one claim at a time. A deliverer that dies after
claiming loses nothing: when its lease runs out the rows are due again (at least once, never
dropped).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from dispatch import schema as t

_o = t.outbox.c


def _due(now: datetime):
    """Not delivered, its (next) attempt due, and no round's lease running."""
    return (_o.delivered_at.is_(None), _o.next_attempt_at <= now,
            (_o.claimed_until.is_(None)) | (_o.claimed_until <= now))


class OutboxRepository:
    """Claim due events and record what became of them."""

    def __init__(self, connection: Connection):
        self.c = connection

    def any_due(self, now: datetime) -> bool:
        """Whether a round would find anything (a read: an idle round takes no write lock)."""
        return self.c.execute(select(_o.id).where(*_due(now)).limit(1)).first() is not None

    def claim(self, now: datetime, until: datetime, limit: int) -> list:
        """Take up to ``limit`` due events, oldest first, until ``until``: rows of id,
        attempts and payload. Rows another round is claiming right now are skipped."""
        ids = self.c.execute(select(_o.id).where(*_due(now)).order_by(_o.id).limit(limit)
                             .with_for_update(skip_locked=True)).scalars().all()
        if not ids:
            return []
        rows = self.c.execute(update(t.outbox).where(_o.id.in_(ids)).values(
            claimed_until=until).returning(_o.id, _o.attempts, _o.payload)).all()
        return sorted(rows, key=lambda row: row.id)

    def finish(self, now: datetime, until: datetime, delivered: list[int],
               failures: list[tuple[int, dict]], released: list[int]) -> None:
        """Record a round claimed until ``until``: ``delivered`` ids, ``failures`` as (id,
        new attempts/last_error/next_attempt_at) and ``released`` ids it did not get to.
        A failure or release whose lease another round has taken over is left to that round."""
        ids = sorted(delivered + [i for i, _ in failures] + released)
        # Lock the rows in id order first, so rounds that overlap (after a lease ran out)
        # wait for each other instead of deadlocking on PostgreSQL.
        self.c.execute(select(_o.id).where(_o.id.in_(ids)).order_by(_o.id).with_for_update())
        if delivered:
            self.c.execute(update(t.outbox).where(_o.id.in_(delivered)).values(
                attempts=_o.attempts + 1, delivered_at=now, last_error=None,
                claimed_until=None))
        for row_id, values in failures:
            self.c.execute(update(t.outbox).where(_o.id == row_id, _o.claimed_until == until)
                           .values(claimed_until=None, **values))
        if released:
            self.c.execute(update(t.outbox).where(_o.id.in_(released),
                                                  _o.claimed_until == until)
                           .values(claimed_until=None))
