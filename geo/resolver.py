"""The resolver: point → grid, community, street and nearest station.

A :class:`Resolver` is built once per boundary set and never changes, so a running service can
swap in a new one with a single assignment. It answers millions of points at once
(:meth:`Resolver.resolve_many`, vectorised) or one (:meth:`Resolver.resolve`, a scalar path over
the same indexes of :mod:`geo.locate` and the same rules, so both give identical answers).

Rules:

* A point belongs to a polygon when the polygon *covers* it (inside or on its edge). A point on
  an edge or vertex shared by several grids goes to the one with the **smallest code**; the same
  holds for communities and streets. Every point of the district therefore has exactly one grid.
* A point in a grid takes that grid's community and street. A point in no grid is looked up in
  the communities (then the streets): found there, its status is ``gap``; found nowhere, it is
  ``outside`` and gets the distance in metres to the nearest grid.
* The nearest station and every distance are measured in the boundary set's metric CRS.
* A point given in another system must convert to a place on Earth: finite, within ±180/±90,
  and — for a projected system — converting back to itself. A projection clamps or wraps a
  point beyond what it covers (Web Mercator turns 1e30, 1e30 into -180, 90), so the way back
  is what tells such a point from a real one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import shapely

from geo.boundaries import BoundarySet
from geo.crs import WGS84, from_wgs84, parse_crs, to_wgs84, to_wgs84_one, transformer
from geo.errors import CoordinateError
from geo.locate import FarAway, NearestPoint, Outline, PolygonLocator

OK, GAP, OUTSIDE, INVALID = "ok", "gap", "outside", "invalid"
MAX_LAT, MAX_LON = 90, 180
# A projected point converted to WGS84 and back may differ from itself by this much (a
# millimetre, plus a millionth of its value) and still be the same place.
ROUND_TRIP = {"atol": 1e-3, "rtol": 1e-6}


@dataclass(frozen=True)
class Resolution:
    """The answer for one point. Codes and names are ``None`` where they do not apply."""

    status: str
    lon: float
    lat: float
    grid_code: str | None = None
    grid_name: str | None = None
    community_code: str | None = None
    community_name: str | None = None
    street_code: str | None = None
    street_name: str | None = None
    station_id: str | None = None
    station_name: str | None = None
    station_distance_m: float | None = None
    outside_distance_m: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Resolver:
    """Immutable point index over one :class:`BoundarySet` (see the module doc for the rules)."""

    def __init__(self, boundaries: BoundarySet):
        self.boundaries = b = boundaries
        self._grids = PolygonLocator(b.grids.geometry.values)
        self._communities = PolygonLocator(b.communities.geometry.values)
        self._streets = PolygonLocator(b.streets.geometry.values)
        self._to_metric = transformer(WGS84, b.metric_crs)
        self._outline = Outline(b.grids.geometry.values, b.metric_crs) if len(b.grids) else None
        station_xy = shapely.get_coordinates(b.metric("stations"))
        self._stations = NearestPoint(station_xy) if len(station_xy) else None
        self._far = FarAway(b.grids.geometry.values,
                            shapely.get_coordinates(b.stations.geometry.values)) if len(
            b.grids) else None
        self._table = _lookup_table(b)

    # --- one point ------------------------------------------------------------------------

    def resolve(self, lon, lat, crs=None) -> Resolution:
        """Resolve one point given in ``crs`` (default WGS84); the same answer as ``resolve_many``.

        Raises :class:`CoordinateError` for a value that is not a finite number, a latitude
        beyond ±90 or longitude beyond ±180 (given, or converted from ``crs``), or a point
        outside the district whose swapped (lat, lon) would be inside — the message then says
        the order looks swapped.
        """
        system = parse_crs(crs)
        x, y = _as_float(lon, "lon"), _as_float(lat, "lat")
        problem = point_problem(x, y, system)
        if problem:
            raise CoordinateError(self._swap_hint(x, y, system) or problem,
                                  field=_field_of(problem))
        wx, wy = (x, y) if system.is_wgs84 else to_wgs84_one(x, y, system)
        problem = "" if system.is_wgs84 else conversion_problem(x, y, wx, wy, system)
        if problem:
            raise CoordinateError(problem, field=_field_of(problem))
        t = self._table
        grid = self._grids.locate_one(wx, wy)
        community, street, status = t["grid_community"][grid], t["grid_street"][grid], OK
        if grid < 0:
            community = self._communities.locate_one(wx, wy)
            street = t["community_street"][community]
            if street < 0:
                street = self._streets.locate_one(wx, wy)
            status = GAP if community >= 0 or street >= 0 else OUTSIDE
            hint = self._swap_hint(x, y, system) if status == OUTSIDE else ""
            if hint:
                raise CoordinateError(hint, field="lon")
        mx, my = self._to_metric.transform(wx, wy)
        station, station_distance, outside_distance = -1, None, None
        if status == OUTSIDE and self._far is not None and (
                not (math.isfinite(mx) and math.isfinite(my)) or self._far.is_far(wx, wy)[0]):
            outside_distance = float(self._far.outside_distance(wx, wy)[0])
            if self._stations is not None:
                distance, index = self._far.nearest_station(wx, wy)
                station_distance, station = float(distance[0]), int(index[0])
        else:
            if self._stations is not None:
                station_distance, station = self._stations.nearest_one(mx, my)
            if status == OUTSIDE and self._outline is not None:
                outside_distance = self._outline.distance_one(mx, my)
        return Resolution(
            status, wx, wy, t["grid_code"][grid], t["grid_name"][grid],
            t["community_code"][community], t["community_name"][community],
            t["street_code"][street], t["street_name"][street],
            t["station_id"][station], t["station_name"][station],
            station_distance, outside_distance)

    # --- many points ----------------------------------------------------------------------

    def resolve_many(self, lon, lat, crs=None, errors="raise") -> pd.DataFrame:
        """Resolve arrays of points given in ``crs``; one result row per point, in order.

        With ``errors="raise"`` a bad point raises :class:`CoordinateError` naming the first
        one; with ``errors="mark"`` it gets status ``invalid`` and a ``reason``, and the others
        are resolved as usual. The frame has ``lon``/``lat`` (WGS84), ``status``, the codes and
        names of grid, community and street, ``station_id``/``station_name``,
        ``station_distance_m``, ``outside_distance_m`` and ``reason``.
        """
        system = parse_crs(crs)
        x, y = _as_float_array(lon, "lon"), _as_float_array(lat, "lat")
        if x.shape != y.shape:
            raise CoordinateError("lon and lat must have the same length", field="lon")
        reason = input_problems(x, y, system)
        valid = reason == ""
        wx, wy = np.full(len(x), np.nan), np.full(len(x), np.nan)
        if valid.any():
            wx[valid], wy[valid] = to_wgs84(x[valid], y[valid], system)
        if valid.any() and not system.is_wgs84:
            reason[valid] = conversion_problems(x[valid], y[valid], wx[valid], wy[valid], system)
            valid = reason == ""
            wx[~valid] = wy[~valid] = np.nan
        found = self._locate(wx, wy, valid)
        swapped = self._looks_swapped(x, y, system, ~valid | (found["status"] == OUTSIDE))
        reason[swapped] = [_swap_message(x[i], y[i]) for i in np.flatnonzero(swapped)]
        bad = reason != ""
        if errors == "raise" and bad.any():
            i = int(np.flatnonzero(bad)[0])
            prefix = "" if len(x) == 1 else f"point {i}: "
            raise CoordinateError(prefix + reason[i], field=_field_of(reason[i]))
        found["status"][bad] = INVALID
        for key in ("grid", "community", "street", "station"):
            found[key][bad] = -1
        found["station_distance_m"][bad] = np.nan
        found["outside_distance_m"][bad] = np.nan
        return self._frame(wx, wy, found, np.where(bad, reason, None))

    def resolve_frame(self, frame: pd.DataFrame, lon_col="lon", lat_col="lat", crs=None,
                      errors="mark") -> pd.DataFrame:
        """Resolve a table's points; returns the resolution columns indexed like ``frame``."""
        lon = pd.to_numeric(frame[lon_col], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(frame[lat_col], errors="coerce").to_numpy(float)
        result = self.resolve_many(lon, lat, crs=crs, errors=errors)
        result.index = frame.index
        return result

    def grid_index(self, lon, lat) -> np.ndarray:
        """Position in ``boundaries.grids`` of the grid covering each WGS84 point, -1 for none
        (the bare lookup behind :meth:`resolve_many`, for callers that need only the grid)."""
        return self._grids.locate(np.asarray(lon, float), np.asarray(lat, float))

    def _locate(self, lon, lat, valid) -> dict[str, np.ndarray]:
        n, t = len(lon), self._table
        grid = np.full(n, -1)
        grid[valid] = self._grids.locate(lon[valid], lat[valid])
        community, street = t["grid_community"][grid], t["grid_street"][grid]
        status = np.where(valid, OK, INVALID).astype(object)
        missing = valid & (grid < 0)
        if missing.any():
            x, y = lon[missing], lat[missing]
            comm = self._communities.locate(x, y)
            strt = t["community_street"][comm]
            strt[strt < 0] = self._streets.locate(x[strt < 0], y[strt < 0])
            community[missing], street[missing] = comm, strt
            status[missing] = np.where((comm >= 0) | (strt >= 0), GAP, OUTSIDE)
        mx, my = np.full(n, np.nan), np.full(n, np.nan)
        if valid.any():
            mx[valid], my[valid] = self._to_metric.transform(lon[valid], lat[valid])
        outside = status == OUTSIDE
        far = np.zeros(n, dtype=bool)  # measured on the ellipsoid, see FarAway
        if outside.any() and self._far is not None:
            far[outside] = (~np.isfinite(mx[outside]) | ~np.isfinite(my[outside])
                            | self._far.is_far(lon[outside], lat[outside]))
        near = valid & ~far
        station, station_distance = np.full(n, -1), np.full(n, np.nan)
        outside_distance = np.full(n, np.nan)
        if self._stations is not None and near.any():
            station_distance[near], station[near] = self._stations.nearest(mx[near], my[near])
        if self._outline is not None and (outside & near).any():
            outside_distance[outside & near] = self._outline.distance(mx[outside & near],
                                                                      my[outside & near])
        if far.any():
            outside_distance[far] = self._far.outside_distance(lon[far], lat[far])
            if self._stations is not None:
                station_distance[far], station[far] = self._far.nearest_station(lon[far],
                                                                                lat[far])
        return {"status": status, "grid": grid, "community": community, "street": street,
                "station": station, "station_distance_m": station_distance,
                "outside_distance_m": outside_distance}

    def _looks_swapped(self, x, y, system, suspect) -> np.ndarray:
        """True where a suspect point's swapped (lat, lon) lies in a grid."""
        suspect = suspect & np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= MAX_LAT)
        suspect &= np.abs(y) <= MAX_LON
        result = np.zeros(len(x), dtype=bool)
        if system.is_geographic and suspect.any():
            sx, sy = to_wgs84(y[suspect], x[suspect], system)
            result[suspect] = self._grids.locate(sx, sy) >= 0
        return result

    def _swap_hint(self, x: float, y: float, system) -> str:
        """The swapped-order message for one point, or "" when swapping does not help
        (:meth:`_looks_swapped` for one point, in plain floats)."""
        if not (system.is_geographic and math.isfinite(x) and math.isfinite(y)
                and abs(x) <= MAX_LAT and abs(y) <= MAX_LON):
            return ""
        hit = self._grids.locate_one(*to_wgs84_one(y, x, system)) >= 0
        return _swap_message(x, y) if hit else ""

    def _frame(self, lon, lat, found, reason) -> pd.DataFrame:
        t = self._table
        data = {"lon": lon, "lat": lat, "status": found["status"]}
        for key in ("grid", "community", "street"):
            data[f"{key}_code"] = t[f"{key}_code"][found[key]]
            data[f"{key}_name"] = t[f"{key}_name"][found[key]]
        data["station_id"] = t["station_id"][found["station"]]
        data["station_name"] = t["station_name"][found["station"]]
        data["station_distance_m"] = found["station_distance_m"]
        data["outside_distance_m"] = found["outside_distance_m"]
        data["reason"] = reason
        # Object columns stay object: inferring a string dtype would cost more than resolving.
        return pd.DataFrame({k: pd.Series(v, dtype=v.dtype, copy=False) for k, v in data.items()})


def point_problem(x: float, y: float, system) -> str:
    """Why one point cannot be resolved, or "": not finite, or lat/lon out of range."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return "coordinates must be finite numbers (missing, text, NaN or infinity given)"
    if system.is_geographic and abs(y) > MAX_LAT:
        return f"latitude {y} is beyond ±{MAX_LAT}"
    if system.is_geographic and abs(x) > MAX_LON:
        return f"longitude {x} is beyond ±{MAX_LON}"
    return ""


def input_problems(x, y, system) -> np.ndarray:
    """:func:`point_problem` for arrays: the reason per point, "" where it can be resolved."""
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if system.is_geographic:
        bad |= (np.abs(y) > MAX_LAT) | (np.abs(x) > MAX_LON)
    reason = np.full(len(x), "", dtype=object)
    reason[bad] = [point_problem(x[i], y[i], system) for i in np.flatnonzero(bad)]
    return reason


def conversion_problem(x: float, y: float, lon: float, lat: float, system) -> str:
    """Why the point (``x``, ``y``) of ``system``, converted to WGS84 (``lon``, ``lat``),
    cannot be resolved, or "": it left the Earth (not finite, or beyond ±180/±90), or, given
    in a projected system, :func:`geo.crs.from_wgs84` does not take it back to itself (see the
    module doc)."""
    given = f"({x}, {y}) in {system.name}"
    if not (math.isfinite(lon) and abs(lon) <= MAX_LON):
        return f"longitude out of range: {given} converts to longitude {lon}"
    if not (math.isfinite(lat) and abs(lat) <= MAX_LAT):
        return f"latitude out of range: {given} converts to latitude {lat}"
    if system.is_geographic:
        return ""
    back = from_wgs84(lon, lat, system)
    for name, value, again in (("longitude", x, back[0]), ("latitude", y, back[1])):
        if not np.isclose(again, value, **ROUND_TRIP):
            return (f"{name} out of range: {given} lies beyond what that system covers (it "
                    f"would be taken for longitude {lon}, latitude {lat})")
    return ""


def conversion_problems(x, y, lon, lat, system) -> np.ndarray:
    """:func:`conversion_problem` for arrays: the reason per point, "" where it can be
    resolved."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= MAX_LON)
                & (np.abs(lat) <= MAX_LAT))
    ok = ~bad
    if not system.is_geographic and ok.any():
        back_x, back_y = from_wgs84(lon[ok], lat[ok], system)
        bad[ok] = ~(np.isclose(back_x, x[ok], **ROUND_TRIP)
                    & np.isclose(back_y, y[ok], **ROUND_TRIP))
    reason = np.full(len(x), "", dtype=object)
    reason[bad] = [conversion_problem(x[i], y[i], lon[i], lat[i], system)
                   for i in np.flatnonzero(bad)]
    return reason


def _swap_message(x: float, y: float) -> str:
    return (f"({x}, {y}) is not in the district but ({y}, {x}) is: the order looks "
            "swapped; give longitude first, then latitude")


def _field_of(message: str) -> str:
    return "lat" if message.startswith("latitude") else "lon"


def _lookup_table(b: BoundarySet) -> dict[str, np.ndarray]:
    """Codes, names and grid→community→street links as arrays indexed by feature position.

    Each array ends with a sentinel (``None`` or -1), so index -1 — "not found" — reads it.
    """
    def column(frame, name):
        return np.append(frame[name].to_numpy(object), None)

    def link(codes, keys):
        index = {c: i for i, c in enumerate(keys)}
        return np.array([index.get(c, -1) for c in codes] + [-1], dtype=np.int64)

    return {
        "grid_code": column(b.grids, "code"), "grid_name": column(b.grids, "name"),
        "community_code": column(b.communities, "code"),
        "community_name": column(b.communities, "name"),
        "street_code": column(b.streets, "code"), "street_name": column(b.streets, "name"),
        "station_id": column(b.stations, "station_id"),
        "station_name": column(b.stations, "name"),
        "grid_community": link(b.grids["community_code"], b.communities["code"]),
        "grid_street": link(b.grids["street_code"], b.streets["code"]),
        "community_street": link(b.communities["street_code"], b.streets["code"]),
    }


def _as_float(value, name) -> float:
    if isinstance(value, bool):
        raise CoordinateError(f"{name} must be a number, not {value!r}", field=name)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CoordinateError(f"{name} must be a number, not {value!r}", field=name) from None


def _as_float_array(values, name) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise CoordinateError(f"{name} must hold numbers only", field=name) from None
