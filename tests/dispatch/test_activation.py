"""Activating a boundary version on both databases: grid assignments follow renamed and merged
grids, open work orders move to where they now lie (handed on when nobody took them yet),
orders made against the old version are moved by the sweep, and transfers name grids of the
active version."""

import pytest
import shapely
from shapely.geometry import LineString, mapping
from sqlalchemy import select

from dispatch import schema as t
from dispatch.errors import InputError
from dispatch.services import Actor, Service
from tests.dispatch.helpers import movable_grid, neighbour_community, report

PLANNER = Actor("planner", "planner")
DISPATCHER = Actor("dispatcher", "dispatcher")


def _people(service, code) -> set[int]:
    with service.db.read() as uow:
        return set(uow.execute(select(t.gridworker_grids.c.gridworker_id).where(
            t.gridworker_grids.c.grid_code == code)).scalars())


def _at(demo, index, point) -> dict:
    """A report like ``report(demo, index)`` but at ``point`` (lon, lat)."""
    return {**report(demo, index), "lon": point.x, "lat": point.y}


def _cut(grid, share=0.35):
    """A north-south line across ``grid`` at ``share`` of its width, and a point inside it on
    each side (west, east)."""
    x0, y0, x1, y1 = grid.geometry.bounds
    x = x0 + (x1 - x0) * share
    west = shapely.intersection(grid.geometry, shapely.box(x0, y0, x, y1))
    east = shapely.intersection(grid.geometry, shapely.box(x, y0, x1, y1))
    line = LineString([(x, y0 - 0.001), (x, y1 + 0.001)])
    return mapping(line), west.representative_point(), east.representative_point()


def _trail(service, order_id) -> list[str]:
    return [a["action"] for a in service.order(order_id, staff=True)["audit"]]


def test_a_split_moves_the_open_orders_of_the_new_part(service, demo, monkeypatch):
    monkeypatch.setattr("dispatch.regrid.MOVE_BATCH", 1)  # one transaction per order
    grid = service.boundaries(1).grids.iloc[100]
    line, west, east = _cut(grid)
    waiting = service.submit_report(_at(demo, 100, west))["work_order_id"]
    taken = service.submit_report({**_at(demo, 100, west), "category": "garbage"})
    taken = taken["work_order_id"]
    service.act(taken, "accept", Actor("worker", "gridworker"))
    staying = service.submit_report({**_at(demo, 100, east), "category": "streetlight"})
    staying = staying["work_order_id"]
    before = {i: service.order(i) for i in (waiting, taken, staying)}
    assert {o["grid_code"] for o in before.values()} == {grid["code"]}

    version = service.start_draft(1, PLANNER)["version"]
    edited = service.edit_draft(version, "split", {"grid": grid["code"], "line": line},
                                PLANNER)
    new_code = edited["grids"][1]
    assert service.boundaries(version).grids.set_index("code").geometry[new_code].covers(west)
    done = service.activate_version(version)
    assert done["orders"] == {"checked": 3, "moved": 2, "rerouted": 1, "outside": 0}

    after = {i: service.order(i, staff=True) for i in (waiting, taken, staying)}
    assert {i: (o["grid_code"], o["boundary_version"]) for i, o in after.items()} == {
        waiting: (new_code, version), taken: (new_code, version),
        staying: (grid["code"], version)}
    # Nobody had taken the first: it goes as a new report there would, to the community's
    # grid leader, the new grid having no gridworker yet.
    fresh = service.submit_report({**_at(demo, 100, west), "category": "water_leak"})
    fresh = service.order(fresh["work_order_id"])
    assert (after[waiting]["assignee_id"], after[waiting]["queue"]) == (
        fresh["assignee_id"], fresh["queue"]) != (before[waiting]["assignee_id"],
                                                  before[waiting]["queue"])
    assert _trail(service, waiting)[-2:] == ["regrid", "reassign"]
    # The taken one stays with its gridworker, in its state.
    assert (after[taken]["state"], after[taken]["assignee_id"]) == (
        "accepted", before[taken]["assignee_id"])
    assert _trail(service, taken)[-1] == "regrid"
    assert "regrid" not in _trail(service, staying)
    note = service.order(waiting, staff=True)["audit"][-2]["note"]
    assert grid["code"] in note and new_code in note
    # Activating again moves nothing more.
    assert service.activate_version(version)["orders"]["moved"] == 0


def test_a_renamed_grid_takes_its_people_and_orders_along(service, demo):
    bset = service.boundaries(1)
    index = movable_grid(bset)
    grid = bset.grids.iloc[index]
    people = _people(service, grid["code"])
    assert people
    order = service.submit_report(report(demo, index))["work_order_id"]
    elsewhere = service.submit_report(report(demo, 20, category="garbage"))["work_order_id"]
    assigned = service.order(order)["assignee_id"]

    version = service.start_draft(1, PLANNER)["version"]
    community = neighbour_community(bset, grid)
    new_code = service.edit_draft(version, "reassign", {"grid": grid["code"],
                                                        "community": community},
                                  PLANNER)["grids"][-1]
    assert new_code.startswith(community)
    done = service.activate_version(version)
    assert done["grids_followed"] == {grid["code"]: new_code}
    assert done["grids_unplaced"] == []
    assert _people(service, new_code) == people and not _people(service, grid["code"])

    moved = service.order(order, staff=True)
    assert (moved["grid_code"], moved["community_code"], moved["assignee_id"]) == (
        new_code, community, assigned)
    assert _trail(service, order)[-1] == "regrid"  # its people came along: nobody new
    again = service.submit_report(report(demo, index, category="garbage"))
    assert again["grid_code"] == new_code
    assert service.order(again["work_order_id"])["queue"] == "gridworker"
    # A transfer names a grid of today's boundaries.
    handed = service.act(elsewhere, "transfer", DISPATCHER, reason="划错网格",
                         grid_code=new_code)
    assert (handed["grid_code"], handed["boundary_version"]) == (new_code, version)
    with pytest.raises(InputError, match="unknown grid"):
        service.act(elsewhere, "transfer", DISPATCHER, reason="?", grid_code=grid["code"])


def test_the_sweep_moves_orders_made_against_the_old_version(service, demo):
    # Another process still holds version 1 as the active one for a while.
    other = Service(service.db, service.catalogue, service.media, clock=service.clock)
    other.active_ttl = 3600
    assert other.active_resolver()[0] == 1
    grid = service.boundaries(1).grids.iloc[100]
    line, west, _ = _cut(grid)
    version = service.start_draft(1, PLANNER)["version"]
    new_code = service.edit_draft(version, "split", {"grid": grid["code"], "line": line},
                                  PLANNER)["grids"][1]
    service.activate_version(version)

    late = other.submit_report(_at(demo, 100, west))
    assert (late["boundary_version"], late["grid_code"]) == (1, grid["code"])
    assert service.sweep()["regridded"] == 1
    order = service.order(late["work_order_id"])
    assert (order["boundary_version"], order["grid_code"]) == (version, new_code)
    assert service.sweep()["regridded"] == 0


def test_closed_orders_keep_their_place(service, demo):
    grid = service.boundaries(1).grids.iloc[100]
    line, west, _ = _cut(grid)
    order = service.submit_report(_at(demo, 100, west))["work_order_id"]
    service.act(order, "reject", DISPATCHER, reason="不属实")
    version = service.start_draft(1, PLANNER)["version"]
    service.edit_draft(version, "split", {"grid": grid["code"], "line": line}, PLANNER)
    assert service.activate_version(version)["orders"]["checked"] == 0
    closed = service.order(order)
    assert (closed["grid_code"], closed["boundary_version"]) == (grid["code"], 1)


def test_a_transfer_to_an_unchanged_grid_stands(service, demo):
    order = service.submit_report(report(demo, 100))["work_order_id"]
    there = service.boundaries(1).grids.iloc[300]["code"]
    service.act(order, "transfer", DISPATCHER, reason="划错网格", grid_code=there)
    moved_by_hand = service.order(order)
    version = service.start_draft(1, PLANNER)["version"]
    line, _, _ = _cut(service.boundaries(1).grids.iloc[20])  # far from both grids
    service.edit_draft(version, "split", {"grid": service.boundaries(1).grids.iloc[20]["code"],
                                          "line": line}, PLANNER)
    assert service.activate_version(version)["orders"]["moved"] == 0
    after = service.order(order, staff=True)
    assert (after["grid_code"], after["assignee_id"], after["boundary_version"]) == (
        there, moved_by_hand["assignee_id"], version)
    assert "regrid" not in _trail(service, order)


def test_a_sweep_overtaken_by_an_activation_moves_nothing_back(service, demo):
    sweeper = Service(service.db, service.catalogue, service.media, clock=service.clock)
    sweeper.active_ttl = 3600
    assert sweeper.active_resolver()[0] == 1  # it still takes version 1 for the active one
    grid = service.boundaries(1).grids.iloc[100]
    line, west, _ = _cut(grid)
    order = service.submit_report(_at(demo, 100, west))["work_order_id"]
    version = service.start_draft(1, PLANNER)["version"]
    new_code = service.edit_draft(version, "split", {"grid": grid["code"], "line": line},
                                  PLANNER)["grids"][1]
    service.activate_version(version)
    trail = _trail(service, order)
    assert sweeper.sweep()["regridded"] == 0
    assert service.order(order)["grid_code"] == new_code and _trail(service, order) == trail


def test_an_order_off_the_new_district_keeps_its_codes(service, demo, toy_gpkg):
    order = service.submit_report(report(demo, 100))["work_order_id"]
    before = service.order(order)
    imported = service.import_boundaries(toy_gpkg, district_code="610104", activate=True)
    after = service.order(order, staff=True)
    assert (after["grid_code"], after["assignee_id"]) == (before["grid_code"],
                                                          before["assignee_id"])
    assert after["boundary_version"] == imported["version"]
    assert "regrid" not in _trail(service, order)
    assert service.sweep()["regridded"] == 0
