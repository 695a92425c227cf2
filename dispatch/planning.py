"""For planners: what a draft boundary version would change, and past reports seen through it.

The impact preview compares a draft with the active version over the stored reports and open
work orders (see :mod:`geo.impact`). The reports are read and resolved against the active
version once, then kept in memory and topped up with the reports that arrived since, so a
preview after each edit costs a fraction of a second even over a million reports.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

from dispatch import schema as t
from dispatch.errors import InputError
from dispatch.model import FINAL
from geo.impact import ReportIndex

MAX_MONTHS = 120
READ_CHUNK = 200_000
MAX_RERESOLVE = 100_000


class Planning:
    """Impact previews and re-resolution against drafts, for one :class:`Service`."""

    def __init__(self, service):
        self.service = service
        self._index: tuple[int, ReportIndex, int] | None = None  # version, index, last report
        self._lock = threading.Lock()

    def impact(self, version: int, months: int = 6) -> dict:
        """The preview of ``version`` against the active version, as plain data: changed grids
        with workload (reports per month over the last ``months`` months, households) before
        and after, reports and open work orders changing grid or community, gridworkers whose
        load changes, stations whose served grids change."""
        months = _months(months)
        started = time.perf_counter()
        active, _ = self.service.active_resolver()
        draft = self.service.boundaries(version)
        index = self._report_index(active)
        lon, lat = self._open_orders()
        now = self.service.clock().astimezone(UTC).replace(tzinfo=None)
        impact = index.preview(draft, months=months, now=now, open_lon=lon, open_lat=lat)
        result = impact.to_dict()
        result["gridworkers"] = self._gridworker_loads(impact.grids)
        result["summary"].update(version=version, active_version=active,
                                 seconds=round(time.perf_counter() - started, 3))
        return result

    def reresolve(self, version: int, since: datetime | None = None,
                  until: datetime | None = None) -> pd.DataFrame:
        """Past reports (by time reported) with the grid they were resolved to and the grid
        ``version`` would give them; nothing stored changes."""
        resolver = self.service.resolver(version)
        r = t.reports.c
        query = select(r.id, r.created_at, r.boundary_version, r.grid_code, r.community_code,
                       r.lon, r.lat).order_by(r.id).limit(MAX_RERESOLVE + 1)
        if since is not None:
            query = query.where(r.created_at >= since)
        if until is not None:
            query = query.where(r.created_at < until)
        with self.service.db.read() as uow:
            rows = uow.execute(query).all()
        if len(rows) > MAX_RERESOLVE:
            raise InputError(f"more than {MAX_RERESOLVE:,} reports in that period; choose a "
                             "shorter one", field="since")
        frame = pd.DataFrame(rows, columns=["report_id", "created_at", "boundary_version",
                                            "grid_code", "community_code", "lon", "lat"])
        found = resolver.resolve_many(frame["lon"].to_numpy(float),
                                      frame["lat"].to_numpy(float), errors="mark")
        frame["created_at"] = frame["created_at"].map(lambda d: d.isoformat())
        frame["draft_grid_code"] = found["grid_code"].to_numpy(object)
        frame["draft_community_code"] = found["community_code"].to_numpy(object)
        frame["changes_grid"] = (frame["grid_code"].fillna("")
                                 != frame["draft_grid_code"].fillna(""))
        return frame.drop(columns=["lon", "lat"])

    def reports_per_month(self, months: int):
        """The stored reports of the last ``months`` months as points (lon, lat arrays), each
        weighing 1/``months`` — reports per month, a weight for partitioning."""
        active, _ = self.service.active_resolver()
        index = self._report_index(active)
        now = self.service.clock().astimezone(UTC).replace(tzinfo=None)
        recent = index.recent(months, now)
        weights = np.full(int(recent.sum()), 1 / months)
        return (index.lon[recent], index.lat[recent]), weights

    def _report_index(self, active: int) -> ReportIndex:
        """The reports resolved against the active version, read once and topped up since."""
        with self._lock:
            if self._index is None or self._index[0] != active:
                self._index = (active, ReportIndex(self.service.boundaries(active),
                                                   self.service.resolver(active)), 0)
            version, index, last = self._index
            r = t.reports.c
            while True:
                with self.service.db.read() as uow:
                    rows = uow.execute(select(r.id, r.lon, r.lat, r.created_at)
                                       .where(r.id > last).order_by(r.id)
                                       .limit(READ_CHUNK)).all()
                if not rows:
                    break
                ids, lon, lat, when = zip(*rows, strict=True)
                index.add(lon, lat, _naive(when))
                last = ids[-1]
            self._index = (version, index, last)
            return index

    def _open_orders(self):
        o = t.work_orders.c
        with self.service.db.read() as uow:
            rows = uow.execute(select(o.lon, o.lat).where(
                o.state.not_in([s.value for s in FINAL]))).all()
        return (np.array([x for x, _ in rows], float), np.array([y for _, y in rows], float))

    def _gridworker_loads(self, grids: pd.DataFrame) -> list[dict]:
        """Gridworkers of changed grids with their reports per month before and after."""
        if grids.empty:
            return []
        g = t.gridworker_grids.c
        w = t.gridworkers.c
        with self.service.db.read() as uow:
            rows = uow.execute(select(w.id, w.name, w.role, g.grid_code).join(
                t.gridworker_grids, g.gridworker_id == w.id).where(
                g.grid_code.in_(list(grids["code"])))).all()
        load = grids.set_index("code")
        people: dict[int, dict] = {}
        for wid, name, role, code in rows:
            person = people.setdefault(wid, {"id": wid, "name": name, "role": role,
                                             "grids": [], "change_per_month": 0.0})
            person["grids"].append(code)
            person["change_per_month"] += float(load.at[code, "reports_per_month_after"]
                                                - load.at[code, "reports_per_month_before"])
        for person in people.values():
            person["change_per_month"] = round(person["change_per_month"], 2)
        return sorted(people.values(), key=lambda p: (-abs(p["change_per_month"]), p["id"]))


def _naive(moments) -> np.ndarray:
    """Aware datetimes as naive UTC numpy datetimes."""
    return pd.to_datetime(list(moments), utc=True).tz_localize(None).to_numpy("datetime64[s]")


def _months(value) -> int:
    try:
        months = int(value)
    except (TypeError, ValueError):
        raise InputError("months must be a whole number", field="months") from None
    if not 1 <= months <= MAX_MONTHS:
        raise InputError(f"months must be between 1 and {MAX_MONTHS}", field="months")
    return months
