"""Reports written as one batch end as they would one by one: same joins, same trail."""

from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.intake import Pending, write_reports
from dispatch.services import SYSTEM, _validate_report
from tests.dispatch.helpers import report

FAR = (109.5, 35.0)  # outside the demo district


def pending(service, data):
    checked = _validate_report(data, service.catalogue)
    version, resolver = service.active_resolver()
    where = resolver.resolve(checked["x"], checked["y"], crs=checked["crs"])
    return Pending(checked, where, service.catalogue.category(checked["category"]), version,
                   None, service.clock(), None, (SYSTEM.name, SYSTEM.role))


def nudged(data, metres_east):
    """The report moved ``metres_east`` metres east (roughly: 1 m ≈ 1.09e-5° here)."""
    return {**data, "lon": data["lon"] + metres_east * 1.09e-5}


def count(service, table):
    with service.db.read() as uow:
        return uow.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_batch_joins_orders_made_earlier_in_it_and_stored_before(service, demo):
    stored = service.submit_report(report(demo, 10, category="garbage"))
    garbage_there = report(demo, 10, category="garbage")
    noise_here = report(demo, 200, category="noise")
    batch = [pending(service, d) for d in (
        noise_here,                               # new order A
        nudged(noise_here, 5),                    # joins A, made earlier in the batch
        nudged(garbage_there, 3),                 # joins the order stored before
        {**noise_here, "lon": FAR[0], "lat": FAR[1]},  # outside: kept, no order
        report(demo, 200, category="garbage"),    # new order B: other category, other place
        nudged(noise_here, -4),                   # joins A again
    )]
    with service.db.unit_of_work() as uow:
        answers = write_reports(uow, batch)
    assert [a["outcome"] for a in answers] == ["created", "attached", "attached", "outside",
                                              "created", "attached"]
    first = answers[0]["work_order_id"]
    assert answers[1]["work_order_id"] == answers[5]["work_order_id"] == first
    assert answers[2]["work_order_id"] == stored["work_order_id"]
    assert answers[3]["work_order_id"] is None and "outside the district" in answers[3]["reason"]
    assert len({a["report_id"] for a in answers}) == 6
    assert [r["id"] for r in service.order(first, staff=True)["reports"]] == [
        answers[i]["report_id"] for i in (0, 1, 5)]
    with service.db.read() as uow:
        trail = [r.action for r in uow.execute(select(t.audit.c.action).where(
            t.audit.c.work_order_id == first).order_by(t.audit.c.id))]
        kept = uow.execute(select(t.reports.c.work_order_id, t.reports.c.outcome)
                           .order_by(t.reports.c.id)).all()
        events = uow.execute(select(t.outbox.c.work_order_id).where(
            t.outbox.c.event == "assigned")).scalars().all()
    assert trail == ["dispatch", "attach_report", "attach_report"]
    assert [r.outcome for r in kept[1:]] == [a["outcome"] for a in answers]
    assert sorted(events) == sorted([stored["work_order_id"], first,
                                     answers[4]["work_order_id"]])
    assert count(service, t.work_orders) == 3


def test_reports_near_each_other_in_one_batch_share_an_order_per_category(service, demo):
    reports = []
    for i in range(12):
        reports.append(report(demo, category=("noise", "garbage")[i % 2],
                              lon=108.93 + (i % 4) * 2e-5, lat=34.262))
    with service.db.unit_of_work() as uow:
        together = write_reports(uow, [pending(service, d) for d in reports])
    with service.db.read() as uow:
        orders_after_batch = uow.execute(select(t.work_orders.c.category,
                                                t.work_orders.c.reports)
                                         .order_by(t.work_orders.c.id)).all()
    alone = [service.submit_report(d) for d in reports]  # each joins the batch's orders
    assert [a["outcome"] for a in together] == ["created", "created"] + ["attached"] * 10
    assert all(a["outcome"] == "attached" for a in alone)
    assert [tuple(r) for r in orders_after_batch] == [("noise", 6), ("garbage", 6)]
    by_category = {a["work_order_id"] for a in alone}
    assert by_category == {together[0]["work_order_id"], together[1]["work_order_id"]}
