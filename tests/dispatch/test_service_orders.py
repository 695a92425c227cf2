"""Resident service orders (点单 → 下单 → 接单 → done → rated) and compounds, on both
databases."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import shapely
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch import service_orders
from dispatch.compounds import Compounds, demo_compounds, write_demo_compounds
from dispatch.errors import Forbidden, IllegalTransition, InputError, NotFound
from dispatch.service_orders import ServiceOrders, load_menu
from tests.dispatch.conftest import ADMIN, WORKER

DESK = WORKER


@pytest.fixture
def orders(service):
    return ServiceOrders(service)


def in_compound(demo, managed: bool, old: bool | None = None, community: str | None = None):
    """A point inside a demo compound with (or without) a property company, old or not, in
    ``community`` if given: (lon, lat, the compound's row)."""
    frame = demo_compounds(demo)
    pick = frame[frame["property_company"].notna() == managed]
    if old is not None:
        pick = pick[(pick["built_year"] < 2001) == old]
    if community is not None:
        pick = pick[pick["community_code"] == community]
    row = pick.iloc[0]
    point = row.geometry.representative_point()
    return point.x, point.y, row


def order_at(orders, person, lon, lat, service="property_repair"):
    return orders.order(person.id, {"service": service, "description": "厨房水管漏水",
                                    "lon": lon, "lat": lat}, person.actor)


def test_the_demo_compounds_are_shipped_as_generated(demo, tmp_path):
    written = write_demo_compounds(demo, tmp_path / "compounds.geojson")
    shipped = Path(__file__).resolve().parents[2] / "data" / "participation" / "compounds.geojson"
    assert written.read_bytes() == shipped.read_bytes()
    frame = demo_compounds(demo)
    assert frame.geometry.is_valid.all() and frame["code"].is_unique
    grids = demo.grids.set_index("code").geometry
    assert all(grids[code[:-1]].contains(geometry)
               for code, geometry in zip(frame["code"], frame.geometry, strict=True))


def test_a_property_repair_goes_through_its_steps(orders, person, demo, clock):
    resident = person("resident")
    lon, lat, compound = in_compound(demo, managed=True)
    made = order_at(orders, resident, lon, lat)
    assert made["state"] == "ordered" and made["compound_code"] == compound["code"]
    assert made["community_code"] == compound["community_code"]
    placed = orders.place(made["id"], DESK)
    assert placed["provider_kind"] == "property"
    assert placed["provider"] == compound["property_company"]
    taken = orders.take(made["id"], ADMIN, "街道接单")
    assert taken["state"] == "taken" and taken["taken_by"] == "admin"
    clock.advance(hours=5)
    done = orders.complete(made["id"], DESK, "已更换水管")
    assert done["state"] == "done" and done["done_at"]
    with pytest.raises(Forbidden):
        orders.confirm(made["id"], resident.id + 1, 5, "", ADMIN)
    rated = orders.confirm(made["id"], resident.id, 5, "很及时", resident.actor)
    assert rated["state"] == "confirmed" and rated["rating"] == 5
    assert [(a["action"], a["from"], a["to"]) for a in rated["audit"]] == [
        ("order", None, "ordered"), ("place", "ordered", "placed"), ("take", "placed", "taken"),
        ("complete", "taken", "done"), ("confirm", "done", "confirmed")]
    assert rated["audit"][1]["note"] == compound["property_company"]


def test_without_a_property_manager_the_community_answers(orders, person, demo):
    lon, lat, compound = in_compound(demo, managed=False, old=True)
    made = order_at(orders, person("resident"), lon, lat)
    placed = orders.place(made["id"], DESK)
    assert (placed["provider_kind"], placed["provider"]) == (
        "community", compound["community_code"])
    volunteer = orders.place(order_at(orders, person("resident2"), lon, lat,
                                      "elderly_help")["id"], DESK)
    assert (volunteer["provider_kind"], volunteer["provider"]) == ("volunteer", "党员志愿服务队")


def test_steps_out_of_order_are_refused_and_change_nothing(orders, person, demo):
    resident = person("resident")
    lon, lat, _ = in_compound(demo, managed=True)
    made = order_at(orders, resident, lon, lat)
    for step in (lambda: orders.take(made["id"], ADMIN),
                 lambda: orders.complete(made["id"], ADMIN, "done"),
                 lambda: orders.confirm(made["id"], resident.id, 4, "", resident.actor)):
        with pytest.raises(IllegalTransition):
            step()
    assert orders.get(made["id"]) == made
    orders.place(made["id"], DESK)
    orders.take(made["id"], ADMIN)
    with pytest.raises(IllegalTransition, match="cancel"):
        orders.cancel(made["id"], resident.actor, "不需要了", user_id=resident.id)
    with pytest.raises(NotFound):
        orders.place(9999, DESK)


def test_cancel_by_the_resident_only(orders, person, demo):
    resident, other = person("resident"), person("neighbour")
    lon, lat, _ = in_compound(demo, managed=True)
    made = order_at(orders, resident, lon, lat)
    with pytest.raises(Forbidden):
        orders.cancel(made["id"], other.actor, "not mine", user_id=other.id)
    assert orders.cancel(made["id"], resident.actor, "已自行修好",
                         user_id=resident.id)["state"] == "cancelled"


@pytest.mark.parametrize("data, field", [
    ({"service": "massage"}, "service"), ({"description": ""}, "description"),
    ({"lon": "east"}, "lon"), ({"lon": 100.0, "lat": 30.0}, "lat"), ({"crs": "mars"}, "crs")])
def test_bad_orders_are_refused(orders, person, demo, data, field):
    lon, lat, _ = in_compound(demo, managed=True)
    good = {"service": "property_repair", "description": "漏水", "lon": lon, "lat": lat}
    resident = person("resident")
    with pytest.raises(InputError) as caught:
        orders.order(resident.id, {**good, **data}, resident.actor)
    assert caught.value.field == field


def test_bad_ratings_are_refused(orders, person, demo):
    resident = person("resident")
    lon, lat, _ = in_compound(demo, managed=True)
    made = order_at(orders, resident, lon, lat)
    for step in (orders.place, orders.take):
        step(made["id"], ADMIN)
    orders.complete(made["id"], ADMIN, "ok")
    for rating in (0, 6, 4.5, "5", None):
        with pytest.raises(InputError):
            orders.confirm(made["id"], resident.id, rating, "", resident.actor)
    assert orders.get(made["id"])["state"] == "done"


def test_overdue_orders_are_marked_once(orders, person, demo, clock):
    lon, lat, _ = in_compound(demo, managed=True)
    quick = order_at(orders, person("resident"), lon, lat, "elderly_help")  # one day
    slow = order_at(orders, person("resident2"), lon, lat, "greening")  # one week
    clock.advance(days=2)
    assert orders.sweep() == 1 and orders.sweep() == 0
    assert orders.get(quick["id"])["overdue"] and not orders.get(slow["id"])["overdue"]
    assert orders.get(quick["id"])["audit"][-1]["action"] == "overdue"


def test_menus_can_differ_by_community(tmp_path, orders):
    menu = tmp_path / "menu.toml"
    menu.write_text('[services.laundry]\nname = "洗衣"\nprovider = "volunteer"\nteam = "t"\n'
                    'complete_within = 60\ncommunities = ["610104001001"]\n', encoding="utf-8")
    loaded = load_menu(menu)
    assert loaded["laundry"].offered_in("610104001001")
    assert not loaded["laundry"].offered_in("610104001002")
    menu.write_text('[services.x]\nname = "x"\nprovider = "volunteer"\ncomplete_within = 60\n',
                    encoding="utf-8")
    with pytest.raises(InputError, match="team"):
        load_menu(menu)
    assert {s["code"] for s in orders.menu_for("610104001001")} >= {"property_repair",
                                                                    "mediation"}


def test_the_share_of_old_compounds_with_a_property_manager(database, demo):
    frame = demo_compounds(demo)
    old = frame[frame["built_year"] < 2001]
    coverage = Compounds(database).coverage()
    assert coverage["compounds"] == len(frame) and coverage["old"] == len(old)
    assert coverage["old_with_property_manager"] == old["property_company"].notna().sum()
    assert 0.3 < coverage["share"] < 0.7
    assert sum(c["old"] for c in coverage["communities"]) == len(old)


def test_a_point_outside_every_compound_has_none(database, demo):
    outside = shapely.Point(demo.grids.geometry.values[0].exterior.coords[0])
    with database.read() as uow:
        assert Compounds(database).at(uow, outside.x, outside.y) is None


def test_a_dispute_goes_to_a_consultation_meeting(orders, person, demo, service):
    resident = person("resident")
    lon, lat, compound = in_compound(demo, managed=True)
    made = order_at(orders, resident, lon, lat, "mediation")
    orders.place(made["id"], DESK)
    parties = ["居民甲", "居民乙", compound["property_company"], "社区居委会"]
    tasks = [{"task": "更换楼顶防水层", "owner": compound["property_company"]}]
    first = orders.hold_meeting(made["id"], parties, ["物业承担维修费用"], tasks, ADMIN)
    second = orders.hold_meeting(made["id"], parties[:2], ["双方签字确认"], [], ADMIN)
    assert second["work_order_id"] == first["work_order_id"] is not None
    assert [m["number"] for m in second["meetings"]] == [1, 2]
    assert second["meetings"][0]["participants"] == parties
    assert second["meetings"][0]["tasks"] == tasks
    order = service.order(second["work_order_id"], staff=True)
    assert order["category"] == "property_dispute" and order["reports_count"] == 1
    assert [a["action"] for a in order["audit"]][-2:] == ["meeting", "meeting"]
    assert [a["action"] for a in second["audit"]] == ["order", "place", "meeting", "meeting"]
    repair = order_at(orders, resident, lon, lat)
    with pytest.raises(InputError, match="consultation"):
        orders.hold_meeting(repair["id"], parties, [], [], ADMIN)
    with pytest.raises(InputError, match="participants"):
        orders.hold_meeting(made["id"], "everyone", [], [], ADMIN)


def test_neighbours_disputes_get_work_orders_of_their_own(orders, person, demo, service):
    lon, lat, _ = in_compound(demo, managed=True)
    mine = order_at(orders, person("resident"), lon, lat, "mediation")
    theirs = order_at(orders, person("neighbour"), lon + 0.0001, lat, "mediation")  # ~9 m
    held = [orders.hold_meeting(made["id"], ["居民甲", "物业"], [decision], [], ADMIN)
            for made, decision in ((mine, "物业维修"), (theirs, "邻居赔偿"))]
    assert held[0]["work_order_id"] != held[1]["work_order_id"]
    assert [m["decisions"] for m in orders.get(mine["id"])["meetings"]] == [["物业维修"]]
    assert [m["decisions"] for m in orders.get(theirs["id"])["meetings"]] == [["邻居赔偿"]]
    for entry in held:
        assert service.order(entry["work_order_id"], staff=True)["reports_count"] == 1


@pytest.mark.parametrize("decisions", ["物业维修", [5], ["x" * 4001], [{"text": "再议"}]],
                         ids=["text", "number", "too_long", "object"])
def test_a_meeting_s_decisions_are_checked_before_anything_is_written(orders, person, demo,
                                                                      monkeypatch, decisions):
    lon, lat, _ = in_compound(demo, managed=True)
    made = order_at(orders, person("resident"), lon, lat, "mediation")

    def written(*_args, **_kwargs):
        raise AssertionError("a meeting with bad decisions reached its report")

    monkeypatch.setattr(orders.service, "prepare_report", written)
    with pytest.raises(InputError) as refused:
        orders.hold_meeting(made["id"], ["居民甲", "居民乙"], decisions, [], ADMIN)
    assert refused.value.field == "decisions"
    assert orders.get(made["id"])["work_order_id"] is None


def test_a_meeting_that_fails_half_way_leaves_nothing_behind(orders, person, demo, service,
                                                             monkeypatch):
    lon, lat, _ = in_compound(demo, managed=True)
    made = order_at(orders, person("resident"), lon, lat, "mediation")
    parties = ["居民甲", "居民乙"]

    def lost(*_args):
        raise RuntimeError("the process died before the service order's trail was written")

    monkeypatch.setattr(service_orders, "_audit", lost)
    with pytest.raises(RuntimeError):
        orders.hold_meeting(made["id"], parties, ["再议"], [], ADMIN)
    monkeypatch.undo()
    assert orders.get(made["id"])["work_order_id"] is None
    with service.db.read() as uow:
        assert uow.execute(select(func.count()).select_from(t.work_orders)).scalar_one() == 0
        assert uow.execute(select(func.count()).select_from(t.reports)).scalar_one() == 0
    again = orders.hold_meeting(made["id"], parties, ["再议"], [], ADMIN)
    assert [m["number"] for m in again["meetings"]] == [1]


def test_two_meetings_at_once_are_both_recorded_on_one_work_order(orders, person, demo):
    lon, lat, _ = in_compound(demo, managed=True)
    made = order_at(orders, person("resident"), lon, lat, "mediation")
    with ThreadPoolExecutor(2) as pool:
        held = list(pool.map(lambda n: orders.hold_meeting(
            made["id"], [f"居民{n}", "社区居委会"], [f"决定{n}"], [], ADMIN), [1, 2]))
    assert held[0]["work_order_id"] == held[1]["work_order_id"] is not None
    final = orders.get(made["id"])
    assert [m["number"] for m in final["meetings"]] == [1, 2]
    assert [a["action"] for a in final["audit"]] == ["order", "meeting", "meeting"]
