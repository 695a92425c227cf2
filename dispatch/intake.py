"""Intake writes: resolved reports become stored reports and new or joined work orders.

Reports are written a batch at a time (a batch of one when nothing else is waiting) in the
transaction given. Each report inside the district joins the nearest open order of its category
within the category's radius and time window — one stored before, or one created earlier in the
same batch — as a "me too", or becomes a new order dispatched to the grid's people. Whatever its
size, a batch costs a fixed handful of statements: under load that, not the work, decides how
many reports a server takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import String, bindparam, insert, select

from dispatch import schema as t
from dispatch.catalogue import Category
from dispatch.model import OrderHead, WorkOrder
from dispatch.storage import (
    METRES_PER_DEGREE_LAT,
    Prepared,
    distances_m,
    numbered,
    numbered_values,
    search_box,
)
from geo.resolver import OUTSIDE, Resolution

INSERT_REPORT = Prepared(insert(t.reports))
_g, _gg = t.gridworkers.c, t.gridworker_grids.c
_on_duty = select(_gg.grid_code, _g.id, _g.role).join(
    t.gridworker_grids, _gg.gridworker_id == _g.id).where(_g.on_duty).order_by(_g.id)
COMMUNITY_LEADER = Prepared(_on_duty.where(_gg.grid_code.like(bindparam("prefix")),
                                           _g.role == "grid_leader").limit(1))


@lru_cache(maxsize=64)
def _grid_people_of(count: int) -> Prepared:
    """The on-duty people of ``count`` grids, by grid code (see :func:`numbered`)."""
    return Prepared(_on_duty.where(_gg.grid_code.in_(numbered("grid", count, String()))))


# Who a new order goes to, in turn: the grid's gridworker, its mobile gridworker, its grid
# leader; then a grid leader of the community; else the street's dispatch queue.
GRID_ROLES = (("gridworker", "gridworker"), ("mobile", "gridworker"),
              ("grid_leader", "grid_leader"))


@dataclass(eq=False)
class Pending:
    """A validated, resolved report waiting to be written (compared by identity)."""

    report: dict
    where: Resolution
    category: Category
    version: int
    photo: str | None
    at: datetime
    user_id: int | None
    actor: tuple[str, str]  # (name, role) recorded in the orders' audit trail
    may_join: bool = True  # False: it always creates an order of its own, never a "me too"


def write_reports(uow, batch: list[Pending]) -> list[dict]:
    """Write ``batch`` in the open transaction ``uow``; the answer for each, in order.

    On PostgreSQL the statements travel in a pipeline and wait for the database only where an
    answer is needed: for the orders near the reports (the report ids and the on-duty people
    of the reports' grids, asked for before, come back with them), for the ids of new orders
    (and a community's grid leader, for a grid with nobody on duty), and once at the end for
    everything else. The orders near the reports are locked, whether joined or not."""
    with uow.pipeline():
        answers, check = _write_reports(uow, batch)
    check()
    return answers


def _write_reports(uow, batch: list[Pending]):
    """The answers, and the version check of the "me too" orders, to run once every statement
    is done."""
    inside = [p for p in batch if p.where.status != OUTSIDE]
    lock_reports(uow, batch)
    report_ids = uow.ids_to_come(t.reports, len(batch))
    people = _grid_people(uow, {p.where.grid_code for p in inside})  # for any new orders
    joining = [p for p in inside if p.may_join]
    stored = dict(zip(joining, uow.orders.open_near([
        (p.category.code, p.where.lon, p.where.lat, p.category.duplicate_radius_m,
         p.at - timedelta(hours=p.category.duplicate_window_hours)) for p in joining]),
        strict=True))
    joins, created = _match(inside, stored)
    new_orders = {p: _new_order(p) for p in created}
    _dispatch(uow, new_orders, people())
    order_of = dict(new_orders)
    for p, target in joins.items():  # in the batch's order, so the trail follows it
        order = new_orders[target] if isinstance(target, Pending) else target
        order.attach_report(*p.actor, p.at)
        order_of[p] = order
    joined = {o.id: o for o in order_of.values() if isinstance(o, OrderHead)}
    check = uow.orders.save_heads([joined[i] for i in sorted(joined)])
    uow.orders.add_many(list(new_orders.values()))
    answers, rows = [], []
    for p, report_id in zip(batch, report_ids(), strict=True):
        order = order_of.get(p)
        outcome = "outside" if order is None else "attached" if p in joins else "created"
        row, answer = _report_row(p, report_id, outcome, order)
        rows.append(row)
        answers.append(answer)
    INSERT_REPORT.run(uow.connection, rows)
    return answers, check


def lock_reports(uow, batch: list[Pending]) -> None:
    """Reports that could be of one problem wait for each other across processes, so that two
    of them cannot both find no order and both create one: the lock keys of every report of
    ``batch`` inside the district, taken at once in sorted order."""
    uow.lock_all(key for p in batch if p.where.status != OUTSIDE for key in _neighbourhood(p))


def _neighbourhood(p: Pending) -> list[str]:
    """Lock keys for the cells that the report's duplicate search box touches, in a fixed grid
    of rows four times the category's duplicate radius high, each row cut into cells at least
    as wide (wider towards the poles, so that a box spans two cells of a row at most). Two
    reports of a category within its radius of each other always share one, as each lies in
    the other's box; reports farther apart seldom do, so they do not queue for each other."""
    radius = max(p.category.duplicate_radius_m, 1.0)
    height = 4 * radius / METRES_PER_DEGREE_LAT
    west, south, east, north = search_box(p.where.lon, p.where.lat, radius)
    west, east = max(west, -180.0), min(east, 180.0)
    keys = []
    for row in range(math.floor(south / height), math.floor(north / height) + 1):
        poleward = min(90.0, max(abs(row), abs(row + 1)) * height)
        width = min(360.0, height / max(math.cos(math.radians(poleward)), height / 360.0))
        keys += [f"intake:{p.category.code}:{row}:{column}"
                 for column in range(math.floor(west / width), math.floor(east / width) + 1)]
    return keys


def _match(inside: list[Pending], stored: dict[Pending, list[tuple[OrderHead, float]]]):
    """Which order each joining report joins — a stored order's head, or the earlier report
    of this batch that creates the order — and the reports that create one (``stored``: the
    open orders near each report that may join one). The nearest candidate wins; at equal
    distance a stored order comes before a new one."""
    joins: dict[Pending, OrderHead | Pending] = {}
    created: list[Pending] = []
    for p in inside:
        if not p.may_join:
            created.append(p)
            continue
        candidates = stored[p]
        options = [(distance, 0, head) for head, distance in candidates]
        same = [q for q in created if q.category.code == p.category.code]
        if same:
            near = distances_m(p.where.lon, p.where.lat, [q.where.lon for q in same],
                               [q.where.lat for q in same])
            options += [(float(d), 1, q) for q, d in zip(same, near, strict=True)
                        if d <= p.category.duplicate_radius_m]
        if options:
            joins[p] = min(options, key=lambda o: o[:2])[2]
        else:
            created.append(p)
    return joins, created


def _new_order(p: Pending) -> WorkOrder:
    w = p.where
    return WorkOrder(category=p.category.code, lon=w.lon, lat=w.lat, boundary_version=p.version,
                     grid_code=w.grid_code, community_code=w.community_code,
                     street_code=w.street_code, department=p.category.department,
                     created_at=p.at)


def _dispatch(uow, new_orders: dict[Pending, WorkOrder], people) -> None:
    """Send each new order to its assignee, out of ``people`` (see :func:`_grid_people`)."""
    for p, order in new_orders.items():
        assignee, queue = _choose(uow, people.get(p.where.grid_code, {}),
                                  p.where.community_code)
        order.dispatch(p.category, assignee, queue, *p.actor, p.at)


def assignee(uow, grid_code: str | None, community_code: str | None):
    """Who an order of this grid goes to: (gridworker id or None, queue)."""
    return _choose(uow, _grid_people(uow, {grid_code})().get(grid_code, {}), community_code)


def _grid_people(uow, grids) -> Callable[[], dict[str, dict[str, int]]]:
    """The on-duty people of ``grids`` (grid code → role → the lowest id), in one query asked
    now and read when the function returned is called (see :meth:`Prepared.later`)."""
    grids = sorted(g for g in grids if g)
    if not grids:
        return dict
    rows = uow.later(_grid_people_of(len(grids)), numbered_values("grid", grids))

    def people() -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for row in rows():
            found.setdefault(row.grid_code, {}).setdefault(row.role, row.id)
        return found

    return people


def _choose(uow, grid_people: dict[str, int], community_code: str | None):
    for role, queue in GRID_ROLES:
        if role in grid_people:
            return grid_people[role], queue
    if community_code:
        found = uow.rows(COMMUNITY_LEADER, {"prefix": f"{community_code}%"})
        if found:
            return found[0].id, "community"
    return None, "street"


def _report_row(p: Pending, report_id: int, outcome: str, order: WorkOrder | None):
    w, r = p.where, p.report
    reason = outside_reason(w) if w.status == OUTSIDE else None
    order_id = order.id if order is not None else None
    row = dict(id=report_id, work_order_id=order_id, outcome=outcome, category=p.category.code,
               description=r["description"], lon=w.lon, lat=w.lat, original_x=r["x"],
               original_y=r["y"], original_crs=r["crs"].name, boundary_version=p.version,
               resolve_status=w.status, grid_code=w.grid_code,
               community_code=w.community_code, street_code=w.street_code,
               station_id=w.station_id, station_distance_m=w.station_distance_m,
               reason=reason, reporter_name=r["reporter_name"],
               reporter_phone=r["reporter_phone"], reporter_role=r["reporter_role"],
               photo=p.photo, idempotency_key=r["idempotency_key"], user_id=p.user_id,
               attributes=r["attributes"], media_url=r["media_url"], address=r["address"],
               created_at=p.at)
    return row, report_answer(row)


def outside_reason(where: Resolution) -> str:
    """Why a report at ``where``, outside the district, is kept but rejected (or refused)."""
    if where.outside_distance_m is None:  # a boundary set without grids
        return "outside the district"
    return f"outside the district, {where.outside_distance_m:,.0f} m from the nearest grid"


def report_answer(row) -> dict:
    """What the reporter is told of a stored report (``row``: its columns by name); a retry
    with the same idempotency key is told the same."""
    return {"report_id": row["id"], "outcome": row["outcome"],
            "work_order_id": row["work_order_id"], "status": row["resolve_status"],
            "grid_code": row["grid_code"], "community_code": row["community_code"],
            "street_code": row["street_code"], "station_id": row["station_id"],
            "reason": row["reason"], "boundary_version": row["boundary_version"]}
