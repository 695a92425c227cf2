"""Editing the roster through the service layer and the command line, on both databases:
gridworkers and dispatchers are changed or removed; unknown ids are NotFound, bad input an
InputError naming the field, and nothing changes on error."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.accounts import Accounts
from dispatch.errors import InputError, NotFound
from dispatch.services import Actor
from tests.dispatch.helpers import photo, report
from web.cli import main

ADMIN = Actor("admin", "admin")


def people_of(service, grid_code) -> dict[str, int]:
    """The ids of a grid's gridworker and grid leader, by role."""
    with service.db.read() as uow:
        return dict(uow.execute(select(t.gridworkers.c.role, t.gridworkers.c.id).join(
            t.gridworker_grids).where(t.gridworker_grids.c.grid_code == grid_code)).all())


def roster(service) -> dict:
    """Every roster row, to show that a refused change changed nothing."""
    with service.db.read() as uow:
        return {name: sorted(tuple(r) for r in uow.execute(select(getattr(t, name))))
                for name in ("gridworkers", "gridworker_grids", "dispatchers")}


@pytest.fixture
def worker(service, demo):
    """Grid 100's gridworker."""
    return people_of(service, demo.grids.iloc[100]["code"])["gridworker"]


def test_a_gridworker_is_edited(service, demo, worker):
    grids = list(demo.grids["code"].iloc[[200, 201]])
    done = service.update_gridworker(worker, name=" 李新 ", phone="+86 138-0000-1111",
                                     role="grid_leader", grids=[*grids, grids[0]],
                                     on_duty=False)
    assert done == service.gridworker(worker)
    assert (done["name"], done["phone"], done["role"], done["on_duty"]) == (
        "李新", "+86 138-0000-1111", "grid_leader", False)
    assert done["grids"] == sorted(grids)
    assert service.update_gridworker(worker, name="李新新")["grids"] == sorted(grids)
    assert service.update_gridworker(worker, grids=[])["grids"] == []


def test_the_new_grids_decide_whom_intake_assigns(service, demo, worker):
    target = demo.grids.iloc[200]["code"]
    service.update_gridworker(worker, grids=[target])
    order = service.order(service.submit_report(report(demo, 200))["work_order_id"])
    assert (order["assignee_id"], order["queue"]) == (
        min(worker, people_of(service, target)["gridworker"]), "gridworker")
    order = service.order(service.submit_report(report(demo, 100))["work_order_id"])
    assert order["queue"] == "grid_leader"  # grid 100 has no gridworker now


BAD_GRIDWORKER_EDITS = [
    ({"name": ""}, "name", "name is required"),
    ({"name": "名" * 101}, "name", "at most 100"),
    ({"name": 42}, "name", "name must be text"),
    ({"phone": "call me"}, "phone", "phone must be digits"),
    ({"phone": "1" * 21}, "phone", "6 to 20 long"),
    ({"phone": 13800001111}, "phone", "phone must be digits"),
    ({"phone": ""}, "phone", "phone is required"),
    ({"role": "mayor"}, "role", "role must be one of gridworker, grid_leader, mobile"),
    ({"on_duty": "yes"}, "on_duty", "true or false"),
    ({"grids": ["610104999999999"]}, "grids", "no grid '610104999999999' in the active"),
    ({"grids": "610104003005001"}, "grids", "a list of grid codes"),
    ({"grids": [610104003005001]}, "grids", "no grid 610104003005001"),
    ({"name": "李新", "grids": ["nowhere"]}, "grids", "no grid 'nowhere'"),
    ({}, "name", "give a name, phone, role, grids or on_duty"),
]


@pytest.mark.parametrize("change, field, message", BAD_GRIDWORKER_EDITS,
                         ids=[f"{c[1]}:{c[2][:14]}" for c in BAD_GRIDWORKER_EDITS])
def test_bad_gridworker_edits_are_refused_by_name(service, worker, change, field, message):
    before = roster(service)
    with pytest.raises(InputError, match=message) as info:
        service.update_gridworker(worker, **change)
    assert info.value.field == field
    assert roster(service) == before


@pytest.mark.parametrize("unknown", [999_999, 0, -1, "7", True, None])
def test_unknown_people_are_not_found(service, unknown):
    before = roster(service)
    for call in (lambda: service.gridworker(unknown),
                 lambda: service.update_gridworker(unknown, name="x"),
                 lambda: service.remove_gridworker(unknown, ADMIN),
                 lambda: service.dispatcher(unknown),
                 lambda: service.update_dispatcher(unknown, name="x"),
                 lambda: service.remove_dispatcher(unknown)):
        with pytest.raises(NotFound):
            call()
    assert roster(service) == before


def test_removing_a_gridworker_hands_their_open_orders_on(service, demo, worker, clock,
                                                         person):
    person("liwei", "gridworker", gridworker_id=worker)
    leader = people_of(service, demo.grids.iloc[100]["code"])["grid_leader"]
    open_id = service.submit_report(report(demo, 100))["work_order_id"]
    service.act(open_id, "accept", Actor("liwei", "gridworker"))
    clock.advance(days=31)  # the next report is not a "me too"
    done_id = service.submit_report(report(demo, 100))["work_order_id"]
    service.act(done_id, "reject", ADMIN, reason="不属实")
    before = service.order(open_id, staff=True)

    removed = service.remove_gridworker(worker, ADMIN)
    assert removed["id"] == worker and removed["reassigned_orders"] == [open_id]
    assert removed["deactivated_accounts"] == ["liwei"]
    after = service.order(open_id, staff=True)
    assert (after["assignee_id"], after["queue"], after["state"]) == (
        leader, "grid_leader", "accepted")
    assert (after["respond_due"], after["resolve_due"]) == (before["respond_due"],
                                                            before["resolve_due"])
    entry = after["audit"][-1]
    assert (entry["action"], entry["actor"], entry["role"], entry["from"], entry["to"]) == (
        "reassign", "admin", "admin", "accepted", "accepted")
    assert entry["note"] == f"gridworker {worker} left the roster; to grid_leader"
    assert service.order(done_id)["assignee_id"] == worker  # history stays as it was
    with service.db.read() as uow:
        events = uow.execute(select(t.outbox.c.payload).where(
            t.outbox.c.event == "assigned", t.outbox.c.work_order_id == open_id).order_by(
            t.outbox.c.id)).scalars().all()
        links = uow.execute(select(func.count()).select_from(t.gridworker_grids).where(
            t.gridworker_grids.c.gridworker_id == worker)).scalar_one()
    assert events[-1]["assignee_id"] == leader and links == 0
    assert Accounts(service.db, service.clock).authenticate("liwei", "correct horse") is None
    with pytest.raises(NotFound):
        service.gridworker(worker)
    with pytest.raises(NotFound):
        service.remove_gridworker(worker, ADMIN)


def test_a_removed_gridworker_with_nothing_open_leaves_no_trace_in_orders(service, worker):
    assert service.remove_gridworker(worker, ADMIN)["reassigned_orders"] == []
    with service.db.read() as uow:
        assert uow.execute(select(func.count()).select_from(t.audit)).scalar_one() == 0


def test_a_dispatcher_is_edited_and_removed(service, demo):
    with service.db.read() as uow:
        first = uow.execute(select(func.min(t.dispatchers.c.id))).scalar_one()
    street = demo.streets["code"].iloc[-1]
    done = service.update_dispatcher(first, name="赵调度", phone="029-8888-0000",
                                     street_code=street)
    assert done == {"id": first, "name": "赵调度", "phone": "029-8888-0000",
                    "street_code": street} == service.dispatcher(first)
    before = roster(service)
    for change, field in (({"street_code": "610104999"}, "street_code"),
                          ({"street_code": 610104001}, "street_code"),
                          ({"phone": "x"}, "phone"), ({"name": ""}, "name"), ({}, "name")):
        with pytest.raises(InputError) as info:
            service.update_dispatcher(first, **change)
        assert info.value.field == field
    assert roster(service) == before
    assert service.remove_dispatcher(first) == done
    with pytest.raises(NotFound):
        service.dispatcher(first)


# --- the command line -----------------------------------------------------------------------

@pytest.fixture
def run(service, tmp_path):
    """``gridline ...`` against the test's database (SQLite or PostgreSQL)."""
    env = {"GRIDLINE_DATABASE_URL": service.db.engine.url.render_as_string(hide_password=False),
           "GRIDLINE_INSTANCE": str(tmp_path / "instance")}

    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args], env=env)

    return invoke


def test_gridworkers_are_shown_edited_and_removed_from_the_command_line(run, service, demo,
                                                                        worker):
    shown = run("gridworkers", "show", worker)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == service.gridworker(worker)
    grids = list(demo.grids["code"].iloc[[300, 301]])
    edited = run("gridworkers", "update", worker, "--name", "王新", "--role", "grid_leader",
                 "--grids", ",".join(grids), "--off-duty")
    assert edited.exit_code == 0, edited.output
    assert json.loads(edited.output) == service.gridworker(worker)
    assert service.gridworker(worker)["grids"] == sorted(grids)
    assert not service.gridworker(worker)["on_duty"]
    assert service.gridworker(worker)["name"] == "王新"
    cleared = run("gridworkers", "update", worker, "--grids", "")
    assert cleared.exit_code == 0 and json.loads(cleared.output)["grids"] == []

    before = roster(service)
    for args, message in (
            (("--phone", "call me"), "error: phone must be digits"),
            (("--name", "李", "--grids", "610104999999999"), "error: no grid '610104999999999'"),
            ((), "error: give a name, phone, role, grids or on_duty to change")):
        refused = run("gridworkers", "update", worker, *args)
        assert refused.exit_code == 2 and message in refused.output, refused.output
    bad_role = run("gridworkers", "update", worker, "--role", "mayor")
    assert bad_role.exit_code == 2 and "'mayor' is not one of" in bad_role.output
    missing = run("gridworkers", "update", 999_999, "--name", "x")
    assert missing.exit_code == 2 and "error: no gridworker #999999" in missing.output
    assert roster(service) == before

    order_id = service.submit_report(report(demo, 100))["work_order_id"]
    leader = people_of(service, demo.grids.iloc[100]["code"])["grid_leader"]
    service.update_gridworker(worker, grids=[demo.grids.iloc[100]["code"]], on_duty=True)
    service.act(order_id, "transfer", ADMIN, reason="换人", grid_code=demo.grids.iloc[100]["code"])
    assert service.order(order_id)["assignee_id"] == worker
    removed = run("gridworkers", "remove", worker)
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.output)["reassigned_orders"] == [order_id]
    assert service.order(order_id)["assignee_id"] == leader
    assert service.order(order_id, staff=True)["audit"][-1]["actor"] == "command line"
    gone = run("gridworkers", "remove", worker)
    assert gone.exit_code == 2 and f"no gridworker #{worker}" in gone.output


def test_dispatchers_are_edited_and_removed_from_the_command_line(run, service, demo):
    with service.db.read() as uow:
        first = uow.execute(select(func.min(t.dispatchers.c.id))).scalar_one()
    street = demo.streets["code"].iloc[2]
    edited = run("dispatchers", "update", first, "--street", street, "--phone", "13900000000")
    assert edited.exit_code == 0, edited.output
    assert json.loads(edited.output) == service.dispatcher(first)
    assert service.dispatcher(first)["street_code"] == street
    before = roster(service)
    refused = run("dispatchers", "update", first, "--street", "nowhere")
    assert refused.exit_code == 2 and "error: no street 'nowhere'" in refused.output
    assert roster(service) == before
    assert json.loads(run("dispatchers", "show", first).output)["street_code"] == street
    removed = run("dispatchers", "remove", first)
    assert removed.exit_code == 0 and json.loads(removed.output)["id"] == first
    assert run("dispatchers", "show", first).exit_code == 2


def test_an_order_resolved_before_removal_goes_on_to_verification(service, demo, worker):
    order_id = service.submit_report(report(demo, 100))["work_order_id"]
    for action in ("accept", "start"):
        service.act(order_id, action, ADMIN)
    service.act(order_id, "resolve", ADMIN, feedback="修好了", photo=photo())
    assert service.remove_gridworker(worker, ADMIN)["reassigned_orders"] == [order_id]
    assert service.act(order_id, "verify", ADMIN)["state"] == "verified"


@pytest.mark.parametrize("add, field", [
    (lambda s: s.add_gridworker("新人", "13700000001", "gridworker", ["610104999999001"]),
     "grids"),
    (lambda s: s.add_gridworker("新人", "13700000001", "gridworker", "610104001001001"),
     "grids"),
    (lambda s: s.add_dispatcher("新调度", "13700000002", "610104999"), "street_code"),
])
def test_new_people_need_grids_and_streets_of_the_active_version(service, add, field):
    before = (count_rows(service, t.gridworkers), count_rows(service, t.dispatchers))
    with pytest.raises(InputError) as refused:
        add(service)
    assert refused.value.field == field
    assert (count_rows(service, t.gridworkers), count_rows(service, t.dispatchers)) == before


def count_rows(service, table):
    with service.db.read() as uow:
        return uow.execute(select(func.count()).select_from(table)).scalar_one()


def test_ids_of_removed_people_are_never_given_again(service, demo):
    grid = demo.grids["code"].iloc[5]
    last = service.add_gridworker("最后一位", "13700000003", "gridworker", [grid])
    service.remove_gridworker(last, ADMIN)
    street = demo.streets["code"].iloc[0]
    dispatcher = service.add_dispatcher("临时调度", "13700000004", street)
    service.remove_dispatcher(dispatcher)
    assert service.add_gridworker("新来的", "13700000005", "gridworker", [grid]) > last
    assert service.add_dispatcher("新调度", "13700000006", street) > dispatcher
    with service.db.read() as uow:
        kept = uow.execute(select(t.gridworkers.c.name, t.gridworkers.c.on_duty,
                                  t.gridworkers.c.removed_at).where(
            t.gridworkers.c.id == last)).one()
    assert kept.name == "最后一位" and kept.on_duty is False and kept.removed_at is not None
    with pytest.raises(NotFound):
        service.update_gridworker(last, name="回来了")
