"""The database tables, as SQLAlchemy Core metadata (the migrations create them).

Times are stored in UTC. Points are stored as WGS84 ``lon``/``lat`` on every database; on
PostgreSQL the migrations add a generated PostGIS geometry column with a GiST index (declared
below as :data:`POSTGIS_COLUMNS`), used for the duplicate check's "near this point" and for
bounding-box queries.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData()

# PostgreSQL only, made in SQL by migration 0002 (0001's geography columns were dropped by
# 0008): each table's generated point column, computed from lon/lat, with a GiST index
# ix_<table>_<column>. They are not columns of the tables below, which are the same on every
# database; the queries that need them name them. The extension owns POSTGIS_TABLES.
POSTGIS_COLUMNS = {"work_orders": ("geom",), "reports": ("geom",)}
POSTGIS_INDEXES = frozenset(f"ix_{table}_{column}" for table, columns in POSTGIS_COLUMNS.items()
                            for column in columns)
POSTGIS_TABLES = frozenset({"spatial_ref_sys"})


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, whatever the database keeps (SQLite keeps naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc(name, **kwargs):
    return Column(name, UTCDateTime(), **kwargs)


boundary_versions = Table(
    "boundary_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("source", Text, nullable=False),
    Column("district_code", String(6)),
    Column("summary", JSON, nullable=False),
    Column("report", JSON, nullable=False),
    Column("valid", Boolean, nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    utc("created_at", nullable=False),
    utc("activated_at"),
    # A draft is being edited: its features change, each edit raising ``revision``. Activation
    # freezes it for good; every other version never changes after import.
    Column("draft", Boolean, nullable=False, default=False),
    Column("base_version", ForeignKey("boundary_versions.id")),
    Column("revision", Integer, nullable=False, default=0),
)

boundary_edits = Table(
    "boundary_edits", metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", ForeignKey("boundary_versions.id", ondelete="CASCADE"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("operation", String(20), nullable=False),
    Column("params", JSON, nullable=False),
    Column("summary", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    utc("created_at", nullable=False),
    Index("ix_boundary_edits_version", "version_id"),
)

boundary_features = Table(
    "boundary_features", metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", ForeignKey("boundary_versions.id", ondelete="CASCADE"), nullable=False),
    Column("layer", String(20), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", String(200)),
    Column("parent_code", String(64)),
    Column("properties", JSON, nullable=False),
    Column("geometry", LargeBinary, nullable=False),
    Index("ix_boundary_features_version_layer", "version_id", "layer"),
)

departments = Table(
    "departments", metadata,
    Column("code", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("name_en", String(200)),
    Column("contact", String(200)),
)

gridworkers = Table(
    "gridworkers", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("phone", String(30), nullable=False),
    Column("role", String(20), nullable=False),  # gridworker, grid_leader, mobile
    Column("on_duty", Boolean, nullable=False, default=True),
    Column("community_code", String(64)),
    Column("station_id", String(64)),
    Column("lon", Float),
    Column("lat", Float),
    utc("created_at", nullable=False),
    utc("removed_at"),  # taken off the roster: the row stays, so its id is never reused
)

gridworker_grids = Table(
    "gridworker_grids", metadata,
    Column("gridworker_id", ForeignKey("gridworkers.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_code", String(64), primary_key=True),
    Index("ix_gridworker_grids_grid", "grid_code"),
)

dispatchers = Table(
    "dispatchers", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("phone", String(30), nullable=False),
    Column("street_code", String(64), nullable=False),
    utc("removed_at"),  # taken off the roster: the row stays, so its id is never reused
)

work_orders = Table(
    "work_orders", metadata,
    Column("id", Integer, primary_key=True),
    Column("category", String(40), nullable=False),
    Column("state", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("boundary_version", ForeignKey("boundary_versions.id"), nullable=False),
    Column("grid_code", String(64)),
    Column("community_code", String(64)),
    Column("street_code", String(64)),
    Column("department", String(40), nullable=False),
    Column("assignee_id", Integer),
    Column("queue", String(20), nullable=False),
    utc("created_at", nullable=False),
    utc("dispatched_at"),
    utc("respond_due"),
    utc("resolve_due"),
    utc("accepted_at"),
    utc("resolved_at"),
    utc("closed_at"),
    Column("respond_overdue", Boolean, nullable=False),
    Column("resolve_overdue", Boolean, nullable=False),
    Column("feedback", Text),
    Column("repair_photo", String(200)),
    Column("reject_reason", Text),
    Column("duplicate_of", Integer),
    Column("reports", Integer, nullable=False),
    Index("ix_work_orders_open", "category", "state"),
    Index("ix_work_orders_lonlat", "lon", "lat"),
    Index("ix_work_orders_created", "created_at"),
    # SQLite only (migration 0006), for the duplicate check's lon/lat box; PostgreSQL answers
    # it from the GiST index of geom.
    Index("ix_work_orders_category_lonlat", "category", "lon", "lat").ddl_if(dialect="sqlite"),
)

reports = Table(
    "reports", metadata,
    Column("id", Integer, primary_key=True),
    Column("work_order_id", ForeignKey("work_orders.id")),
    Column("outcome", String(20), nullable=False),  # created, attached, outside, archived
    Column("category", String(40), nullable=False),
    Column("description", Text, nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("original_x", Float, nullable=False),
    Column("original_y", Float, nullable=False),
    Column("original_crs", String(40), nullable=False),
    Column("boundary_version", ForeignKey("boundary_versions.id"), nullable=False),
    Column("resolve_status", String(20), nullable=False),
    Column("grid_code", String(64)),
    Column("community_code", String(64)),
    Column("street_code", String(64)),
    Column("station_id", String(64)),
    Column("station_distance_m", Float),
    Column("reason", Text),
    Column("reporter_name", String(100)),
    Column("reporter_phone", String(30)),
    Column("reporter_role", String(20), nullable=False),
    Column("photo", String(200)),
    Column("idempotency_key", String(100)),
    Column("user_id", Integer),  # the reporter's account, when they have one
    Column("attributes", JSON),  # answers to the category's extra questions
    Column("media_url", Text),  # a photo the reporter's app hosts elsewhere
    Column("address", Text),  # where the reporter says it is, in their words
    utc("created_at", nullable=False),
    UniqueConstraint("idempotency_key", name="uq_reports_idempotency_key"),
    Index("ix_reports_order", "work_order_id"),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("work_order_id", ForeignKey("work_orders.id"), nullable=False),
    utc("at", nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(30), nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20)),
    Column("note", Text, nullable=False),
    Index("ix_audit_order", "work_order_id"),
)

whistles = Table(
    "whistles", metadata,
    Column("work_order_id", ForeignKey("work_orders.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("blown_by", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    utc("blown_at", nullable=False),
    Column("reason", Text, nullable=False),
    utc("ended_at"),
)

summons = Table(
    "summons", metadata,
    Column("work_order_id", ForeignKey("work_orders.id"), primary_key=True),
    Column("whistle", Integer, primary_key=True),
    Column("department", String(40), primary_key=True),
    utc("due_at", nullable=False),
    utc("reported_at"),
    utc("done_at"),
    Column("note", Text, nullable=False),
    Column("overdue", Boolean, nullable=False),
)

meetings = Table(
    "meetings", metadata,
    Column("work_order_id", ForeignKey("work_orders.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    utc("held_at", nullable=False),
    Column("participants", JSON, nullable=False),
    Column("decisions", JSON, nullable=False),
    Column("tasks", JSON, nullable=False),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("event", String(40), nullable=False),
    Column("work_order_id", Integer),
    Column("payload", JSON, nullable=False),
    utc("created_at", nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    utc("next_attempt_at", nullable=False),
    utc("delivered_at"),
    Column("last_error", Text),
    utc("claimed_until"),  # a delivery round is sending it until then (dispatch.outbox)
    Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(20), nullable=False),
    Column("gridworker_id", Integer),
    Column("department", String(40)),
    Column("street_code", String(64)),
    Column("active", Boolean, nullable=False),
    utc("created_at", nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(12), nullable=False),
    utc("created_at", nullable=False),
    utc("revoked_at"),
)

# --- participation: points, the points supermarket, compounds, service orders, stations -------

points_accounts = Table(
    "points_accounts", metadata,
    # The running balance, kept beside the ledger so a conditional update can refuse to take it
    # below zero; it always equals the sum of the person's ledger entries.
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("balance", Integer, nullable=False),
    CheckConstraint("balance >= 0", name="ck_points_accounts_not_negative"),
)

points_ledger = Table(
    "points_ledger", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("amount", Integer, nullable=False),
    Column("balance_after", Integer, nullable=False),
    Column("cause", String(20), nullable=False),  # report, me_too, activity, adjustment ...
    Column("ref", String(64)),  # what caused it: "report:12", "redemption:3", "entry:7"
    Column("key", String(100)),  # makes a credit happen once: "report:12"
    Column("community_code", String(64)),
    Column("actor", String(100), nullable=False),
    Column("note", Text, nullable=False),
    utc("at", nullable=False),
    UniqueConstraint("key", name="uq_points_ledger_key"),
    Index("ix_points_ledger_user", "user_id", "id"),
    Index("ix_points_ledger_community_at", "community_code", "at"),
)

supermarket_items = Table(
    "supermarket_items", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("price", Integer, nullable=False),  # in points
    Column("stock", Integer, nullable=False),
    CheckConstraint("stock >= 0", name="ck_supermarket_items_stock"),
    Column("community_code", String(64)),  # held by a community's supermarket ...
    Column("station_id", String(64)),  # ... or by a station
    Column("active", Boolean, nullable=False),
    utc("created_at", nullable=False),
)

redemptions = Table(
    "redemptions", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", ForeignKey("supermarket_items.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("points", Integer, nullable=False),
    Column("state", String(20), nullable=False),  # reserved, handed_over, cancelled
    utc("reserved_at", nullable=False),
    utc("closed_at"),
    Column("closed_by", String(100)),
    Column("idempotency_key", String(100)),  # a retry with it is answered by the first
    Index("ix_redemptions_user", "user_id"),
    Index("uq_redemptions_key", "user_id", "idempotency_key", unique=True),
)

compounds = Table(
    "compounds", metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("community_code", String(64)),
    Column("property_company", String(200)),  # none: no property manager
    Column("built_year", Integer, nullable=False),
    Column("geometry", LargeBinary, nullable=False),  # WKB, WGS84
    Column("west", Float, nullable=False),  # the bounding box, for finding candidates
    Column("south", Float, nullable=False),
    Column("east", Float, nullable=False),
    Column("north", Float, nullable=False),
    Index("ix_compounds_box", "west", "east", "south", "north"),
)

service_orders = Table(
    "service_orders", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("service", String(40), nullable=False),
    Column("description", Text, nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("community_code", String(64)),
    Column("street_code", String(64)),
    Column("compound_code", String(64)),
    Column("state", String(20), nullable=False),  # ordered, placed, taken, done, confirmed ...
    Column("provider_kind", String(20)),  # property, volunteer, department, community
    Column("provider", String(200)),
    Column("taken_by", String(100)),
    utc("created_at", nullable=False),
    utc("due_at", nullable=False),
    utc("done_at"),
    Column("overdue", Boolean, nullable=False),
    Column("rating", Integer),
    Column("comment", Text),
    Column("work_order_id", Integer),  # a dispute referred to a consultation meeting
    Index("ix_service_orders_user", "user_id"),
    Index("ix_service_orders_open", "state", "due_at"),
)

service_order_audit = Table(
    "service_order_audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("service_order_id", ForeignKey("service_orders.id", ondelete="CASCADE"),
           nullable=False),
    utc("at", nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(30), nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20)),
    Column("note", Text, nullable=False),
    Index("ix_service_order_audit_order", "service_order_id"),
)

station_checkins = Table(
    "station_checkins", metadata,
    Column("id", Integer, primary_key=True),
    Column("station_id", String(64), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    utc("at", nullable=False),
    Index("ix_station_checkins_station", "station_id"),
)
