"""The service layer: small command handlers over the domain model and the unit of work.

Every handler validates its input first (an :class:`InputError` naming the field, and nothing
written), then does its work in one transaction. Events recorded by the domain leave through the
outbox after the commit (see :mod:`dispatch.notify`).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from dispatch import schema as t
from dispatch.batching import GroupCommit
from dispatch.catalogue import Catalogue
from dispatch.checks import MAX_ADDRESS, MAX_NAME
from dispatch.checks import check_phone as _phone
from dispatch.checks import check_text as _text
from dispatch.errors import Conflict, InputError, NotFound
from dispatch.intake import (
    Pending,
    assignee,
    lock_reports,
    outside_reason,
    report_answer,
    write_reports,
)
from dispatch.model import MAX_TEXT, State, check_meeting, open311_status
from dispatch.notify import LogNotifier, Notifier, deliver_outbox
from dispatch.people import People
from dispatch.photos import MAX_PHOTO_BYTES, check_photo, store_photo, thumbnail_name
from dispatch.planning import Planning
from dispatch.regrid import regrid_open_orders
from dispatch.stats import statistics, statistics_by
from dispatch.storage import Database, known_id
from dispatch.versions import BoundaryVersions
from geo.crs import parse_crs
from geo.errors import GridlineError
from geo.resolver import OUTSIDE, Resolver

MAX_DESCRIPTION = MAX_TEXT  # every free text: a description, a note, a reason
MAX_SUMMONS_MINUTES = 7 * 24 * 60  # a summoned department reports for duty within a week
REPORTER_ROLES = ("resident", "rider", "courier", "gridworker", "volunteer")
MAX_PAGE = 10_000
MAX_OFFSET = 2**31 - 1  # paging beyond any table's rows, yet within every database's integers
DELIVERY_GATHER_SECONDS = 0.2
log = logging.getLogger("gridline.dispatch")
@dataclass(frozen=True)
class Actor:
    """Who is acting: a name for the audit trail and a role for the rules."""

    name: str
    role: str


SYSTEM = Actor("system", "system")


def now_utc() -> datetime:
    return datetime.now(UTC)


def mask_phone(phone: str | None) -> str | None:
    """138****1234: the first three and last four digits stay, for outputs not meant for staff."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    return digits[:3] + "*" * max(len(digits) - 7, 0) + digits[-4:] if len(digits) > 7 else "****"


class Service(BoundaryVersions, People):
    """The dispatch service: boundary versions, people, intake, lifecycle, sweep, statistics."""

    def __init__(self, db: Database, catalogue: Catalogue, media: Path,
                 notifier: Notifier | None = None, timezone: str = "Asia/Shanghai",
                 clock=now_utc, max_photo_bytes: int = MAX_PHOTO_BYTES,
                 resolvers: dict[int, Resolver] | None = None, active_ttl: float = 0.0):
        self.db = db
        self.catalogue = catalogue
        self.media = Path(media)
        self.notifier = notifier or LogNotifier()
        self.timezone = ZoneInfo(timezone)
        self.clock = clock
        self.max_photo_bytes = max_photo_bytes
        # Resolvers by boundary version; versions never change, so a cache may be shared.
        self._resolvers = {} if resolvers is None else resolvers
        self._resolver_lock = threading.Lock()
        self._sets: dict[int, tuple] = {}  # boundary sets by version, with their revision
        self.planning = Planning(self)
        # Which version is active is looked up at most every ``active_ttl`` seconds.
        self.active_ttl = active_ttl
        self._active: tuple[int, float] | None = None
        self._looking_up = threading.Lock()
        # Notifications go out right after each change, or from a background worker.
        self.deliver_inline = True
        # One round at a time in this process; claims keep other processes' rounds apart.
        self._delivery_lock = threading.Lock()
        # Intake writes go one transaction each, or through a shared group commit.
        self.group_commit: GroupCommit | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        # Called as hook(uow, order, action, actor, now) inside each lifecycle action's
        # transaction, after the order changed (points are credited on verification).
        self.order_hooks: list = []

    # --- people ---------------------------------------------------------------------------

    def register_mobile_gridworker(self, name: str, phone: str, lon, lat, crs=None) -> dict:
        """A rider or courier becomes a mobile gridworker (流动网格员) where they stand: attached
        to the grid and community there and to the nearest station."""
        _text(name, "name", MAX_NAME)
        if _phone(phone) is None:  # the station reaches its mobile gridworkers by phone
            raise InputError("phone is required", field="phone")
        system = _crs(crs)
        _, resolver = self.active_resolver()
        where = resolver.resolve(lon, lat, crs=system)
        if where.status == OUTSIDE:
            raise InputError("the location is outside the district", field="lat")
        with self.db.unit_of_work() as uow:
            gid = uow.execute(insert(t.gridworkers).values(
                name=name, phone=phone, role="mobile", on_duty=True,
                community_code=where.community_code, station_id=where.station_id,
                lon=where.lon, lat=where.lat, created_at=self.clock()).returning(
                t.gridworkers.c.id)).scalar_one()
            if where.grid_code:
                uow.execute(insert(t.gridworker_grids).values(gridworker_id=gid,
                                                              grid_code=where.grid_code))
        return {"id": gid, "grid_code": where.grid_code, "community_code": where.community_code,
                "street_code": where.street_code, "station_id": where.station_id,
                "station_distance_m": where.station_distance_m}

    def seed_departments(self) -> None:
        """Copy the catalogue's departments into the database (idempotent)."""
        with self.db.unit_of_work() as uow:
            known = set(uow.execute(select(t.departments.c.code)).scalars())
            fresh = [{"code": d.code, "name": d.name, "name_en": d.name_en, "contact": d.contact}
                     for d in self.catalogue.departments.values() if d.code not in known]
            if fresh:
                uow.execute(insert(t.departments), fresh)

    # --- intake ---------------------------------------------------------------------------

    def submit_report(self, data: dict, photo: bytes | None = None,
                      user_id: int | None = None, keep_outside: bool = True) -> dict:
        """Take a report: validate → convert → resolve → duplicate check → create or attach →
        assign → record, in one transaction.

        ``data``: category, description, lon, lat, crs (default wgs84), reporter_name,
        reporter_phone, reporter_role (resident, rider, courier, gridworker, volunteer),
        idempotency_key, attributes (answers to the category's questions), media_url,
        address (where the reporter says it is, kept as told: the location is lon/lat);
        ``user_id`` is the reporter's account, if any (a category that is not ``anonymous``
        needs it or a reporter_phone). The answer says the outcome (``created``, ``attached`` —
        a "me too" joining an open order — or ``outside``, a report kept but rejected) and the
        order. With ``keep_outside`` False a report outside the district is refused instead
        (an :class:`InputError` for ``lat``), and nothing is kept.

        An ``idempotency_key`` already taken by another user's report (an anonymous one counts
        as one user) is a :class:`Conflict`: the answer would be someone else's report.
        """
        pending = self.prepare_report(data, user_id)
        if not keep_outside and pending.where.status == OUTSIDE:
            raise InputError(outside_reason(pending.where), field="lat")
        image = check_photo(photo, self.max_photo_bytes) if photo is not None else None
        key = pending.report["idempotency_key"]
        photo_name = pending.photo = store_photo(image, self.media) if image is not None else None
        try:
            answer = self._record_report(pending)
        except IntegrityError:
            self._discard_photo(photo_name)
            # A key already taken is a retry (or the same report sent twice at once): its
            # write was rolled back whole, and the answer is the first one's. Relying on the
            # unique key, rather than looking it up first, spares every report a query.
            if key and (earlier := self._by_key(key, pending.user_id)) is not None:
                return earlier
            raise
        except Exception:
            self._discard_photo(photo_name)
            raise
        self.changed()
        return answer

    def _discard_photo(self, name: str | None) -> None:
        """Delete a photo stored for a write that failed, and its thumbnail."""
        if name:
            for file in (name, thumbnail_name(name)):
                (self.media / file).unlink(missing_ok=True)

    def prepare_report(self, data: dict, user_id: int | None = None) -> Pending:
        """A report validated and resolved, ready for :func:`~dispatch.intake.write_reports`
        (nothing is written)."""
        report = _validate_report(data, self.catalogue, user_id)
        version, resolver = self.active_resolver()
        where = resolver.resolve(report["x"], report["y"], crs=report["crs"])
        return Pending(report, where, self.catalogue.category(report["category"]), version,
                       None, self.clock(), user_id, (SYSTEM.name, SYSTEM.role))

    def _record_report(self, pending: Pending) -> dict:
        """Write the report (and its new or joined order), alone or in a group commit."""
        if self.group_commit is not None:
            return self.group_commit.run(pending)
        with self.db.unit_of_work() as uow:
            return write_reports(uow, [pending])[0]

    def start_group_commit(self) -> None:
        """From now on, reports arriving together are written together (see
        :mod:`dispatch.batching`)."""
        self.group_commit = GroupCommit(self.db, write_reports, lock=lock_reports)

    def _by_key(self, key: str, user_id: int | None) -> dict | None:
        """The answer given for the report stored under idempotency ``key``, if any; a
        :class:`Conflict` if ``user_id`` (None: anonymous) did not send that report."""
        with self.db.read() as uow:
            row = uow.execute(select(t.reports).where(
                t.reports.c.idempotency_key == key)).first()
        if row is None:
            return None
        if row.user_id != user_id:
            raise Conflict(f"idempotency_key {key!r} is taken by another report; send this "
                           "one with a key of its own")
        return report_answer(row._mapping)

    # --- lifecycle ------------------------------------------------------------------------

    def act(self, order_id: int, action: str, actor: Actor, expected_version=None, **kwargs):
        """Run one lifecycle action on an order: accept, start, resolve (feedback, photo),
        verify, close, reopen (reason), transfer (reason, grid_code or department), reject
        (reason), merge (into). A stale ``expected_version`` raises Conflict."""
        handlers = {"accept": self._plain, "start": self._plain, "verify": self._plain,
                    "close": self._plain, "resolve": self._resolve, "reopen": self._reopen,
                    "transfer": self._transfer, "reject": self._reject, "merge": self._merge}
        if action not in handlers:
            raise InputError(f"unknown action {action!r}; one of {', '.join(handlers)}",
                             field="action")
        prepared = handlers[action](None, action, actor, None, prepare=True, **kwargs)
        now = self.clock()
        try:
            with self.db.unit_of_work() as uow:
                if action == "merge":  # two orders: see OrderRepository.lock
                    uow.orders.lock([order_id, prepared])
                order = uow.orders.get(order_id, lock=True)
                if expected_version is not None and expected_version != order.version:
                    raise Conflict(f"work order #{order_id} is at version {order.version}, "
                                   f"not {expected_version}; reload it")
                handlers[action](order, action, actor, now, prepared=prepared, uow=uow,
                                 **kwargs)
                uow.orders.save(order)
                for hook in self.order_hooks:
                    hook(uow, order, action, actor, now)
        except Exception:
            if action == "resolve":  # the repair photo stored in advance
                self._discard_photo(prepared)
            raise
        self.changed()
        return self.order(order_id, staff=True)

    def _plain(self, order, action, actor, now, prepare=False, note="", prepared=None, **_):
        if prepare:  # a note left out (or null) is ""
            return _text(note, "note", MAX_DESCRIPTION, required=False)
        getattr(order, action)(actor.name, actor.role, now, prepared)

    def _resolve(self, order, action, actor, now, prepare=False, feedback=None, photo=None,
                 prepared=None, **_):
        if prepare:
            if photo is None:
                raise InputError("resolving needs a repair photo", field="photo")
            _text(feedback, "feedback", MAX_DESCRIPTION)
            return store_photo(check_photo(photo, self.max_photo_bytes), self.media)
        order.resolve(actor.name, actor.role, now, feedback, prepared)

    def _reopen(self, order, action, actor, now, prepare=False, reason="", uow=None, **_):
        if prepare:
            return _text(reason, "reason", MAX_DESCRIPTION)
        order.reopen(actor.name, actor.role, now, reason)
        self._redispatch(uow, order, actor, now)

    def _transfer(self, order, action, actor, now, prepare=False, reason="", grid_code=None,
                  department=None, uow=None, **_):
        if prepare:
            _text(reason, "reason", MAX_DESCRIPTION)
            for field, code in (("grid_code", grid_code), ("department", department)):
                if code is not None:
                    _text(code, field, MAX_NAME)
            if department is not None and department not in self.catalogue.departments:
                raise InputError(f"unknown department {department!r}", field="department")
            if grid_code is None and department is None:
                raise InputError("a transfer names a grid_code or a department",
                                 field="grid_code")
            return None
        grid = version = None
        if grid_code is not None:  # a grid of today's boundaries, which may be newer
            version, resolver = self.active_resolver()
            grids = resolver.boundaries.grids
            match = grids[grids["code"] == grid_code]
            if match.empty:
                raise InputError(f"unknown grid {grid_code!r}", field="grid_code")
            grid = (grid_code, match["community_code"].iloc[0], match["street_code"].iloc[0])
        order.transfer(actor.name, actor.role, now, reason, grid=grid, department=department,
                       boundary_version=version)
        self._redispatch(uow, order, actor, now)

    def _redispatch(self, uow, order, actor, now):
        to, queue = assignee(uow, order.grid_code, order.community_code)
        order.dispatch(self.catalogue.category(order.category), to, queue, actor.name,
                       actor.role, now)

    def _reject(self, order, action, actor, now, prepare=False, reason="", **_):
        if prepare:
            return _text(reason, "reason", MAX_DESCRIPTION)
        order.reject(actor.name, actor.role, now, reason)

    def _merge(self, order, action, actor, now, prepare=False, into=None, uow=None, **_):
        if prepare:
            if not isinstance(into, int) or isinstance(into, bool):
                raise InputError("merge needs the id of the order it duplicates", field="into")
            return into
        target = uow.orders.get(into, lock=True)
        order.merge_into(target.id, actor.name, actor.role, now)
        target.absorb_duplicate(order.id, order.reports, actor.name, actor.role, now)
        uow.orders.save(target)

    # --- whistle and meetings -------------------------------------------------------------

    def blow_whistle(self, order_id: int, departments, due_minutes: int | None, actor: Actor,
                     reason: str = "") -> dict:
        """Summon departments to report for duty (吹哨报到): ``departments`` is a list of
        department codes, each due within ``due_minutes``, or a mapping code → minutes, each
        due within its own (``due_minutes`` is then None)."""
        minutes = _summons_minutes(departments, due_minutes, self.catalogue.departments)
        reason = _text(reason, "reason", MAX_DESCRIPTION, required=False)
        return self._on_order(order_id, lambda order, uow, now: order.blow_whistle(
            self.catalogue.category(order.category), list(minutes),
            {code: now + timedelta(minutes=m) for code, m in minutes.items()}, actor.name,
            actor.role, now, reason))

    def report_for_duty(self, order_id: int, whistle: int, department: str, actor: Actor,
                        note: str = "") -> dict:
        note = _text(note, "note", MAX_DESCRIPTION, required=False)
        return self._on_order(order_id, lambda order, uow, now: order.report_for_duty(
            whistle, department, actor.name, actor.role, now, note))

    def complete_part(self, order_id: int, whistle: int, department: str, actor: Actor,
                      note: str) -> dict:
        note = _text(note, "note", MAX_DESCRIPTION)
        return self._on_order(order_id, lambda order, uow, now: order.complete_part(
            whistle, department, actor.name, actor.role, now, note))

    def record_meeting(self, order_id: int, participants, decisions, tasks,
                       actor: Actor) -> dict:
        check_meeting(participants, tasks, decisions)
        return self._on_order(order_id, lambda order, uow, now: order.record_meeting(
            participants, decisions, tasks, actor.name, actor.role, now))

    def _on_order(self, order_id, change) -> dict:
        now = self.clock()
        with self.db.unit_of_work() as uow:
            order = uow.orders.get(order_id, lock=True)
            change(order, uow, now)
            uow.orders.save(order)
        self.changed()
        return self.order(order_id, staff=True)

    # --- deadlines and notifications ------------------------------------------------------

    def sweep(self) -> dict:
        """Mark missed deadlines, move open orders made against an older boundary version to
        the active one (:func:`dispatch.regrid.regrid_open_orders`) and deliver pending
        notifications.

        Safe to run every minute, beside people acting on orders and beside another sweep:
        each order is checked with its row locked, so nobody saves it between the check and
        the save (the round never stops on a conflict), and a second sweep waiting for that
        lock then finds the marks made — each missed deadline is marked once."""
        now = self.clock()
        with self.db.read() as uow:
            candidates = uow.orders.due_for_sweep(now)
        marked = 0
        for order_id in candidates:
            with self.db.unit_of_work() as uow:
                order = uow.orders.get(order_id, lock=True)
                if order.check_deadlines(now):
                    uow.orders.save(order)
                    marked += 1
        regridded = regrid_open_orders(self)["moved"] if self.has_active_version() else 0
        return {"marked": marked, "regridded": regridded, **self.deliver()}

    def deliver(self) -> dict:
        """Send the pending notifications whose time has come."""
        with self._delivery_lock:
            return deliver_outbox(self.db, self.notifier, self.clock())

    def changed(self) -> None:
        """After a commit: deliver now, or wake the background worker. Delivery failing here
        must not fail the request that committed (its events stay due and are sent later)."""
        if self.deliver_inline:
            try:
                self.deliver()
            except Exception:
                log.exception("delivering events after a commit failed")
        else:
            self._wake.set()

    def start_delivery_worker(self, interval: float = 2.0,
                              gather: float = DELIVERY_GATHER_SECONDS) -> threading.Thread:
        """Deliver notifications from a background thread (woken by each change, and every
        ``interval`` seconds for retries), so requests do not wait for them.

        After each round the worker rests ``gather`` seconds: under load the events of many
        changes then leave in one round (a read and two short writes) instead of a round per change,
        each of which would cost a commit and compete with intake for the database."""
        self.deliver_inline = False

        self._stop.clear()

        def run():
            while not self._stop.is_set():
                self._wake.wait(interval)
                self._wake.clear()
                try:
                    self.deliver()
                except Exception:  # keep delivering later whatever one round hit
                    log.exception("notification delivery failed")
                self._stop.wait(gather)

        worker = threading.Thread(target=run, name="gridline-delivery", daemon=True)
        worker.start()
        return worker

    def stop_delivery_worker(self, worker: threading.Thread) -> None:
        """Stop the background worker (the next changes are delivered inline again)."""
        self._stop.set()
        self._wake.set()
        worker.join(timeout=10)
        self.deliver_inline = True

    # --- reading --------------------------------------------------------------------------

    def order(self, order_id: int, staff: bool = False, viewer_id: int | None = None) -> dict:
        """An order with its reports and trail. Reporters' names and phones show in full to
        ``staff`` and to the reporter whose account (``viewer_id``) sent that report; everyone
        else sees the phone masked and no name. Consultation meetings (who settled a dispute,
        and how) show to staff only: their resident sees them with the service order."""
        def _private(r) -> bool:
            return staff or (viewer_id is not None and r.user_id == viewer_id)

        with self.db.read() as uow:
            order = uow.orders.get(order_id)
            trail = uow.orders.audit(order_id)
            reports = uow.execute(select(t.reports).where(
                t.reports.c.work_order_id == order_id).order_by(t.reports.c.id)).all()
        local = self._local_iso
        return {
            **self._summary(order),
            "reports": [{"id": r.id, "description": r.description,
                         "reporter_name": r.reporter_name if _private(r) else None,
                         "reporter_phone": r.reporter_phone if _private(r)
                         else mask_phone(r.reporter_phone),
                         "reporter_role": r.reporter_role, "photo": r.photo,
                         "address": r.address, "created_at": r.created_at.isoformat(),
                         "created_at_local": local(r.created_at)} for r in reports],
            "whistles": [{"number": w.number, "blown_by": w.blown_by, "reason": w.reason,
                          "blown_at": w.blown_at.isoformat(), "blown_at_local": local(w.blown_at),
                          "ended_at": _iso(w.ended_at), "ended_at_local": local(w.ended_at),
                          "summons": [{"department": s.department, "due_at": _iso(s.due_at),
                                       "due_at_local": local(s.due_at),
                                       "reported_at": _iso(s.reported_at),
                                       "reported_at_local": local(s.reported_at),
                                       "done_at": _iso(s.done_at),
                                       "done_at_local": local(s.done_at), "note": s.note,
                                       "overdue": s.overdue} for s in w.summons]}
                         for w in order.whistles],
            "meetings": [{"number": m.number, "held_at": m.held_at.isoformat(),
                          "held_at_local": local(m.held_at), "participants": m.participants,
                          "decisions": m.decisions, "tasks": m.tasks}
                         for m in (order.meetings if staff else ())],
            "audit": [{"at": a.at.isoformat(), "at_local": local(a.at), "actor": a.actor,
                       "role": a.role, "action": a.action, "from": a.from_state,
                       "to": a.to_state, "note": a.note} for a in trail],
        }

    def order_summary(self, order_id: int) -> dict:
        """An order's public facts alone (one row: no reports, whistles or trail)."""
        with self.db.read() as uow:
            row = uow.execute(select(t.work_orders).where(
                t.work_orders.c.id == known_id(order_id, "work order"))).first()
        if row is None:
            raise NotFound(f"no work order #{order_id}")
        return self._summary(row)

    def list_orders(self, *, bbox=None, states=None, category=None, street_code=None,
                    grid_code=None, since=None, until=None, limit=100, offset=0) -> dict:
        """Orders matching every filter given, newest first, a page at a time.

        ``bbox`` = (west, south, east, north) in WGS84 degrees; ``states`` a list of states;
        ``limit`` 1–10 000. The answer has ``total`` (all matches) and one summary per order.
        """
        if bbox is not None:
            bbox = _bbox(bbox)
        for state in states or []:
            if state not in {str(s) for s in State}:
                raise InputError(f"unknown state {state!r}", field="state")
        if category is not None:
            self.catalogue.category(category)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit must be a whole number from 1 to {MAX_PAGE}", field="limit")
        if (not isinstance(offset, int) or isinstance(offset, bool)
                or not 0 <= offset <= MAX_OFFSET):
            raise InputError(f"offset must be a whole number from 0 to {MAX_OFFSET}",
                             field="offset")
        with self.db.read() as uow:
            ids, total = uow.orders.search(bbox=bbox, states=states, category=category,
                                           street_code=street_code, grid_code=grid_code,
                                           since=since, until=until, limit=limit,
                                           offset=offset)
            rows = {r.id: r for r in uow.execute(select(t.work_orders).where(
                t.work_orders.c.id.in_(ids)))}
        return {"total": total, "limit": limit, "offset": offset,
                "orders": [self._summary(rows[i]) for i in ids]}

    def _summary(self, order) -> dict:
        """The public facts of an order (a :class:`WorkOrder` or a table row): no personal
        data; times in UTC and in the district's time zone."""
        state = State(order.state)
        return {
            "id": order.id, "category": order.category, "state": str(state),
            "open311_status": open311_status(state), "version": order.version,
            "lon": order.lon, "lat": order.lat, "grid_code": order.grid_code,
            "community_code": order.community_code, "street_code": order.street_code,
            "department": order.department, "assignee_id": order.assignee_id,
            "queue": order.queue, "boundary_version": order.boundary_version,
            "created_at": order.created_at.isoformat(),
            "created_at_local": self._local_iso(order.created_at),
            "respond_due": _iso(order.respond_due),
            "respond_due_local": self._local_iso(order.respond_due),
            "resolve_due": _iso(order.resolve_due),
            "resolve_due_local": self._local_iso(order.resolve_due),
            "respond_overdue": order.respond_overdue, "resolve_overdue": order.resolve_overdue,
            "closed_at": _iso(order.closed_at), "closed_at_local": self._local_iso(order.closed_at),
            "feedback": order.feedback,
            "repair_photo": order.repair_photo, "reject_reason": order.reject_reason,
            "duplicate_of": order.duplicate_of, "reports_count": order.reports,
        }

    def stats(self, by=None, since=None, until=None) -> list[dict]:
        """The district's figures (see :func:`dispatch.stats.statistics`)."""
        return statistics(self.db, self.timezone, by=by, since=since, until=until)

    def stats_by(self, groupings, since=None, until=None) -> dict:
        """The district's figures in several groupings at once (see
        :func:`dispatch.stats.statistics_by`)."""
        return statistics_by(self.db, self.timezone, groupings, since=since, until=until)

    def local_time(self, moment: datetime) -> datetime:
        """A UTC time shown in the district's time zone."""
        return moment.astimezone(self.timezone)

    def _local_iso(self, moment: datetime | None) -> str | None:
        """A stored UTC time as ISO text in the district's time zone (None stays None): the
        ``<field>_local`` beside each ``<field>`` of an order's output."""
        return moment.astimezone(self.timezone).isoformat() if moment else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _summons_minutes(departments, due_minutes, known) -> dict[str, int]:
    """Each department a whistle summons, with its minutes to report for duty: a list of codes
    shares ``due_minutes``; a mapping code → minutes gives each its own. Every code must be
    ``known`` and every deadline a whole number of minutes within a week."""
    if isinstance(departments, dict):
        if due_minutes is not None:
            raise InputError("give due_minutes with a list of departments, or minutes per "
                             "department, not both", field="due_minutes")
        wanted = [(code, minutes, f"departments[{code}]") for code, minutes in departments.items()]
    elif isinstance(departments, list):
        wanted = [(code, due_minutes, "due_minutes") for code in departments]
    else:
        raise InputError("departments is a list of department codes or an object of department "
                         "code → minutes", field="departments")
    if not wanted:
        raise InputError("a whistle summons at least one department", field="departments")
    for code, minutes, field in wanted:
        if not isinstance(code, str) or code not in known:
            raise InputError(f"unknown department {code!r}; known: {', '.join(sorted(known))}",
                             field="departments")
        if (isinstance(minutes, bool) or not isinstance(minutes, int)
                or not 0 < minutes <= MAX_SUMMONS_MINUTES):
            raise InputError(f"{field} must be a positive whole number of minutes, at most "
                             f"{MAX_SUMMONS_MINUTES} (a week)", field=field)
    return {code: minutes for code, minutes, _ in wanted}


def _crs(value):
    try:
        return parse_crs(value if value not in (None, "") else "wgs84")
    except GridlineError as exc:
        raise InputError(str(exc), field="crs") from exc


def _number(value, field: str) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise InputError(f"{field} is required and must be a number", field=field)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond floats
        raise InputError(f"{field} must be a number, not {str(value)[:40]!r}",
                         field=field) from None


def _bbox(value) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError("bbox is four numbers: west, south, east, north", field="bbox") from None
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InputError("bbox must have west <= east within ±180 and south <= north within "
                         "±90", field="bbox")
    return west, south, east, north


def _validate_report(data, catalogue: Catalogue, user_id: int | None = None) -> dict:
    """Check every field of a report before anything is written; a category that is not
    anonymous is refused without a way to reach the reporter (an account or a phone)."""
    if not isinstance(data, dict):
        raise InputError("a report is a JSON object", field="report")
    category = catalogue.category(data.get("category"))
    try:
        phone = _phone(data.get("reporter_phone"))
    except InputError as exc:
        raise InputError(str(exc), field="reporter_phone") from None
    if not category.anonymous and user_id is None and phone is None:
        raise InputError(f"category {category.code} cannot be reported anonymously: log in or "
                         "give a phone number", field="reporter_phone")
    attributes = category.check_attributes(data.get("attributes"))
    role = data.get("reporter_role")
    role = "resident" if role in (None, "") else role
    if role not in REPORTER_ROLES:
        raise InputError(f"reporter_role must be one of {', '.join(REPORTER_ROLES)}",
                         field="reporter_role")
    key = data.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 100):
        raise InputError("idempotency_key must be text of 1 to 100 characters",
                         field="idempotency_key")
    description = _text(data.get("description"), "description", MAX_DESCRIPTION)
    x, y = _number(data.get("lon"), "lon"), _number(data.get("lat"), "lat")
    for field, value in (("lon", x), ("lat", y)):
        if not math.isfinite(value):
            raise InputError(f"{field} must be a finite number, not {value}", field=field)
    media_url = _text(data.get("media_url"), "media_url", 1000, required=False) or None
    if media_url and not re.match(r"https?://[^\s/?#]+\S*$", media_url, re.IGNORECASE):
        raise InputError("media_url must be an http:// or https:// address", field="media_url")
    return {
        "category": data["category"], "description": description, "x": x, "y": y,
        "crs": _crs(data.get("crs")),
        "reporter_name": _text(data.get("reporter_name"), "reporter_name", MAX_NAME,
                               required=False) or None,
        "reporter_phone": phone, "reporter_role": role, "idempotency_key": key,
        "attributes": attributes or None, "media_url": media_url,
        "address": _text(data.get("address"), "address", MAX_ADDRESS, required=False) or None,
    }
