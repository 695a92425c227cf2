"""What the map pages show, read in a few queries: gridworkers per grid, whistles in progress,
where reports came from, and reports per grid."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import func, select

from dispatch import schema as t


def gridworker_names(db, codes) -> dict[str, list[str]]:
    """The names (no phones) of each grid's gridworkers, by grid code."""
    g, gg = t.gridworkers.c, t.gridworker_grids.c
    with db.read() as uow:
        rows = uow.execute(select(gg.grid_code, g.name).join(
            t.gridworkers, g.id == gg.gridworker_id).where(gg.grid_code.in_(list(codes)))
            .order_by(g.id)).all()
    names: dict[str, list[str]] = {}
    for code, name in rows:
        names.setdefault(code, []).append(name)
    return names


def whistling(db, order_ids) -> set[int]:
    """Those of ``order_ids`` with a whistle blown and not yet ended."""
    w = t.whistles.c
    with db.read() as uow:
        return set(uow.execute(select(w.work_order_id).where(
            w.work_order_id.in_(list(order_ids)), w.ended_at.is_(None))).scalars())


def _period(query, column, since: datetime | None, until: datetime | None):
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


def report_points(db, since: datetime | None = None, until: datetime | None = None):
    """WGS84 (lon, lat) arrays of the reports made inside the district in [since, until)."""
    r = t.reports.c
    query = _period(select(r.lon, r.lat).where(r.resolve_status == "ok"), r.created_at, since,
                    until)
    with db.read() as uow:
        rows = uow.execute(query).all()
    # Columns straight from the rows' tuples: numpy reading Row objects one by one is slow.
    lon, lat = zip(*rows, strict=True) if rows else ((), ())
    return np.array(lon, dtype=float), np.array(lat, dtype=float)


def reports_per_grid(db, since: datetime | None = None,
                     until: datetime | None = None) -> dict[str, int]:
    """How many reports each grid received in [since, until), by grid code."""
    r = t.reports.c
    query = _period(select(r.grid_code, func.count()).where(r.grid_code.is_not(None)),
                    r.created_at, since, until).group_by(r.grid_code)
    with db.read() as uow:
        return dict(uow.execute(query).all())
