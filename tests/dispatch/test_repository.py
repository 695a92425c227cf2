"""Saving an order, or the report count of a "me too", whose version moved on meanwhile is a
Conflict and writes nothing; on both databases."""

from datetime import UTC, datetime

import pytest

from dispatch.errors import Conflict
from tests.dispatch.helpers import report


def stored_order(service, demo) -> int:
    return service.submit_report(report(demo))["work_order_id"]


def heads(uow, service, *order_ids) -> dict:
    """The heads of these orders as a "me too" reads them: open orders at each one's place."""
    orders = [service.order(i, staff=True) for i in order_ids]
    found = uow.orders.open_near([(o["category"], o["lon"], o["lat"], 1.0,
                                   datetime(2000, 1, 1, tzinfo=UTC)) for o in orders])
    return {head.id: head for candidates in found for head, _ in candidates}


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
        read = heads(uow, service, stale_id, other_id)
    assert set(read) == {stale_id, other_id}
    with service.db.unit_of_work() as uow:  # someone else's "me too" first
        head = heads(uow, service, stale_id)[stale_id]
        head.attach_report("系统", "system", clock())
        with uow.pipeline():
            check = uow.orders.save_heads([head])
        check()
    for head in read.values():
        head.attach_report("系统", "system", clock())
    with pytest.raises(Conflict):
        with service.db.unit_of_work() as uow:
            with uow.pipeline():
                check = uow.orders.save_heads(list(read.values()))
            check()
    stale, other = (service.order(i, staff=True) for i in (stale_id, other_id))
    assert (stale["reports_count"], stale["version"]) == (2, 2)
    assert (other["reports_count"], other["version"]) == (1, 1)
    assert [a["action"] for a in other["audit"]] == ["dispatch"]


def test_the_orders_a_me_too_may_join_stay_locked_until_it_commits(service, demo):
    """Between reading an order's head and saving its new report count nobody else writes it:
    on PostgreSQL its row is locked by the read, on SQLite the writer lock is held."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    order_id = stored_order(service, demo)
    url = service.db.engine.url.render_as_string(hide_password=False)
    other = create_engine(url, connect_args={"timeout": 0} if url.startswith("sqlite") else {})
    if service.db.is_postgres:
        attempt = f"SELECT id FROM work_orders WHERE id = {order_id} FOR UPDATE NOWAIT"
    else:
        attempt = f"UPDATE work_orders SET reports = reports WHERE id = {order_id}"
    try:
        with service.db.unit_of_work() as uow:
            assert order_id in heads(uow, service, order_id)
            with pytest.raises(OperationalError, match="lock"), other.begin() as connection:
                connection.execute(text(attempt))
        with other.begin() as connection:  # committed: free again
            assert connection.execute(text(attempt)).rowcount == 1
    finally:
        other.dispose()


def test_a_merge_takes_its_two_orders_lowest_id_first(postgres, seeded, clock, tmp_path, demo):
    """Intake locks the orders near its reports lowest id first; a merge of a newer order into
    an older one must not hold the newer while it waits for the older, or the two would wait
    for each other in a circle."""
    import threading
    import time

    from sqlalchemy import create_engine, text

    from dispatch.services import Actor, Service

    service = Service(postgres, seeded["catalogue"], tmp_path / "media", clock=clock)
    older = stored_order(service, demo)
    newer = service.submit_report(report(demo, 140))["work_order_id"]
    other = create_engine(postgres.engine.url)
    merged = []
    try:
        with service.db.unit_of_work() as uow:  # as a batch of reports near the older would
            uow.orders.lock([older])
            merging = threading.Thread(target=lambda: merged.append(service.act(
                newer, "merge", Actor("王调度", "dispatcher"), into=older)))
            merging.start()
            deadline = time.monotonic() + 20
            with other.connect() as watch:  # until the merge waits for a row lock
                while time.monotonic() < deadline and not watch.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'")).scalar():
                    watch.rollback()
                    time.sleep(0.05)
            assert time.monotonic() < deadline, "the merge never waited"
            with other.begin() as connection:  # the newer is still free to take
                connection.execute(text(f"SELECT id FROM work_orders WHERE id = {newer} "
                                        "FOR UPDATE NOWAIT"))
        merging.join(timeout=20)
    finally:
        other.dispose()
    assert merged and merged[0]["state"] == "duplicate"
    assert service.order(older, staff=True)["reports_count"] == 2


def test_nearby_orders_are_found_by_index_however_much_the_table_grew(postgres, seeded, clock,
                                                                       tmp_path, demo):
    """A plan kept from when work_orders held one order scans the whole table; the search
    for a "me too" must keep using the GiST index once the table has grown (PostgreSQL: SQLite
    keeps no plans)."""
    from sqlalchemy import text

    from dispatch.services import Service
    from dispatch.storage import ORDER_FIELDS

    service = Service(postgres, seeded["catalogue"], tmp_path / "media", clock=clock)
    order_id = stored_order(service, demo)
    fields = ", ".join(f for f in ORDER_FIELDS if f not in ("lon", "lat"))
    scans = text("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'work_orders'")
    with service.db.unit_of_work() as uow:
        uow.execute(text("ANALYZE work_orders"))  # its statistics: one order
    with service.db.unit_of_work() as uow:
        for _ in range(15):  # by now a kept plan would be in use
            assert order_id in heads(uow, service, order_id)
        uow.execute(text(f"INSERT INTO work_orders (lon, lat, {fields}) SELECT lon + g * 1e-4, "
                         f"lat, {fields} FROM work_orders, generate_series(1, 20000) AS g "
                         f"WHERE id = {order_id}"))
        before = uow.execute(scans).scalar()
        assert order_id in heads(uow, service, order_id)
        assert uow.execute(scans).scalar() == before
