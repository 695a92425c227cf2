"""The roster through the service layer: gridworkers, street dispatchers and departments —
added, edited and removed, every field checked before anything is written.

Grid and street codes must name grids and streets of the active boundary version. A gridworker
taken off the roster leaves no open work order with nobody: each is reassigned as intake would
assign it now (see :meth:`People.remove_gridworker`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update

from dispatch import schema as t
from dispatch.checks import MAX_NAME, check_phone, check_text
from dispatch.errors import InputError, NotFound
from dispatch.intake import assignee
from dispatch.model import FINAL
from dispatch.storage import known_id

if TYPE_CHECKING:
    from dispatch.services import Actor

GRIDWORKER_ROLES = ("gridworker", "grid_leader", "mobile")


class People:
    """The roster handlers of :class:`dispatch.services.Service`."""

    def add_gridworker(self, name: str, phone: str, role: str, grids=(), on_duty=True) -> int:
        """A new gridworker of ``grids`` (grids of the active boundary version); their id."""
        check_text(name, "name", MAX_NAME)
        check_phone(phone)
        _gridworker_role(role)
        grids = self._known_codes(list(grids), "grids", "grid") if grids else []
        with self.db.unit_of_work() as uow:
            gid = uow.execute(insert(t.gridworkers).values(
                name=name, phone=phone, role=role, on_duty=on_duty,
                created_at=self.clock()).returning(t.gridworkers.c.id)).scalar_one()
            if grids:
                uow.execute(insert(t.gridworker_grids), [
                    {"gridworker_id": gid, "grid_code": g} for g in grids])
        return gid

    def gridworker(self, gridworker_id: int) -> dict:
        """One gridworker of the roster, with their grids (for staff: the phone is shown)."""
        with self.db.read() as uow:
            return _gridworker(uow, gridworker_id)

    def update_gridworker(self, gridworker_id: int, *, name=None, phone=None, role=None,
                          grids=None, on_duty=None) -> dict:
        """Change what is given of a gridworker's name, phone, role, grids and duty; ``grids``
        replaces their grids, each a grid of the active boundary version."""
        values = _name_and_phone(name, phone)
        if role is not None:
            values["role"] = _gridworker_role(role)
        if on_duty is not None:
            if not isinstance(on_duty, bool):
                raise InputError("on_duty is true or false", field="on_duty")
            values["on_duty"] = on_duty
        if grids is not None:
            grids = self._known_codes(grids, "grids", "grid")
        if not values and grids is None:
            raise InputError("give a name, phone, role, grids or on_duty to change",
                             field="name")
        g, gg = t.gridworkers.c, t.gridworker_grids.c
        with self.db.unit_of_work() as uow:
            _gridworker(uow, gridworker_id)
            if values:
                uow.execute(update(t.gridworkers).where(g.id == gridworker_id).values(values))
            if grids is not None:
                uow.execute(delete(t.gridworker_grids).where(gg.gridworker_id == gridworker_id))
                if grids:
                    uow.execute(insert(t.gridworker_grids), [
                        {"gridworker_id": gridworker_id, "grid_code": code} for code in grids])
            return _gridworker(uow, gridworker_id)

    def set_on_duty(self, gridworker_id: int, on_duty: bool) -> None:
        with self.db.unit_of_work() as uow:
            done = uow.execute(update(t.gridworkers).where(t.gridworkers.c.id == gridworker_id)
                               .values(on_duty=bool(on_duty)))
            if done.rowcount != 1:
                raise NotFound(f"no gridworker {gridworker_id}")

    def remove_gridworker(self, gridworker_id: int, actor: Actor) -> dict:
        """Take a gridworker off the roster, with their grids (the row stays, marked removed,
        so that orders and trails naming their id keep meaning them).

        Work orders still open that were assigned to them are not left with nobody: each goes
        to whom intake would pick now (the grid's on-duty gridworker, else its grid leader, the
        community's grid leaders, the street's queue), keeping its state and deadlines, with a
        ``reassign`` entry in its trail. Accounts linked to the gridworker are deactivated, so
        nobody acts in their name any more. The answer is the removed person, the orders
        reassigned and the accounts deactivated."""
        now = self.clock()
        g, gg, w, u = (t.gridworkers.c, t.gridworker_grids.c, t.work_orders.c, t.users.c)
        with self.db.unit_of_work() as uow:
            person = _gridworker(uow, gridworker_id)
            uow.execute(delete(t.gridworker_grids).where(gg.gridworker_id == gridworker_id))
            uow.execute(update(t.gridworkers).where(g.id == gridworker_id).values(
                on_duty=False, removed_at=now))
            assigned = uow.execute(select(w.id).where(
                w.assignee_id == gridworker_id, w.state.not_in([str(s) for s in FINAL]))
                .order_by(w.id)).scalars().all()
            for order_id in assigned:
                order = uow.orders.get(order_id)
                to, queue = assignee(uow, order.grid_code, order.community_code)
                order.reassign(to, queue, actor.name, actor.role, now,
                               f"gridworker {gridworker_id} left the roster; to {queue}")
                uow.orders.save(order)
            accounts = uow.execute(update(t.users).where(
                u.gridworker_id == gridworker_id, u.active).values(active=False).returning(
                u.username)).scalars().all()
        if assigned:
            self.changed()
        return {**person, "reassigned_orders": list(assigned),
                "deactivated_accounts": sorted(accounts)}

    def add_dispatcher(self, name: str, phone: str, street_code: str) -> int:
        """A new dispatcher of a street of the active boundary version; their id."""
        check_text(name, "name", MAX_NAME)
        check_phone(phone)
        street_code = self._known_codes([street_code], "street_code", "street")[0]
        with self.db.unit_of_work() as uow:
            return uow.execute(insert(t.dispatchers).values(
                name=name, phone=phone, street_code=street_code).returning(
                t.dispatchers.c.id)).scalar_one()

    def dispatcher(self, dispatcher_id: int) -> dict:
        """One street dispatcher of the roster."""
        with self.db.read() as uow:
            return _dispatcher(uow, dispatcher_id)

    def update_dispatcher(self, dispatcher_id: int, *, name=None, phone=None,
                          street_code=None) -> dict:
        """Change what is given of a dispatcher's name, phone and street (a street of the
        active boundary version)."""
        values = _name_and_phone(name, phone)
        if street_code is not None:
            [values["street_code"]] = self._known_codes([street_code], "street_code", "street")
        if not values:
            raise InputError("give a name, phone or street_code to change", field="name")
        with self.db.unit_of_work() as uow:
            _dispatcher(uow, dispatcher_id)
            uow.execute(update(t.dispatchers).where(t.dispatchers.c.id == dispatcher_id)
                        .values(values))
            return _dispatcher(uow, dispatcher_id)

    def remove_dispatcher(self, dispatcher_id: int) -> dict:
        """Take a dispatcher off the roster (orders wait in their street's queue, not with a
        dispatcher, so none is left behind); the answer is the removed person."""
        with self.db.unit_of_work() as uow:
            person = _dispatcher(uow, dispatcher_id)
            uow.execute(update(t.dispatchers).where(t.dispatchers.c.id == dispatcher_id)
                        .values(removed_at=self.clock()))
        return person

    def update_department(self, code: str, *, name=None, contact=None) -> None:
        """Edit a department's name or contact."""
        values = {}
        if name is not None:
            values["name"] = check_text(name, "name", 200)
        if contact is not None:
            values["contact"] = check_text(contact, "contact", 200)
        if not values:
            raise InputError("give a name or a contact to change", field="name")
        with self.db.unit_of_work() as uow:
            done = uow.execute(update(t.departments).where(t.departments.c.code == code)
                               .values(values))
            if done.rowcount != 1:
                raise NotFound(f"no department {code!r}")

    def _known_codes(self, codes, field: str, layer: str) -> list[str]:
        """``codes`` (a list) as distinct codes of the active version's ``layer`` (grid or
        street); an :class:`InputError` naming ``field`` and the unknown ones otherwise."""
        if isinstance(codes, str) or not isinstance(codes, list | tuple):
            raise InputError(f"{field} is a list of {layer} codes", field=field)
        version, resolver = self.active_resolver()
        frame = resolver.boundaries.grids if layer == "grid" else resolver.boundaries.streets
        known = set(frame["code"])
        unknown = [code for code in codes if not isinstance(code, str) or code not in known]
        if unknown:
            raise InputError(f"no {layer} {', '.join(map(repr, unknown[:5]))} in the active "
                             f"boundary version {version}", field=field)
        return list(dict.fromkeys(codes))


def _name_and_phone(name, phone) -> dict:
    """The new name and phone given (None: unchanged), checked, as column values."""
    values = {}
    if name is not None:
        values["name"] = check_text(name, "name", MAX_NAME)
    if phone is not None:
        if check_phone(phone) is None:
            raise InputError("phone is required", field="phone")
        values["phone"] = phone
    return values


def _gridworker_role(value) -> str:
    if value not in GRIDWORKER_ROLES:
        raise InputError(f"role must be one of {', '.join(GRIDWORKER_ROLES)}", field="role")
    return value


def _gridworker(uow, gridworker_id) -> dict:
    """A gridworker's row and grids as plain data; :class:`NotFound` if there is none on the
    roster."""
    g, gg = t.gridworkers.c, t.gridworker_grids.c
    row = uow.execute(select(t.gridworkers).where(
        g.id == known_id(gridworker_id, "gridworker"), g.removed_at.is_(None))).first()
    if row is None:
        raise NotFound(f"no gridworker #{gridworker_id}")
    grids = uow.execute(select(gg.grid_code).where(gg.gridworker_id == row.id).order_by(
        gg.grid_code)).scalars().all()
    return {"id": row.id, "name": row.name, "phone": row.phone, "role": row.role,
            "on_duty": row.on_duty, "grids": list(grids), "community_code": row.community_code,
            "station_id": row.station_id}


def _dispatcher(uow, dispatcher_id) -> dict:
    """A dispatcher's row as plain data; :class:`NotFound` if there is none on the roster."""
    row = uow.execute(select(t.dispatchers).where(
        t.dispatchers.c.id == known_id(dispatcher_id, "dispatcher"),
        t.dispatchers.c.removed_at.is_(None))).first()
    if row is None:
        raise NotFound(f"no dispatcher #{dispatcher_id}")
    return {"id": row.id, "name": row.name, "phone": row.phone, "street_code": row.street_code}
