"""Storage: the database, its migrations, and a unit of work with one repository per aggregate.

One URL chooses the backend (``GRIDLINE_DATABASE_URL``): a SQLite file by default, or
PostgreSQL with PostGIS (``postgresql+psycopg://...``). SQLite runs in WAL mode with
``synchronous=FULL`` — a report acknowledged after commit survives a crash or power cut — and
takes its write lock at the start of each writing transaction (``BEGIN IMMEDIATE``), so
concurrent writers queue instead of failing half-way; reading transactions take none. Work
orders carry a version number: saving an order that someone else saved first raises
:class:`~dispatch.errors.Conflict`.
"""

from __future__ import annotations

import copy
import math
import os
import re
import threading
import time
from collections import namedtuple
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from alembic import command
from alembic.config import Config
from psycopg import RawCursor
from pyproj import Geod
from sqlalchemy import (
    Float,
    Integer,
    Numeric,
    String,
    and_,
    bindparam,
    column,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
    values,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

try:
    import fcntl
except ImportError:  # Windows: there only the threads of one process queue
    fcntl = None

from dispatch import schema as t
from dispatch.errors import Conflict, NotFound
from dispatch.model import (
    FINAL,
    AuditEntry,
    Meeting,
    OrderHead,
    State,
    Summons,
    Whistle,
    WorkOrder,
)
from dispatch.outbox import OutboxRepository
from dispatch.schema import UTCDateTime

MIGRATIONS = Path(__file__).with_name("migrations")
GEOD = Geod(ellps="WGS84")
_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")
_NUMBERED = re.compile(r"\$(\d+)")
METRES_PER_DEGREE_LAT = 110_574.0
SQLITE_BUSY_TIMEOUT_MS = 30_000
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
# PostgreSQL connections kept open: one for each request thread of a server process and its
# background threads. A connection beyond the pool is closed when given back, and opening a new
# one costs more than taking a report.
POOL_SIZE = 40
PING_AFTER_IDLE_SECONDS = 5.0


def known_id(value, what: str) -> int:
    """``value`` as an id that can exist; :class:`NotFound` for anything else."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise NotFound(f"no {what} #{value}")
    return value


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    """An engine plus what the backend needs: pragmas for SQLite, UTC sessions for PostgreSQL."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        if self.url.startswith("sqlite"):
            self._writers = WriterLock(make_url(self.url).database)
            self.engine = create_engine(self.url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self._writers = nullcontext()
            self.engine = create_engine(self.url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE,
                                        connect_args={"options": "-c timezone=utc"})
            event.listen(self.engine, "checkin", _postgres_checkin)
            event.listen(self.engine, "checkout", _postgres_checkout)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (``gridline db upgrade``)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if self.is_postgres:  # several processes may start at once: one migrates
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridline'))"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def unit_of_work(self):
        """A transaction with repositories; commits on success, rolls back on any error.

        On SQLite writers queue on a :class:`WriterLock` before taking the file's write lock:
        SQLite's own busy wait sleeps in growing steps, which would stretch the slowest requests
        to a second under load.
        """
        with self._writers, self.engine.begin() as connection:
            yield UnitOfWork(connection, self.is_postgres)

    @contextmanager
    def read(self):
        """A transaction that only reads: on SQLite it takes no write lock, so it never waits
        for writers (WAL readers see the last commit)."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(gridline_read_only=True)
            with connection.begin():
                yield UnitOfWork(connection, self.is_postgres)

    def dispose(self) -> None:
        self.engine.dispose()


class WriterLock:
    """Where SQLite writers queue: the threads of a process on a thread lock, and processes
    (server workers, the command line) on an exclusive lock of the file ``DATABASE-writer``;
    both wake the next writer as soon as the last one is done. The file is opened for each
    write, so a forked process never shares its lock with its parent."""

    def __init__(self, database: str | None):
        self._threads = threading.Lock()
        self._path = None if database in (None, "", ":memory:") or fcntl is None else (
            database + "-writer")
        self._fd = None

    def __enter__(self):
        self._threads.acquire()
        if self._path is not None:
            try:
                self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self.__exit__()
                raise
        return self

    def __exit__(self, *_):
        if self._fd is not None:
            os.close(self._fd)  # which releases the file lock
            self._fd = None
        self._threads.release()


def _postgres_checkin(_dbapi_connection, record) -> None:
    record.info["idle_since"] = time.monotonic()


def _postgres_checkout(dbapi_connection, record, _proxy) -> None:
    """Ping a connection that lay idle a while before handing it out; a dead one (the server
    restarted) is replaced. A connection in steady use is not pinged: under load that ping would
    be one more round trip for every request."""
    if time.monotonic() - record.info.get("idle_since", 0.0) < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:
        raise DisconnectionError("the database connection was lost") from exc


def _sqlite_begin(connection) -> None:
    read_only = connection.get_execution_options().get("gridline_read_only", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _sqlite_connect(dbapi_connection, _record):
    dbapi_connection.isolation_level = None  # transactions are begun explicitly, IMMEDIATE
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                   f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class Prepared:
    """A Core statement compiled once per database and run straight on the driver's cursor.

    Every report runs the same few short statements; for them SQLAlchemy's work around each
    execution (cache lookup, execution context, result objects) costs several times what the
    database does. The SQL, the parameters' conversions (aware UTC times, JSON, booleans) and
    the results' conversions are SQLAlchemy's own, worked out once. Rows come back as named
    tuples. An INSERT is compiled for the columns its first parameters name, and returns
    nothing unless it says what. On PostgreSQL the SQL is kept in the server's own numbered
    form ($1, $2 ...) and run on a raw cursor, so that the driver has nothing to parse, and
    the rows of an INSERT of many travel as one statement.
    """

    def __init__(self, statement, replan: bool = False):
        """``replan``: PostgreSQL plans the statement afresh each time it runs, for the
        values given, instead of keeping a plan (see :func:`_open_near`)."""
        plain_insert = statement.is_insert and not statement.exported_columns
        if plain_insert:
            statement = statement.inline()  # no RETURNING of new ids that nobody reads
        self.statement = statement
        self.replan = replan
        self._rows_in_one = plain_insert and statement.select is None  # INSERT ... VALUES
        self._forms: dict[tuple, tuple] = {}

    def _form(self, dialect, keys: tuple) -> tuple:
        form = self._forms.get((dialect.name, keys))
        if form is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
            rendered = {compiled.bind_names[b]: b for b in compiled.binds.values()}
            names = tuple(compiled.positiontup) if compiled.positional else tuple(rendered)
            # An INSERT's columns left out take their defaults (constants only).
            defaults = {c.key: c.default for c in getattr(compiled, "insert_prefetch", ())}
            binds = []  # (parameter name, or None for a value fixed in the statement; conversion)
            for name in names:
                bind = rendered[name]
                convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if bind.key in keys:
                    binds.append((bind.key, convert))
                    continue
                value = bind.effective_value
                if bind.key in defaults:
                    if not defaults[bind.key].is_scalar:
                        raise ValueError(f"{bind.key} must be given: its default is computed")
                    value = defaults[bind.key].arg
                binds.append((None, convert(value) if convert else value))
            columns = list(getattr(self.statement, "exported_columns", ()))
            # Numbers come from both drivers as Python numbers already.
            results = [None if isinstance(c.type, (Float, Numeric))
                       else c.type.dialect_impl(dialect).result_processor(dialect, None)
                       for c in columns]
            row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None
            sql, positional = compiled.string, compiled.positional
            if dialect.name == "postgresql":  # %(name)s → $n, %% → %
                number = {name: f"${i}" for i, name in enumerate(names, 1)}
                sql = _PYFORMAT.sub(lambda m: number[m[1]] if m[1] else "%", sql)
                positional = True
            form = (sql, names, binds, positional, row, results if any(results) else None)
            self._forms[(dialect.name, keys)] = form
        return form

    def _rows_form(self, dialect, keys: tuple, count: int) -> str:
        """The PostgreSQL INSERT of one row (numbered form) made an INSERT of ``count`` rows,
        their parameters one row after the other."""
        sql = self._forms.get((dialect.name, keys, count))
        if sql is None:
            one, names = self._form(dialect, keys)[:2]
            head, row = one.rsplit(" VALUES ", 1)
            width = len(names)
            sql = head + " VALUES " + ", ".join(
                _NUMBERED.sub(lambda m, i=i: f"${int(m[1]) + i * width}", row)
                for i in range(count))
            self._forms[(dialect.name, keys, count)] = sql
        return sql

    def _params(self, form, params: dict):
        _, names, binds, positional, _, _ = form
        values = [fixed if key is None else params[key] if fixed is None else fixed(params[key])
                  for key, fixed in binds]
        return values if positional else dict(zip(names, values, strict=True))

    def run(self, connection: Connection, params: dict | list[dict]):
        """Execute with one set of parameters (or a list of them, for an INSERT or UPDATE
        without RETURNING: on PostgreSQL an INSERT's rows then go as one statement); the
        driver's cursor, its rows not yet read. A list of one is sent as a plain statement
        (psycopg sends a list through its pipeline, which costs more than the row); an empty
        list runs nothing."""
        if isinstance(params, list) and len(params) < 2:
            if not params:
                return None
            params = params[0]
        many = isinstance(params, list)
        dialect = connection.dialect
        keys = tuple(params[0] if many else params)
        form = self._form(dialect, keys)
        postgres = dialect.name == "postgresql"
        if postgres:
            cursor = RawCursor(connection.connection.dbapi_connection)
        else:
            cursor = connection.connection.cursor()
        try:
            if many and postgres and self._rows_in_one:
                cursor.execute(self._rows_form(dialect, keys, len(params)),
                               [v for p in params for v in self._params(form, p)])
            elif many:
                cursor.executemany(form[0], [self._params(form, p) for p in params])
            elif self.replan and postgres:
                cursor.execute(form[0], self._params(form, params), prepare=False)
            else:
                cursor.execute(form[0], self._params(form, params))
        except dialect.loaded_dbapi.Error as exc:
            raise _sqlalchemy_error(connection, exc, form[0], params, cursor) from exc
        return cursor

    def rows(self, connection: Connection, params: dict) -> list:
        """The result rows, converted as SQLAlchemy would, as named tuples (a text statement's
        as the driver's tuples)."""
        return self.later(connection, params)()

    def later(self, connection: Connection, params: dict) -> Callable[[], list]:
        """:meth:`rows`, sent now and read when the function returned is called: in a
        PostgreSQL pipeline the statements sent in between then travel with it, instead of
        waiting for its answer first. (SQLite reads them at once.)"""
        cursor = self.run(connection, params)
        _, _, _, _, row, results = self._forms[(connection.dialect.name, tuple(params))]

        def read() -> list:
            fetched = cursor.fetchall()
            if row is None:  # a text statement: plain tuples, as the driver gives them
                return fetched
            if results is None:
                return [row._make(r) for r in fetched]
            return [row._make(v if p is None else p(v) for v, p in zip(r, results, strict=True))
                    for r in fetched]

        if connection.dialect.name == "postgresql":
            return read
        rows = read()
        return lambda: rows

    def scalar(self, connection: Connection, params: dict):
        """The first column of the one row the statement returns."""
        return self.rows(connection, params)[0][0]


def new_ids(connection: Connection, is_postgres: bool, table, count: int) -> list[int]:
    """Ids for ``count`` rows about to be inserted into ``table``, so that many rows and the
    rows that refer to them can be written in one statement each. PostgreSQL takes them from
    the table's sequence; on SQLite the writing transaction holds the write lock, so the ids
    after the largest are free."""
    return ids_to_come(connection, is_postgres, table, count)()


def ids_to_come(connection: Connection, is_postgres: bool, table,
                count: int) -> Callable[[], list[int]]:
    """:func:`new_ids`, read when the function returned is called. PostgreSQL is asked at
    once: in a pipeline the question then travels with the statements sent in between, instead
    of costing a round trip of its own. SQLite works them out when called (from the largest id
    then, so no row may be inserted into ``table`` in between)."""
    if count == 0:
        return list
    if is_postgres:
        rows = NEXT_IDS.later(connection, {"table": table.name, "n": count})
        return lambda: [r[0] for r in rows()]

    def after_largest():
        top = _largest_id(table).scalar(connection, {})
        return list(range(top + 1, top + 1 + count))

    return after_largest


NEXT_IDS = Prepared(text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                         "FROM generate_series(1, :n)"))


@lru_cache
def _largest_id(table) -> Prepared:
    return Prepared(select(func.coalesce(func.max(table.c.id), 0)))


@contextmanager
def pipeline(connection: Connection, is_postgres: bool):
    """On PostgreSQL, statements whose results are not read yet leave together (pipeline
    mode): a batch of statements then waits for a few round trips instead of one each. When
    the block ends, every result is in; a block inside another waits for every statement sent
    so far (for a row count, say). Only :class:`Prepared` statements run inside: SQLAlchemy
    would take a statement whose rows have not arrived yet for one without rows."""
    if not is_postgres:
        yield
        return
    try:
        with connection.connection.dbapi_connection.pipeline():
            yield
    except connection.dialect.loaded_dbapi.Error as exc:  # a statement's, known only now
        raise _sqlalchemy_error(connection, exc, None, None) from exc


def _sqlalchemy_error(connection: Connection, exc, statement, params, cursor=None):
    """The driver's error ``exc`` as SQLAlchemy would raise it (an ``IntegrityError`` for a
    unique key, say); a lost connection is dropped from the pool."""
    dialect = connection.dialect
    disconnected = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
    if disconnected:
        connection.invalidate(exc)
    return DBAPIError.instance(statement, params, exc, dialect.loaded_dbapi.Error,
                               connection_invalidated=disconnected)


class UnitOfWork:
    """Repositories sharing one open transaction."""

    def __init__(self, connection: Connection, is_postgres: bool):
        self.connection = connection
        self.is_postgres = is_postgres
        self.orders = OrderRepository(connection, is_postgres)
        self.outbox = OutboxRepository(connection)

    def execute(self, statement, *args):
        return self.connection.execute(statement, *args)

    def rows(self, prepared: Prepared, params: dict) -> list:
        return prepared.rows(self.connection, params)

    def later(self, prepared: Prepared, params: dict) -> Callable[[], list]:
        return prepared.later(self.connection, params)

    def lock(self, key: str) -> None:
        """Serialise writers on ``key`` (PostgreSQL advisory lock; SQLite locks the whole file)."""
        if self.is_postgres:
            LOCK.run(self.connection, {"k": key})

    def lock_all(self, keys) -> None:
        """:meth:`lock` on several keys in one statement, taken in sorted order so that two
        transactions locking overlapping sets queue instead of deadlocking."""
        keys = sorted(set(keys))
        if self.is_postgres and keys:
            LOCK_ALL.run(self.connection, {"keys": keys})

    def ids_to_come(self, table, count: int) -> Callable[[], list[int]]:
        return ids_to_come(self.connection, self.is_postgres, table, count)

    def pipeline(self):
        return pipeline(self.connection, self.is_postgres)


ORDER_FIELDS = ("category", "state", "version", "lon", "lat", "boundary_version", "grid_code",
                "community_code", "street_code", "department", "assignee_id", "queue",
                "created_at", "dispatched_at", "respond_due", "resolve_due", "accepted_at",
                "resolved_at", "closed_at", "respond_overdue", "resolve_overdue", "feedback",
                "repair_photo", "reject_reason", "duplicate_of", "reports")


# Statements built once: building one and working out its cache key costs more than running it.
_o = t.work_orders.c
LOCK = Prepared(text("SELECT pg_advisory_xact_lock(hashtext(:k))"))
LOCK_ALL = Prepared(text("SELECT pg_advisory_xact_lock(hashtext(k)) FROM "
                         "(SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS s"))
_select_order = select(t.work_orders).where(_o.id == bindparam("id"))
SELECT_ORDER = Prepared(_select_order)
SELECT_ORDER_LOCKED = Prepared(_select_order.with_for_update())
INSERT_ORDER = Prepared(insert(t.work_orders))
UPDATE_ORDER = Prepared(update(t.work_orders).where(_o.id == bindparam("_id"),
                                                    _o.version == bindparam("_version")))
INSERT_AUDIT = Prepared(insert(t.audit))
INSERT_OUTBOX = Prepared(insert(t.outbox))
# The final states written into the SQL: a list of parameters would be rendered anew each time.
_still_open = _o.state.not_in([literal_column(f"'{s}'") for s in sorted(FINAL)])


def numbered(name: str, count: int, type_) -> list:
    """``count`` parameters ``name0``, ``name1`` ...: a list of values for an IN that is
    compiled once per length (SQLAlchemy's expanding IN is compiled anew for each execution,
    and cannot be run as a :class:`Prepared`)."""
    return [bindparam(f"{name}{i}", type_=type_) for i in range(count)]


def numbered_values(name: str, values) -> dict:
    """The parameters of :func:`numbered` for ``values``."""
    return {f"{name}{i}": value for i, value in enumerate(values)}


@lru_cache(maxsize=256)
def _open_near(count: int, is_postgres: bool) -> Prepared:
    """Open orders in the boxes of ``count`` places, their rows locked in id order (see
    :meth:`OrderRepository.lock`): one statement joining a list of the places (numbered
    parameters, so that it is compiled once per count) to work_orders. PostgreSQL plans it
    afresh each time: a plan kept from when work_orders was small would go on scanning the
    whole table as it grows, until the table's statistics are next gathered."""
    q = values(*(column(name, kind) for name, kind in _BOX), name="q").data(
        [tuple(bindparam(f"{name}{i}", type_=kind) for name, kind in _BOX)
         for i in range(count)]).cte("q")
    if is_postgres:
        inside = literal_column("work_orders.geom").op("&&")(
            func.ST_MakeEnvelope(q.c.west, q.c.south, q.c.east, q.c.north, 4326))
    else:
        inside = and_(_o.lon.between(q.c.west, q.c.east), _o.lat.between(q.c.south, q.c.north))
    return Prepared(select(q.c.i, _o.id, _o.lon, _o.lat, _o.state, _o.version, _o.reports)
                    .select_from(q).join(t.work_orders, and_(
                        _o.category == q.c.category, _o.created_at >= q.c.since, _still_open,
                        inside)).order_by(_o.id, q.c.i).with_for_update(of=t.work_orders),
                    replan=is_postgres)


_BOX = (("i", Integer()), ("category", String()), ("since", UTCDateTime()), ("west", Float()),
        ("south", Float()), ("east", Float()), ("north", Float()))


def search_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees: a box holding every point within ``radius_m``
    metres of (lon, lat), a little larger than needed (it takes a degree at its shortest)."""
    dlat = radius_m / METRES_PER_DEGREE_LAT
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def distances_m(lon, lat, lons, lats) -> np.ndarray:
    """Geodesic distances in metres (WGS84 ellipsoid) from one point (or each of as many
    points) to many."""
    lon, lat, lons, lats = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                                 for v in (lon, lat, lons, lats)))
    _, _, dist = GEOD.inv(lon, lat, lons, lats)
    return dist


def _order_values(order: WorkOrder) -> dict:
    values = {f: getattr(order, f) for f in ORDER_FIELDS}
    values["state"] = str(order.state)
    return values


class OrderRepository:
    """Load and save :class:`WorkOrder` aggregates (with whistles, meetings, audit, events)."""

    def __init__(self, connection: Connection, is_postgres: bool):
        self.c = connection
        self.is_postgres = is_postgres
        self._loaded: dict[int, tuple] = {}  # whistles and meetings as loaded, by order id

    def get(self, order_id, lock: bool = False) -> WorkOrder:
        """The whole order. With ``lock`` its row stays locked until the transaction ends: the
        change then holds every other writer off between this read and its save, and waits
        for one in progress instead of failing on its save (on SQLite the writer lock already
        does both)."""
        return self._load(self._row(order_id, SELECT_ORDER_LOCKED if lock else SELECT_ORDER))

    def lock(self, order_ids) -> None:
        """Lock the rows of several orders until the transaction ends, lowest id first: every
        writer that changes several orders takes them in that order (intake locks the orders
        near its reports so), so that no two wait for each other in a circle. (On SQLite the
        writer lock does it.)"""
        if self.is_postgres:
            self.c.execute(select(_o.id).where(_o.id.in_(sorted(set(order_ids))))
                           .order_by(_o.id).with_for_update())

    def _row(self, order_id, statement=SELECT_ORDER):
        known_id(order_id, "work order")
        rows = statement.rows(self.c, {"id": order_id})
        if not rows:
            raise NotFound(f"no work order #{order_id}")
        return rows[0]

    def add(self, order: WorkOrder) -> WorkOrder:
        return self.add_many([order])[0]

    def add_many(self, orders: list[WorkOrder]) -> list[WorkOrder]:
        """Insert new orders, one statement for all of them and one for each kind of child."""
        if not orders:
            return orders
        ids = new_ids(self.c, self.is_postgres, t.work_orders, len(orders))
        for order, order_id in zip(orders, ids, strict=True):
            order.id = order_id
            order.version = 1
        INSERT_ORDER.run(self.c, [{**_order_values(order), "id": order.id} for order in orders])
        self._write_children(orders)
        return orders

    def save(self, order: WorkOrder) -> WorkOrder:
        return self.save_many([order])[0]

    def save_many(self, orders: list[WorkOrder]) -> list[WorkOrder]:
        """Write changed orders; :class:`Conflict` if any one's version moved on meanwhile."""
        if not orders:
            return orders
        self._update(orders, [_order_values(order) for order in orders])
        self._write_children(orders)
        return orders

    def save_heads(self, heads: list[OrderHead]) -> Callable[[], None]:
        """Send the report counts of "me too" orders, and their audit entries; returns their
        version check (:class:`Conflict` if any one's version moved on), to be called once the
        pipeline they travel in has ended, when the row count is known."""
        if not heads:
            return lambda: None
        check = self._send_update(heads, [{"reports": head.reports} for head in heads])
        self._write_audit(heads)
        return check

    def _update(self, orders: list[WorkOrder | OrderHead], values: list[dict]) -> None:
        """Write ``values`` into each order's row, one version on; :class:`Conflict` if any
        one's version moved on meanwhile."""
        with pipeline(self.c, self.is_postgres):  # the row count, now
            check = self._send_update(orders, values)
        check()

    def _send_update(self, orders: list[WorkOrder | OrderHead],
                     values: list[dict]) -> Callable[[], None]:
        """:meth:`_update`, its check returned for when the row count is in."""
        done = UPDATE_ORDER.run(self.c, [
            {**changed, "version": order.version + 1, "_id": order.id,
             "_version": order.version}
            for order, changed in zip(orders, values, strict=True)])

        def check():
            if done.rowcount != len(orders):
                ids = ", ".join(f"#{order.id}" for order in orders)
                raise Conflict(f"work order {ids} was changed by someone else; reload it and "
                               "try again")
            for order in orders:
                order.version += 1

        return check

    def audit(self, order_id) -> list[AuditEntry]:
        rows = self.c.execute(select(t.audit).where(t.audit.c.work_order_id == order_id)
                              .order_by(t.audit.c.id))
        return [AuditEntry(r.at, r.actor, r.role, r.action, r.from_state, r.to_state, r.note)
                for r in rows]

    def open_near(self, places) -> list[list[tuple[OrderHead, float]]]:
        """For each place ``(category, lon, lat, radius_m, since)``: the open orders of that
        category created since ``since`` within ``radius_m`` metres, as (head, distance in m),
        nearest first; an order near several places is one head. One statement for all
        places: PostgreSQL finds the candidates in a box with the GiST index of ``geom``,
        SQLite with its (category, lon, lat) index; distances are geodesic. The candidates'
        rows stay locked until the transaction ends, so that what is read of them holds when
        a "me too" is saved (on SQLite the writer lock does that)."""
        if not places:
            return []
        params = {}
        for i, (category, lon, lat, radius_m, since) in enumerate(places):
            west, south, east, north = search_box(lon, lat, radius_m)
            params.update({f"i{i}": i, f"category{i}": category, f"since{i}": since,
                           f"west{i}": west, f"south{i}": south, f"east{i}": east,
                           f"north{i}": north})
        rows = _open_near(len(places), self.is_postgres).rows(self.c, params)
        found: list[list[tuple[OrderHead, float]]] = [[] for _ in places]
        if rows:  # every candidate's distance in one call
            heads = {r.id: OrderHead(r.id, State(r.state), r.version, r.reports) for r in rows}
            dist = distances_m([places[r.i][1] for r in rows], [places[r.i][2] for r in rows],
                               [r.lon for r in rows], [r.lat for r in rows])
            for r, d in zip(rows, dist.tolist(), strict=True):
                if d <= places[r.i][3]:
                    found[r.i].append((heads[r.id], d))
        for candidates in found:
            candidates.sort(key=lambda pair: pair[1])
        return found

    def search(self, *, bbox=None, states=None, category=None, street_code=None,
               grid_code=None, since=None, until=None, limit=100, offset=0):
        """Ids of matching orders, newest first, and how many match in all.

        ``bbox`` is (west, south, east, north) in WGS84; on PostgreSQL it is answered by the
        GiST index of the generated ``geom`` column.
        """
        c = t.work_orders.c
        where = []
        if bbox is not None:
            west, south, east, north = bbox
            if self.is_postgres:
                where.append(literal_column("work_orders.geom").op("&&")(
                    func.ST_MakeEnvelope(west, south, east, north, 4326)))
            else:
                where += [c.lon.between(west, east), c.lat.between(south, north)]
        if states:
            where.append(c.state.in_([str(s) for s in states]))
        for field, value in ((c.category, category), (c.street_code, street_code),
                             (c.grid_code, grid_code)):
            if value is not None:
                where.append(field == value)
        if since is not None:
            where.append(c.created_at >= since)
        if until is not None:
            where.append(c.created_at < until)
        total = self.c.execute(select(func.count()).select_from(t.work_orders).where(
            *where)).scalar_one()
        ids = self.c.execute(select(c.id).where(*where).order_by(c.created_at.desc(),
                                                                  c.id.desc())
                             .limit(limit).offset(offset)).scalars().all()
        return list(ids), total

    def due_for_sweep(self, now: datetime) -> list[int]:
        """Ids of orders with a deadline passed and not yet marked (candidates for the sweep)."""
        c = t.work_orders.c
        running = c.state.not_in([str(s) for s in FINAL | {State.RESOLVED, State.VERIFIED}])
        late = ((c.state == str(State.DISPATCHED)) & ~c.respond_overdue & (c.respond_due < now)) | (
            running & ~c.resolve_overdue & (c.resolve_due < now))
        summoned = select(t.summons.c.work_order_id).where(
            t.summons.c.reported_at.is_(None), ~t.summons.c.overdue, t.summons.c.due_at < now)
        rows = self.c.execute(select(c.id).where(late | c.id.in_(summoned)).order_by(c.id))
        return [r.id for r in rows]

    def placed_elsewhere(self, boundary_version: int) -> list:
        """Open orders placed under another boundary version than ``boundary_version``: id,
        lon, lat, that version and their grid, community and street codes."""
        c = t.work_orders.c
        return self.c.execute(select(
            c.id, c.lon, c.lat, c.boundary_version, c.grid_code, c.community_code,
            c.street_code).where(
            c.boundary_version != boundary_version, c.state.not_in([str(s) for s in FINAL]))
            .order_by(c.id)).all()

    def keep_place(self, order_ids, boundary_version: int) -> None:
        """Open orders ``order_ids`` lie in the same grid under ``boundary_version``: only the
        version they are placed under changes (neither their trail nor their version)."""
        c = t.work_orders.c
        for chunk in range(0, len(order_ids), 10000):
            self.c.execute(update(t.work_orders).where(
                c.id.in_(order_ids[chunk:chunk + 10000]), c.state.not_in([str(s) for s in FINAL]))
                .values(boundary_version=boundary_version))

    # --- mapping --------------------------------------------------------------------------

    def _order(self, row) -> WorkOrder:
        data = {f: getattr(row, f) for f in ORDER_FIELDS}
        data["state"] = State(data["state"])
        return WorkOrder(id=row.id, **data)

    def _load(self, row) -> WorkOrder:
        order = self._order(row)
        parts: dict[int, list[Summons]] = {}
        for s in self.c.execute(select(t.summons).where(t.summons.c.work_order_id == row.id)
                                .order_by(t.summons.c.whistle, t.summons.c.department)):
            parts.setdefault(s.whistle, []).append(
                Summons(s.department, s.due_at, s.reported_at, s.done_at, s.note, s.overdue))
        order.whistles = [
            Whistle(w.number, w.blown_by, w.role, w.blown_at, w.reason, parts.get(w.number, []),
                    w.ended_at)
            for w in self.c.execute(select(t.whistles).where(t.whistles.c.work_order_id == row.id)
                                    .order_by(t.whistles.c.number))]
        order.meetings = [
            Meeting(m.number, m.held_at, m.participants, m.decisions, m.tasks)
            for m in self.c.execute(select(t.meetings).where(t.meetings.c.work_order_id == row.id)
                                    .order_by(t.meetings.c.number))]
        self._loaded[order.id] = copy.deepcopy((order.whistles, order.meetings))
        return order

    def _write_children(self, orders: list[WorkOrder]) -> None:
        """Audit entries and events are appended, all orders' in one statement each;
        whistles and meetings, when they changed, are rewritten whole (safe: the version check
        above admits one writer per order)."""
        self._write_audit(orders)
        INSERT_OUTBOX.run(self.c, [
            {"event": e.name, "work_order_id": order.id, "created_at": e.at,
             "next_attempt_at": e.at, "attempts": 0,
             "payload": {"event": e.name, "work_order_id": order.id, "at": e.at.isoformat(),
                         **e.data}}
            for order in orders for e in order.events])
        for order in orders:
            order.events.clear()
            self._write_parts(order)

    def _write_audit(self, orders: list[WorkOrder | OrderHead]) -> None:
        INSERT_AUDIT.run(self.c, [
            {"work_order_id": order.id, "at": a.at, "actor": a.actor, "role": a.role,
             "action": a.action, "from_state": a.from_state and str(a.from_state),
             "to_state": a.to_state and str(a.to_state), "note": a.note}
            for order in orders for a in order.new_audit])
        for order in orders:
            order.new_audit.clear()

    def _write_parts(self, order: WorkOrder) -> None:
        before = self._loaded.get(order.id, ([], []))
        if before == (order.whistles, order.meetings):
            return
        for table in (t.summons, t.whistles, t.meetings):
            self.c.execute(delete(table).where(table.c.work_order_id == order.id))
        self._loaded[order.id] = copy.deepcopy((order.whistles, order.meetings))
        if order.whistles:
            self.c.execute(insert(t.whistles), [
                {"work_order_id": order.id, "number": w.number, "blown_by": w.blown_by,
                 "role": w.role, "blown_at": w.blown_at, "reason": w.reason,
                 "ended_at": w.ended_at} for w in order.whistles])
            self.c.execute(insert(t.summons), [
                {"work_order_id": order.id, "whistle": w.number, "department": s.department,
                 "due_at": s.due_at, "reported_at": s.reported_at, "done_at": s.done_at,
                 "note": s.note, "overdue": s.overdue} for w in order.whistles for s in w.summons])
        if order.meetings:
            self.c.execute(insert(t.meetings), [
                {"work_order_id": order.id, "number": m.number, "held_at": m.held_at,
                 "participants": m.participants, "decisions": m.decisions, "tasks": m.tasks}
                for m in order.meetings])
