"""Spatial indexes behind the resolver: which polygon covers a point, which station is nearest,
how far is an outline.

Each answers exactly, in bulk over numpy arrays and for one point in plain floats (the same
answer, without the cost of arrays), and is built once per boundary set.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from pyproj import Geod
from scipy.spatial import cKDTree

from geo.boundaries import to_metric

CELLS_PER_POLYGON = 256
MAX_CELLS = 2_000_000


class PolygonLocator:
    """Which polygon of a layer covers each point: the lowest index wins on shared edges.

    Answers with integer indices (-1 for none), like ``STRtree``. The layer must be sorted so
    that index order is the tie-break order (boundary sets sort every layer by code).

    Inside, the layer's extent is cut into square cells, about :data:`CELLS_PER_POLYGON` per
    polygon. A cell that touches no polygon answers -1; a cell that touches exactly one polygon
    which covers it whole answers that polygon; only points in the remaining cells — those a
    boundary runs through, about a tenth — are tested exactly against the few polygons that
    touch their cell. Cells are widened by a hair so that rounding in the cell arithmetic can
    never put a point in a cell that does not really hold it.
    """

    MIXED = -2

    def __init__(self, polygons):
        self._polygons = np.asarray(polygons)
        shapely.prepare(self._polygons)
        n = len(self._polygons)
        if n == 0:
            return
        x0, y0, x1, y1 = shapely.total_bounds(self._polygons)
        cells = min(MAX_CELLS, CELLS_PER_POLYGON * n)
        size = max(float(np.sqrt(max((x1 - x0) * (y1 - y0), 1e-18) / cells)),
                   (x1 - x0) / MAX_CELLS, (y1 - y0) / MAX_CELLS, 1e-9)
        nx, ny = int((x1 - x0) // size) + 1, int((y1 - y0) // size) + 1
        self._grid = (x0, y0, size, nx, ny)
        ix, iy = np.arange(nx * ny) % nx, np.arange(nx * ny) // nx
        pad = size * 1e-6
        boxes = shapely.box(x0 + ix * size - pad, y0 + iy * size - pad,
                            x0 + (ix + 1) * size + pad, y0 + (iy + 1) * size + pad)
        cell_idx, poly_idx = shapely.STRtree(self._polygons).query(boxes, predicate="intersects")
        order = np.lexsort((poly_idx, cell_idx))  # by cell, then ascending polygon
        cell_idx, poly_idx = cell_idx[order], poly_idx[order]
        touching = np.bincount(cell_idx, minlength=nx * ny)
        answer = np.where(touching == 0, -1, self.MIXED).astype(np.int32)
        single = touching[cell_idx] == 1
        whole = shapely.covers(self._polygons[poly_idx[single]], boxes[cell_idx[single]])
        answer[cell_idx[single][whole]] = poly_idx[single][whole]
        mixed = answer[cell_idx] == self.MIXED
        self._answer = answer
        self._candidates = poly_idx[mixed].astype(np.int32)
        self._starts = np.concatenate([[0], np.cumsum(np.where(answer == self.MIXED, touching, 0))])

    def __len__(self) -> int:
        return len(self._polygons)

    def locate(self, x, y) -> np.ndarray:
        """Indices of the polygons covering the points ``(x, y)`` (finite floats), -1 for none."""
        result = np.full(len(x), -1, dtype=np.int64)
        if not len(self._polygons) or not len(x):
            return result
        x0, y0, size, nx, ny = self._grid
        fx, fy = np.floor((x - x0) / size), np.floor((y - y0) / size)
        inside = (fx >= 0) & (fx < nx) & (fy >= 0) & (fy < ny)
        cell = np.where(inside, fy * nx + fx, 0).astype(np.int64)
        result[inside] = self._answer[cell[inside]]
        mixed = np.flatnonzero(result == self.MIXED)
        if len(mixed):
            starts = self._starts[cell[mixed]]
            counts = self._starts[cell[mixed] + 1] - starts
            point = np.repeat(mixed, counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            polygon = self._candidates[np.repeat(starts, counts) + offsets]
            hit = shapely.intersects_xy(self._polygons[polygon], x[point], y[point])
            best = np.full(len(x), len(self._polygons), dtype=np.int64)
            np.minimum.at(best, point[hit], polygon[hit])
            result[mixed] = np.where(best[mixed] == len(self._polygons), -1, best[mixed])
        return result

    def locate_one(self, x: float, y: float) -> int:
        """``locate`` for one point, without the array round trip."""
        if not len(self._polygons):
            return -1
        x0, y0, size, nx, ny = self._grid
        fx, fy = math.floor((x - x0) / size), math.floor((y - y0) / size)
        if not (0 <= fx < nx and 0 <= fy < ny):
            return -1
        cell = fy * nx + fx
        answer = int(self._answer[cell])
        if answer != self.MIXED:
            return answer
        for polygon in self._candidates[self._starts[cell]:self._starts[cell + 1]]:
            if shapely.intersects_xy(self._polygons[polygon], x, y):
                return int(polygon)
        return -1


class NearestPoint:
    """The nearest of a set of points (metric CRS): its index and distance.

    In bulk a KD-tree answers. One point is compared with every point instead when there are at
    most :data:`SCAN_MAX` of them: a district's hundred stations are scanned in a few
    microseconds, well below the KD-tree's own call overhead. Both compute the distance as
    √(dx² + dy²) in the same order, so they give the same answer.
    """

    SCAN_MAX = 2048

    def __init__(self, xy):
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        self._tree = cKDTree(xy)
        self._x, self._y = xy[:, 0].copy(), xy[:, 1].copy()

    def __len__(self) -> int:
        return len(self._x)

    def nearest(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """``(distance, index)`` arrays of the nearest point to each of ``(x, y)``."""
        return self._tree.query(np.column_stack([x, y]))

    def nearest_one(self, x: float, y: float) -> tuple[float, int]:
        """``(distance, index)`` of the point nearest to ``(x, y)``."""
        if len(self._x) > self.SCAN_MAX:
            distance, index = self._tree.query((x, y))
            return float(distance), int(index)
        dx, dy = x - self._x, y - self._y
        squared = dx * dx + dy * dy
        index = int(squared.argmin())
        return math.sqrt(squared[index]), index


class Outline:
    """Exact distance from points to the outline of a set of polygons (metric CRS).

    The outline's vertices go into a KD-tree. If the nearest outline point q of p lies on a
    segment, both ends of that segment are within √(d² + L²) of p, where d ≤ the distance to the
    nearest vertex and L is the longest segment; so the segments next to the vertices within that
    radius always include the nearest one. A point whose k nearest vertices do not cover the
    radius is checked against every segment (edges are densified when projected, see
    :func:`geo.boundaries.to_metric`, so this is rare).
    """

    ROUNDS = (4, 32)  # vertices asked for per point, then again for the unsure ones
    SEGMENT_M = 10.0  # the outline is cut into segments no longer than this
    MIN_HOLE_M2 = 1.0  # holes smaller than this are rounding slivers between grids, not holes

    def __init__(self, polygons, metric_crs):
        union = shapely.union_all(np.asarray(polygons))  # in lon/lat, where the edges meet
        rings = []
        for part in shapely.get_parts(union):
            holes = [shapely.Polygon(r) for r in part.interiors]
            areas = shapely.area(to_metric(holes, metric_crs)) if holes else []
            rings += [part.exterior] + [h.exterior for h, a in zip(holes, areas, strict=True)
                                        if a >= self.MIN_HOLE_M2]
        rings = shapely.segmentize(to_metric(rings, metric_crs), self.SEGMENT_M)
        starts, ends, previous, offset = [], [], [], 0
        for ring in rings:
            coords = shapely.get_coordinates(ring)[:-1]  # rings repeat their first vertex
            n = len(coords)
            starts.append(coords)
            ends.append(np.roll(coords, -1, axis=0))
            previous.append(offset + (np.arange(n) - 1) % n)
            offset += n
        self._a, self._b = np.concatenate(starts), np.concatenate(ends)
        self._previous = np.concatenate(previous)
        self._longest2 = float(((self._b - self._a) ** 2).sum(axis=1).max())
        self._tree = cKDTree(self._a)
        # Plain lists for distance_one: indexing numpy arrays one float at a time is slow.
        self._segments = np.column_stack([self._a, self._b]).tolist()
        self._previous_list = self._previous.tolist()

    def distance(self, x, y) -> np.ndarray:
        points = np.column_stack([x, y])
        best = np.full(len(points), np.inf)
        todo = np.arange(len(points))
        for k in self.ROUNDS:
            k = min(k, len(self._a))
            best[todo], sure = self._nearest(points[todo], k)
            todo = todo[~sure]
            if not len(todo):
                return best
        for i in todo:
            best[i] = _segment_distance(*points[i], *self._a.T, *self._b.T).min()
        return best

    def distance_one(self, x: float, y: float) -> float:
        """``distance`` for one point: the same segments and formula, in plain floats."""
        k = self.ROUNDS[0]
        if len(self._a) > k:
            reach, idx = self._tree.query((x, y), k=k)
            reach, nearest = reach.tolist(), idx.tolist()
            if reach[-1] > math.sqrt(reach[0] ** 2 + self._longest2):
                segments = {*nearest, *(self._previous_list[i] for i in nearest)}
                offsets = [_segment_offset_one(x, y, *self._segments[i]) for i in segments]
                # numpy's hypot, as in the bulk path (math.hypot may differ in the last bit)
                return float(np.hypot(*min(offsets, key=lambda d: d[0] * d[0] + d[1] * d[1])))
        return float(self.distance([x], [y])[0])

    def _nearest(self, points, k):
        """Best distance over the segments next to the k nearest vertices, and if it is sure."""
        reach, idx = self._tree.query(points, k=k)
        reach, idx = reach.reshape(len(points), k), idx.reshape(len(points), k)
        segments = np.concatenate([idx, self._previous[idx]], axis=1)
        (ax, ay), (bx, by) = self._a.T[:, segments], self._b.T[:, segments]
        best = _segment_distance(points[:, :1], points[:, 1:], ax, ay, bx, by).min(axis=1)
        sure = (reach[:, -1] > np.sqrt(reach[:, 0] ** 2 + self._longest2)) | (k == len(self._a))
        return best, sure


def _segment_distance(px, py, ax, ay, bx, by) -> np.ndarray:
    """Distance from points ``(px, py)`` to segments ``a``–``b`` (arrays broadcast together)."""
    dx, dy = bx - ax, by - ay
    t = ((px - ax) * dx + (py - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-300)
    np.clip(t, 0.0, 1.0, out=t)
    return np.hypot(px - ax - t * dx, py - ay - t * dy)


def _segment_offset_one(px, py, ax, ay, bx, by) -> tuple[float, float]:
    """The vector from a point to its nearest point on a segment, in plain floats (the steps of
    :func:`_segment_distance`)."""
    dx, dy = bx - ax, by - ay
    t = ((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-300)
    t = min(max(t, 0.0), 1.0)
    return px - ax - t * dx, py - ay - t * dy


class FarAway:
    """Distances on the ellipsoid for points far from a district, where its metric CRS (a
    projection fitted to the district) stretches distances or has no answer at all (a UTM
    zone's coordinates run to infinity a quarter of the globe away).

    Far off, the nearest point of the district lies on its convex hull, so the hull's outline,
    cut every :data:`STEP_DEGREES`, stands for the district; nearest neighbours are found by
    chord length between unit vectors (the same order as great-circle distance), and the one
    found is measured on the WGS84 ellipsoid. A point counts as far beyond :data:`FAR_M` from
    the hull's centre plus the hull's own reach.
    """

    FAR_M = 100_000.0
    STEP_DEGREES = 0.005  # about half a kilometre: far off, cutting finer changes nothing
    EARTH_M = 6_371_008.8  # mean radius, for the "far" test only

    def __init__(self, polygons, stations):
        # The hull of every vertex is the hull of the grids, without a second union of them.
        corners = shapely.multipoints(shapely.get_coordinates(np.asarray(polygons)))
        hull = shapely.segmentize(shapely.convex_hull(corners), self.STEP_DEGREES)
        self._outline = shapely.get_coordinates(hull.boundary if hull.area else hull)
        self._outline_tree = cKDTree(_unit(self._outline[:, 0], self._outline[:, 1]))
        self._stations = np.asarray(stations, dtype=float).reshape(-1, 2)
        self._station_tree = (cKDTree(_unit(self._stations[:, 0], self._stations[:, 1]))
                              if len(self._stations) else None)
        centre = shapely.get_coordinates(hull.centroid)[0]
        self._centre = _unit(*centre)[0]
        reach = _GEOD.inv(np.full(len(self._outline), centre[0]),
                          np.full(len(self._outline), centre[1]),
                          self._outline[:, 0], self._outline[:, 1])[2].max()
        far_m = min(reach + self.FAR_M, math.pi * self.EARTH_M)
        self._far_chord = 2 * math.sin(far_m / self.EARTH_M / 2)
        # A box around the centre that lies well inside that circle (half its radius each way,
        # in the fewest metres a degree can have): the points in it are near without asking.
        half = far_m / 2 / 111_700
        self._box = (centre[0], centre[1], half / math.cos(math.radians(min(
            89.0, abs(centre[1]) + half))), half)

    def is_far(self, lon, lat) -> np.ndarray:
        """True for the WGS84 points beyond the district's surroundings."""
        lon, lat = np.atleast_1d(np.asarray(lon, float)), np.atleast_1d(np.asarray(lat, float))
        x, y, width, height = self._box
        far = (np.abs(lon - x) > width) | (np.abs(lat - y) > height)  # for now: not surely near
        if far.any():
            far[far] = np.linalg.norm(_unit(lon[far], lat[far]) - self._centre,
                                      axis=1) > self._far_chord
        return far

    def outside_distance(self, lon, lat) -> np.ndarray:
        """Metres from each point to the district."""
        return self._measure(lon, lat, self._outline_tree, self._outline)[0]

    def nearest_station(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """``(distance in metres, index)`` of the station nearest to each point."""
        return self._measure(lon, lat, self._station_tree, self._stations)

    @staticmethod
    def _measure(lon, lat, tree, points) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        _, index = tree.query(_unit(lon, lat))
        distance = _GEOD.inv(lon, lat, points[index, 0], points[index, 1])[2]
        return np.asarray(distance, float), np.asarray(index)


_GEOD = Geod(ellps="WGS84")


def _unit(lon, lat) -> np.ndarray:
    """Unit vectors from the Earth's centre towards WGS84 points (one row per point)."""
    lon, lat = np.radians(np.atleast_1d(lon)), np.radians(np.atleast_1d(lat))
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
