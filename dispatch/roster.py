"""Rosters: gridworkers, grid leaders and street dispatchers, as CSV files.

``gridworkers.csv``: name, phone, role (gridworker, grid_leader, mobile), on_duty (1/0) and
grid_codes (separated by ``;``). ``dispatchers.csv``: name, phone, street_code. The demo
roster is drawn deterministically from a boundary set: one gridworker per grid (every tenth off
duty, so the fallback to the grid leader shows), one grid leader per community over all its
grids, and two dispatchers per street.
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from dispatch import schema as t
from dispatch.demo_participation import seed_participation
from dispatch.errors import InputError
from geo.demo import default_source

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国"
OFF_DUTY_EVERY = 10


def _person(n: int) -> tuple[str, str]:
    name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)] + (
        GIVEN[(n * 13 + 3) % len(GIVEN)] if n % 3 else "")
    return name, f"138{(n * 7919 + 10000000) % 100000000:08d}"


def write_demo_roster(bset, folder) -> list[Path]:
    """Write the demo roster for ``bset`` into ``folder``; returns the two files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows, n = [], 0
    for i, code in enumerate(bset.grids["code"]):
        n += 1
        name, phone = _person(n)
        rows.append({"name": name, "phone": phone, "role": "gridworker",
                     "on_duty": 0 if i % OFF_DUTY_EVERY == OFF_DUTY_EVERY - 1 else 1,
                     "grid_codes": code})
    for _, grids in bset.grids.groupby("community_code")["code"]:
        n += 1
        name, phone = _person(n)
        rows.append({"name": name, "phone": phone, "role": "grid_leader", "on_duty": 1,
                     "grid_codes": ";".join(grids)})
    gridworkers = folder / "gridworkers.csv"
    _write(gridworkers, rows)
    dispatchers = []
    for street in bset.streets["code"]:
        for _ in range(2):
            n += 1
            name, phone = _person(n)
            dispatchers.append({"name": name, "phone": phone, "street_code": street})
    _write(folder / "dispatchers.csv", dispatchers)
    return [gridworkers, folder / "dispatchers.csv"]


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def load_roster(service, folder) -> dict:
    """Add every person of a roster folder through the service layer; returns counts."""
    folder = Path(folder)
    counts = {"gridworkers": 0, "dispatchers": 0}
    for line, row in _rows(folder / "gridworkers.csv"):
        try:
            service.add_gridworker(row["name"], row["phone"], row["role"],
                                   [g for g in row["grid_codes"].split(";") if g],
                                   on_duty=row.get("on_duty", "1") not in ("0", "false", ""))
        except (KeyError, InputError) as exc:
            raise InputError(f"gridworkers.csv line {line}: {exc}", field="roster") from exc
        counts["gridworkers"] += 1
    for line, row in _rows(folder / "dispatchers.csv"):
        try:
            service.add_dispatcher(row["name"], row["phone"], row["street_code"])
        except (KeyError, InputError) as exc:
            raise InputError(f"dispatchers.csv line {line}: {exc}", field="roster") from exc
        counts["dispatchers"] += 1
    return counts


def _rows(path: Path):
    if not path.exists():
        raise InputError(f"roster file {path} does not exist", field="roster")
    with path.open(newline="", encoding="utf-8") as f:
        yield from enumerate(csv.DictReader(f), start=2)


def seed_demo(service, roster_folder) -> dict | None:
    """Migrate, then — if no boundary version is active yet — import and activate the demo
    district, load its roster, compounds and supermarket shelves. Returns what was done, or
    None if there was nothing to do."""
    service.db.upgrade()
    service.seed_departments()
    if service.has_active_version():
        return None
    result = service.import_boundaries(default_source(), activate=True, name="demo district")
    return {"version": result["version"], **load_roster(service, roster_folder),
            **seed_participation(service)}


def seed_report_history(service, count: int, days: float = 30, seed: int = 11,
                        category: str = "garbage") -> int:
    """Add ``count`` archived reports spread over the active district's grids and the last
    ``days`` days: history for the hotspot and workload maps of a demo or a load test.

    They are resolved in one vectorised pass and written in bulk, as an archive import would be:
    outcome ``archived``, no work order behind them.
    """
    version, resolver = service.active_resolver()
    grids = resolver.boundaries.grids
    rng = np.random.default_rng(seed)
    points = grids.sample_points(1, rng=rng).explode(index_parts=False)
    picks = rng.integers(0, len(points), count)
    lon = points.x.to_numpy()[picks] + rng.normal(0, 0.0005, count)
    lat = points.y.to_numpy()[picks] + rng.normal(0, 0.0005, count)
    where = resolver.resolve_many(lon, lat)
    now = service.clock()
    ages = rng.random(count) * days
    rows = [{"outcome": "archived", "category": category, "description": "", "lon": x,
             "lat": y, "original_x": x, "original_y": y, "original_crs": "wgs84",
             "boundary_version": version, "resolve_status": status, "grid_code": grid,
             "community_code": community, "street_code": street, "reporter_role": "resident",
             "created_at": now - timedelta(days=float(age))}
            for x, y, status, grid, community, street, age in zip(
                lon, lat, where["status"], where["grid_code"], where["community_code"],
                where["street_code"], ages, strict=True)]
    with service.db.unit_of_work() as uow:
        for start in range(0, count, 20_000):
            uow.execute(insert(t.reports), rows[start:start + 20_000])
    return count
