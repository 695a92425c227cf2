"""Crash safety and concurrency with real processes on both databases."""

import json
import signal
import subprocess
import sys
import time

import shapely
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.storage import Database
from geo.resolver import Resolver
from tests.conftest import PROJECT
from tests.dispatch.helpers import report

WORKERS = 4


def spawn(command, database, media, payload, start_at=0.0):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.dispatch.worker", command,
         database.engine.url.render_as_string(hide_password=False), str(media), str(start_at),
         json.dumps(payload)], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def finish(children) -> list:
    """Each child's printed JSON answer, once all have exited cleanly."""
    answers = []
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err
        answers.append(json.loads(out))
    return answers


def test_an_acknowledged_report_survives_sigkill(database, demo, tmp_path):
    child = spawn("crash", database, tmp_path / "media", report(demo, 120))
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    ack = json.loads(out.split("ACK ", 1)[1])
    fresh = Database(database.engine.url.render_as_string(hide_password=False))
    try:
        with fresh.unit_of_work() as uow:
            row = uow.execute(select(t.reports).where(t.reports.c.id == ack["report_id"])).one()
            order = uow.orders.get(ack["work_order_id"])
            trail = uow.orders.audit(order.id)
    finally:
        fresh.dispose()
    assert row.work_order_id == order.id and order.state == "dispatched"
    assert [a.action for a in trail] == ["dispatch"]


def test_racing_workers_accept_each_order_exactly_once(service, database, demo, tmp_path):
    ids = [service.submit_report(report(demo, 60 * i))["work_order_id"] for i in range(6)]
    start = time.time() + 8
    job = {"orders": ids, "action": "accept", "role": "gridworker"}
    results = finish([spawn("act", database, tmp_path / "media", job, start)
                      for _ in range(WORKERS)])
    for position, order_id in enumerate(ids):
        outcomes = [r[position] for r in results]
        assert outcomes.count("done") == 1, outcomes
        order = service.order(order_id, staff=True)
        assert order["state"] == "accepted" and order["version"] == 2
        assert [a["action"] for a in order["audit"]] == ["dispatch", "accept"]


def test_racing_retries_with_one_key_make_one_order(database, demo, tmp_path):
    payload = report(demo, 220, idempotency_key="rider-7-report-1")
    start = time.time() + 8
    answers = finish([spawn("submit", database, tmp_path / "media", payload, start)
                      for _ in range(WORKERS)])
    assert len({a["work_order_id"] for a in answers}) == 1
    assert len({a["report_id"] for a in answers}) == 1
    with database.unit_of_work() as uow:
        assert uow.execute(select(func.count()).select_from(t.reports)).scalar_one() == 1
        assert uow.execute(select(func.count()).select_from(t.work_orders)).scalar_one() == 1


def test_the_same_problem_reported_at_once_without_keys_makes_one_order(database, demo,
                                                                        tmp_path):
    """Reporters who see the same collapse at once: one order, the others join it."""
    start = time.time() + 8
    answers = finish([spawn("submit", database, tmp_path / "media", report(demo, 220), start)
                      for _ in range(WORKERS)])
    assert sorted(a["outcome"] for a in answers) == ["attached"] * (WORKERS - 1) + ["created"]
    assert len({a["work_order_id"] for a in answers}) == 1
    with database.read() as uow:
        assert uow.execute(select(func.count()).select_from(t.reports)).scalar_one() == WORKERS
        assert uow.execute(select(func.count()).select_from(t.work_orders)).scalar_one() == 1
        order = uow.orders.get(answers[0]["work_order_id"])
        trail = uow.orders.audit(order.id)
    assert order.reports == WORKERS and order.version == WORKERS  # no "me too" lost
    assert [(a.action, a.note) for a in trail] == [("dispatch", "to gridworker")] + [
        ("attach_report", f"report {n} attached") for n in range(2, WORKERS + 1)]


def test_one_problem_reported_at_once_across_a_community_boundary_makes_one_order(
        database, demo, tmp_path):
    """Reports a few metres apart on either side of a boundary between communities are of
    one problem: they wait for each other as reports of one community do."""
    first, second = demo.communities.geometry.values[:2]
    border = shapely.line_merge(first.boundary.intersection(second.boundary))
    middle = shapely.line_interpolate_point(border, 0.5, normalized=True)
    step = 8 / 110_574  # about 8 m in degrees
    sides = [(middle.x + step, middle.y + step), (middle.x - step, middle.y - step)]
    resolver = Resolver(demo)
    assert len({resolver.resolve(*side).community_code for side in sides}) == 2
    start = time.time() + 8
    answers = finish([spawn("submit", database, tmp_path / "media",
                            {**report(demo), "lon": lon, "lat": lat}, start)
                      for lon, lat in sides * (WORKERS // 2)])
    assert sorted(a["outcome"] for a in answers) == ["attached"] * (WORKERS - 1) + ["created"]
    assert len({a["work_order_id"] for a in answers}) == 1


# Each racer's action on an order, and the audit entries it leaves when it succeeds.
RACERS = {"accept": ({"action": "accept", "role": "gridworker"}, ["accept"]),
          "whistle": ({"action": "whistle", "role": "dispatcher", "departments": ["zhujian"]},
                      ["whistle"]),
          "transfer": ({"action": "transfer", "role": "dispatcher",
                        "fields": {"reason": "归城管", "department": "chengguan"}},
                       ["transfer", "dispatch"]),
          "reject": ({"action": "reject", "role": "dispatcher",
                      "fields": {"reason": "重复上报"}}, ["reject"])}


def test_different_actions_racing_on_one_order_lose_nothing(service, database, demo,
                                                            tmp_path):
    """Accept, whistle, transfer and reject at once from four processes: each one either
    happens whole or is refused (conflict, or no longer allowed), never half or twice."""
    ids = [service.submit_report(report(demo, 60 * i + 30))["work_order_id"] for i in range(5)]
    start = time.time() + 8
    results = dict(zip(RACERS, finish([
        spawn("act", database, tmp_path / "media", {"orders": ids, **job}, start)
        for job, _ in RACERS.values()]), strict=True))
    for position, order_id in enumerate(ids):
        outcomes = {name: results[name][position] for name in RACERS}
        assert set(outcomes.values()) <= {"done", "conflict", "refused"}, outcomes
        done = [name for name, outcome in outcomes.items() if outcome == "done"]
        assert done, outcomes  # the first to arrive always succeeds
        order = service.order(order_id, staff=True)
        trail = order["audit"]
        assert order["version"] == 1 + len(done)  # one save for each success, none lost
        assert sorted(a["action"] for a in trail[1:]) == sorted(
            action for name in done for action in RACERS[name][1])
        for before, after in zip(trail, trail[1:], strict=False):  # one unbroken story
            assert after["from"] == before["to"], trail
        assert trail[-1]["to"] == order["state"]
        assert len(order["whistles"]) == int("whistle" in done)
        assert order["department"] == ("chengguan" if "transfer" in done else "zhujian")
