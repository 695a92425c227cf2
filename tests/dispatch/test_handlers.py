"""The service's lifecycle, whistle and sweep handlers against the in-memory fake database
(:mod:`tests.dispatch.fakes`): the rules of each handler, with no database at all."""

import pytest

from dispatch.catalogue import load_catalogue
from dispatch.errors import Conflict, Forbidden, IllegalTransition, InputError
from dispatch.model import WorkOrder
from dispatch.notify import Notifier
from dispatch.services import Actor, Service
from tests.dispatch.fakes import FakeDatabase
from tests.dispatch.helpers import photo

WORKER = Actor("李网格员", "gridworker")
LEADER = Actor("赵网格长", "grid_leader")
DISPATCHER = Actor("王调度", "dispatcher")
GRID, OTHER_GRID = "610104001001001", "610104002001001"


class Recorder(Notifier):
    """Keeps every payload it is given."""

    def __init__(self):
        self.sent = []

    def send(self, payload: dict) -> None:
        self.sent.append(payload)


@pytest.fixture
def db():
    fake = FakeDatabase()
    fake.roster = [(7, "gridworker", GRID), (8, "grid_leader", GRID),
                   (9, "gridworker", OTHER_GRID)]
    return fake


@pytest.fixture
def service(db, clock, tmp_path, demo_resolver):
    return Service(db, load_catalogue(), tmp_path / "media", notifier=Recorder(), clock=clock,
                   resolvers={1: demo_resolver})


def dispatched(service, db, clock) -> int:
    """A new road collapse in GRID, dispatched to its gridworker."""
    category = service.catalogue.category("road_collapse")
    order = WorkOrder(category=category.code, lon=108.95, lat=34.25, boundary_version=1,
                      grid_code=GRID, community_code=GRID[:12], street_code=GRID[:9],
                      department=category.department, created_at=clock())
    order.dispatch(category, 7, "gridworker", "system", "system", clock())
    with db.unit_of_work() as uow:
        return uow.orders.add(order).id


@pytest.fixture
def order_id(service, db, clock):
    return dispatched(service, db, clock)


def trail(db, order_id) -> list[str]:
    return [a.action for a in db.audit[order_id]]


def to_resolved(service, order_id):
    service.act(order_id, "accept", WORKER)
    service.act(order_id, "start", WORKER)
    return service.act(order_id, "resolve", WORKER, feedback="已回填压实", photo=photo())


def test_an_order_runs_from_dispatch_to_close(service, db, order_id, clock):
    clock.advance(minutes=5)
    assert service.act(order_id, "accept", WORKER)["state"] == "accepted"
    resolved = (service.act(order_id, "start", WORKER),
                service.act(order_id, "resolve", WORKER, feedback="已回填压实",
                            photo=photo()))[1]
    assert resolved["state"] == "resolved" and (service.media / resolved["repair_photo"]).exists()
    service.act(order_id, "verify", DISPATCHER)
    closed = service.act(order_id, "close", DISPATCHER, note="居民确认")
    assert closed["state"] == "closed" and closed["open311_status"] == "closed"
    assert closed["version"] == 6 and closed["closed_at"] == clock().isoformat()
    assert trail(db, order_id) == ["dispatch", "accept", "start", "resolve", "verify", "close"]
    sent = service.notifier.sent  # every event left once, with its id, right after its change
    assert [e["event_id"] for e in sent] == list(range(1, 8))
    assert [e.get("to") for e in sent] == ["dispatched", None, "accepted", "in_progress",
                                           "resolved", "verified", "closed"]


def test_an_illegal_action_is_refused_and_changes_nothing(service, db, order_id):
    before = db.orders[order_id]
    with pytest.raises(IllegalTransition, match="cannot close order"):
        service.act(order_id, "close", DISPATCHER)
    with pytest.raises(InputError, match="unknown action"):
        service.act(order_id, "repaint", DISPATCHER)
    assert db.orders[order_id] == before and trail(db, order_id) == ["dispatch"]


def test_a_stale_version_is_a_conflict(service, db, order_id):
    with db.read() as uow:
        stale = uow.orders.get(order_id)
    service.act(order_id, "accept", WORKER, expected_version=1)
    with pytest.raises(Conflict, match="reload"):
        service.act(order_id, "start", WORKER, expected_version=1)
    stale.reject("someone", "dispatcher", stale.created_at, "late")
    with pytest.raises(Conflict), db.unit_of_work() as uow:  # the repository's own check
        uow.orders.save(stale)
    assert db.orders[order_id].state == "accepted" and db.orders[order_id].version == 2
    assert trail(db, order_id) == ["dispatch", "accept"]


def test_a_failing_step_rolls_the_whole_action_back(service, db, order_id):
    def hook(uow, order, action, actor, now):
        raise RuntimeError("the points ledger is unavailable")

    service.order_hooks.append(hook)
    with pytest.raises(RuntimeError):
        service.act(order_id, "accept", WORKER)
    assert db.orders[order_id].state == "dispatched" and trail(db, order_id) == ["dispatch"]
    assert len(db.outbox) == 2  # only the dispatch's events


def test_reject_needs_a_reason_and_ends_the_order(service, db, order_id, clock):
    with pytest.raises(InputError, match="reason is required"):
        service.act(order_id, "reject", DISPATCHER, reason=" ")
    rejected = service.act(order_id, "reject", DISPATCHER, reason="不在辖区")
    assert rejected["state"] == "rejected" and rejected["reject_reason"] == "不在辖区"
    assert rejected["open311_status"] == "closed" and rejected["closed_at"] is not None


def test_reopen_dispatches_again_to_whoever_is_on_duty(service, db, order_id, clock):
    to_resolved(service, order_id)
    db.roster.remove((7, "gridworker", GRID))  # the gridworker went off duty meanwhile
    clock.advance(days=1)
    reopened = service.act(order_id, "reopen", DISPATCHER, reason="又塌了")
    assert reopened["state"] == "dispatched"
    assert (reopened["assignee_id"], reopened["queue"]) == (8, "grid_leader")
    assert reopened["respond_due"] > clock().isoformat()
    assert db.orders[order_id].resolved_at is None
    assert trail(db, order_id)[-2:] == ["reopen", "dispatch"]


def test_transfer_to_another_department_or_grid(service, db, order_id):
    moved = service.act(order_id, "transfer", DISPATCHER, reason="归城管", department="chengguan")
    assert moved["department"] == "chengguan" and moved["state"] == "dispatched"
    moved = service.act(order_id, "transfer", DISPATCHER, reason="划错网格",
                        grid_code=OTHER_GRID)
    assert (moved["grid_code"], moved["community_code"], moved["street_code"]) == (
        OTHER_GRID, OTHER_GRID[:12], OTHER_GRID[:9])
    assert (moved["assignee_id"], moved["queue"]) == (9, "gridworker")
    with pytest.raises(InputError, match="unknown grid"):
        service.act(order_id, "transfer", DISPATCHER, reason="?", grid_code="610104999999999")
    assert trail(db, order_id) == ["dispatch", "transfer", "dispatch", "transfer", "dispatch"]


def test_merge_closes_the_duplicate_and_counts_its_reports_on_the_other(service, db, order_id,
                                                                        clock):
    other = dispatched(service, db, clock)
    with pytest.raises(InputError, match="needs the id"):
        service.act(other, "merge", DISPATCHER, into="1")
    merged = service.act(other, "merge", DISPATCHER, into=order_id)
    assert merged["state"] == "duplicate" and merged["duplicate_of"] == order_id
    assert db.orders[order_id].reports == 2 and db.orders[order_id].version == 2
    with pytest.raises(IllegalTransition):  # merged once, for good
        service.act(other, "merge", DISPATCHER, into=order_id)
    assert db.orders[order_id].reports == 2


def test_the_whistle_summons_departments_until_each_has_done_its_part(service, db, order_id):
    with pytest.raises(Forbidden):
        service.blow_whistle(order_id, ["zhujian"], 30, WORKER)
    blown = service.blow_whistle(order_id, ["zhujian", "xiaofang"], 30, LEADER, reason="塌陷扩大")
    assert {s["department"] for s in blown["whistles"][0]["summons"]} == {"xiaofang", "zhujian"}
    with pytest.raises(IllegalTransition, match="must report for duty"):
        service.complete_part(order_id, 1, "zhujian", DISPATCHER, "围挡")
    for department in ("zhujian", "xiaofang"):
        service.report_for_duty(order_id, 1, department, DISPATCHER)
    with pytest.raises(IllegalTransition, match="already reported"):
        service.report_for_duty(order_id, 1, "zhujian", DISPATCHER)
    service.complete_part(order_id, 1, "zhujian", DISPATCHER, "围挡")
    assert db.orders[order_id].whistles[0].ended_at is None
    done = service.complete_part(order_id, 1, "xiaofang", DISPATCHER, "排险")
    assert done["whistles"][0]["ended_at"] is not None
    assert [e["event"] for e in service.notifier.sent][-1] == "whistle_ended"
    assert trail(db, order_id)[1:] == ["whistle", "report_for_duty", "report_for_duty",
                                       "complete_part", "complete_part"]


def test_the_sweep_marks_each_missed_deadline_once(service, db, order_id, clock):
    service.blow_whistle(order_id, ["zhujian"], 20, DISPATCHER)
    assert service.sweep()["marked"] == 0
    clock.advance(minutes=31)
    assert service.sweep() == {"marked": 1, "regridded": 0, "delivered": 2,  # respond, summons
                               "failed": 0}
    assert service.sweep()["marked"] == 0  # safe to run again
    service.act(order_id, "accept", WORKER)
    clock.advance(days=2)
    assert service.sweep()["marked"] == 1
    order = db.orders[order_id]
    assert order.respond_overdue and order.resolve_overdue and order.whistles[0].summons[0].overdue
    overdue = [e["kind"] for e in service.notifier.sent if e["event"] == "overdue"]
    assert overdue == ["respond", "summons", "resolve"]
    assert trail(db, order_id).count("overdue") == 3
