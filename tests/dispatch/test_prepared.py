"""Statements run on the driver's cursor convert values exactly as SQLAlchemy does, both ways."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, bindparam, func, insert, literal, literal_column, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from dispatch import schema as t
from dispatch.storage import Prepared

AT = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
INSERT_EVENT = Prepared(insert(t.outbox).returning(t.outbox.c.id))
SELECT_EVENT = Prepared(select(t.outbox).where(t.outbox.c.id == bindparam("id")))
COUNT_SINCE = Prepared(select(func.count()).select_from(t.outbox).where(
    t.outbox.c.created_at >= bindparam("since"), t.outbox.c.event == "assigned"))


def event(**extra):
    return {"event": "assigned", "work_order_id": 7, "created_at": AT,
            "next_attempt_at": AT + timedelta(minutes=1), "attempts": 0,
            "payload": {"grid": "610104001001001", "名": "网格", "n": [1, 2.5, None]}, **extra}


def test_rows_written_and_read_match_sqlalchemy(database):
    with database.unit_of_work() as uow:
        new_id = INSERT_EVENT.scalar(uow.connection, event())
    with database.read() as uow:
        ours = uow.rows(SELECT_EVENT, {"id": new_id})
        theirs = uow.execute(select(t.outbox).where(t.outbox.c.id == new_id)).one()
    assert len(ours) == 1
    assert ours[0]._asdict() == theirs._asdict()
    assert ours[0].created_at == AT and ours[0].created_at.tzinfo is not None
    assert ours[0].payload == event()["payload"]


def test_values_fixed_in_the_statement_and_aware_times_in_parameters(database):
    with database.unit_of_work() as uow:
        INSERT_EVENT.scalar(uow.connection, event())
        INSERT_EVENT.scalar(uow.connection, event(event="overdue"))
        assert COUNT_SINCE.scalar(uow.connection, {"since": AT}) == 1
        assert COUNT_SINCE.scalar(uow.connection, {"since": AT + timedelta(microseconds=1)}) == 0


def test_a_naive_time_is_refused_before_anything_is_written(database):
    with pytest.raises(ValueError, match="naive datetime"):
        with database.unit_of_work() as uow:
            INSERT_EVENT.scalar(uow.connection, event(created_at=datetime(2026, 11, 30)))
    with database.read() as uow:
        assert uow.execute(select(func.count()).select_from(t.outbox)).scalar_one() == 0


def test_driver_errors_arrive_as_sqlalchemy_errors(database):
    insert_report = Prepared(insert(t.reports))
    with pytest.raises(IntegrityError):  # no such boundary version: a foreign key fails
        with database.unit_of_work() as uow:
            insert_report.run(uow.connection, {
                "outcome": "created", "category": "noise", "description": "x", "lon": 1.0,
                "lat": 2.0, "original_x": 1.0, "original_y": 2.0, "original_crs": "wgs84",
                "boundary_version": 999_999, "resolve_status": "ok", "reporter_role": "resident",
                "created_at": AT})
    with database.read() as uow:  # the transaction was rolled back and the connection works
        assert uow.execute(select(func.count()).select_from(t.reports)).scalar_one() == 0


def test_an_error_known_only_when_results_are_read_arrives_as_sqlalchemys(database):
    """In a pipeline (PostgreSQL) a failed INSERT is known only when a later read waits for
    the results; it still arrives as SQLAlchemy's error, and the write is rolled back."""
    with database.unit_of_work() as uow:
        new_id = INSERT_EVENT.scalar(uow.connection, event())
    with pytest.raises(IntegrityError):
        with database.unit_of_work() as uow, uow.pipeline():
            Prepared(insert(t.outbox)).run(uow.connection, event(id=new_id))  # a taken id
            uow.rows(SELECT_EVENT, {"id": new_id})
    with database.read() as uow:
        assert uow.execute(select(func.count()).select_from(t.outbox)).scalar_one() == 1


def test_many_rows_in_one_call_match_sqlalchemy(database):
    """A list of rows (one statement on PostgreSQL) converts each value as SQLAlchemy would,
    and a column left out takes its default in every row."""
    rows = [event(), {**event(payload=None, event="overdue"), "work_order_id": None},
            event(next_attempt_at=AT + timedelta(days=3), payload={"n": 2})]
    for row in rows:
        del row["attempts"]  # default 0
    with database.unit_of_work() as uow:
        Prepared(insert(t.outbox)).run(uow.connection, rows)
    with database.read() as uow:
        stored = uow.execute(select(t.outbox).order_by(t.outbox.c.id)).all()
    assert [(r.event, r.work_order_id, r.next_attempt_at, r.payload, r.attempts)
            for r in stored] == [(r["event"], r["work_order_id"], r["next_attempt_at"],
                                  r["payload"], 0) for r in rows]
    assert all(r.created_at == AT for r in stored)


def test_a_value_too_long_in_one_of_many_rows_writes_none_of_them(database):
    with pytest.raises(DBAPIError):
        with database.unit_of_work() as uow:
            Prepared(insert(t.audit)).run(uow.connection, [
                {"work_order_id": None, "at": AT, "actor": name, "role": "system",
                 "action": "dispatch"} for name in ("张三", "x" * 101)])
    with database.read() as uow:
        assert uow.execute(select(func.count()).select_from(t.audit)).scalar_one() == 0


def test_a_percent_sign_in_the_sql_is_kept(database):
    """SQLAlchemy doubles a literal % for the driver; PostgreSQL's numbered form has none."""
    like = Prepared(select(literal("a%b").like("a%%", escape="\\").label("hit"),
                           literal_column("'100%'").label("text"),
                           bindparam("x", type_=String()).label("x")))
    with database.read() as uow:
        assert uow.rows(like, {"x": "50%"}) == [(True, "100%", "50%")]
