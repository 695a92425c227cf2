"""Statistics a district reports: volume, closure and on-time rates, time to close, reopenings,
whistles blown and answered on time — overall or by street, community, grid, department,
category or day (in the district's time zone).

Closed means Open311-closed (closed, rejected or duplicate: 办结). On time means closed and
resolved by the resolve deadline. Reopened orders and whistles are counted from the audit trail and
the whistle records, so the figures agree with what the trail shows. By department, whistles
are counted for each department a whistle summoned (blown: it was summoned; answered on time: it
reported for duty by its deadline), not for the department that owns the order.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import select

from dispatch import schema as t
from dispatch.errors import InputError
from dispatch.model import FINAL, State

GROUPS = {"street": "street_code", "community": "community_code", "grid": "grid_code",
          "department": "department", "category": "category", "day": "day"}


def statistics(db, timezone, by: str | None = None, since: datetime | None = None,
               until: datetime | None = None) -> list[dict]:
    """One row of figures per group (or one overall row) for orders created in
    [``since``, ``until``)."""
    return statistics_by(db, timezone, (by,), since, until)[by]


def statistics_by(db, timezone, groupings, since: datetime | None = None,
                  until: datetime | None = None) -> dict:
    """:func:`statistics` for each of ``groupings`` (None: overall), from one reading of the
    period's orders, reopenings and summons."""
    for by in groupings:
        if by is not None and by not in GROUPS:
            raise InputError(f"by must be one of {', '.join(GROUPS)}", field="by")
    if since is not None and until is not None and since >= until:
        raise InputError(f"since ({since:%Y-%m-%d %H:%M %Z}) must be before until "
                         f"({until:%Y-%m-%d %H:%M %Z}); the period would be empty",
                         field="since")
    orders, summons = _period(db, timezone, since, until)
    return {by: [] if orders.empty else _by_department(orders, summons)
            if by == "department" else _grouped(orders, by) for by in groupings}


def _period(db, timezone, since, until) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The orders created in the period, each with what the figures count, and the summons
    of their whistles."""
    o = t.work_orders.c
    query = select(o.id, o.street_code, o.community_code, o.grid_code, o.department, o.category,
                   o.state, o.created_at, o.resolved_at, o.closed_at, o.resolve_due,
                   o.resolve_overdue, o.reports)
    if since is not None:
        query = query.where(o.created_at >= since)
    if until is not None:
        query = query.where(o.created_at < until)
    ids = query.with_only_columns(o.id)
    with db.read() as uow:
        orders = pd.DataFrame(uow.execute(query).mappings().all())
        reopened = set(uow.execute(select(t.audit.c.work_order_id).where(
            t.audit.c.action == "reopen", t.audit.c.work_order_id.in_(ids)).distinct())
            .scalars())
        summons = pd.DataFrame(uow.execute(select(
            t.summons.c.work_order_id, t.summons.c.whistle, t.summons.c.department,
            t.summons.c.reported_at, t.summons.c.due_at).where(
            t.summons.c.work_order_id.in_(ids))).mappings().all())
    if orders.empty:
        return orders, summons
    for column in ("created_at", "resolved_at", "closed_at", "resolve_due"):
        orders[column] = pd.to_datetime(orders[column], utc=True)
    orders["day"] = orders["created_at"].dt.tz_convert(timezone).dt.strftime("%Y-%m-%d")
    orders["closed"] = orders["state"].isin([str(s) for s in FINAL])
    finished = orders["state"] == str(State.CLOSED)
    orders["on_time"] = finished & (orders["resolved_at"] <= orders["resolve_due"])
    orders["hours_to_close"] = (orders["closed_at"] - orders["created_at"]).where(
        finished).dt.total_seconds() / 3600
    orders["reopened"] = orders["id"].isin(reopened)
    counts = pd.DataFrame(columns=["blown", "on_time"])
    if not summons.empty:
        summons["on_time"] = summons["reported_at"].notna() & (
            summons["reported_at"] <= summons["due_at"])
        whistles = summons.groupby(["work_order_id", "whistle"])["on_time"].all().reset_index()
        counts = whistles.groupby("work_order_id").agg(blown=("whistle", "size"),
                                                       on_time=("on_time", "sum"))
    orders["whistles"] = orders["id"].map(counts["blown"]).fillna(0).astype(int)
    orders["whistles_on_time"] = orders["id"].map(counts["on_time"]).fillna(0).astype(int)
    return orders, summons


def _grouped(orders: pd.DataFrame, by: str | None) -> list[dict]:
    groups = orders.groupby(GROUPS[by], dropna=False) if by else [(None, orders)]
    return [_figures(key, part, by) for key, part in groups]


def _by_department(orders: pd.DataFrame, summons: pd.DataFrame) -> list[dict]:
    """Figures per department: its own orders (the category's owner) as in every grouping,
    but whistles per *summoned* department — each whistle that summoned it, and whether it
    reported for duty in time — so a department summoned to others' orders is counted too."""
    summoned = (summons.groupby("department")["on_time"].agg(["size", "sum"])
                if not summons.empty else pd.DataFrame(columns=["size", "sum"]))
    rows = []
    for department in sorted(set(orders["department"]) | set(summoned.index)):
        row = _figures(department, orders[orders["department"] == department], "department")
        blown, on_time = summoned.loc[department] if department in summoned.index else (0, 0)
        row.update(whistles=int(blown), whistles_answered_on_time=int(on_time))
        rows.append(row)
    return rows


def _figures(key, part: pd.DataFrame, by) -> dict:
    finished = part["state"] == str(State.CLOSED)
    reported, closed = len(part), int(part["closed"].sum())
    row = {by: key} if by else {}
    row.update({
        "reported": reported, "reports": int(part["reports"].sum()), "closed": closed,
        "closure_rate": round(closed / reported, 4) if reported else None,
        "on_time_rate": round(float(part["on_time"].sum()) / int(finished.sum()), 4)
        if finished.any() else None,
        "median_hours_to_close": round(float(part["hours_to_close"].median()), 2)
        if finished.any() else None,
        "reopened": int(part["reopened"].sum()),
        "whistles": int(part["whistles"].sum()),
        "whistles_answered_on_time": int(part["whistles_on_time"].sum()),
    })
    return row
