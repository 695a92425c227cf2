"""The lifecycle through the service on both databases: actions, conflicts, audit, sweep."""

import pytest
from sqlalchemy import select

from dispatch import schema as t
from dispatch.errors import Conflict, IllegalTransition, InputError, NotFound
from dispatch.services import Actor
from tests.dispatch.helpers import inside, photo, report

WORKER = Actor("李网格员", "gridworker")
DISPATCHER = Actor("王调度", "dispatcher")


@pytest.fixture
def order_id(service, demo):
    return service.submit_report(report(demo))["work_order_id"]


def run_to_resolved(service, order_id):
    service.act(order_id, "accept", WORKER)
    service.act(order_id, "start", WORKER)
    return service.act(order_id, "resolve", WORKER, feedback="已回填压实", photo=photo())


def test_the_whole_lifecycle_is_stored_and_audited(service, order_id, clock):
    clock.advance(minutes=10)
    assert service.act(order_id, "accept", WORKER)["state"] == "accepted"
    clock.advance(minutes=5)
    service.act(order_id, "start", WORKER)
    clock.advance(hours=2)
    resolved = service.act(order_id, "resolve", WORKER, feedback="已回填压实", photo=photo())
    assert resolved["state"] == "resolved" and resolved["repair_photo"].endswith(".jpg")
    assert (service.media / resolved["repair_photo"]).exists()
    service.act(order_id, "verify", DISPATCHER)
    closed = service.act(order_id, "close", DISPATCHER, note="居民确认")
    assert closed["state"] == "closed" and closed["open311_status"] == "closed"
    trail = [(a["action"], a["from"], a["to"], a["role"]) for a in closed["audit"]]
    assert trail == [
        ("dispatch", "submitted", "dispatched", "system"),
        ("accept", "dispatched", "accepted", "gridworker"),
        ("start", "accepted", "in_progress", "gridworker"),
        ("resolve", "in_progress", "resolved", "gridworker"),
        ("verify", "resolved", "verified", "dispatcher"),
        ("close", "verified", "closed", "dispatcher")]
    assert closed["audit"][-1]["note"] == "居民确认"
    assert closed["version"] == 6


def test_an_illegal_action_is_refused_and_changes_nothing(service, order_id):
    before = service.order(order_id, staff=True)
    with pytest.raises(IllegalTransition, match="cannot close order"):
        service.act(order_id, "close", DISPATCHER)
    assert service.order(order_id, staff=True) == before


def test_resolve_without_photo_or_feedback_is_refused(service, order_id):
    service.act(order_id, "accept", WORKER)
    service.act(order_id, "start", WORKER)
    with pytest.raises(InputError, match="repair photo"):
        service.act(order_id, "resolve", WORKER, feedback="done")
    with pytest.raises(InputError, match="feedback is required"):
        service.act(order_id, "resolve", WORKER, feedback=" ", photo=photo())
    with pytest.raises(InputError, match="must be a JPEG"):
        service.act(order_id, "resolve", WORKER, feedback="done", photo=b"text")
    assert service.order(order_id)["state"] == "in_progress"
    assert not service.media.exists() or not list(service.media.iterdir())


def test_a_refused_action_deletes_no_file_its_text_happens_to_name(service, demo, order_id):
    repair_photo = run_to_resolved(service, order_id)["repair_photo"]
    other = service.submit_report(report(demo, 400))["work_order_id"]
    for action in ("reopen", "reject"):  # refused: the order is dispatched, or resolved
        with pytest.raises(IllegalTransition):
            service.act(other if action == "reopen" else order_id, action, DISPATCHER,
                        reason=repair_photo)
    assert (service.media / repair_photo).exists()


def test_a_refused_resolve_keeps_neither_its_photo_nor_the_thumbnail(service, order_id):
    with pytest.raises(IllegalTransition):  # dispatched, not yet in progress
        service.act(order_id, "resolve", WORKER, feedback="done", photo=photo())
    assert not service.media.exists() or not list(service.media.iterdir())


def test_a_stale_version_is_a_conflict(service, order_id):
    version = service.order(order_id)["version"]
    service.act(order_id, "accept", WORKER, expected_version=version)
    with pytest.raises(Conflict, match="reload"):
        service.act(order_id, "start", WORKER, expected_version=version)
    assert service.order(order_id)["state"] == "accepted"


def test_reopen_sends_the_order_out_again(service, order_id, clock):
    run_to_resolved(service, order_id)
    clock.advance(days=1)
    reopened = service.act(order_id, "reopen", DISPATCHER, reason="坑又出现了")
    assert reopened["state"] == "dispatched"
    assert [a["action"] for a in reopened["audit"]][-2:] == ["reopen", "dispatch"]
    assert reopened["respond_due"] > reopened["created_at"]


def test_transfer_to_another_grid_and_department(service, order_id, demo):
    target = demo.grids.iloc[300]
    moved = service.act(order_id, "transfer", DISPATCHER, reason="位置有误",
                        grid_code=target["code"], department="chengguan")
    assert moved["state"] == "dispatched" and moved["grid_code"] == target["code"]
    assert moved["community_code"] == target["community_code"]
    assert moved["department"] == "chengguan"
    with pytest.raises(InputError, match="unknown grid"):
        service.act(order_id, "transfer", DISPATCHER, reason="x", grid_code="999")
    with pytest.raises(InputError, match="unknown department"):
        service.act(order_id, "transfer", DISPATCHER, reason="x", department="nasa")


def test_reject_and_merge(service, demo, order_id):
    other = service.submit_report(report(demo, 400))["work_order_id"]
    merged = service.act(other, "merge", DISPATCHER, into=order_id)
    assert merged["state"] == "duplicate" and merged["duplicate_of"] == order_id
    assert service.order(order_id)["version"] == 2  # its report count went up
    with pytest.raises(InputError, match="reason"):
        service.act(order_id, "reject", DISPATCHER, reason="")
    rejected = service.act(order_id, "reject", DISPATCHER, reason="非公共事务")
    assert rejected["state"] == "rejected" and rejected["open311_status"] == "closed"


def test_the_order_merged_into_records_what_it_took_over(service, demo, order_id, clock):
    other = service.submit_report(report(demo, 400))["work_order_id"]
    lon, lat = inside(demo, 400)
    me_too = service.submit_report(report(demo, 400, lon=lon + 0.0001, lat=lat))
    assert me_too["work_order_id"] == other  # the duplicate carries two reports
    clock.advance(minutes=5)
    service.act(other, "merge", DISPATCHER, into=order_id)
    target = service.order(order_id, staff=True)
    assert target["reports_count"] == 3
    entry = target["audit"][-1]
    assert entry == {"at": clock.now.isoformat(), "at_local": entry["at_local"],
                     "actor": "王调度", "role": "dispatcher", "action": "absorb_duplicate",
                     "from": "dispatched", "to": "dispatched",
                     "note": f"merged #{other} into this: 2 reports taken over"}
    duplicate = service.order(other, staff=True)["audit"][-1]
    assert (duplicate["action"], duplicate["note"]) == ("merge", f"duplicate of #{order_id}")
    with service.db.read() as uow:
        stored = uow.execute(select(t.audit.c.work_order_id, t.audit.c.action).where(
            t.audit.c.action.in_(["merge", "absorb_duplicate"]))).all()
    assert sorted(map(tuple, stored)) == sorted([(other, "merge"),
                                                 (order_id, "absorb_duplicate")])


def test_nothing_is_merged_into_an_order_that_is_over(service, demo, order_id):
    service.act(order_id, "reject", DISPATCHER, reason="非公共事务")
    other = service.submit_report(report(demo, 400))["work_order_id"]
    before = service.order(other, staff=True)
    with pytest.raises(IllegalTransition, match="rejected"):
        service.act(other, "merge", DISPATCHER, into=order_id)
    after = service.order(other, staff=True)
    assert (after["state"], after["version"], len(after["audit"])) == (
        before["state"], before["version"], len(before["audit"]))
    assert service.order(order_id)["reports_count"] == 1


def test_unknown_orders_and_actions(service, order_id):
    with pytest.raises(NotFound):
        service.act(99999, "accept", WORKER)
    with pytest.raises(InputError, match="unknown action 'explode'"):
        service.act(order_id, "explode", WORKER)


def test_whistle_from_blowing_to_the_end(service, order_id, clock):
    whistled = service.blow_whistle(order_id, ["chengguan", "zhujian", "xiaofang"], 30,
                                    DISPATCHER, "主干道塌陷")
    assert [s["department"] for s in whistled["whistles"][0]["summons"]] == [
        "chengguan", "xiaofang", "zhujian"]
    for department in ("chengguan", "zhujian", "xiaofang"):
        clock.advance(minutes=5)
        service.report_for_duty(order_id, 1, department, Actor(department, "department"))
    for department in ("chengguan", "zhujian", "xiaofang"):
        service.complete_part(order_id, 1, department, Actor(department, "department"),
                              f"{department} 完成")
    whistle = service.order(order_id)["whistles"][0]
    assert whistle["ended_at"] is not None
    assert all(s["reported_at"] and s["done_at"] for s in whistle["summons"])


def test_whistle_input_and_roles(service, order_id):
    with pytest.raises(InputError, match="unknown department 'nasa'"):
        service.blow_whistle(order_id, ["nasa"], 30, DISPATCHER)
    with pytest.raises(InputError, match="positive whole number"):
        service.blow_whistle(order_id, ["zhujian"], 0, DISPATCHER)
    from dispatch.errors import Forbidden
    with pytest.raises(Forbidden):
        service.blow_whistle(order_id, ["zhujian"], 30, WORKER)
    assert service.order(order_id)["whistles"] == []


def test_meeting_is_recorded(service, order_id):
    tasks = [{"task": "更换井盖", "owner": "物业公司"}]
    order = service.record_meeting(order_id, ["街道", "物业公司", "居民代表"],
                                   ["物业承担维修费用"], tasks, DISPATCHER)
    assert order["meetings"][0]["tasks"] == [{"task": "更换井盖", "owner": "物业公司"}]
    assert order["audit"][-1]["action"] == "meeting"


def test_the_sweep_marks_each_missed_deadline_once(service, order_id, clock):
    service.blow_whistle(order_id, ["zhujian"], 20, DISPATCHER)
    assert service.sweep()["marked"] == 0
    clock.advance(minutes=31)
    assert service.sweep()["marked"] == 1
    order = service.order(order_id)
    assert order["respond_overdue"] and order["whistles"][0]["summons"][0]["overdue"]
    assert service.sweep()["marked"] == 0  # safe to run again
    clock.advance(days=2)
    assert service.sweep()["marked"] == 1
    assert service.order(order_id)["resolve_overdue"]
    with service.db.unit_of_work() as uow:
        overdue = uow.execute(select(t.outbox.c.payload).where(
            t.outbox.c.event == "overdue")).scalars().all()
    assert sorted(p["kind"] for p in overdue) == ["resolve", "respond", "summons"]


def test_every_event_is_delivered_through_the_outbox(service, order_id):
    with service.db.unit_of_work() as uow:
        rows = uow.execute(select(t.outbox)).all()
    assert {r.event for r in rows} >= {"assigned", "state_changed"}
    assert all(r.delivered_at is not None for r in rows)  # the log notifier took them
