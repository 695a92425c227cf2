"""Statistics agree with the audit trail and count in the district's time zone."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatch import schema as t
from dispatch.errors import InputError
from dispatch.services import Actor
from dispatch.stats import statistics
from tests.dispatch.helpers import photo, report

WORKER, DISPATCHER = Actor("w", "gridworker"), Actor("d", "dispatcher")


def close(service, order_id):
    for action in ("accept", "start"):
        service.act(order_id, action, WORKER)
    service.act(order_id, "resolve", WORKER, feedback="done", photo=photo())
    service.act(order_id, "verify", DISPATCHER)
    service.act(order_id, "close", DISPATCHER)


def test_figures_match_the_trail(service, demo, clock):
    ids = [service.submit_report(report(demo, 50 * i, category=c))["work_order_id"]
           for i, c in enumerate(["road_collapse", "garbage", "noise", "streetlight"])]
    close(service, ids[0])
    clock.advance(days=3)  # the next one closes late
    close(service, ids[1])
    service.act(ids[2], "reject", DISPATCHER, reason="不属实")
    service.sweep()
    [overall] = statistics(service.db, service.timezone)
    assert overall["reported"] == 4 and overall["closed"] == 3
    assert overall["closure_rate"] == 0.75
    assert overall["on_time_rate"] == 0.5
    with service.db.unit_of_work() as uow:
        trail = uow.execute(select(t.audit.c.work_order_id, t.audit.c.to_state)
                            .order_by(t.audit.c.id)).all()
    last = {}
    for order_id, state in trail:
        last[order_id] = state if state else last.get(order_id)
    assert sum(s in ("closed", "rejected", "duplicate") for s in last.values()) == 3
    by_category = {r["category"]: r for r in statistics(service.db, service.timezone,
                                                        by="category")}
    assert by_category["garbage"]["on_time_rate"] == 0.0
    assert by_category["road_collapse"]["median_hours_to_close"] == 0.0


def test_reopened_and_whistles_are_counted(service, demo, clock):
    order_id = service.submit_report(report(demo))["work_order_id"]
    service.blow_whistle(order_id, ["zhujian", "chengguan"], 30, DISPATCHER)
    service.report_for_duty(order_id, 1, "zhujian", Actor("zj", "department"))
    clock.advance(minutes=40)
    service.report_for_duty(order_id, 1, "chengguan", Actor("cg", "department"))
    close(service, order_id)
    service.act(order_id, "reopen", DISPATCHER, reason="again")
    [row] = statistics(service.db, service.timezone)
    assert row["reopened"] == 1 and row["whistles"] == 1
    assert row["whistles_answered_on_time"] == 0  # chengguan came 10 minutes late


def test_days_are_counted_in_the_district_time_zone(service, demo, clock):
    clock.now = clock.now.replace(hour=15, minute=30)  # 23:30 in Xi'an
    service.submit_report(report(demo, 10))
    clock.advance(hours=1)  # 00:30 the next day in Xi'an, still the same UTC day
    service.submit_report(report(demo, 300))
    days = statistics(service.db, service.timezone, by="day")
    assert [(d["day"], d["reported"]) for d in days] == [("2026-11-02", 1), ("2026-11-03", 1)]
    assert statistics(service.db, service.timezone,
                      since=clock.now - timedelta(minutes=30)) [0]["reported"] == 1


def test_by_department_whistles_count_for_every_summoned_department(service, demo, clock):
    collapse = service.submit_report(report(demo, 100))["work_order_id"]  # zhujian's
    manhole = service.submit_report(report(demo, 300, category="manhole_cover"))[
        "work_order_id"]  # chengguan's
    service.blow_whistle(collapse, {"zhujian": 30, "chengguan": 30, "xiaofang": 30}, None,
                         DISPATCHER)
    service.blow_whistle(manhole, ["zhujian"], 60, DISPATCHER)
    clock.advance(minutes=10)
    for order_id, department in ((collapse, "zhujian"), (collapse, "chengguan"),
                                 (manhole, "zhujian")):
        service.report_for_duty(order_id, 1, department, Actor(department, "department"))
    clock.advance(minutes=30)  # xiaofang reports 40 minutes in: late
    service.report_for_duty(collapse, 1, "xiaofang", Actor("xf", "department"))
    service.blow_whistle(collapse, ["chengguan"], 15, DISPATCHER)  # a second one, unanswered

    rows = {r["department"]: r for r in statistics(service.db, service.timezone,
                                                   by="department")}
    figures = {d: (r["whistles"], r["whistles_answered_on_time"]) for d, r in rows.items()}
    assert figures == {"zhujian": (2, 2), "chengguan": (2, 1), "xiaofang": (1, 0)}
    assert rows["xiaofang"]["reported"] == 0 and rows["xiaofang"]["closure_rate"] is None
    assert (rows["zhujian"]["reported"], rows["chengguan"]["reported"]) == (1, 1)

    with service.db.read() as uow:
        summons = uow.execute(select(t.summons)).all()
        trail = uow.execute(select(t.audit.c.work_order_id, t.audit.c.action, t.audit.c.at,
                                   t.audit.c.note).where(t.audit.c.action.in_(
            ["whistle", "report_for_duty"]))).all()
    from_rows = {}
    for s in summons:
        blown, on_time = from_rows.get(s.department, (0, 0))
        answered = s.reported_at is not None and s.reported_at <= s.due_at
        from_rows[s.department] = (blown + 1, on_time + answered)
    assert from_rows == figures
    from_trail = {}
    for entry in trail:  # "summoned a, b: reason" / "a reported for duty ..."
        if entry.action == "whistle":
            for department in entry.note.removeprefix("summoned ").split(":")[0].split(", "):
                blown, on_time = from_trail.get(department, (0, 0))
                from_trail[department] = (blown + 1, on_time)
    for entry in trail:
        if entry.action == "report_for_duty":
            department = entry.note.split()[0]
            [due] = [s.due_at for s in summons if (s.work_order_id, s.department,
                                                   s.reported_at) == (entry.work_order_id,
                                                                      department, entry.at)]
            blown, on_time = from_trail[department]
            from_trail[department] = (blown, on_time + (entry.at <= due))
    assert from_trail == figures

    overall = statistics(service.db, service.timezone)[0]  # by order: a whistle counts once
    assert (overall["whistles"], overall["whistles_answered_on_time"]) == (3, 1)


def test_a_period_that_ends_before_it_starts_is_refused(service, demo, clock):
    service.submit_report(report(demo))
    for since, until in ((clock.now, clock.now - timedelta(days=1)), (clock.now, clock.now)):
        with pytest.raises(InputError, match="must be before until") as info:
            statistics(service.db, service.timezone, since=since, until=until)
        assert info.value.field == "since"
    assert statistics(service.db, service.timezone, since=clock.now - timedelta(hours=1),
                      until=clock.now + timedelta(hours=1))[0]["reported"] == 1
