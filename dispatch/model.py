"""The work order: a pure domain model with its lifecycle, deadlines, whistles and meetings.

Nothing here knows about databases or the web. A :class:`WorkOrder` changes state only through
its methods; each change appends an :class:`AuditEntry` (who, role, when, from → to, note) and
may record :class:`Event` s (assigned, summoned, overdue ...) that the service layer hands to the
notifier after the transaction commits. Illegal changes raise :class:`IllegalTransition` and
leave the order untouched.

States::

    submitted → dispatched → accepted → in_progress → resolved → verified → closed
    rejected (from submitted/dispatched/accepted), duplicate (merged into another order),
    reopened (from resolved or closed, then dispatched again),
    transferred (to another grid or department, then dispatched again)

A new boundary version moves an open order to the grid it now lies in (``regrid``) without
changing its state.

Open311 sees ``closed`` for closed, rejected and duplicate orders and ``open`` for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from dispatch.catalogue import Category
from dispatch.checks import MAX_NAME, check_text
from dispatch.errors import Forbidden, IllegalTransition, InputError


class State(StrEnum):
    SUBMITTED = "submitted"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    VERIFIED = "verified"
    CLOSED = "closed"
    REJECTED = "rejected"
    REOPENED = "reopened"
    TRANSFERRED = "transferred"
    DUPLICATE = "duplicate"


S = State
# action → (states it may start from, state it leads to)
TRANSITIONS = {
    "dispatch": ({S.SUBMITTED, S.REOPENED, S.TRANSFERRED}, S.DISPATCHED),
    "accept": ({S.DISPATCHED}, S.ACCEPTED),
    "start": ({S.ACCEPTED}, S.IN_PROGRESS),
    "resolve": ({S.IN_PROGRESS}, S.RESOLVED),
    "verify": ({S.RESOLVED}, S.VERIFIED),
    "close": ({S.VERIFIED}, S.CLOSED),
    "reopen": ({S.RESOLVED, S.CLOSED}, S.REOPENED),
    "transfer": ({S.DISPATCHED, S.ACCEPTED, S.IN_PROGRESS, S.REOPENED}, S.TRANSFERRED),
    "reject": ({S.SUBMITTED, S.DISPATCHED, S.ACCEPTED}, S.REJECTED),
    "merge": ({S.SUBMITTED, S.DISPATCHED, S.ACCEPTED, S.IN_PROGRESS, S.REOPENED}, S.DUPLICATE),
}
FINAL = {S.CLOSED, S.REJECTED, S.DUPLICATE}
DONE = FINAL | {S.RESOLVED, S.VERIFIED}  # no longer running against the resolve deadline
WHISTLE_ROLES = {"dispatcher", "admin"}
MAX_TEXT = 4000  # a free text: a decision, a task (and the service's descriptions and notes)
TASK_KEYS = ("task", "owner")
URGENT_WHISTLE_ROLES = WHISTLE_ROLES | {"grid_leader"}


def open311_status(state: State) -> str:
    """Open311's two states: ``closed`` for closed, rejected and duplicate orders."""
    return "closed" if State(state) in FINAL else "open"


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    role: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str = ""


@dataclass(frozen=True)
class Event:
    """Something others must hear about: ``name`` plus a JSON-able payload."""

    name: str
    order_id: int | None
    at: datetime
    data: dict = field(default_factory=dict)


@dataclass
class Summons:
    """One department's part in a whistle: report for duty by ``due_at``, then finish."""

    department: str
    due_at: datetime
    reported_at: datetime | None = None
    done_at: datetime | None = None
    note: str = ""
    overdue: bool = False


@dataclass
class Whistle:
    number: int
    blown_by: str
    role: str
    blown_at: datetime
    reason: str
    summons: list[Summons]
    ended_at: datetime | None = None

    def part(self, department: str) -> Summons:
        for summons in self.summons:
            if summons.department == department:
                return summons
        raise InputError(f"department {department!r} was not summoned by whistle "
                         f"{self.number}", field="department")


@dataclass
class Meeting:
    """A consultation meeting (协商议事): who took part, what was decided, who does what."""

    number: int
    held_at: datetime
    participants: list[str]
    decisions: list[str]
    tasks: list[dict]


def check_meeting(participants, tasks, decisions=()) -> None:
    """A meeting has participants (a list of names); its decisions are a list of texts and
    its tasks a list of ``{"task": text, "owner": name}``, nothing else: JSON columns would
    keep anything, so anything else is refused here, by field."""
    for name, value in (("participants", participants), ("decisions", decisions),
                        ("tasks", tasks)):
        if not isinstance(value, list | tuple):
            raise InputError(f"{name} is a list", field=name)
    if not participants:
        raise InputError("a meeting has participants", field="participants")
    for person in participants:
        check_text(person, "participants", MAX_NAME)
    for decision in decisions:
        check_text(decision, "decisions", MAX_TEXT)
    for task in tasks:
        if not isinstance(task, dict):
            raise InputError('every task is an object {"task": ..., "owner": ...}',
                             field="tasks")
        extra = sorted(set(task) - set(TASK_KEYS), key=str)
        if extra:
            raise InputError(f"a task has only {' and '.join(TASK_KEYS)}, not {extra[0]!r}",
                             field="tasks")
        if not task.get("task") or not task.get("owner"):
            raise InputError("every task has a task and an owner", field="tasks")
        check_text(task["task"], "tasks", MAX_TEXT)
        check_text(task["owner"], "tasks", MAX_NAME)


def attach_report(order: WorkOrder | OrderHead, actor, role, at) -> None:
    """A "me too": another report of the same problem joins ``order``."""
    order.reports += 1
    order.new_audit.append(AuditEntry(at, actor, role, "attach_report", order.state,
                                      order.state, f"report {order.reports} attached"))


@dataclass
class OrderHead:
    """What a "me too" changes of a stored order, and all it needs to read: loading and
    writing back the whole order for it would cost many times as much, and intake under
    load is mostly "me too" reports."""

    id: int
    state: State
    version: int
    reports: int
    new_audit: list[AuditEntry] = field(default_factory=list)

    def attach_report(self, actor, role, at):
        attach_report(self, actor, role, at)


@dataclass
class WorkOrder:
    category: str
    lon: float
    lat: float
    boundary_version: int
    grid_code: str | None
    community_code: str | None
    street_code: str | None
    department: str
    created_at: datetime
    id: int | None = None
    state: State = State.SUBMITTED
    version: int = 0
    assignee_id: int | None = None
    queue: str = "street"
    dispatched_at: datetime | None = None
    respond_due: datetime | None = None
    resolve_due: datetime | None = None
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    respond_overdue: bool = False
    resolve_overdue: bool = False
    feedback: str | None = None
    repair_photo: str | None = None
    reject_reason: str | None = None
    duplicate_of: int | None = None
    reports: int = 1
    whistles: list[Whistle] = field(default_factory=list)
    meetings: list[Meeting] = field(default_factory=list)
    new_audit: list[AuditEntry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    # --- lifecycle ------------------------------------------------------------------------

    def dispatch(self, category: Category, assignee_id, queue, actor, role, at, note=""):
        """Send the order to its gridworker (or queue) and department; the clock starts."""
        self._move("dispatch", actor, role, at, note or f"to {queue}")
        self.assignee_id, self.queue, self.dispatched_at = assignee_id, queue, at
        self.respond_due = at + timedelta(minutes=category.respond_within)
        self.resolve_due = at + timedelta(minutes=category.resolve_within)
        self.respond_overdue = self.resolve_overdue = False
        self._event("assigned", at, assignee_id=assignee_id, queue=queue,
                    department=self.department, grid_code=self.grid_code)

    def accept(self, actor, role, at, note=""):
        self._move("accept", actor, role, at, note)
        self.accepted_at = at

    def start(self, actor, role, at, note=""):
        self._move("start", actor, role, at, note)

    def resolve(self, actor, role, at, feedback: str, repair_photo: str | None):
        """Mark the work done: feedback notes and a repair photo are both required."""
        if not isinstance(feedback, str) or not feedback.strip():
            raise InputError("resolving needs feedback notes", field="feedback")
        if not repair_photo:
            raise InputError("resolving needs a repair photo", field="photo")
        self._move("resolve", actor, role, at, feedback)
        self.feedback, self.repair_photo, self.resolved_at = feedback.strip(), repair_photo, at

    def verify(self, actor, role, at, note=""):
        self._move("verify", actor, role, at, note)

    def close(self, actor, role, at, note=""):
        self._move("close", actor, role, at, note)
        self.closed_at = at

    def reopen(self, actor, role, at, reason: str):
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("reopening needs a reason", field="reason")
        self._move("reopen", actor, role, at, reason)
        self.closed_at = self.resolved_at = None

    def transfer(self, actor, role, at, reason: str, grid=None, department=None,
                 boundary_version=None):
        """Hand the order to another grid (``grid`` = (grid, community, street) codes of
        ``boundary_version``) or department; the service dispatches it again afterwards."""
        if grid is None and department is None:
            raise InputError("a transfer names another grid or department", field="grid_code")
        self._move("transfer", actor, role, at, reason)
        if grid is not None:
            self.grid_code, self.community_code, self.street_code = grid
            self.boundary_version = boundary_version or self.boundary_version
        if department is not None:
            self.department = department

    def regrid(self, place, boundary_version: int, actor, role, at):
        """Put the order where it lies under ``boundary_version``, newly active: ``place`` =
        (grid, community, street) codes there. Its state, people and deadlines stay (the
        service hands an order nobody took yet to the new grid's people with :meth:`reassign`)."""
        before = self.grid_code
        self.grid_code, self.community_code, self.street_code = place
        self.boundary_version = boundary_version
        self.new_audit.append(AuditEntry(
            at, actor, role, "regrid", self.state, self.state,
            f"boundary version {boundary_version}: grid {before or '-'} → "
            f"{self.grid_code or '-'}"))

    def reject(self, actor, role, at, reason: str):
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("rejecting needs a reason", field="reason")
        self._move("reject", actor, role, at, reason)
        self.reject_reason = reason.strip()
        self.closed_at = at

    def merge_into(self, other_id: int, actor, role, at):
        if other_id == self.id:
            raise InputError("an order cannot be a duplicate of itself", field="duplicate_of")
        self._move("merge", actor, role, at, f"duplicate of #{other_id}")
        self.duplicate_of, self.closed_at = other_id, at

    def absorb_duplicate(self, other_id: int, reports: int, actor, role, at):
        """Order ``other_id`` was merged into this one: its ``reports`` join this order, and
        the trail says so here too, not only on the duplicate. An order that is itself over
        (closed, rejected, a duplicate) takes in nothing."""
        if self.state in FINAL:
            raise IllegalTransition(f"order #{self.id} is {self.state}; merge into an open order")
        self.reports += reports
        self.new_audit.append(AuditEntry(
            at, actor, role, "absorb_duplicate", self.state, self.state,
            f"merged #{other_id} into this: {reports} report{'s' * (reports != 1)} taken over"))

    def reassign(self, assignee_id, queue, actor, role, at, note=""):
        """Hand the order to another person or queue, keeping its state and deadlines (its
        gridworker left the roster, say)."""
        self.assignee_id, self.queue = assignee_id, queue
        self.new_audit.append(AuditEntry(at, actor, role, "reassign", self.state, self.state,
                                         note or f"to {queue}"))
        self._event("assigned", at, assignee_id=assignee_id, queue=queue,
                    department=self.department, grid_code=self.grid_code)

    def attach_report(self, actor, role, at):
        attach_report(self, actor, role, at)

    # --- whistle and meetings -------------------------------------------------------------

    def blow_whistle(self, category: Category, departments, due_at, actor, role, at, reason=""):
        """Summon ``departments`` to report for duty (吹哨报到): all by ``due_at``, or each by
        its own deadline when ``due_at`` maps department → deadline."""
        allowed = URGENT_WHISTLE_ROLES if category.urgency != "normal" else WHISTLE_ROLES
        if role not in allowed:
            raise Forbidden(f"a {role} may not blow the whistle on a {category.urgency} "
                            f"order; allowed: {', '.join(sorted(allowed))}")
        if not category.escalable:
            raise IllegalTransition(f"category {category.code} may not be escalated")
        if self.state in DONE:
            raise IllegalTransition(f"order #{self.id} is {self.state}: nothing to summon for")
        departments = list(dict.fromkeys(departments))
        if not departments:
            raise InputError("a whistle summons at least one department", field="departments")
        deadlines = due_at if isinstance(due_at, dict) else dict.fromkeys(departments, due_at)
        for department in departments:
            if department not in deadlines:
                raise InputError(f"no report-for-duty deadline for {department}",
                                 field="due_at")
            if deadlines[department] <= at:
                raise InputError("the report-for-duty deadline must be in the future",
                                 field="due_at")
        whistle = Whistle(len(self.whistles) + 1, actor, role, at, reason,
                          [Summons(d, deadlines[d]) for d in departments])
        self.whistles.append(whistle)
        self.new_audit.append(AuditEntry(at, actor, role, "whistle", self.state, self.state,
                                         f"summoned {', '.join(departments)}: {reason}"))
        self._event("summoned", at, whistle=whistle.number, departments=departments,
                    due_at=min(deadlines[d] for d in departments).isoformat(),
                    deadlines={d: deadlines[d].isoformat() for d in departments})
        return whistle

    def report_for_duty(self, whistle_number, department, actor, role, at, note=""):
        """``department`` answers its summons; ``actor`` (its own account, or an admin acting
        for it) is recorded with their role."""
        part = self._whistle(whistle_number).part(department)
        if part.reported_at is not None:
            raise IllegalTransition(f"{department} has already reported for duty")
        part.reported_at = at
        self.new_audit.append(AuditEntry(at, actor, role, "report_for_duty", self.state,
                                         self.state, f"{department} reported for duty {note}"))

    def complete_part(self, whistle_number, department, actor, role, at, note: str):
        whistle = self._whistle(whistle_number)
        part = whistle.part(department)
        if part.reported_at is None:
            raise IllegalTransition(f"{department} must report for duty before closing its part")
        if part.done_at is not None:
            raise IllegalTransition(f"{department} has already closed its part")
        part.done_at, part.note = at, note
        self.new_audit.append(AuditEntry(at, actor, role, "complete_part", self.state,
                                         self.state, f"{department}: {note}"))
        if all(s.done_at is not None for s in whistle.summons):
            whistle.ended_at = at
            self._event("whistle_ended", at, whistle=whistle.number)

    def record_meeting(self, participants, decisions, tasks, actor, role, at) -> Meeting:
        check_meeting(participants, tasks, decisions)
        meeting = Meeting(len(self.meetings) + 1, at, list(participants), list(decisions),
                          [dict(task) for task in tasks])
        self.meetings.append(meeting)
        self.new_audit.append(AuditEntry(at, actor, role, "meeting", self.state, self.state,
                                         f"{len(participants)} participants, "
                                         f"{len(tasks)} tasks"))
        return meeting

    # --- deadlines ------------------------------------------------------------------------

    def check_deadlines(self, now: datetime) -> bool:
        """Mark missed deadlines (respond, resolve, summons) once each; True if any changed."""
        changed = False
        if (self.state == S.DISPATCHED and not self.respond_overdue and self.respond_due
                and now > self.respond_due):
            self.respond_overdue = changed = True
            self._overdue(now, "respond", self.respond_due)
        if (self.state not in DONE and self.dispatched_at and not self.resolve_overdue
                and self.resolve_due and now > self.resolve_due):
            self.resolve_overdue = changed = True
            self._overdue(now, "resolve", self.resolve_due)
        for whistle in self.whistles:
            for part in whistle.summons:
                if part.reported_at is None and not part.overdue and now > part.due_at:
                    part.overdue = changed = True
                    self._overdue(now, "summons", part.due_at, department=part.department,
                                  whistle=whistle.number)
        return changed

    # --- helpers --------------------------------------------------------------------------

    @property
    def open311_status(self) -> str:
        return open311_status(self.state)

    def _move(self, action, actor, role, at, note=""):
        sources, target = TRANSITIONS[action]
        if self.state not in sources:
            raise IllegalTransition(f"cannot {action} order #{self.id} while it is "
                                    f"{self.state}; allowed from "
                                    f"{', '.join(sorted(s.value for s in sources))}")
        self.new_audit.append(AuditEntry(at, actor, role, action, self.state, target, note))
        self.state = target
        self._event("state_changed", at, action=action, to=target.value)

    def _whistle(self, number) -> Whistle:
        for whistle in self.whistles:
            if whistle.number == number:
                return whistle
        raise InputError(f"order #{self.id} has no whistle {number}", field="whistle")

    def _overdue(self, now, kind, due, **data):
        self.new_audit.append(AuditEntry(now, "system", "system", "overdue", self.state,
                                         self.state, f"{kind} deadline {due.isoformat()} missed"))
        self._event("overdue", now, kind=kind, due=due.isoformat(), **data)

    def _event(self, name, at, **data):
        self.events.append(Event(name, self.id, at, data))
