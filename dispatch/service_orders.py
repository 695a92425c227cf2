"""Resident service orders — the "360 service supermarket": 点单 → 下单 → 接单 → done → rated.

A resident orders (点单) a service of their community's menu at a location; the service desk
places it (下单) with a provider — the compound's property company, a volunteer team or a
department; the street or community takes it (接单) and sees it done; the resident confirms and
rates it. Every step is one conditional update (``WHERE state IN ...``), so two desks cannot
both move one order, and leaves an entry in the order's audit trail, as work orders do. An order
not done by its deadline is marked overdue by the sweep, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from dispatch import schema as t
from dispatch.compounds import Compounds
from dispatch.config import read_toml
from dispatch.errors import Conflict, Forbidden, IllegalTransition, InputError, NotFound
from dispatch.intake import write_reports
from dispatch.model import check_meeting
from dispatch.services import MAX_DESCRIPTION, SYSTEM, _crs, _number, _text
from dispatch.storage import known_id
from geo.resolver import OUTSIDE

DEFAULT_MENU = Path(__file__).with_name("service_menu.toml")
PROVIDERS = ("property", "volunteer", "department")
# action → (states it may start from, state it leads to)
TRANSITIONS = {
    "place": ({"ordered"}, "placed"),
    "take": ({"placed"}, "taken"),
    "complete": ({"taken"}, "done"),
    "confirm": ({"done"}, "confirmed"),
    "cancel": ({"ordered", "placed"}, "cancelled"),
}
FINISHED = ("done", "confirmed", "cancelled")
MEETING_CATEGORY = "property_dispute"  # the work-order category a dispute is recorded under


@dataclass(frozen=True)
class MenuService:
    """One service of the menu (see ``service_menu.toml``)."""

    code: str
    name: str
    name_en: str
    provider: str
    team: str | None
    department: str | None
    complete_within: int
    communities: tuple[str, ...] | None
    meeting: bool

    def offered_in(self, community_code: str | None) -> bool:
        return self.communities is None or community_code in self.communities


def load_menu(path=None, departments=()) -> dict[str, MenuService]:
    """The service menu in ``path`` (the shipped one by default), each service checked."""
    path = Path(path or DEFAULT_MENU)
    data = read_toml(path, "service menu", "menu")
    menu = {}
    for code, s in data.get("services", {}).items():
        try:
            service = MenuService(code, s["name"], s.get("name_en", s["name"]), s["provider"],
                                  s.get("team"), s.get("department"),
                                  int(s["complete_within"]),
                                  tuple(s["communities"]) if "communities" in s else None,
                                  bool(s.get("meeting", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"service menu {code}: missing or bad field {exc}",
                             field="menu") from exc
        needs = {"volunteer": service.team, "department": service.department}
        if service.provider not in PROVIDERS or needs.get(service.provider, "") is None:
            raise InputError(f"service menu {code}: provider is one of {', '.join(PROVIDERS)}; "
                             "a volunteer service names its team, a department service its "
                             "department", field="menu")
        if departments and service.department and service.department not in departments:
            raise InputError(f"service menu {code}: unknown department {service.department!r}",
                             field="menu")
        menu[code] = service
    return menu


class ServiceOrders:
    """The service orders of the dispatch service's district."""

    def __init__(self, service, menu: dict[str, MenuService] | None = None):
        self.service = service
        self.db = service.db
        self.menu = menu if menu is not None else load_menu(
            departments=service.catalogue.departments)
        self.compounds = Compounds(service.db)

    def menu_for(self, community_code: str | None) -> list[dict]:
        """The services a community offers."""
        return [{"code": s.code, "name": s.name, "name_en": s.name_en, "provider": s.provider,
                 "complete_within_minutes": s.complete_within}
                for s in self.menu.values() if s.offered_in(community_code)]

    def _offered(self, code: str) -> MenuService:
        """The menu's service ``code``; a :class:`Conflict` for a service withdrawn since it
        was ordered: such an order is neither placed nor met on, only cancelled (one placed
        before is still taken and done by its provider)."""
        if code not in self.menu:
            raise Conflict(f"service {code!r} is no longer on the menu: cancel the order")
        return self.menu[code]

    def order(self, user_id: int, data: dict, actor) -> dict:
        """点单: a resident orders a service at a location (``service``, ``description``,
        ``lon``, ``lat``, ``crs``); the order lands in the community there, in the compound
        there if any."""
        if not isinstance(data, dict):
            raise InputError("an order is a JSON object", field="order")
        code = data.get("service")
        if not isinstance(code, str) or code not in self.menu:
            raise InputError(f"unknown service {code!r}; the menu has "
                             f"{', '.join(self.menu)}", field="service")
        description = _text(data.get("description"), "description", MAX_DESCRIPTION)
        x, y = _number(data.get("lon"), "lon"), _number(data.get("lat"), "lat")
        _, resolver = self.service.active_resolver()
        where = resolver.resolve(x, y, crs=_crs(data.get("crs")))
        if where.status == OUTSIDE:
            raise InputError("the location is outside the district", field="lat")
        menu = self.menu[code]
        if not menu.offered_in(where.community_code):
            raise InputError(f"{menu.name} is not offered in community {where.community_code}",
                             field="service")
        now = self.service.clock()
        with self.db.unit_of_work() as uow:
            compound = self.compounds.at(uow, where.lon, where.lat)
            order_id = uow.execute(insert(t.service_orders).returning(t.service_orders.c.id), {
                "user_id": user_id, "service": code, "description": description,
                "lon": where.lon, "lat": where.lat, "community_code": where.community_code,
                "street_code": where.street_code,
                "compound_code": compound["code"] if compound else None, "state": "ordered",
                "created_at": now, "due_at": now + timedelta(minutes=menu.complete_within),
                "overdue": False}).scalar_one()
            _audit(uow, order_id, now, actor, "order", None, "ordered", menu.name)
        return self.get(order_id)

    def place(self, order_id, actor, note: str = "") -> dict:
        """下单: the service desk places the order with its provider — for a property service
        the property company of the order's compound, else the community itself."""
        note = _text(note, "note", MAX_DESCRIPTION, required=False)

        def provider(row, uow):
            menu = self._offered(row.service)
            if menu.provider == "volunteer":
                return {"provider_kind": "volunteer", "provider": menu.team}
            if menu.provider == "department":
                return {"provider_kind": "department", "provider": menu.department}
            company = row.compound_code and uow.execute(select(
                t.compounds.c.property_company).where(
                t.compounds.c.code == row.compound_code)).scalar()
            if company:
                return {"provider_kind": "property", "provider": company}
            return {"provider_kind": "community", "provider": row.community_code}

        return self._step(order_id, "place", actor, note, provider)

    def take(self, order_id, actor, note: str = "") -> dict:
        """接单: the street or community takes the order and answers for it."""
        note = _text(note, "note", MAX_DESCRIPTION, required=False)
        return self._step(order_id, "take", actor, note,
                          lambda row, uow: {"taken_by": actor.name})

    def complete(self, order_id, actor, note: str) -> dict:
        """The provider's work is done."""
        note = _text(note, "note", MAX_DESCRIPTION)
        return self._step(order_id, "complete", actor, note,
                          lambda row, uow: {"done_at": self.service.clock()})

    def confirm(self, order_id, user_id: int, rating, comment, actor) -> dict:
        """The resident who ordered confirms it done and rates it from 1 to 5."""
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise InputError("rating must be a whole number from 1 to 5", field="rating")
        comment = _text(comment, "comment", MAX_DESCRIPTION, required=False)

        def rate(row, uow):
            if row.user_id != user_id:
                raise Forbidden("only the resident who ordered it may confirm and rate it")
            return {"rating": rating, "comment": comment}

        return self._step(order_id, "confirm", actor, f"{rating}/5 {comment}".strip(), rate)

    def cancel(self, order_id, actor, reason: str, user_id: int | None = None) -> dict:
        """Cancel an order not yet taken: by the resident (``user_id``) or the desk."""
        reason = _text(reason, "reason", MAX_DESCRIPTION)

        def check(row, uow):
            if user_id is not None and row.user_id != user_id:
                raise Forbidden("you may cancel your own orders only")
            return {}

        return self._step(order_id, "cancel", actor, reason, check)

    def hold_meeting(self, order_id, participants, decisions, tasks, actor) -> dict:
        """A consultation meeting (协商议事) on a dispute that needs several parties: the order
        becomes a work order of the dispatch core (once — later meetings join the same one), on
        which the meeting is recorded with its parties, decisions and tasks. One transaction
        does all of it, with the service order's row locked: two meetings at once are recorded
        one after the other on one work order."""
        check_meeting(participants, tasks, decisions)
        with self.db.read() as uow:
            row = _row(uow, order_id)
            compound = row.compound_code and uow.execute(select(t.compounds.c.name).where(
                t.compounds.c.code == row.compound_code)).scalar()
        menu = self._offered(row.service)
        if not menu.meeting:
            raise InputError(f"{menu.name} is not settled at a consultation "
                             "meeting", field="service")
        key = f"service-order:{row.id}"
        pending = self.service.prepare_report({  # written only by the first meeting
            "category": MEETING_CATEGORY, "description": row.description, "lon": row.lon,
            "lat": row.lat, "reporter_role": "resident", "idempotency_key": key,
            "attributes": {"compound": compound or row.community_code or "-"}},
            user_id=row.user_id)
        pending.may_join = False  # its own work order, never a "me too" of a neighbour's
        now = self.service.clock()
        with self.db.unit_of_work() as uow:  # all of it or nothing, one meeting at a time
            row = _row(uow, row.id, lock=True)
            if row.state in FINISHED:
                raise IllegalTransition(f"service order #{row.id} is {row.state}")
            work_order_id = row.work_order_id or uow.execute(
                select(t.reports.c.work_order_id).where(t.reports.c.idempotency_key == key)
            ).scalar() or write_reports(uow, [pending])[0]["work_order_id"]
            if row.work_order_id is None:
                uow.execute(update(t.service_orders).where(t.service_orders.c.id == row.id)
                            .values(work_order_id=work_order_id))
            order = uow.orders.get(work_order_id, lock=True)
            order.record_meeting(participants, decisions, tasks, actor.name, actor.role, now)
            uow.orders.save(order)
            _audit(uow, row.id, now, actor, "meeting", row.state, row.state,
                   f"work order #{work_order_id}, {len(participants)} participants")
        self.service.changed()
        return self.get(row.id)

    def brief(self, order_id) -> dict:
        """An order without its trail and meetings: who may act on it is decided by this."""
        with self.db.read() as uow:
            return _order(_row(uow, order_id))

    def get(self, order_id) -> dict:
        """An order with its trail."""
        with self.db.read() as uow:
            row = _row(uow, order_id)
            trail = uow.execute(select(t.service_order_audit).where(
                t.service_order_audit.c.service_order_id == row.id).order_by(
                t.service_order_audit.c.id)).all()
        meetings = (self.service.order(row.work_order_id, staff=True)["meetings"]
                    if row.work_order_id else [])
        return {**_order(row), "meetings": meetings, "audit": [
            {"at": a.at.isoformat(), "actor": a.actor, "role": a.role, "action": a.action,
             "from": a.from_state, "to": a.to_state, "note": a.note} for a in trail]}

    def sweep(self) -> int:
        """Mark orders not done by their deadline as overdue (each once); how many were."""
        now = self.service.clock()
        s = t.service_orders.c
        with self.db.unit_of_work() as uow:
            late = uow.execute(update(t.service_orders).where(
                s.state.not_in(FINISHED), ~s.overdue, s.due_at < now).values(overdue=True)
                .returning(s.id, s.state)).all()
            for order_id, state in late:
                _audit(uow, order_id, now, SYSTEM, "overdue", state, state,
                       "not done by its deadline")
        return len(late)

    def _step(self, order_id, action: str, actor, note: str, values) -> dict:
        """Move an order by ``action`` if its state allows, with the ``values(row, uow)``
        gives; a refusal changes nothing."""
        sources, target = TRANSITIONS[action]
        now = self.service.clock()
        s = t.service_orders.c
        with self.db.unit_of_work() as uow:
            row = _row(uow, order_id)
            changes = values(row, uow)
            done = uow.execute(update(t.service_orders).where(
                s.id == row.id, s.state.in_(sources)).values(state=target, **changes))
            if done.rowcount != 1:
                raise IllegalTransition(f"cannot {action} service order #{row.id} while it is "
                                        f"{row.state}; allowed from {', '.join(sorted(sources))}")
            _audit(uow, row.id, now, actor, action, row.state, target,
                   note or changes.get("provider") or "")
        return self.get(row.id)


def _row(uow, order_id, lock: bool = False):
    """The service order's row; with ``lock`` it stays locked until the transaction ends."""
    known_id(order_id, "service order")
    statement = select(t.service_orders).where(t.service_orders.c.id == order_id)
    row = uow.execute(statement.with_for_update() if lock else statement).first()
    if row is None:
        raise NotFound(f"no service order #{order_id}")
    return row


def _audit(uow, order_id, at, actor, action, from_state, to_state, note) -> None:
    uow.execute(insert(t.service_order_audit).values(
        service_order_id=order_id, at=at, actor=actor.name, role=actor.role, action=action,
        from_state=from_state, to_state=to_state, note=note))


def _order(row) -> dict:
    return {"id": row.id, "user_id": row.user_id, "service": row.service,
            "description": row.description, "lon": row.lon, "lat": row.lat,
            "community_code": row.community_code, "street_code": row.street_code,
            "compound_code": row.compound_code, "state": row.state,
            "provider_kind": row.provider_kind, "provider": row.provider,
            "taken_by": row.taken_by, "created_at": row.created_at.isoformat(),
            "due_at": row.due_at.isoformat(), "done_at": row.done_at and row.done_at.isoformat(),
            "overdue": row.overdue, "rating": row.rating, "comment": row.comment,
            "work_order_id": row.work_order_id}
