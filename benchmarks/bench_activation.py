"""Activating a redrawn street while many work orders are open, on SQLite and on PostgreSQL.

For each database: a fresh demo district (``seed_demo``), ``--orders`` reports sent to the
grids of one street (six categories, so most open their own work order), then a draft with all
of that street's communities partitioned anew, whose activation is timed: the open orders are
placed in the new grids, handed on where nobody took them yet, and the grid assignments follow.

Side by side, in the same run and on the same scenario built again from scratch: the same moves
made one order per transaction, as a dispatcher transferring each order would make them
(``dispatch.regrid.MOVE_BATCH = 1``). Both must move the same orders. The last line is
``activation_s=<worst> ratio_vs_one_by_one=<x> identical=<true|false>``, the ratio being the
reference's time over ours (the smallest over the databases).

    python benchmarks/bench_activation.py [--orders 3000] [--database gridline_bench_activation]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from sqlalchemy import create_engine, text

import dispatch.regrid
from dispatch.roster import seed_demo
from dispatch.services import Actor
from dispatch.settings import Settings, make_service
from geo.demo import data_dir

PLANNER = Actor("benchmark", "planner")
CATEGORIES = ("garbage", "noise", "streetlight", "water_leak", "illegal_parking", "road_collapse")


def fresh_postgres(name: str) -> str:
    """A new, empty PostGIS database ``name`` on the server of GRIDLINE_TEST_DATABASE_URL."""
    server = os.environ.get("GRIDLINE_TEST_DATABASE_URL",
                            "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = create_engine(server.replace("postgresql://", "postgresql+psycopg://", 1)
                          .rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = server.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as c:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    return url


def scenario(url: str, orders: int, batch: int) -> dict:
    """Seed, send the reports, partition the street, and time its activation."""
    with tempfile.TemporaryDirectory() as instance:
        service = make_service(Settings.from_config({"DATABASE_URL": url,
                                                     "INSTANCE": instance}))
        try:
            seed_demo(service, data_dir() / "roster")
            grids = service.active_resolver()[1].boundaries.grids
            street = grids["street_code"].iloc[0]
            mine = grids[grids["street_code"] == street]
            rng = np.random.default_rng(7)
            points = mine.sample_points(orders // len(mine) + 1, rng=rng).explode(
                index_parts=False)[:orders]
            for i, (x, y) in enumerate(zip(points.x, points.y, strict=True)):
                service.submit_report({"category": CATEGORIES[i % len(CATEGORIES)],
                                       "description": "bench", "lon": float(x),
                                       "lat": float(y)})
            draft = service.partition_draft(sorted(set(mine["community_code"])), PLANNER,
                                            target=300)
            dispatch.regrid.MOVE_BATCH, kept = batch, dispatch.regrid.MOVE_BATCH
            try:
                started = time.perf_counter()
                done = service.activate_version(draft["version"])
                seconds = time.perf_counter() - started
            finally:
                dispatch.regrid.MOVE_BATCH = kept
            return {"seconds": seconds, **done["orders"],
                    "followed": len(done["grids_followed"]),
                    "unplaced": len(done["grids_unplaced"])}
        finally:
            service.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--database", default="gridline_bench_activation")
    args = parser.parse_args()
    results = []
    for name in ("sqlite", "postgresql"):
        runs = {}
        for label, batch in (("ours", dispatch.regrid.MOVE_BATCH), ("one by one", 1)):
            with tempfile.TemporaryDirectory() as folder:
                url = (f"sqlite:///{folder}/bench.db" if name == "sqlite"
                       else fresh_postgres(args.database))
                runs[label] = scenario(url, args.orders, batch)
            r = runs[label]
            print(f"{name:10} {label:10} {r['seconds']:6.2f} s  open {r['checked']:5d}  "
                  f"moved {r['moved']:5d}  handed on {r['rerouted']:5d}  grid assignments "
                  f"followed {r['followed']}, unplaced {r['unplaced']}")
        ours, reference = runs["ours"], runs["one by one"]
        same = all(ours[k] == reference[k] for k in ("checked", "moved", "rerouted"))
        print(f"{name:10} one by one / ours = {reference['seconds'] / ours['seconds']:.2f}")
        results.append((ours["seconds"], reference["seconds"] / ours["seconds"], same))
    print(f"activation_s={max(r[0] for r in results):.2f} "
          f"ratio_vs_one_by_one={min(r[1] for r in results):.2f} "
          f"identical={str(all(r[2] for r in results)).lower()}")


if __name__ == "__main__":
    main()
