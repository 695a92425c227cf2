"""Every time of an order's output is stored in UTC and given beside it as ``<field>_local`` in
the district's time zone (Asia/Shanghai for the demo: UTC+8), on both databases."""

from datetime import datetime, timedelta

from dispatch.services import Actor
from tests.dispatch.helpers import photo, report

WORKER, DISPATCHER = Actor("李网格员", "gridworker"), Actor("王调度", "dispatcher")
TIMES = {"created_at", "respond_due", "resolve_due", "closed_at", "blown_at", "ended_at",
         "due_at", "reported_at", "done_at", "held_at", "at"}


def timed(value, found=None) -> list[tuple[str, str | None, str | None]]:
    """Every (field, UTC text, local text) in an output, however deep; a time field without
    its ``_local`` twin fails."""
    found = [] if found is None else found
    if isinstance(value, list):
        for item in value:
            timed(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in TIMES:
                assert f"{key}_local" in value, f"{key} has no {key}_local"
                found.append((key, item, value[f"{key}_local"]))
            elif not key.endswith("_local"):
                timed(item, found)
    return found


def check_utc_plus_8(pairs) -> None:
    for key, utc, local in pairs:
        if utc is None:
            assert local is None, key
            continue
        stored, shown = datetime.fromisoformat(utc), datetime.fromisoformat(local)
        assert stored.utcoffset() == timedelta(0), key
        assert shown.utcoffset() == timedelta(hours=8), key
        assert shown.replace(tzinfo=None) == stored.replace(tzinfo=None) + timedelta(hours=8)
        assert shown == stored, key  # the same moment


def test_every_time_of_an_order_is_also_shown_in_district_time(service, demo, clock):
    assert service.timezone.key == "Asia/Shanghai"
    clock.now = clock.now.replace(hour=20, minute=30)  # 04:30 the next day in Shanghai
    order_id = service.submit_report(report(demo))["work_order_id"]
    opened = service.order(order_id, staff=True)
    assert opened["closed_at"] is None and opened["closed_at_local"] is None
    service.blow_whistle(order_id, {"zhujian": 30, "chengguan": 60}, None, DISPATCHER)
    for department in ("zhujian", "chengguan"):
        clock.advance(minutes=7)
        service.report_for_duty(order_id, 1, department, Actor(department, "department"))
        service.complete_part(order_id, 1, department, Actor(department, "department"), "ok")
    service.record_meeting(order_id, ["街道", "住建"], ["先修路"], [], DISPATCHER)
    for action in ("accept", "start"):
        service.act(order_id, action, WORKER)
    service.act(order_id, "resolve", WORKER, feedback="已修复", photo=photo())
    service.act(order_id, "verify", DISPATCHER)
    order = service.act(order_id, "close", DISPATCHER)

    pairs = timed(order)
    assert {key for key, utc, _ in pairs if utc is not None} == TIMES
    assert len([p for p in pairs if p[0] == "at"]) == len(order["audit"]) > 5
    check_utc_plus_8(pairs)
    assert order["created_at_local"].startswith(f"{clock.now.date() + timedelta(days=1)}T04:30")
    listed = service.list_orders()["orders"]
    check_utc_plus_8(timed(listed))
    assert listed[0]["respond_due_local"] == order["respond_due_local"]


def test_a_time_with_no_value_has_no_local_value(service, demo):
    order = service.order(service.submit_report(report(demo))["work_order_id"])
    pairs = timed(order)
    assert ("closed_at", None, None) in pairs
    check_utc_plus_8(pairs)
