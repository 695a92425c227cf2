"""Group commit on both databases: concurrent intake shares commits and loses nothing."""

import threading

import pytest
from sqlalchemy import func, insert, select

from dispatch import schema as t
from dispatch.batching import GroupCommit
from tests.dispatch.helpers import report

CATEGORIES = ["garbage", "noise", "streetlight", "water_leak"]


def run_together(calls):
    """Start every call at once on its own thread; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # returned for the test to inspect
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture
def batched(service):
    service.start_group_commit()
    yield service
    service.group_commit.close()


def test_concurrent_reports_and_retries_through_group_commit(batched, demo):
    calls = []
    for i in range(12):
        data = report(demo, 40 * i + 3, category=CATEGORIES[i % 4], idempotency_key=f"k{i}")
        calls += [lambda d=data: batched.submit_report(d)] * 2  # each report sent twice at once
    answers = run_together(calls)
    assert not [a for a in answers if isinstance(a, Exception)]
    for first, second in zip(answers[::2], answers[1::2], strict=True):
        assert first == second
    with batched.db.read() as uow:
        reports = uow.execute(select(func.count()).select_from(t.reports)).scalar_one()
        orders = uow.execute(select(func.count()).select_from(t.work_orders)).scalar_one()
        audits = uow.execute(select(func.count()).select_from(t.audit)).scalar_one()
    created = sum(a["outcome"] == "created" for a in answers[::2])
    assert reports == 12 and orders == created >= 1
    assert audits == created + (12 - created)  # one dispatch per order, one attach per me-too


def test_one_failing_write_does_not_undo_the_others(service):
    def write(uow, names):
        for name in names:
            uow.execute(insert(t.departments).values(code=name, name=name))
            if name == "x1":
                raise ValueError("this one fails")
        return names

    group = GroupCommit(service.db, write)
    try:
        results = run_together([lambda n=n: group.run(n) for n in ("g1", "x1", "g2")])
    finally:
        group.close()
    assert results[0] == "g1" and results[2] == "g2" and isinstance(results[1], ValueError)
    with service.db.read() as uow:
        codes = set(uow.execute(select(t.departments.c.code)).scalars())
    assert {"g1", "g2"} <= codes and "x1" not in codes


def test_after_a_failed_batch_every_lock_is_taken_before_the_items_are_written_again(service):
    """Taken item by item, the retry's locks would come out of order (see GroupCommit)."""
    calls = []

    def lock(uow, names):
        calls.append(("lock", sorted(names)))

    def write(uow, names):
        calls.append(("write", list(names)))
        if "x1" in names:
            raise ValueError("this one fails")
        return names

    group = GroupCommit(service.db, write, lock=lock)
    try:
        results = run_together([lambda n=n: group.run(n) for n in ("g1", "x1", "g2")])
    finally:
        group.close()
    assert results[0] == "g1" and results[2] == "g2" and isinstance(results[1], ValueError)
    retries = [i for i, call in enumerate(calls) if call[0] == "lock"]
    assert retries, "no batch failed and was written again"
    for i in retries:  # each retry: its whole batch locked first, then item by item
        batch = calls[i][1]
        after = calls[i + 1:i + 1 + len(batch)]
        assert all(kind == "write" and len(items) == 1 for kind, items in after)
        assert sorted(items[0] for _, items in after) == batch
