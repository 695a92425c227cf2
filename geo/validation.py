"""Validation of a boundary set: what is wrong, where, and how badly.

Each problem is a :class:`Finding` naming the layer, the feature (its code, or ``layer#n`` for
the n-th feature of the source when it has no code), the check and a message. Errors make the set
unusable for resolving (``gridline validate`` exits non-zero); warnings do not.

Overlaps, overhangs and gaps are cut in lon/lat, where the polygons' straight edges are defined
(and where the resolver tests points), and the pieces are then measured in m² in the set's
metric CRS; projecting first would bend the edges and invent slivers along every long one.

Checks:

errors
    ``invalid_geometry`` (with GEOS's reason), ``empty_geometry``, ``zero_area`` (a valid
    polygon no larger than the tolerance),
    ``duplicate_code``, ``malformed_code`` (not 9/12/15 digits, or not under its parent's code),
    ``missing_code``, ``overlap`` between siblings above the tolerance, ``not_within_parent``
    (a grid sticking out of its community, or a community out of its street, above the
    tolerance), ``unknown_parent``, ``no_parent``, ``grid_under_street`` (a grid with no
    community but a street), ``duplicate_station_id``
warnings
    ``gap`` (part of a community covered by none of its grids, or of a street by none of its
    communities, above the tolerance), ``missing_name``, ``empty_parent`` (a community without
    grids, a street without communities), ``sliver`` (a grid under ``MIN_GRID_M2``: too small
    to hold a block of homes), ``station_outside`` (a service station off the district)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import shapely

from geo.boundaries import BoundarySet, to_metric
from geo.codes import CODE_LENGTH

ERROR, WARNING = "error", "warning"
DEFAULT_TOLERANCE_M2 = 1.0
MIN_GRID_M2 = 1000.0  # about 30 m by 30 m
LEVEL = {"streets": "street", "communities": "community", "grids": "grid"}
PARENT = {"communities": ("streets", "street_code"), "grids": ("communities", "community_code")}


@dataclass(frozen=True)
class Finding:
    severity: str
    layer: str
    feature: str
    check: str
    message: str


@dataclass
class ValidationReport:
    """All findings for one boundary set, with what loading did (``notes``) and a summary."""

    summary: dict
    notes: list[str]
    findings: list[Finding] = field(default_factory=list)
    tolerance_m2: float = DEFAULT_TOLERANCE_M2

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"ok": self.ok, "errors": len(self.errors), "warnings": len(self.warnings),
                "tolerance_m2": self.tolerance_m2, "summary": self.summary, "notes": self.notes,
                "findings": [asdict(f) for f in self.findings]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        s = self.summary
        lines = [f"{s['streets']} streets, {s['communities']} communities, {s['grids']} grids, "
                 f"{s['stations']} stations; {s['grid_area_km2']} km² of grids "
                 f"(measured in {s['metric_crs']})"]
        lines += [f"  note: {n}" for n in self.notes]
        for f in self.findings:
            lines.append(f"{f.severity.upper():7} {f.layer:11} {f.feature:18} {f.check:18} "
                         f"{f.message}")
        verdict = "valid" if self.ok else "INVALID"
        lines.append(f"{verdict}: {len(self.errors)} errors, {len(self.warnings)} warnings "
                     f"(tolerance {self.tolerance_m2:g} m²)")
        return "\n".join(lines)


def validate(bset: BoundarySet, tolerance_m2: float = DEFAULT_TOLERANCE_M2) -> ValidationReport:
    """Run every check on ``bset``; areas below ``tolerance_m2`` are not reported."""
    report = ValidationReport(bset.summary(), list(bset.notes), tolerance_m2=tolerance_m2)
    add = report.findings.append
    polygon_layers = ("streets", "communities", "grids") if bset.hierarchical else ("grids",)
    usable = {}
    for name in polygon_layers:
        usable[name] = _check_geometry(bset, name, tolerance_m2, add)
        _check_codes(bset, name, add)
        _check_overlaps(bset, name, usable[name], tolerance_m2, add)
    if bset.hierarchical:
        for child in ("communities", "grids"):
            _check_parents(bset, child, usable, tolerance_m2, add)
    _check_stations(bset, usable, add)
    return report


def _refs(frame, layer) -> list[str]:
    return [c if isinstance(c, str) else f"{layer}#{n}"
            for c, n in zip(frame["code"], frame["feature"], strict=True)]


def _check_geometry(bset, layer, tolerance_m2, add) -> np.ndarray:
    """Report bad geometries; return a mask of the features fit for area checks."""
    frame = bset.layer(layer)
    geoms = np.asarray(frame.geometry.values)
    metric = bset.metric(layer)
    refs = _refs(frame, layer)
    missing = shapely.is_missing(geoms)
    empty = missing | shapely.is_empty(geoms)
    invalid = ~empty & ~shapely.is_valid(geoms)
    area = np.where(empty | invalid, 0.0, shapely.area(metric))
    zero = ~empty & ~invalid & (area <= tolerance_m2)
    for i in np.flatnonzero(empty):
        add(Finding(ERROR, layer, refs[i], "empty_geometry", "the polygon is empty or missing"))
    for i in np.flatnonzero(invalid):
        add(Finding(ERROR, layer, refs[i], "invalid_geometry",
                    f"{shapely.is_valid_reason(geoms[i])}; repair it with --fix"))
    for i in np.flatnonzero(zero):
        add(Finding(ERROR, layer, refs[i], "zero_area",
                    f"the polygon has (next to) no area: {area[i]:.3f} m²"))
    if layer == "grids":
        for i in np.flatnonzero(~empty & ~invalid & ~zero & (area < MIN_GRID_M2)):
            add(Finding(WARNING, layer, refs[i], "sliver",
                        f"the grid has only {area[i]:,.1f} m², under {MIN_GRID_M2:,.0f} m²"))
    for i in np.flatnonzero(frame["name"].isna().to_numpy()):
        add(Finding(WARNING, layer, refs[i], "missing_name", "the feature has no name"))
    return ~(empty | invalid | zero)


def _check_codes(bset, layer, add) -> None:
    frame = bset.layer(layer)
    refs = _refs(frame, layer)
    codes = frame["code"]
    for i in np.flatnonzero(codes.isna().to_numpy()):
        add(Finding(ERROR, layer, refs[i], "missing_code", "the feature has no code"))
    duplicated = codes.notna() & codes.duplicated(keep=False)
    for code in sorted(set(codes[duplicated])):
        count = int((codes == code).sum())
        add(Finding(ERROR, layer, code, "duplicate_code", f"{count} features share this code"))
    if not bset.hierarchical:
        return
    level = LEVEL[layer]
    parent_column = {"communities": "street_code", "grids": "community_code"}.get(layer)
    for i, code in enumerate(codes):
        if not isinstance(code, str):
            continue
        if not (code.isdigit() and len(code) == CODE_LENGTH[level]):
            add(Finding(ERROR, layer, code, "malformed_code",
                        f"a {level} code has {CODE_LENGTH[level]} digits"))
            continue
        prefix = bset.district_code if parent_column is None else frame[parent_column].iloc[i]
        if isinstance(prefix, str) and not code.startswith(prefix):
            add(Finding(ERROR, layer, code, "malformed_code",
                        f"the code does not start with its parent's code {prefix}"))


def _check_overlaps(bset, layer, usable, tolerance_m2, add) -> None:
    frame = bset.layer(layer)
    refs = _refs(frame, layer)
    geoms = np.asarray(frame.geometry.values)
    idx = np.flatnonzero(usable)
    left, right = shapely.STRtree(geoms[idx]).query(geoms[idx], predicate="intersects")
    keep = left < right
    left, right = idx[left[keep]], idx[right[keep]]
    areas = _area_m2(shapely.intersection(geoms[left], geoms[right]), bset)
    for a, b, area in zip(left, right, areas, strict=True):
        if area > tolerance_m2:
            add(Finding(ERROR, layer, refs[a], "overlap",
                        f"overlaps {refs[b]} by {area:,.1f} m²"))


def _check_parents(bset, child, usable, tolerance_m2, add) -> None:
    """Membership, containment and coverage between one layer and its parent layer."""
    parent, column = PARENT[child]
    children, parents = bset.layer(child), bset.layer(parent)
    refs, parent_refs = _refs(children, child), _refs(parents, parent)
    parent_pos = {c: i for i, c in enumerate(parents["code"]) if isinstance(c, str)}
    street_codes = set(bset.streets["code"].dropna())
    child_g = np.asarray(children.geometry.values)
    parent_g = np.asarray(parents.geometry.values)
    members = {i: [] for i in range(len(parents))}
    for i, code in enumerate(children[column]):
        if child == "grids" and not isinstance(code, str):
            street = children["street_code"].iloc[i]
            if isinstance(street, str) and street in street_codes:
                add(Finding(ERROR, child, refs[i], "grid_under_street",
                            f"the grid hangs directly under street {street}; every grid must "
                            "belong to a community"))
                continue
        if not isinstance(code, str):
            add(Finding(ERROR, child, refs[i], "no_parent",
                        f"the feature lies in no {LEVEL[parent]}"))
        elif child == "grids" and code in street_codes:
            add(Finding(ERROR, child, refs[i], "grid_under_street",
                        f"the grid's parent {code} is a street; every grid must belong to a "
                        "community"))
        elif code not in parent_pos:
            add(Finding(ERROR, child, refs[i], "unknown_parent",
                        f"its {column} {code} is not in the {parent} layer"))
        else:
            members[parent_pos[code]].append(i)
    for p, kids in members.items():
        if not usable[parent][p]:
            continue
        if not kids:
            add(Finding(WARNING, parent, parent_refs[p], "empty_parent",
                        f"no {child} belong to it"))
            continue
        kids = [k for k in kids if usable[child][k]]
        outside = _area_m2(shapely.difference(child_g[kids], parent_g[p]), bset)
        for k, area in zip(kids, outside, strict=True):
            if area > tolerance_m2:
                add(Finding(ERROR, child, refs[k], "not_within_parent",
                            f"{area:,.1f} m² lies outside its {LEVEL[parent]} {parent_refs[p]}"))
        gap = _area_m2([shapely.difference(parent_g[p], shapely.union_all(child_g[kids]))],
                       bset)[0]
        if gap > tolerance_m2:
            add(Finding(WARNING, parent, parent_refs[p], "gap",
                        f"{gap:,.1f} m² is covered by none of its {child}"))


def _area_m2(geoms, bset) -> np.ndarray:
    """Areas in m² of WGS84 geometries, measured in the set's metric CRS."""
    return shapely.area(to_metric(geoms, bset.metric_crs))


def _check_stations(bset, usable, add) -> None:
    top = "communities" if bset.hierarchical else "grids"
    district = shapely.union_all(np.asarray(bset.layer(top).geometry.values)[usable[top]])
    points = np.asarray(bset.stations.geometry.values)
    for i in np.flatnonzero(~shapely.covers(district, points)):
        add(Finding(WARNING, "stations", bset.stations["station_id"].iloc[i], "station_outside",
                    "the station stands outside the district"))
    ids = bset.stations["station_id"]
    for station_id in sorted(set(ids[ids.duplicated(keep=False)])):
        add(Finding(ERROR, "stations", station_id, "duplicate_station_id",
                    f"{int((ids == station_id).sum())} stations share this id"))
