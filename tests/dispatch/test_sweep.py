"""The sweep beside people acting on the same orders and beside another sweep, on both
databases: no round stops half-way, and each missed deadline is marked once."""

import threading
from collections import Counter

from sqlalchemy import select

from dispatch import schema as t
from dispatch.errors import Conflict, IllegalTransition
from dispatch.model import WorkOrder
from dispatch.services import Actor
from tests.dispatch.helpers import report

WORKER = Actor("李网格员", "gridworker")
DISPATCHER = Actor("王调度", "dispatcher")
ORDERS = 8


def persist(action, outcomes: list, attempts: int = 50) -> None:
    """Run ``action`` as a person would: after a conflict reload and try again; an action the
    order no longer allows is given up."""
    for _ in range(attempts):
        try:
            action()
            outcomes.append("done")
            return
        except Conflict:
            outcomes.append("conflict")
        except IllegalTransition:
            outcomes.append("refused")
            return
    raise AssertionError(f"still conflicting after {attempts} attempts")


def run_together(*targets) -> list[BaseException]:
    """Start every target at once in its own thread; the exceptions they raised."""
    start, errors = threading.Barrier(len(targets)), []

    def run(target):
        start.wait()
        try:
            target()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def overdue_marks(service) -> tuple[Counter, Counter]:
    """How often each (order, kind of deadline) was marked missed: in the audit trail, and in
    the events sent."""
    with service.db.read() as uow:
        trail = uow.execute(select(t.audit.c.work_order_id, t.audit.c.note).where(
            t.audit.c.action == "overdue")).all()
        events = uow.execute(select(t.outbox.c.work_order_id, t.outbox.c.payload).where(
            t.outbox.c.event == "overdue")).all()
    audited = Counter((order_id, note.split()[0]) for order_id, note in trail)
    sent = Counter((order_id, payload["kind"]) for order_id, payload in events)
    return audited, sent


def test_an_action_meanwhile_neither_stops_the_sweep_nor_is_lost(service, demo, clock,
                                                                 monkeypatch):
    """The exact interleaving that used to abandon the round: a person accepts the order the
    sweep has just read, before the sweep saves it."""
    order_id = service.submit_report(report(demo))["work_order_id"]
    clock.advance(minutes=31)  # the respond deadline has passed
    outcomes: list = []
    person = threading.Thread(target=persist, args=(
        lambda: service.act(order_id, "accept", WORKER), outcomes))
    check = WorkOrder.check_deadlines

    def check_while_someone_acts(order, now):
        if not person.is_alive() and not outcomes:
            person.start()
            person.join(timeout=1.0)  # the accept commits now unless the sweep holds it off
        return check(order, now)

    monkeypatch.setattr(WorkOrder, "check_deadlines", check_while_someone_acts)
    assert service.sweep()["marked"] == 1
    person.join(timeout=30)
    assert outcomes[-1] == "done"
    order = service.order(order_id, staff=True)
    assert order["state"] == "accepted" and order["respond_overdue"]
    assert [a["action"] for a in order["audit"]] == ["dispatch", "overdue", "accept"]
    assert order["version"] == 3


def test_an_action_waits_for_a_change_in_progress_instead_of_conflicting(service, demo,
                                                                      clock):
    """A person accepting an order while a sweep holds it waits for the sweep's commit and
    then accepts the order as the sweep left it: no Conflict to retry."""
    order_id = service.submit_report(report(demo))["work_order_id"]
    clock.advance(minutes=31)  # the respond deadline has passed
    holding, release, answers = threading.Event(), threading.Event(), []

    def sweep_holding_the_order():
        with service.db.unit_of_work() as uow:
            order = uow.orders.get(order_id, lock=True)
            assert order.check_deadlines(clock())
            uow.orders.save(order)
            holding.set()
            release.wait(30)

    def accept():
        try:
            answers.append(service.act(order_id, "accept", WORKER))
        except Exception as exc:  # inspected below
            answers.append(exc)

    sweeper, person = (threading.Thread(target=sweep_holding_the_order),
                       threading.Thread(target=accept))
    sweeper.start()
    assert holding.wait(30)
    person.start()
    person.join(timeout=1.0)
    assert person.is_alive() and not answers  # waiting, not failed
    release.set()
    sweeper.join(timeout=30)
    person.join(timeout=30)
    assert not isinstance(answers[0], Exception), answers
    assert answers[0]["state"] == "accepted" and answers[0]["version"] == 3
    assert [a["action"] for a in answers[0]["audit"]] == ["dispatch", "overdue", "accept"]


def test_two_sweeps_and_people_racing_mark_each_deadline_once(service, demo, clock):
    ids = [service.submit_report(report(demo, 60 * i + 10))["work_order_id"]
           for i in range(ORDERS)]
    whistled = ids[::2]
    for order_id in whistled:
        service.blow_whistle(order_id, ["zhujian", "chengguan"], 20, DISPATCHER)
    clock.advance(days=2)  # respond, resolve and report-for-duty deadlines have all passed
    accepts, duties, sweeps = [], [], []

    def accept_all():
        for order_id in ids:
            persist(lambda o=order_id: service.act(o, "accept", WORKER), accepts)

    def report_for_duty_all():
        for order_id in reversed(whistled):
            persist(lambda o=order_id: service.report_for_duty(o, 1, "zhujian", WORKER),
                    duties)

    def sweep():
        sweeps.append(service.sweep()["marked"])

    assert run_together(sweep, sweep, accept_all, report_for_duty_all) == []
    assert len(sweeps) == 2
    assert service.sweep()["marked"] == 0  # nothing was left unmarked

    audited, sent = overdue_marks(service)
    assert audited == sent  # every mark in the trail left as one event
    with service.db.read() as uow:
        rows = {r.id: r for r in uow.execute(select(t.work_orders))}
        parts = {(s.work_order_id, s.department): s for s in uow.execute(select(t.summons))}
    for order_id in ids:
        row = rows[order_id]
        actions = [a["note"].split()[0] if a["action"] == "overdue" else a["action"]
                   for a in service.order(order_id, staff=True)["audit"]]
        assert row.state == "accepted" and actions.count("accept") == 1
        assert row.resolve_overdue and audited[(order_id, "resolve")] == 1
        # The respond deadline runs until the order is accepted: marked before that, or never.
        assert audited[(order_id, "respond")] == int(row.respond_overdue)
        if row.respond_overdue:
            assert actions.index("respond") < actions.index("accept")
        overdue_parts = [p for (o, _), p in parts.items() if o == order_id and p.overdue]
        assert audited[(order_id, "summons")] == len(overdue_parts)
    for (_, department), part in parts.items():
        if department == "chengguan":  # never reported for duty: surely marked
            assert part.overdue and part.reported_at is None
        else:
            assert part.reported_at is not None
    # Every save raised the version by one: the people's changes and the sweeps' marks.
    saves = accepts.count("done") + duties.count("done") + len(whistled) + sum(sweeps)
    assert sum(row.version - 1 for row in rows.values()) == saves
