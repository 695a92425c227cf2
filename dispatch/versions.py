"""Boundary versions in the database: import, drafts and their edits, activation, resolvers.

A version is a complete boundary set. An imported version never changes; a **draft** is started
from a version (a copy of its features), edited one operation at a time — each edit is checked,
raises the draft's ``revision`` and is logged in ``boundary_edits`` — and frozen for good when it
is activated. An edit that would add a validation error, a gap, a community or street left with
nothing under it, a sliver grid or a station off the district is refused and changes nothing. A
draft is refused activation when another version than its base was activated after it was
started: it would silently undo that version's changes.

Resolvers are built once per version and kept; which version is active is read from the
database at most every ``active_ttl`` seconds, so every process of a deployment picks up an
activation within that time. A resolver is complete before any request can see it: the
version id and its resolver are handed out together.
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import shapely
from sqlalchemy import delete, insert, literal, select, update

from dispatch import schema as t
from dispatch.errors import Conflict, InputError, NotFound
from dispatch.regrid import follow_grids, regrid_open_orders
from dispatch.storage import known_id
from geo.boundaries import BoundarySet, build_boundaries, load_boundaries
from geo.crs import WGS84
from geo.edits import Edited, apply_edit, replace_layer
from geo.plain import plain_record
from geo.resolver import Resolver
from geo.sources import LAYERS, POLYGON_LAYERS, RawLayers, read_source
from geo.validation import validate

PARENT = {"communities": "street_code", "grids": "community_code"}
MAX_NAME = 200
# Warnings an import may carry but an edit may not add: they all leave ground without a grid
# (or a station off the district).
REFUSED = frozenset({"gap", "empty_parent", "sliver", "station_outside"})
NEW_GRIDS = ("split", "reassign", "partition")  # edits making grids with new codes
REPORT_MONTHS = 12  # reports weigh a partition by their monthly rate over this many months


class BoundaryVersions:
    """The boundary-version handlers of :class:`dispatch.services.Service`.

    Uses the service's ``db``, ``clock``, ``active_ttl`` and resolver caches.
    """

    # --- import and activation ------------------------------------------------------------

    def import_boundaries(self, source, *, activate=False, name=None, **load_options) -> dict:
        """Store a boundary SOURCE as a new, inactive version; activate it if asked and valid
        (a version with validation errors is stored, with its report, but never activated)."""
        bset = load_boundaries(source, **load_options)
        report = validate(bset)
        with self.db.unit_of_work() as uow:
            version = self._insert_version(
                uow, bset, name=name or Path(str(source)).name, source=str(source),
                report=report.to_dict(), valid=report.ok)
            uow.execute(insert(t.boundary_features), feature_rows(version, bset, LAYERS))
        if activate and report.ok:
            self.activate_version(version)
        return {"version": version, "valid": report.ok, "errors": len(report.errors),
                "warnings": len(report.warnings), "active": activate and report.ok,
                **bset.summary()}

    def activate_version(self, version: int, expected_revision: int | None = None) -> dict:
        """Make ``version`` the one new reports resolve against (refused if it has errors);
        grid assignments and open work orders follow (:mod:`dispatch.regrid`).

        A draft is frozen by its activation, and refused when a version other than its base was
        activated after it was started (it would undo that version). With
        ``expected_revision`` a draft edited since the planner looked at it is refused. The
        resolvers are built first, so the switch itself is one short transaction. Returns
        what followed: ``grids_followed`` (old code → new code), ``grids_unplaced`` and
        ``orders`` (checked, moved, rerouted, outside)."""
        row = self._version_row(version)
        if expected_revision is not None and expected_revision != row.revision:
            raise Conflict(f"boundary version {version} is at revision {row.revision}, not "
                           f"{expected_revision}; preview it again")
        if not row.valid:
            raise InputError(f"boundary version {version} has validation errors and cannot "
                             "be activated", field="version")
        resolver = self.resolver(version) if not row.draft else Resolver(self._set_of(row))
        previous = self.active_row()
        old = (self.boundaries(previous.id)
               if previous is not None and previous.id != version else None)
        with self.db.unit_of_work() as uow:
            uow.lock("boundary_versions")
            active = self.active_row(uow)
            if active != previous:
                raise Conflict("another boundary version was activated meanwhile; try again")
            if (row.draft and active is not None and active.id != row.base_version
                    and active.activated_at >= row.created_at):
                raise Conflict(f"version {active.id} was activated after draft {version} was "
                               f"started; activating the draft would undo it: start a new "
                               f"draft from version {active.id}")
            uow.execute(update(t.boundary_versions).where(t.boundary_versions.c.active)
                        .values(active=False))
            done = uow.execute(update(t.boundary_versions).where(
                (t.boundary_versions.c.id == version)
                & (t.boundary_versions.c.revision == row.revision))
                .values(active=True, draft=False, activated_at=self.clock()))
            if done.rowcount != 1:  # an edit slipped in: this resolver is not of it
                raise Conflict(f"boundary version {version} was edited meanwhile; preview "
                               "it again")
            roster = (follow_grids(uow, old, resolver.boundaries)
                      if active is None or active.id != version else
                      {"followed": {}, "unplaced": []})
        with self._resolver_lock:
            self._resolvers.setdefault(version, resolver)
        self._active = None
        return {"grids_followed": roster["followed"], "grids_unplaced": roster["unplaced"],
                "orders": regrid_open_orders(self)}

    def active_row(self, uow=None):
        """The active version's id and activation time (None when none is)."""
        query = select(t.boundary_versions.c.id, t.boundary_versions.c.activated_at).where(
            t.boundary_versions.c.active)
        if uow is not None:
            return uow.execute(query).first()
        with self.db.read() as reading:
            return reading.execute(query).first()

    def has_active_version(self) -> bool:
        return self.active_row() is not None

    def active_resolver(self) -> tuple[int, Resolver]:
        """The active version's id and resolver (built once per version, then cached)."""
        cached = self._active
        if cached is not None and time.monotonic() - cached[1] < self.active_ttl:
            return cached[0], self.resolver(cached[0])
        # One thread looks the active version up again; the others go on with the one they
        # know meanwhile, rather than all querying at once (and opening a connection each).
        if not self._looking_up.acquire(blocking=cached is None):
            return cached[0], self.resolver(cached[0])
        try:
            with self.db.read() as uow:
                version = uow.execute(select(t.boundary_versions.c.id).where(
                    t.boundary_versions.c.active)).scalar()
            if version is None:
                self._active = None
                raise InputError("no boundary version is active: run gridline "
                                 "import-boundaries --activate", field="boundaries")
            resolver = self.resolver(version)
            self._active = (version, time.monotonic())
        finally:
            self._looking_up.release()
        return version, resolver

    def resolver(self, version: int) -> Resolver:
        """The resolver of a version that no longer changes (a draft's is built on demand)."""
        known = self._resolvers.get(version)  # built once, then read without the lock
        if known is not None:
            return known
        with self._resolver_lock:
            if version in self._resolvers:
                return self._resolvers[version]
            row = self._version_row(version)
            resolver = Resolver(self._set_of(row))
            if not row.draft:
                self._resolvers[version] = resolver
            return resolver

    # --- reading versions -----------------------------------------------------------------

    def versions(self) -> list[dict]:
        """Every version, newest first, with its state and summary."""
        with self.db.read() as uow:
            rows = uow.execute(select(t.boundary_versions).order_by(
                t.boundary_versions.c.id.desc())).all()
        return [_describe(r) for r in rows]

    def version_info(self, version: int) -> dict:
        """One version with its validation report and, for a draft, its edits."""
        row = self._version_row(version)
        with self.db.read() as uow:
            edits = uow.execute(select(t.boundary_edits).where(
                t.boundary_edits.c.version_id == version).order_by(t.boundary_edits.c.id)).all()
        return {**_describe(row), "report": row.report,
                "edits": [{"revision": e.revision, "operation": e.operation,
                           "summary": e.summary, "params": e.params, "actor": e.actor,
                           "at": e.created_at.isoformat()} for e in edits]}

    def boundaries(self, version: int) -> BoundarySet:
        """The boundary set of ``version`` (a draft's as of its latest revision; cached)."""
        return self._set_of(self._version_row(version))

    def _set_of(self, row) -> BoundarySet:
        """The boundary set of a version's row, as of the row's revision."""
        version = row.id
        if not row.draft and version in self._resolvers:
            return self._resolvers[version].boundaries
        key = (version, row.revision)
        cached = self._sets.get(version)
        if cached is not None and cached[0] == key:
            return cached[1]
        bset = self._load_set(version, row.district_code, row.summary.get("metric_crs"))
        self._sets[version] = (key, bset)
        return bset

    def _load_set(self, version: int, district_code: str | None,
                  metric_crs: str | None) -> BoundarySet:
        """The stored features of ``version``, built again with the metric CRS it was made
        with (its summary keeps it)."""
        with self.db.read() as uow:
            rows = uow.execute(select(t.boundary_features).where(
                t.boundary_features.c.version_id == version).order_by(
                t.boundary_features.c.id)).all()
        layers = {}
        for layer in LAYERS:
            picked = [r for r in rows if r.layer == layer]
            key = "station_id" if layer == "stations" else "code"
            data = {key: [r.code for r in picked], "name": [r.name for r in picked]}
            if layer in PARENT:
                data[PARENT[layer]] = [r.parent_code for r in picked]
            geometry = shapely.from_wkb([r.geometry for r in picked])
            frame = gpd.GeoDataFrame(data, geometry=geometry, crs=WGS84)
            for column in {k for r in picked for k in r.properties}:
                frame[column] = [r.properties.get(column) for r in picked]
            layers[layer] = frame
        return build_boundaries(RawLayers(layers, single_layer=district_code is None),
                                district_code=district_code, metric_crs=metric_crs)

    def _version_row(self, version: int):
        known_id(version, "boundary version")
        with self.db.read() as uow:
            row = uow.execute(select(t.boundary_versions).where(
                t.boundary_versions.c.id == version)).first()
        if row is None:
            raise NotFound(f"no boundary version {version}")
        return row

    # --- drafts ---------------------------------------------------------------------------

    def start_draft(self, base: int, actor, name: str | None = None) -> dict:
        """A new draft holding a copy of version ``base``'s features."""
        if name is not None and (not isinstance(name, str) or not 0 < len(name) <= MAX_NAME):
            raise InputError(f"name must be text of 1 to {MAX_NAME} characters", field="name")
        head = self._version_row(base)
        bset = self.boundaries(base)
        with self.db.unit_of_work() as uow:
            version = self._insert_version(
                uow, bset, name=name or f"draft of {head.name}", source=f"version {base}",
                report=head.report, valid=head.valid, draft=True, base_version=base)
            columns = ["layer", "code", "name", "parent_code", "properties", "geometry"]
            f = t.boundary_features.c
            uow.execute(insert(t.boundary_features).from_select(
                ["version_id", *columns],
                select(literal(version),
                       *[f[c] for c in columns]).where(f.version_id == base).order_by(f.id)))
            self._log_edit(uow, version, 0, "start", {"base": base},
                           f"started from version {base}", actor)
        return self.version_info(version)

    def edit_draft(self, version: int, operation: str, params: dict, actor,
                   expected_revision: int | None = None) -> dict:
        """Apply one edit (see :func:`geo.edits.apply_edit`) to a draft."""
        if not isinstance(params, dict):
            raise InputError("an edit's parameters are a JSON object", field="body")
        row = self._draft_row(version, expected_revision)
        points = weights = None
        if operation == "partition":
            weight = params.get("weight", "households")
            if weight not in ("households", "reports"):
                raise InputError("weight must be households or reports", field="weight")
            if weight == "reports":
                points, weights = self.planning.reports_per_month(REPORT_MONTHS)
        retired = self._retired_codes() if operation in NEW_GRIDS else frozenset()
        edited = apply_edit(self.boundaries(version), operation, params, points, weights,
                            retired)
        layers = ("stations",) if operation == "station" else POLYGON_LAYERS
        return self._store_edit(row, edited, operation, params, actor, layers)

    def partition_draft(self, communities, actor, *, target, low=None, high=None,
                        weight="households") -> dict:
        """A new draft of the active version with ``communities`` partitioned afresh."""
        active, _ = self.active_resolver()
        draft = self.start_draft(active, actor, name=f"partition of {', '.join(communities)}")
        params = {"communities": list(communities), "target": target, "weight": weight}
        params.update({k: v for k, v in (("min", low), ("max", high)) if v is not None})
        try:
            return self.edit_draft(draft["version"], "partition", params, actor)
        except Exception:
            self.discard_draft(draft["version"])
            raise

    def replace_draft_layer(self, version: int, layer: str, source, actor, crs=None,
                            expected_revision: int | None = None) -> dict:
        """Replace one layer of a draft by that layer of an uploaded file: the one named
        after it, else the file's only one (see :func:`geo.sources.read_source`)."""
        row = self._draft_row(version, expected_revision)
        if layer not in LAYERS:
            raise InputError(f"layer must be one of {', '.join(LAYERS)}", field="layer")
        frame = read_source(source, crs=crs, layer=layer).layers[layer]
        edited = replace_layer(self.boundaries(version), layer, frame,
                               self._retired_codes() if layer == "grids" else frozenset())
        return self._store_edit(row, edited, "replace", {"layer": layer}, actor, LAYERS)

    def _retired_codes(self) -> frozenset[str]:
        """Every grid code a version that was ever active has had: a new grid never takes one
        (codes of drafts never activated named no place anyone worked in)."""
        f, v = t.boundary_features.c, t.boundary_versions.c
        with self.db.read() as uow:
            return frozenset(uow.execute(select(f.code).join(
                t.boundary_versions, v.id == f.version_id).where(
                f.layer == "grids", v.activated_at.is_not(None)).distinct()).scalars())

    def discard_draft(self, version: int) -> None:
        """Delete a draft and its edits (an activated version can never be deleted)."""
        self._draft_row(version, None)
        with self.db.unit_of_work() as uow:
            children = uow.execute(select(t.boundary_versions.c.id).where(
                t.boundary_versions.c.base_version == version).order_by(
                t.boundary_versions.c.id)).scalars().all()
            if children:
                raise Conflict(f"draft {version} cannot be deleted: "
                               f"{_versions_named(children)} started from it")
            uow.execute(delete(t.boundary_edits).where(t.boundary_edits.c.version_id == version))
            uow.execute(delete(t.boundary_features).where(
                t.boundary_features.c.version_id == version))
            done = uow.execute(delete(t.boundary_versions).where(
                (t.boundary_versions.c.id == version) & t.boundary_versions.c.draft))
            if done.rowcount != 1:
                raise Conflict(f"boundary version {version} is no longer a draft")
        self._sets.pop(version, None)

    def _draft_row(self, version: int, expected_revision):
        row = self._version_row(version)
        if not row.draft:
            raise InputError(f"boundary version {version} is not a draft and never changes; "
                             "start a draft from it", field="version")
        if expected_revision is not None and expected_revision != row.revision:
            raise Conflict(f"draft {version} is at revision {row.revision}, not "
                           f"{expected_revision}; reload it")
        return row

    def _store_edit(self, row, edited: Edited, operation, params, actor, layers) -> dict:
        """Check an edited set against the draft's current report and store it as the next
        revision; an edit adding an error or a ``REFUSED`` warning is refused."""
        report = validate(edited.boundaries)
        before = {(f["layer"], f["feature"], f["check"]) for f in row.report.get("findings", [])}
        worse = [f for f in report.findings if (f.severity == "error" or f.check in REFUSED)
                 and (f.layer, f.feature, f.check) not in before]
        if worse:
            reasons = "; ".join(f"{f.layer} {f.feature}: {f.message}" for f in worse[:5])
            raise InputError(f"the edit is refused, it would leave the draft with {reasons}",
                             field="operation")
        bset = edited.boundaries
        revision = row.revision + 1
        with self.db.unit_of_work() as uow:
            moved = uow.execute(update(t.boundary_versions).where(
                (t.boundary_versions.c.id == row.id) & t.boundary_versions.c.draft
                & (t.boundary_versions.c.revision == row.revision)).values(
                revision=revision, summary=bset.summary(), report=report.to_dict(),
                valid=report.ok, district_code=bset.district_code))
            if moved.rowcount != 1:
                raise Conflict(f"draft {row.id} was changed meanwhile; reload it")
            uow.execute(delete(t.boundary_features).where(
                (t.boundary_features.c.version_id == row.id)
                & t.boundary_features.c.layer.in_(layers)))
            uow.execute(insert(t.boundary_features), feature_rows(row.id, bset, layers))
            self._log_edit(uow, row.id, revision, operation, params, edited.summary, actor)
        self._sets[row.id] = ((row.id, revision), bset)
        return {**self.version_info(row.id), "edit": edited.summary,
                "grids": list(edited.grids)}

    def _log_edit(self, uow, version, revision, operation, params, summary, actor) -> None:
        uow.execute(insert(t.boundary_edits).values(
            version_id=version, revision=revision, operation=operation, params=params,
            summary=summary, actor=actor.name, created_at=self.clock()))

    def _insert_version(self, uow, bset, *, name, source, report: dict, valid: bool,
                        draft=False, base_version=None) -> int:
        return uow.execute(insert(t.boundary_versions).values(
            name=name, source=source, district_code=bset.district_code, summary=bset.summary(),
            report=report, valid=valid, active=False, draft=draft,
            base_version=base_version, revision=0, created_at=self.clock())
            .returning(t.boundary_versions.c.id)).scalar_one()


def _versions_named(ids) -> str:
    return (f"version {ids[0]} was" if len(ids) == 1
            else "versions " + ", ".join(map(str, ids)) + " were")


def _describe(row) -> dict:
    state = "active" if row.active else "draft" if row.draft else "inactive"
    return {"version": row.id, "name": row.name, "state": state, "valid": row.valid,
            "base_version": row.base_version, "revision": row.revision,
            "created_at": row.created_at.isoformat(),
            "activated_at": row.activated_at.isoformat() if row.activated_at else None,
            "summary": row.summary}


def feature_rows(version: int, bset: BoundarySet, layers) -> list[dict]:
    """Database rows for the features of ``layers`` of ``bset``."""
    rows = []
    for layer in layers:
        frame = bset.layer(layer)
        key = "station_id" if layer == "stations" else "code"
        if "name" not in frame.columns:
            frame = frame.assign(name=None)
        standard = {key, "name", "feature", frame.geometry.name, "street_code", "community_code"}
        extra = [c for c in frame.columns if c not in standard]
        parents = frame[PARENT[layer]] if layer in PARENT else [None] * len(frame)
        properties = frame[extra].astype(object).to_dict("records")
        rows += [{"version_id": version, "layer": layer, "code": code, "name": name,
                  "parent_code": parent, "geometry": wkb,
                  "properties": plain_record(props)}
                 for code, name, parent, wkb, props in zip(
                     frame[key], frame["name"], parents, shapely.to_wkb(frame.geometry.values),
                     properties, strict=True)]
    return rows
