"""Group commit: many threads' writes share one transaction, one batch of statements and one
commit.

With ``synchronous=FULL`` (SQLite) or ``synchronous_commit`` (PostgreSQL) every commit waits for
the disk, and every statement costs a round trip or a turn at the interpreter lock; under load
those, not the work, limit how many reports a server takes. A :class:`GroupCommit` hands the
items that queued up meanwhile to one ``write(uow, items)`` call in one shared transaction and
commits once for all of them. A caller is answered only after that commit, so an acknowledged
item is as durable as when written alone. Writes seldom fail, so a batch first runs whole; if it
fails, it is rolled back and each item is written again alone in its own savepoint, so that the
failing one raises in its own caller and the others are kept. ``write`` must therefore be safe
to run again: it reads what it needs from the transaction it is given and changes nothing
outside it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_BATCH = 64


@dataclass
class _Job:
    item: Any
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Batches for ``write(uow, items) -> results`` (one result per item, in order)."""

    def __init__(self, db, write: Callable[[Any, list], list], max_batch: int = MAX_BATCH,
                 lock: Callable[[Any, list], None] | None = None):
        """``lock(uow, items)``, if given, takes every lock that writing ``items`` together
        would take, in the order that write takes them. After a failed batch it runs before
        the items are written again one by one: taken item by item instead, the locks would
        be taken out of order, and that transaction and another batch could each wait for
        the other."""
        self.db = db
        self.write = write
        self.lock = lock
        self.max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="gridline-group-commit",
                                        daemon=True)
        self._thread.start()

    def run(self, item):
        """Write ``item`` in the next shared transaction; its result once committed."""
        job = _Job(item)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            self._commit([first])

    def _gather(self, jobs: list[_Job]) -> None:
        """Add the jobs waiting in the queue to ``jobs``, up to a batch."""
        while len(jobs) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is None:
                self._queue.put(None)
                return
            jobs.append(job)

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            with self.db.unit_of_work() as uow:
                # Gathered once the transaction has begun: on SQLite that is when the write
                # lock is held, so the batch takes in everything that arrived while it waited
                # for another process's batch.
                self._gather(jobs)
                results = self.write(uow, [job.item for job in jobs])
            for job, result in zip(jobs, results, strict=True):
                job.result = result
        except Exception:  # one item failed, or the commit did: isolate each item
            self._commit_separately(jobs)
        for job in jobs:
            job.done.set()

    def _commit_separately(self, jobs: list[_Job]) -> None:
        try:
            with self.db.unit_of_work() as uow:
                if self.lock is not None:
                    self.lock(uow, [job.item for job in jobs])
                for job in jobs:
                    job.result, job.error = None, None
                    try:
                        with uow.connection.begin_nested():
                            job.result = self.write(uow, [job.item])[0]
                    except Exception as exc:  # this caller's own failure, raised to it
                        job.error = exc
        except Exception as exc:  # the shared commit failed: every write in it is lost
            for job in jobs:
                job.result, job.error = None, job.error or exc
