"""An in-memory stand-in for :class:`dispatch.storage.Database`, to run the service's handlers
with no database at all.

Its unit of work has the same repositories as the real one: ``orders`` (lock, get, add,
save with the version check, audit, due_for_sweep) and ``outbox`` (claim and finish). Changes to
orders take effect when the unit of work ends without an error, as a commit would. Two
handlers reach past the repositories, and the fake answers just those queries: assignment
(:func:`dispatch.intake.assignee`) asks for on-duty people (``rows`` or ``later``), answered
from :attr:`FakeDatabase.roster`; the order view (``Service.order``) lists an order's
reports, which the fake does not keep; and the active boundary version is
:attr:`FakeDatabase.active_version`. Any other statement raises.
"""

from __future__ import annotations

import copy
from collections import namedtuple
from contextlib import contextmanager

from dispatch import schema as t
from dispatch.errors import Conflict, NotFound
from dispatch.intake import COMMUNITY_LEADER, _grid_people_of
from dispatch.model import FINAL, WorkOrder

Person = namedtuple("Person", "grid_code id role")
Active = namedtuple("Active", "id activated_at")
Place = namedtuple("Place", "id lon lat boundary_version grid_code community_code street_code")
OutboxRow = namedtuple("OutboxRow", "id attempts payload")


class FakeDatabase:
    """Committed state: orders, their audit trails, the outbox and an on-duty roster."""

    is_postgres = False

    def __init__(self):
        self.orders: dict[int, WorkOrder] = {}
        self.audit: dict[int, list] = {}
        self.outbox: list[dict] = []
        self.roster: list[tuple[int, str, str]] = []  # (gridworker id, role, grid code)
        self.active_version = 1

    @contextmanager
    def unit_of_work(self):
        uow = FakeUnitOfWork(self)
        yield uow
        uow.orders.commit()

    read = unit_of_work  # reading handlers save nothing, so nothing is committed


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase):
        self.db = db
        self.orders = FakeOrders(db)
        self.outbox = FakeOutbox(db)

    def lock(self, key: str) -> None:
        """One thread, one writer: nothing to wait for."""

    def rows(self, prepared, params: dict) -> list:
        if prepared is COMMUNITY_LEADER:
            prefix = params["prefix"].rstrip("%")
            return [Person(grid, i, role) for i, role, grid in sorted(self.db.roster)
                    if grid.startswith(prefix) and role == "grid_leader"][:1]
        grids = [v for k, v in params.items() if k.startswith("grid")]
        if prepared is _grid_people_of(len(grids)):
            return [Person(grid, i, role) for i, role, grid in sorted(self.db.roster)
                    if grid in grids]
        raise NotImplementedError(f"the fake database runs no SQL: {prepared.statement}")

    def later(self, prepared, params: dict):
        rows = self.rows(prepared, params)
        return lambda: rows

    def execute(self, statement, *args):
        froms = getattr(statement, "get_final_froms", lambda: [])()
        if len(froms) == 1 and froms[0] is t.reports and statement.is_select:
            return Result([])  # an order's reports: the fake keeps none
        if froms == [t.boundary_versions] and statement.is_select:  # the active version
            return Result([Active(self.db.active_version, None)])
        raise NotImplementedError(f"the fake database runs no SQL: {statement}")


class Result(list):
    def all(self) -> list:
        return list(self)

    def first(self):
        return self[0] if self else None

    def scalar(self):
        return self[0][0] if self else None


class FakeOrders:
    """The order repository over :class:`FakeDatabase`; saved orders are kept as copies."""

    def __init__(self, db: FakeDatabase):
        self.db = db
        self.saved: dict[int, WorkOrder] = {}
        self.trail: list[tuple[int, object]] = []
        self.events: list[dict] = []

    def lock(self, order_ids) -> None:
        """One thread, one writer: nothing to wait for."""

    def get(self, order_id, lock: bool = False) -> WorkOrder:
        order = self.saved.get(order_id) or self.db.orders.get(order_id)
        if order is None:
            raise NotFound(f"no work order #{order_id}")
        return copy.deepcopy(order)

    def add(self, order: WorkOrder) -> WorkOrder:
        order.id = max([*self.db.orders, *self.saved, 0]) + 1
        order.version = 1
        return self._keep(order)

    def save(self, order: WorkOrder) -> WorkOrder:
        if self.get(order.id).version != order.version:
            raise Conflict(f"work order #{order.id} was changed by someone else")
        order.version += 1
        return self._keep(order)

    def audit(self, order_id) -> list:
        return self.db.audit.get(order_id, []) + [a for i, a in self.trail if i == order_id]

    def due_for_sweep(self, now) -> list[int]:
        return [i for i, order in sorted(self.db.orders.items())
                if copy.deepcopy(order).check_deadlines(now)]

    def placed_elsewhere(self, boundary_version: int) -> list:
        return [Place(i, o.lon, o.lat, o.boundary_version, o.grid_code, o.community_code,
                      o.street_code)
                for i, o in sorted(self.db.orders.items())
                if o.boundary_version != boundary_version and o.state not in FINAL]

    def keep_place(self, order_ids, boundary_version: int) -> None:
        for order_id in order_ids:
            order = self.get(order_id)
            if order.state not in FINAL:
                order.boundary_version = boundary_version
                self.saved[order_id] = order

    def _keep(self, order: WorkOrder) -> WorkOrder:
        self.trail += [(order.id, a) for a in order.new_audit]
        self.events += [(e.at, {"event": e.name, "work_order_id": order.id,
                                "at": e.at.isoformat(), **e.data}) for e in order.events]
        order.new_audit.clear()
        order.events.clear()
        self.saved[order.id] = copy.deepcopy(order)
        return order

    def commit(self) -> None:
        self.db.orders.update(self.saved)
        for order_id, entry in self.trail:
            self.db.audit.setdefault(order_id, []).append(entry)
        for at, payload in self.events:
            self.db.outbox.append({"id": len(self.db.outbox) + 1, "payload": payload,
                                   "attempts": 0, "next_attempt_at": at, "claimed_until": None,
                                   "delivered": False})


class FakeOutbox:
    """The outbox repository: events wait until a round claims and delivers them."""

    def __init__(self, db: FakeDatabase):
        self.db = db

    def any_due(self, now) -> bool:
        return any(self._due(row, now) for row in self.db.outbox)

    def claim(self, now, until, limit) -> list:
        taken = [row for row in self.db.outbox if self._due(row, now)][:limit]
        for row in taken:
            row["claimed_until"] = until
        return [OutboxRow(row["id"], row["attempts"], row["payload"]) for row in taken]

    def finish(self, now, until, delivered, failures, released) -> None:
        rows = {row["id"]: row for row in self.db.outbox}
        for row_id in delivered:
            rows[row_id].update(delivered=True, claimed_until=None)
        for row_id in [i for i, _ in failures] + released:
            rows[row_id]["claimed_until"] = None
        for row_id, values in failures:
            rows[row_id].update(attempts=values["attempts"],
                                next_attempt_at=values["next_attempt_at"])

    @staticmethod
    def _due(row, now) -> bool:
        return (not row["delivered"] and row["next_attempt_at"] <= now
                and (row["claimed_until"] is None or row["claimed_until"] <= now))
