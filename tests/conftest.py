"""Shared fixtures: the real public data, the bundled demo district, a small toy district, and
the databases (the same tests run on SQLite and on PostgreSQL + PostGIS).

Each backend is seeded once per session (migrations, the demo district as the active boundary
version, the demo roster); every test then starts from that state: SQLite from a copy of the
seeded file, PostgreSQL by emptying the work tables and restoring the roster."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import delete, insert, select, text

from dispatch import schema as t
from dispatch.catalogue import load_catalogue
from dispatch.compounds import Compounds
from dispatch.roster import load_roster
from dispatch.services import Service
from dispatch.storage import Database
from geo.boundaries import load_boundaries
from geo.crs import from_wgs84
from geo.demo import data_dir, default_source
from geo.resolver import Resolver

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The folder of real public data (``GRIDLINE_REALDATA`` or ``../shared/realdata``)."""
    folder = Path(os.environ.get("GRIDLINE_REALDATA") or PROJECT.parent / "shared" / "realdata")
    if not (folder / "SOURCES.md").is_file():
        pytest.fail(f"real data folder {folder} is missing: set GRIDLINE_REALDATA to the folder "
                    "holding SOURCES.md and the files it lists")
    return folder


@pytest.fixture(scope="session")
def demo():
    """The bundled demo district, loaded once."""
    return load_boundaries(default_source())


@pytest.fixture(scope="session")
def demo_resolver(demo):
    return Resolver(demo)


# A toy district near Lianhu, in degrees: two streets side by side; street A holds communities
# A1 (south) and A2 (north), street B holds B1, whose grids leave its north-east quarter bare.
TOY_STREETS = {"A": (108.90, 34.20, 108.92, 34.22), "B": (108.92, 34.20, 108.94, 34.22)}
TOY_COMMUNITIES = {"A1": ("A", (108.90, 34.20, 108.92, 34.21)),
                   "A2": ("A", (108.90, 34.21, 108.92, 34.22)),
                   "B1": ("B", (108.92, 34.20, 108.94, 34.22))}
TOY_GRIDS = {"A1w": (108.90, 34.20, 108.91, 34.21), "A1e": (108.91, 34.20, 108.92, 34.21),
             "A2w": (108.90, 34.21, 108.91, 34.22), "A2e": (108.91, 34.21, 108.92, 34.22),
             "B1w": (108.92, 34.20, 108.93, 34.22), "B1se": (108.93, 34.20, 108.94, 34.21)}
TOY_STATIONS = {"S1": (108.905, 34.205), "S2": (108.935, 34.215)}


def toy_layers():
    """The toy district as four GeoDataFrames without codes (names only)."""
    streets = gpd.GeoDataFrame({"name": [f"street {k}" for k in TOY_STREETS]},
                               geometry=[shapely.box(*b) for b in TOY_STREETS.values()],
                               crs="EPSG:4326")
    communities = gpd.GeoDataFrame(
        {"name": [f"community {k}" for k in TOY_COMMUNITIES]},
        geometry=[shapely.box(*b) for _, b in TOY_COMMUNITIES.values()], crs="EPSG:4326")
    grids = gpd.GeoDataFrame({"name": list(TOY_GRIDS)},
                             geometry=[shapely.box(*b) for b in TOY_GRIDS.values()],
                             crs="EPSG:4326")
    stations = gpd.GeoDataFrame({"station_id": list(TOY_STATIONS), "name": list(TOY_STATIONS)},
                                geometry=shapely.points(list(TOY_STATIONS.values())),
                                crs="EPSG:4326")
    return {"streets": streets, "communities": communities, "grids": grids,
            "stations": stations}


def write_toy_grids_in(system: str, path: Path) -> Path:
    """The toy grids as one GeoJSON file whose lon/lat are in ``system`` (e.g. GCJ-02, as Amap
    draws them; the file itself can only say EPSG:4326)."""
    frame = toy_layers()["grids"]
    shifted = shapely.transform(frame.geometry.values, lambda xy: np.column_stack(
        from_wgs84(xy[:, 0], xy[:, 1], system)))
    gpd.GeoDataFrame(frame.drop(columns="geometry"), geometry=shifted,
                     crs="EPSG:4326").to_file(path, driver="GeoJSON", engine="pyogrio")
    return path


def write_gpkg(path: Path, layers: dict) -> Path:
    for name, frame in layers.items():
        frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
    return path


@pytest.fixture
def toy_gpkg(tmp_path) -> Path:
    return write_gpkg(tmp_path / "toy.gpkg", toy_layers())


@pytest.fixture
def toy(toy_gpkg):
    return load_boundaries(toy_gpkg, district_code="610104")


BACKENDS = ("sqlite", "postgresql")
WORK_TABLES = ("outbox", "meetings", "summons", "whistles", "audit", "reports", "work_orders",
               "api_tokens", "users", "points_ledger", "points_accounts", "redemptions",
               "supermarket_items", "service_order_audit", "service_orders",
               "station_checkins")
ROSTER_TABLES = ("gridworker_grids", "gridworkers", "dispatchers")
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Xi'an


class Clock:
    """A settable clock for the service: tests move time on explicitly."""

    def __init__(self, start=T0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def pg_url():
    url = os.environ.get("GRIDLINE_TEST_DATABASE_URL",
                         "postgresql://postgres@127.0.0.1:5432/gridline_test")
    try:
        db = Database(url)
        with db.engine.connect() as connection:
            connection.execute(text("SELECT postgis_version()"))
        db.dispose()
    except Exception as exc:  # any connection failure means the suite cannot run as required
        pytest.fail(f"PostgreSQL with PostGIS is not reachable at {url} ({exc}); run the tests "
                    "through scripts/test.sh, which starts one")
    return url


def _seed(db: Database, catalogue, media):
    db.upgrade()
    service = Service(db, catalogue, media)
    service.seed_departments()
    service.import_boundaries(default_source(), activate=True, name="demo district")
    load_roster(service, data_dir() / "roster")
    Compounds(db).load()
    return service


@pytest.fixture(scope="session")
def seeded(tmp_path_factory, pg_url):
    """Per backend: how to get a freshly seeded database, and a shared resolver cache."""
    catalogue = load_catalogue()
    folder = tmp_path_factory.mktemp("seed")
    template = folder / "template.db"
    sqlite = Database(f"sqlite:///{template}")
    _seed(sqlite, catalogue, folder / "media")
    sqlite.dispose()  # closing the last connection folds the WAL back into the file
    assert not template.with_name("template.db-wal").exists()

    postgres = Database(pg_url)
    with postgres.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        t.metadata.drop_all(connection)
    _seed(postgres, catalogue, folder / "media")
    with postgres.engine.connect() as connection:
        roster = {name: [dict(r) for r in connection.execute(
            select(getattr(t, name))).mappings()] for name in ROSTER_TABLES}
    yield {"template": template, "postgres": postgres, "roster": roster,
           "catalogue": catalogue, "resolvers": {"sqlite": {}, "postgresql": {}}}
    postgres.dispose()


def _reset_postgres(db: Database, roster) -> None:
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            f"TRUNCATE {', '.join(WORK_TABLES)} RESTART IDENTITY CASCADE")
        # Only the seeded demo district (version 1) survives, active again.
        connection.exec_driver_sql("DELETE FROM boundary_features WHERE version_id > 1")
        connection.exec_driver_sql("DELETE FROM boundary_versions WHERE id > 1")
        connection.exec_driver_sql("UPDATE boundary_versions SET active = (id = 1)")
        connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('boundary_versions', "
                                   "'id'), 1)")
        connection.execute(delete(t.gridworker_grids))
        connection.execute(delete(t.gridworkers))
        connection.execute(delete(t.dispatchers))
        for name in ("gridworkers", "gridworker_grids", "dispatchers"):
            connection.execute(insert(getattr(t, name)), roster[name])
        for table in ("gridworkers", "dispatchers"):
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))")


@pytest.fixture(params=BACKENDS)
def database(request, seeded, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "gridline.db"
        shutil.copy(seeded["template"], path)
        db = Database(f"sqlite:///{path}")
        yield db
        db.dispose()
    else:
        _reset_postgres(seeded["postgres"], seeded["roster"])
        yield seeded["postgres"]


@pytest.fixture
def postgres(seeded):
    """The seeded PostgreSQL database alone, freshly reset."""
    _reset_postgres(seeded["postgres"], seeded["roster"])
    return seeded["postgres"]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(database, seeded, clock, tmp_path):
    """A service on a freshly seeded database; the seeded version's resolver is built once per
    backend (versions a test adds are its own)."""
    shared = seeded["resolvers"][database.engine.dialect.name]
    service = Service(database, seeded["catalogue"], tmp_path / "media", clock=clock,
                      resolvers=dict(shared))
    yield service
    if 1 in service._resolvers:
        shared[1] = service._resolvers[1]
