"""Saving an order, or the report count of a "me too", whose version moved on meanwhile is a
Conflict and writes nothing; on both databases."""

import pytest

from dispatch.errors import Conflict
from tests.dispatch.helpers import report


def stored_order(service, demo) -> int:
    return service.submit_report(report(demo))["work_order_id"]


def test_a_stale_order_is_not_saved(service, demo, clock):
    order_id = stored_order(service, demo)
    with service.db.read() as uow:
        stale = uow.orders.get(order_id)
    with service.db.unit_of_work() as uow:
        fresh = uow.orders.get(order_id)
        fresh.accept("张三", "gridworker", clock())
        uow.orders.save(fresh)
    stale.reject("调度员", "dispatcher", clock(), "重复上报")
    with pytest.raises(Conflict):
        with service.db.unit_of_work() as uow:
            uow.orders.save(stale)
    order = service.order(order_id, staff=True)
    assert (order["state"], order["version"]) == ("accepted", 2)
    assert [a["action"] for a in order["audit"]] == ["dispatch", "accept"]


def test_a_stale_me_too_is_not_saved_and_fresh_ones_in_its_batch_neither(service, demo, clock):
    stale_id = stored_order(service, demo)
    other_id = service.submit_report(report(demo, 140))["work_order_id"]
    with service.db.read() as uow:
        heads = uow.orders.heads([stale_id, other_id])
    with service.db.unit_of_work() as uow:  # someone else's "me too" first
        head = uow.orders.heads([stale_id])[stale_id]
        head.attach_report("系统", "system", clock())
        uow.orders.save_heads([head])
    for head in heads.values():
        head.attach_report("系统", "system", clock())
    with pytest.raises(Conflict):
        with service.db.unit_of_work() as uow:
            uow.orders.save_heads(list(heads.values()))
    stale, other = (service.order(i, staff=True) for i in (stale_id, other_id))
    assert (stale["reports_count"], stale["version"]) == (2, 2)
    assert (other["reports_count"], other["version"]) == (1, 1)
    assert [a["action"] for a in other["audit"]] == ["dispatch"]
