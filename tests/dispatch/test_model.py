"""The work-order domain model on its own: no database, no service."""

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.catalogue import load_catalogue
from dispatch.errors import Forbidden, IllegalTransition, InputError
from dispatch.model import TRANSITIONS, State, WorkOrder, open311_status

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
CATALOGUE = load_catalogue()
COLLAPSE = CATALOGUE.category("road_collapse")      # emergency, escalable
STREETLIGHT = CATALOGUE.category("streetlight")     # normal, not escalable
NOISE = CATALOGUE.category("noise")


def new_order(category=COLLAPSE) -> WorkOrder:
    order = WorkOrder(category=category.code, lon=108.94, lat=34.26, boundary_version=1,
                      grid_code="610104001001001", community_code="610104001001",
                      street_code="610104001", department=category.department, created_at=T0,
                      id=7)
    order.dispatch(category, 11, "gridworker", "system", "system", T0)
    return order


def test_the_happy_path_and_its_audit_trail():
    order = new_order()
    order.accept("li", "gridworker", T0 + timedelta(minutes=5))
    order.start("li", "gridworker", T0 + timedelta(minutes=6))
    order.resolve("li", "gridworker", T0 + timedelta(hours=3), "filled and paved", "p.jpg")
    order.verify("wang", "dispatcher", T0 + timedelta(hours=4))
    order.close("wang", "dispatcher", T0 + timedelta(hours=4))
    assert order.state == State.CLOSED and order.open311_status == "closed"
    assert [(a.action, a.from_state, a.to_state) for a in order.new_audit] == [
        ("dispatch", "submitted", "dispatched"), ("accept", "dispatched", "accepted"),
        ("start", "accepted", "in_progress"), ("resolve", "in_progress", "resolved"),
        ("verify", "resolved", "verified"), ("close", "verified", "closed")]
    assert order.respond_due == T0 + timedelta(minutes=30)
    assert order.resolve_due == T0 + timedelta(minutes=1440)
    assert [e.name for e in order.events][:2] == ["state_changed", "assigned"]


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_every_action_is_refused_from_a_state_it_does_not_start_from(action):
    sources, _ = TRANSITIONS[action]
    state = next(s for s in State if s not in sources)
    order = new_order()
    order.state = state
    before = (order.state, len(order.new_audit))
    with pytest.raises(IllegalTransition, match=f"cannot {action} order #7 while it is"):
        order._move(action, "x", "dispatcher", T0)
    assert (order.state, len(order.new_audit)) == before


def test_resolving_needs_feedback_and_a_photo():
    order = new_order()
    order.accept("li", "gridworker", T0)
    order.start("li", "gridworker", T0)
    with pytest.raises(InputError, match="feedback") as info:
        order.resolve("li", "gridworker", T0, "  ", "p.jpg")
    assert info.value.field == "feedback"
    with pytest.raises(InputError, match="repair photo"):
        order.resolve("li", "gridworker", T0, "done", None)
    assert order.state == State.IN_PROGRESS


def test_reopen_from_resolved_or_closed_only():
    order = new_order()
    with pytest.raises(IllegalTransition):
        order.reopen("r", "dispatcher", T0, "not fixed")
    for action in ("accept", "start"):
        getattr(order, action)("li", "gridworker", T0)
    order.resolve("li", "gridworker", T0, "done", "p.jpg")
    order.reopen("r", "dispatcher", T0, "still broken")
    assert order.state == State.REOPENED and order.resolved_at is None


def test_reject_needs_a_reason_and_closes_for_open311():
    order = new_order()
    with pytest.raises(InputError, match="reason"):
        order.reject("w", "dispatcher", T0, "")
    order.reject("w", "dispatcher", T0, "not a public matter")
    assert order.state == State.REJECTED and open311_status(order.state) == "closed"


def test_transfer_changes_grid_or_department():
    order = new_order()
    with pytest.raises(InputError, match="another grid or department"):
        order.transfer("w", "dispatcher", T0, "wrong place")
    order.transfer("w", "dispatcher", T0, "wrong place", department="chengguan")
    assert order.state == State.TRANSFERRED and order.department == "chengguan"


def test_merge_into_itself_is_refused():
    order = new_order()
    with pytest.raises(InputError, match="itself"):
        order.merge_into(7, "w", "dispatcher", T0)
    order.merge_into(3, "w", "dispatcher", T0)
    assert order.state == State.DUPLICATE and order.duplicate_of == 3


def test_whistle_report_for_duty_and_completion():
    order = new_order()
    due = T0 + timedelta(minutes=30)
    whistle = order.blow_whistle(COLLAPSE, ["chengguan", "zhujian", "chengguan"], due,
                                 "wang", "dispatcher", T0, "collapse on a main road")
    assert [s.department for s in whistle.summons] == ["chengguan", "zhujian"]
    with pytest.raises(IllegalTransition, match="report for duty before"):
        order.complete_part(1, "zhujian", "zj", "department", T0, "x")
    order.report_for_duty(1, "chengguan", "cg", "department", T0 + timedelta(minutes=10))
    with pytest.raises(IllegalTransition, match="already reported"):
        order.report_for_duty(1, "chengguan", "cg", "department", T0 + timedelta(minutes=11))
    with pytest.raises(InputError, match="was not summoned"):
        order.report_for_duty(1, "xiaofang", "xf", "department", T0)
    order.report_for_duty(1, "zhujian", "zj", "department", T0 + timedelta(minutes=20))
    order.complete_part(1, "chengguan", "cg", "department", T0 + timedelta(hours=1),
                        "traffic diverted")
    assert whistle.ended_at is None
    order.complete_part(1, "zhujian", "zj", "department", T0 + timedelta(hours=2), "road filled")
    assert whistle.ended_at == T0 + timedelta(hours=2)
    assert "whistle_ended" in [e.name for e in order.events]


@pytest.mark.parametrize("category, role, allowed", [
    (COLLAPSE, "dispatcher", True), (COLLAPSE, "grid_leader", True),
    (COLLAPSE, "gridworker", False), (NOISE, "grid_leader", False),
    (NOISE, "dispatcher", None),  # noise is not escalable at all
])
def test_who_may_blow_the_whistle(category, role, allowed):
    order = new_order(category)
    due = T0 + timedelta(minutes=30)
    if allowed:
        order.blow_whistle(category, ["chengguan"], due, "x", role, T0)
        assert len(order.whistles) == 1
        return
    with pytest.raises(Forbidden if allowed is False else IllegalTransition):
        order.blow_whistle(category, ["chengguan"], due, "x", role, T0)
    assert order.whistles == []


def test_whistle_input_is_checked():
    order = new_order()
    with pytest.raises(InputError, match="at least one department"):
        order.blow_whistle(COLLAPSE, [], T0 + timedelta(minutes=5), "x", "dispatcher", T0)
    with pytest.raises(InputError, match="in the future"):
        order.blow_whistle(COLLAPSE, ["zhujian"], T0, "x", "dispatcher", T0)


def test_meeting_record_needs_participants_and_owned_tasks():
    order = new_order()
    with pytest.raises(InputError, match="participants"):
        order.record_meeting([], [], [], "x", "dispatcher", T0)
    with pytest.raises(InputError, match="owner"):
        order.record_meeting(["a"], ["b"], [{"task": "fix"}], "x", "dispatcher", T0)
    meeting = order.record_meeting(["街道", "物业", "居民代表"], ["物业负责维修"],
                                   [{"task": "维修井盖", "owner": "物业"}], "x", "dispatcher", T0)
    assert meeting.number == 1 and order.meetings == [meeting]


def test_deadlines_are_marked_once_each():
    order = new_order()
    order.blow_whistle(COLLAPSE, ["zhujian"], T0 + timedelta(minutes=20), "x", "dispatcher", T0)
    assert not order.check_deadlines(T0 + timedelta(minutes=10))
    assert order.check_deadlines(T0 + timedelta(minutes=31))
    assert order.respond_overdue and not order.resolve_overdue
    assert order.whistles[0].summons[0].overdue
    assert not order.check_deadlines(T0 + timedelta(minutes=40))  # nothing new
    assert order.check_deadlines(T0 + timedelta(days=2))
    overdue = [e.data["kind"] for e in order.events if e.name == "overdue"]
    assert overdue == ["respond", "summons", "resolve"]


def test_a_resolved_order_is_not_overdue_for_resolving():
    order = new_order(STREETLIGHT)
    for action in ("accept", "start"):
        getattr(order, action)("li", "gridworker", T0)
    order.resolve("li", "gridworker", T0, "lamp replaced", "p.jpg")
    assert not order.check_deadlines(T0 + timedelta(days=30))
