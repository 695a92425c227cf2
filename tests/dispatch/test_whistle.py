"""The whistle through the service on both databases: who answers a summons is recorded as
they are, each department may have its own deadline, and bad input changes nothing."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.errors import InputError
from dispatch.services import Actor
from tests.dispatch.helpers import report

DISPATCHER = Actor("王调度", "dispatcher")
ADMIN = Actor("admin", "admin")


@pytest.fixture
def order_id(service, demo):
    return service.submit_report(report(demo))["work_order_id"]


def trail(service, order_id, *actions):
    return [(a["action"], a["actor"], a["role"]) for a in service.order(order_id)["audit"]
            if a["action"] in actions]


def test_whoever_answers_a_summons_is_recorded_with_their_own_role(service, order_id):
    service.blow_whistle(order_id, ["zhujian", "chengguan"], 30, DISPATCHER)
    service.report_for_duty(order_id, 1, "zhujian", Actor("住建值班", "department"))
    service.report_for_duty(order_id, 1, "chengguan", ADMIN)  # acting for chengguan
    service.complete_part(order_id, 1, "zhujian", DISPATCHER, "回填完成")
    service.complete_part(order_id, 1, "chengguan", Actor("城管值班", "department"), "已疏导")
    assert trail(service, order_id, "report_for_duty", "complete_part") == [
        ("report_for_duty", "住建值班", "department"),
        ("report_for_duty", "admin", "admin"),
        ("complete_part", "王调度", "dispatcher"),
        ("complete_part", "城管值班", "department")]
    with service.db.read() as uow:
        roles = uow.execute(select(t.audit.c.role).where(
            t.audit.c.action.in_(["report_for_duty", "complete_part"])).order_by(
            t.audit.c.id)).scalars().all()
    assert roles == ["department", "admin", "dispatcher", "department"]


def test_each_department_may_have_its_own_deadline(service, order_id, clock):
    blown_at = clock.now
    whistled = service.blow_whistle(order_id, {"xiaofang": 15, "zhujian": 30, "chengguan": 120},
                                    None, DISPATCHER, "主干道塌陷")
    due = {s["department"]: s["due_at"] for s in whistled["whistles"][0]["summons"]}
    assert due == {"xiaofang": (blown_at + timedelta(minutes=15)).isoformat(),
                   "zhujian": (blown_at + timedelta(minutes=30)).isoformat(),
                   "chengguan": (blown_at + timedelta(minutes=120)).isoformat()}
    with service.db.read() as uow:
        stored = dict(uow.execute(select(t.summons.c.department, t.summons.c.due_at)).all())
    assert stored == {d: blown_at + timedelta(minutes=m)
                      for d, m in {"xiaofang": 15, "zhujian": 30, "chengguan": 120}.items()}
    with service.db.read() as uow:
        [event] = uow.execute(select(t.outbox.c.payload).where(
            t.outbox.c.event == "summoned")).scalars().all()
    assert event["due_at"] == due["xiaofang"] and event["deadlines"] == due
    clock.advance(minutes=20)  # past xiaofang's deadline only
    service.report_for_duty(order_id, 1, "zhujian", Actor("zj", "department"))
    service.sweep()
    overdue = {s["department"]: s["overdue"]
               for s in service.order(order_id)["whistles"][0]["summons"]}
    assert overdue == {"xiaofang": True, "zhujian": False, "chengguan": False}


def test_one_deadline_for_a_list_of_departments_still_works(service, order_id, clock):
    whistled = service.blow_whistle(order_id, ["zhujian", "chengguan"], 45, DISPATCHER)
    assert {s["due_at"] for s in whistled["whistles"][0]["summons"]} == {
        (clock.now + timedelta(minutes=45)).isoformat()}


BAD_WHISTLES = [
    (["zhujian"], -5, "due_minutes", "positive whole number"),
    (["zhujian"], 0, "due_minutes", "positive whole number"),
    (["zhujian"], 2.5, "due_minutes", "positive whole number"),
    (["zhujian"], "30", "due_minutes", "positive whole number"),
    (["zhujian"], True, "due_minutes", "positive whole number"),
    (["zhujian"], None, "due_minutes", "positive whole number"),
    (["zhujian"], 7 * 24 * 60 + 1, "due_minutes", "at most 10080"),
    ({"zhujian": 30, "xiaofang": 0}, None, "departments[xiaofang]", "positive whole number"),
    ({"zhujian": -1}, None, "departments[zhujian]", "positive whole number"),
    ({"zhujian": 1.5}, None, "departments[zhujian]", "positive whole number"),
    ({"zhujian": "15"}, None, "departments[zhujian]", "positive whole number"),
    ({"zhujian": None}, None, "departments[zhujian]", "positive whole number"),
    ({"zhujian": 30}, 30, "due_minutes", "not both"),
    ({"nasa": 30}, None, "departments", "unknown department 'nasa'"),
    (["zhujian", "nasa"], 30, "departments", "unknown department 'nasa'"),
    ([{"code": "zhujian"}], 30, "departments", "unknown department"),
    ({}, None, "departments", "at least one department"),
    ([], 30, "departments", "at least one department"),
    ("zhujian", 30, "departments", "a list of department codes or an object"),
    (None, 30, "departments", "a list of department codes or an object"),
]


@pytest.mark.parametrize("departments, minutes, field, message", BAD_WHISTLES,
                         ids=[f"{w[2]}:{w[0]!r}:{w[1]!r}" for w in BAD_WHISTLES])
def test_bad_whistles_are_refused_by_name_and_nothing_is_written(service, order_id, departments,
                                                                 minutes, field, message):
    before = service.order(order_id, staff=True)
    outbox = count(service, t.outbox)
    with pytest.raises(InputError, match=message) as info:
        service.blow_whistle(order_id, departments, minutes, DISPATCHER)
    assert info.value.field == field
    assert service.order(order_id, staff=True) == before
    assert count(service, t.whistles) == count(service, t.summons) == 0
    assert count(service, t.outbox) == outbox


def test_a_reason_must_be_text(service, order_id):
    with pytest.raises(InputError, match="reason must be text") as info:
        service.blow_whistle(order_id, ["zhujian"], 30, DISPATCHER, reason=42)
    assert info.value.field == "reason" and count(service, t.whistles) == 0


def count(service, table) -> int:
    with service.db.read() as uow:
        return uow.execute(select(func.count()).select_from(table)).scalar_one()
