"""Points (积分): the rules that earn them, and the append-only ledger that holds them.

Every credit and debit is a new ledger entry with its cause, its reference, who made it and when;
nothing is ever edited or deleted, so a mistake is undone by a reversal entry. A person's balance
is the sum of their entries and is never negative: the running balance in ``points_accounts``
moves in the same transaction as each entry, by a conditional update that refuses to go below
zero (a row lock on PostgreSQL, the write lock on SQLite), so two spenders racing for the last
points cannot both win.

Reports earn when their work order is verified (a hook on the dispatch service's lifecycle),
volunteers when a community worker checks in their activity, anyone by an administrator's
adjustment with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dispatch import schema as t
from dispatch.checks import check_text
from dispatch.config import read_toml
from dispatch.errors import Conflict, InputError, NotFound
from dispatch.model import State
from dispatch.storage import known_id

DEFAULT_RULES = Path(__file__).with_name("points.toml")
EARNING = ("report", "me_too", "activity", "adjustment", "reversal")
MAX_TEXT = 500
MONTHS_FROM, MONTHS_TO = 2000, 9998  # the years a leaderboard month may name
MAX_STATEMENT = 500


@dataclass(frozen=True)
class PointsRules:
    """How many points each cause earns (see ``points.toml``)."""

    report_verified: int
    me_too_verified: int
    activity_per_hour: int
    max_activity_hours: int
    max_adjustment: int
    categories: dict[str, dict[str, int]] = field(default_factory=dict)

    def for_report(self, category: str, me_too: bool) -> int:
        """Points for a verified report of ``category``; a "me too" earns the lesser amount."""
        name = "me_too_verified" if me_too else "report_verified"
        return self.categories.get(category, {}).get(name, getattr(self, name))


def load_points_rules(path=None) -> PointsRules:
    """The rules in ``path`` (the shipped ``points.toml`` by default), every amount checked."""
    path = Path(path or DEFAULT_RULES)
    data = read_toml(path, "points rules", "points")
    names = ("report_verified", "me_too_verified", "activity_per_hour", "max_activity_hours",
             "max_adjustment")
    values = {}
    for name in names:
        values[name] = _rule(data.get(name), name)
    categories = {code: {k: _rule(v, f"categories.{code}.{k}") for k, v in rules.items()}
                  for code, rules in data.get("categories", {}).items()}
    return PointsRules(**values, categories=categories)


def _rule(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"points rules: {name} must be a whole number from 0", field="points")
    return value


def whole_points(value, field: str, *, positive: bool = True) -> int:
    """``value`` as a whole number of points (above zero if ``positive``, else not zero);
    fractions, text and booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{field} must be a whole number of points, not {value!r}", field=field)
    if (positive and value <= 0) or value == 0:
        raise InputError(f"{field} must be {'above' if positive else 'other than'} zero",
                         field=field)
    return value


def known_place(service, code, field: str) -> str:
    """``code`` if it names a community (``field`` community_code) or a station (station_id)
    of the active boundary version; else an :class:`InputError` naming the field."""
    _, resolver = service.active_resolver()
    layer, column, noun = {"community_code": ("communities", "code", "community"),
                           "station_id": ("stations", "station_id", "station")}[field]
    if not isinstance(code, str) or code not in set(resolver.boundaries.layer(layer)[column]):
        raise InputError(f"{field} {code!r} is not a {noun} of the district", field=field)
    return code


def check_user(uow, user_id) -> int:
    """``user_id`` if it names an account; else :class:`NotFound`."""
    known_id(user_id, "user")
    if uow.execute(select(t.users.c.id).where(t.users.c.id == user_id)).first() is None:
        raise NotFound(f"no user {user_id}")
    return user_id


def post(uow, user_id: int, amount: int, cause: str, actor, at: datetime, *, note: str = "",
         ref: str | None = None, key: str | None = None,
         community_code: str | None = None) -> dict:
    """Append one entry of ``amount`` points and move the balance with it, in the caller's
    transaction. An entry that would take the balance below zero is refused (:class:`Conflict`)
    and the caller's transaction is expected to roll back."""
    dialect = sqlite if not uow.is_postgres else postgresql
    uow.execute(dialect.insert(t.points_accounts).values(user_id=user_id, balance=0)
                .on_conflict_do_nothing())
    a = t.points_accounts.c
    balance = uow.execute(update(t.points_accounts).where(
        a.user_id == user_id, a.balance + amount >= 0).values(balance=a.balance + amount)
        .returning(a.balance)).scalar()
    if balance is None:
        held = uow.execute(select(a.balance).where(a.user_id == user_id)).scalar_one()
        raise Conflict(f"not enough points: the balance is {held}, {-amount} are needed")
    entry = {"user_id": user_id, "amount": amount, "balance_after": balance, "cause": cause,
             "ref": ref, "key": key, "community_code": community_code, "actor": actor.name,
             "note": note, "at": at}
    entry["id"] = uow.execute(insert(t.points_ledger).returning(t.points_ledger.c.id),
                              entry).scalar_one()
    return _entry(entry)


def _entry(row) -> dict:
    row = dict(row._mapping) if hasattr(row, "_mapping") else row
    return {"id": row["id"], "amount": row["amount"], "balance_after": row["balance_after"],
            "cause": row["cause"], "ref": row["ref"], "community_code": row["community_code"],
            "actor": row["actor"], "note": row["note"], "at": row["at"].isoformat()}


class Points:
    """Earning, adjusting, reversing and reading points, over the dispatch service's database.

    Made once per service: it registers a hook so that verifying a work order credits its
    reporters in the same transaction.
    """

    def __init__(self, service, rules: PointsRules | None = None):
        self.service = service
        self.db = service.db
        self.rules = rules or load_points_rules()
        service.order_hooks.append(self._on_order_action)

    # --- earning --------------------------------------------------------------------------

    def _on_order_action(self, uow, order, action, actor, now) -> None:
        """On ``verify``: credit each account that reported the order, once for the order —
        for its own report if it sent the one that created the order, else as a "me too" —
        however many reports it sent (extra "me too"s from one account would otherwise earn
        points each), and never again after a reopen."""
        if action != "verify" or order.state != State.VERIFIED:
            return
        r = t.reports.c
        rows = uow.execute(select(r.id, r.user_id, r.outcome, r.community_code).where(
            r.work_order_id == order.id, r.user_id.is_not(None),
            r.outcome.in_(("created", "attached"))).order_by(r.id)).all()
        keys = [f"report:{row.id}" for row in rows]
        done = set(uow.execute(select(t.points_ledger.c.key).where(
            t.points_ledger.c.key.in_(keys))).scalars()) if keys else set()
        best: dict[int, tuple] = {}  # account → (the report it is credited for, its key)
        credited = set()
        for row, key in zip(rows, keys, strict=True):
            if key in done:
                credited.add(row.user_id)
            if row.user_id not in best or (row.outcome == "created"
                                           and best[row.user_id][0].outcome != "created"):
                best[row.user_id] = row, key
        for user_id, (row, key) in best.items():
            me_too = row.outcome == "attached"
            amount = self.rules.for_report(order.category, me_too)
            if user_id in credited or amount == 0:
                continue
            post(uow, user_id, amount, "me_too" if me_too else "report", actor, now,
                 note=f"work order #{order.id} verified", ref=key, key=key,
                 community_code=row.community_code)

    def check_in(self, user_id: int, activity: str, hours, community_code: str,
                 actor, idempotency_key: str | None = None) -> dict:
        """A community worker checks in ``hours`` of a volunteer ``activity`` (half hours
        count): the volunteer earns ``activity_per_hour`` for each hour.

        A check-in sent again with the same ``idempotency_key`` (a retry over a bad network)
        is answered with the entry of the first and earns nothing more; the key used for a
        different check-in is a :class:`Conflict`."""
        if idempotency_key is not None:
            idempotency_key = f"check-in:{check_text(idempotency_key, 'idempotency_key', 100)}"
        activity = check_text(activity, "activity", MAX_TEXT)
        community_code = known_place(self.service, community_code, "community_code")
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours != hours:
            raise InputError("hours must be a number", field="hours")
        if not 0 < hours <= self.rules.max_activity_hours or (hours * 2) % 1:
            raise InputError(f"hours must be a whole or half number from 0.5 to "
                             f"{self.rules.max_activity_hours}", field="hours")
        amount = int(hours * self.rules.activity_per_hour + 0.5)  # halves round up
        note = f"{activity}, {hours:g} h"
        with self.db.unit_of_work() as uow:
            check_user(uow, user_id)
            if idempotency_key is not None:
                uow.lock(idempotency_key)  # a retry arriving at once waits for the first
                earlier = uow.execute(select(t.points_ledger).where(
                    t.points_ledger.c.key == idempotency_key)).first()
                if earlier is not None:
                    if (earlier.user_id, earlier.amount, earlier.note, earlier.community_code) \
                            != (user_id, amount, note, community_code):
                        raise Conflict("this idempotency_key was used for another check-in")
                    return _entry(earlier)
            return post(uow, user_id, amount, "activity", actor, self.service.clock(),
                        note=note, ref=f"activity:{activity[:50]}", key=idempotency_key,
                        community_code=community_code)

    def adjust(self, user_id: int, amount, reason: str, actor,
               community_code: str | None = None) -> dict:
        """An administrator's adjustment, up or down, with a reason (never below zero)."""
        amount = whole_points(amount, "amount", positive=False)
        if abs(amount) > self.rules.max_adjustment:
            raise InputError(f"amount may be at most {self.rules.max_adjustment} either way",
                             field="amount")
        reason = check_text(reason, "reason", MAX_TEXT)
        if community_code is not None:
            known_place(self.service, community_code, "community_code")
        with self.db.unit_of_work() as uow:
            check_user(uow, user_id)
            return post(uow, user_id, amount, "adjustment", actor, self.service.clock(),
                        note=reason, community_code=community_code)

    def reverse(self, entry_id: int, reason: str, actor) -> dict:
        """Undo an earning entry (a verified report later found false, a mistaken check-in)
        by a new entry of the opposite amount; an entry is reversed at most once, and not if
        the points are already spent."""
        reason = check_text(reason, "reason", MAX_TEXT)
        known_id(entry_id, "ledger entry")
        with self.db.unit_of_work() as uow:
            row = uow.execute(select(t.points_ledger).where(
                t.points_ledger.c.id == entry_id).with_for_update()).first()
            if row is None:
                raise NotFound(f"no ledger entry {entry_id}")
            if row.cause not in EARNING or row.cause == "reversal":
                raise InputError(f"entry {entry_id} is a {row.cause}, which is not reversed "
                                 "here", field="entry_id")
            key = f"reversal:{entry_id}"
            if uow.execute(select(t.points_ledger.c.id).where(
                    t.points_ledger.c.key == key)).first() is not None:
                raise Conflict(f"entry {entry_id} is already reversed")
            return post(uow, row.user_id, -row.amount, "reversal", actor, self.service.clock(),
                        note=reason, ref=f"entry:{entry_id}", key=key,
                        community_code=row.community_code)

    # --- reading --------------------------------------------------------------------------

    def balance(self, user_id: int) -> int:
        with self.db.read() as uow:
            check_user(uow, user_id)
            return _balance(uow, user_id)

    def statement(self, user_id: int, limit: int = 100) -> dict:
        """A person's balance, their ledger (newest first) and their redemptions."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_STATEMENT:
            raise InputError(f"limit must be a whole number from 1 to {MAX_STATEMENT}",
                             field="limit")
        p, rd, i = t.points_ledger.c, t.redemptions.c, t.supermarket_items.c
        with self.db.read() as uow:
            check_user(uow, user_id)
            entries = uow.execute(select(t.points_ledger).where(p.user_id == user_id)
                                  .order_by(p.id.desc()).limit(limit)).all()
            redeemed = uow.execute(select(t.redemptions, i.name).join(t.supermarket_items)
                                   .where(rd.user_id == user_id).order_by(rd.id.desc())
                                   .limit(limit)).all()
            balance = _balance(uow, user_id)
        return {"user_id": user_id, "balance": balance,
                "entries": [_entry(e) for e in entries],
                "redemptions": [redemption(r) for r in redeemed]}

    def leaderboard(self, community_code: str, month: str, limit: int = 20) -> list[dict]:
        """The people who earned most in a community in a month (``YYYY-MM``, the district's
        local time): earnings less reversals, spending not counted."""
        try:
            first = datetime.strptime(month, "%Y-%m").replace(tzinfo=self.service.timezone)
        except (TypeError, ValueError):
            raise InputError(f"month must be written YYYY-MM, not {month!r}",
                             field="month") from None
        if not MONTHS_FROM <= first.year <= MONTHS_TO:
            raise InputError(f"month must lie between {MONTHS_FROM} and {MONTHS_TO}",
                             field="month")
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        until = datetime.combine(nxt, datetime.min.time(), tzinfo=self.service.timezone)
        p, u = t.points_ledger.c, t.users.c
        earned = func.sum(p.amount).label("points")
        with self.db.read() as uow:
            rows = uow.execute(select(u.id, u.username, earned).join(
                t.users, u.id == p.user_id).where(
                p.community_code == community_code, p.cause.in_(EARNING),
                p.at >= first.astimezone(UTC), p.at < until.astimezone(UTC))
                .group_by(u.id, u.username).having(earned > 0)
                .order_by(earned.desc(), u.id).limit(limit)).all()
        return [{"rank": n, "user_id": r.id, "username": r.username, "points": int(r.points)}
                for n, r in enumerate(rows, start=1)]


def _balance(uow, user_id: int) -> int:
    return uow.execute(select(t.points_accounts.c.balance).where(
        t.points_accounts.c.user_id == user_id)).scalar() or 0


def redemption(row) -> dict:
    """A redemption row (joined with its item's ``name``) as plain JSON."""
    return {"id": row.id, "user_id": row.user_id, "item_id": row.item_id,
            "item": row.name, "quantity": row.quantity, "points": row.points,
            "state": row.state, "reserved_at": row.reserved_at.isoformat(),
            "closed_at": row.closed_at and row.closed_at.isoformat(),
            "closed_by": row.closed_by}
