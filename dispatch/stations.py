"""Service stations (红色驿站): opening hours, services, "open stations near me", check-ins.

A station's services come with the boundary set (the stations layer's ``services``, separated
by ``;``); its opening hours come from a TOML file (``station_id = "08:00-20:00"`` in the
district's local time, ``"00:00-24:00"`` for always open; a station not listed is taken as never
open). The demo district's hours are drawn deterministically and shipped as
``data/participation/station_hours.toml``.

Distances are geodesic metres on the WGS84 ellipsoid, computed for all stations at once.
"""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import numpy as np
from pyproj import Geod
from sqlalchemy import func, insert, select

from dispatch import schema as t
from dispatch.config import read_toml
from dispatch.errors import InputError
from dispatch.services import _crs, _number
from geo.crs import to_wgs84
from geo.demo import data_dir
from geo.resolver import point_problem

GEOD = Geod(ellps="WGS84")
SEED = 610104
CHECKIN_WINDOW = timedelta(minutes=30)  # one check-in per rider and station in this time
MAX_RADIUS_M = 20_000
MOBILE_ROLES = ("rider", "courier")
DEMO_HOURS = ("07:00-19:00", "08:00-20:00", "08:30-21:00", "09:00-22:00", "00:00-24:00")


def demo_station_hours_file() -> Path:
    return data_dir() / "participation" / "station_hours.toml"


def write_demo_station_hours(bset, path=None, seed: int = SEED) -> Path:
    """Write opening hours for every station of ``bset`` (one in five always open)."""
    rng = np.random.default_rng(seed)
    ids = sorted(bset.layer("stations")["station_id"])
    picks = rng.integers(0, len(DEMO_HOURS), len(ids))
    path = Path(path or demo_station_hours_file())
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Opening hours of the demo district's service stations, local time.",
             *(f'{sid} = "{DEMO_HOURS[p]}"' for sid, p in zip(ids, picks, strict=True))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_station_hours(path=None) -> dict[str, tuple[time, time | None]]:
    """Opening hours by station id: (opens, closes), closes None meaning midnight."""
    path = Path(path or demo_station_hours_file())
    data = read_toml(path, "station hours", "station_hours")
    return {sid: _hours(sid, value) for sid, value in data.items()}


def _hours(sid: str, value) -> tuple[time, time | None]:
    try:
        opens, closes = str(value).split("-")
        start = time.fromisoformat(opens)
        end = None if closes == "24:00" else time.fromisoformat(closes)
    except ValueError:
        raise InputError(f"station hours {sid}: write them as HH:MM-HH:MM, not {value!r}",
                         field="station_hours") from None
    if end is not None and end <= start:
        raise InputError(f"station hours {sid}: closing comes before opening",
                         field="station_hours")
    return start, end


def _text_hours(hours: tuple[time, time | None] | None) -> str | None:
    if hours is None:
        return None
    return f"{hours[0]:%H:%M}-{'24:00' if hours[1] is None else format(hours[1], '%H:%M')}"


class Stations:
    """The active district's stations with their hours, and their check-ins."""

    def __init__(self, service, hours=None):
        self.service = service
        self.hours = load_station_hours() if hours is None else hours

    def table(self) -> list[dict]:
        """Every station: id, name, position, services, hours and whether it is open now."""
        frame = self._frame()
        is_open = self._open(frame["station_id"])
        return [{"station_id": sid, "name": name, "lon": float(p.x), "lat": float(p.y),
                 "services": _services(services), "hours": _text_hours(self.hours.get(sid)),
                 "open": bool(o)}
                for sid, name, p, services, o in zip(
                    frame["station_id"], frame["name"], frame.geometry, frame["services"],
                    is_open, strict=True)]

    def near(self, lon, lat, radius_m=1000, services=(), open_only=True, crs=None) -> list:
        """Stations within ``radius_m`` metres of the point offering every one of
        ``services`` (and open now, unless ``open_only`` is false), nearest first."""
        x, y = _number(lon, "lon"), _number(lat, "lat")
        problem = point_problem(x, y, _crs(crs))
        if problem:
            raise InputError(problem, field="lat" if problem.startswith("latitude") else "lon")
        radius = _number(radius_m, "radius_m")
        if not 0 < radius <= MAX_RADIUS_M:
            raise InputError(f"radius_m must be from 1 to {MAX_RADIUS_M} metres",
                             field="radius_m")
        wanted = set(services or ())
        stations = self.table()
        known = {s for station in stations for s in station["services"]}
        if not wanted <= known:
            raise InputError(f"unknown services {', '.join(sorted(wanted - known))}; known: "
                             f"{', '.join(sorted(known))}", field="services")
        x, y = (float(v) for v in to_wgs84(x, y, _crs(crs)))
        lons = np.array([s["lon"] for s in stations])
        lats = np.array([s["lat"] for s in stations])
        _, _, distance = GEOD.inv(np.full(len(lons), x), np.full(len(lons), y), lons, lats)
        found = [{**s, "distance_m": round(float(d), 1)}
                 for s, d in zip(stations, distance, strict=True)
                 if d <= radius and wanted <= set(s["services"]) and (s["open"] or not open_only)]
        return sorted(found, key=lambda s: s["distance_m"])

    def check_in(self, station_id, user_id: int) -> dict:
        """A rider checks in at a station; checking in again at the same station within
        :data:`CHECKIN_WINDOW` answers the first check-in (``repeat``) and counts nothing."""
        if station_id not in set(self._frame()["station_id"]):
            raise InputError(f"no station {station_id!r} in the district", field="station_id")
        now = self.service.clock()
        c = t.station_checkins.c
        with self.service.db.unit_of_work() as uow:
            uow.lock(f"checkin:{station_id}:{user_id}")
            earlier = uow.execute(select(c.id, c.at).where(
                c.station_id == station_id, c.user_id == user_id,
                c.at > now - CHECKIN_WINDOW).order_by(c.id.desc())).first()
            if earlier is not None:
                return {"id": earlier.id, "station_id": station_id, "user_id": user_id,
                        "at": earlier.at.isoformat(), "repeat": True}
            cid = uow.execute(insert(t.station_checkins).returning(c.id), {
                "station_id": station_id, "user_id": user_id, "at": now}).scalar_one()
        return {"id": cid, "station_id": station_id, "user_id": user_id, "at": now.isoformat(),
                "repeat": False}

    def counts(self) -> list[dict]:
        """Per station: check-ins, and reports sent by riders and couriers (mobile
        gridworkers) that the station was nearest to."""
        c, r = t.station_checkins.c, t.reports.c
        with self.service.db.read() as uow:
            checkins = dict(uow.execute(select(c.station_id, func.count()).group_by(
                c.station_id)).all())
            reports = dict(uow.execute(select(r.station_id, func.count()).where(
                r.reporter_role.in_(MOBILE_ROLES), r.station_id.is_not(None)).group_by(
                r.station_id)).all())
        return [{"station_id": sid, "name": name, "checkins": checkins.get(sid, 0),
                 "mobile_reports": reports.get(sid, 0)}
                for sid, name in zip(self._frame()["station_id"], self._frame()["name"],
                                     strict=True)]

    def _frame(self):
        return self.service.active_resolver()[1].boundaries.layer("stations")

    def _open(self, ids) -> list[bool]:
        now = self.service.local_time(self.service.clock()).time()
        answers = []
        for sid in ids:
            hours = self.hours.get(sid)
            answers.append(hours is not None and hours[0] <= now and (
                hours[1] is None or now < hours[1]))
        return answers


def _services(value) -> list[str]:
    return sorted(s for s in str(value or "").split(";") if s)
