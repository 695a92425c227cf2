"""Group commit: many threads' intake writes share one transaction, and so one commit.

With ``synchronous=FULL`` (SQLite) or ``synchronous_commit`` (PostgreSQL) every commit waits for
the disk; under load that wait, not the work, limits how many reports a server takes. A
:class:`GroupCommit` runs the writes that queued up meanwhile in one shared transaction and
commits once for all of them. A caller is answered only after that commit, so an acknowledged
report is as durable as before. Writes seldom fail, so a batch first runs without savepoints
(each costs two statements); if one write fails, the whole batch is rolled back and run again
with each write in its own savepoint, so that the failing one raises in its own caller and the
others are kept. Writes must therefore be safe to run again: they read what they need from the
transaction they are given and change nothing outside it.
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
    work: Callable
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, db, max_batch: int = MAX_BATCH):
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="gridline-group-commit",
                                        daemon=True)
        self._thread.start()

    def run(self, work: Callable):
        """Run ``work(uow)`` in the next shared transaction; its result once committed."""
        job = _Job(work)
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
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)
                    break
                jobs.append(job)
            self._commit(jobs)

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            with self.db.unit_of_work() as uow:
                for job in jobs:
                    job.result = job.work(uow)
        except Exception:  # one write failed, or the commit did: isolate each write
            self._commit_separately(jobs)
        for job in jobs:
            job.done.set()

    def _commit_separately(self, jobs: list[_Job]) -> None:
        try:
            with self.db.unit_of_work() as uow:
                for job in jobs:
                    job.result, job.error = None, None
                    try:
                        with uow.connection.begin_nested():
                            job.result = job.work(uow)
                    except Exception as exc:  # this caller's own failure, raised to it
                        job.error = exc
        except Exception as exc:  # the shared commit failed: every write in it is lost
            for job in jobs:
                job.result, job.error = None, job.error or exc
