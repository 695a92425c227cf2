"""The demo district: a synthetic district modelled on Xi'an's Lianhu, drawn by this module.

Everything is generated from a fixed seed, so the same files come out on every run:

* an irregular outline of 40 km² centred near 108.92 E, 34.265 N;
* residential buildings (points with 10-40 households each, denser in the old town to the east);
* 9 streets carrying Lianhu's street names, each placed near its real compass position;
* about 130 communities, sized by households;
* grids of roughly 300-500 households, cut from each community by recursive bisection of its
  buildings (so they are contiguous and follow the community's edge);
* 108 service stations near where people live;
* a sample of 200 reports, most in GCJ-02 as a phone app sends them, a few outside the district
  and a few malformed.

Codes come from the project's own loader (:func:`geo.boundaries.build_boundaries`), which numbers
every level in reading order, so the shipped files exercise exactly the path real data takes.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from scipy.spatial import cKDTree

from geo.boundaries import BoundarySet, build_boundaries, write_boundaries
from geo.crs import WGS84, from_wgs84
from geo.sources import RawLayers

SEED = 610104
DISTRICT_CODE = "610104"
CENTRE = (108.92, 34.265)
AREA_M2 = 40e6
SEMI_AXES_M = (3900.0, 3300.0)
COMMUNITIES = 130
TARGET_HOUSEHOLDS = 400
STATIONS = 108
SAMPLE_REPORTS = 200
# Each street's rough position in the district, as fractions of its width (west→east) and
# height (south→north); the street's centre starts there and settles among its buildings.
STREETS = {
    "枣园街道": (0.10, 0.55), "土门街道": (0.30, 0.50), "桃园路街道": (0.35, 0.18),
    "红庙坡街道": (0.50, 0.85), "环城西路街道": (0.62, 0.45), "西关街道": (0.58, 0.15),
    "北关街道": (0.85, 0.88), "青年路街道": (0.80, 0.60), "北院门街道": (0.88, 0.35),
}
SERVICES = ("rest", "drinking_water", "phone_charging", "warm_up", "consultation", "toilet",
            "microwave", "first_aid")
REPORT_CATEGORIES = {
    "road_collapse": "路面塌陷，有坑洞",
    "manhole_cover": "井盖缺失",
    "electrical_hazard": "电线裸露",
    "fire_hazard": "楼道堆放杂物，消防隐患",
    "water_leak": "水管漏水",
    "illegal_parking": "车辆乱停占道",
    "streetlight": "路灯不亮",
    "garbage": "垃圾堆积未清运",
    "noise": "夜间施工噪音扰民",
}
CHINESE_NUMERALS = "零一二三四五六七八九十"
FILE_DATE = "2026-01-01T00:00:00.000Z"


def data_dir() -> Path:
    """The shipped data folder: inside an installed package, or the source tree's ``data/``."""
    packaged = Path(__file__).with_name("_data")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "data"


def default_source() -> Path:
    """The bundled demo district's GeoPackage."""
    return data_dir() / "boundaries" / "demo.gpkg"


def sample_reports() -> Path:
    """The bundled sample reports CSV."""
    return data_dir() / "samples" / "reports.csv"


def generate(seed: int = SEED, target_households: int = TARGET_HOUSEHOLDS) -> BoundarySet:
    """Draw the demo district: its boundary set, buildings (household points) included.

    ``target_households`` sets the grid size; smaller targets give more, smaller grids.
    """
    rng = np.random.default_rng(seed)
    outline = _outline()
    xy, households = _buildings(rng, outline)
    streets = _streets(outline, xy, households)
    communities, grids = [], []
    for street in streets:
        inside = shapely.contains_xy(street, xy[:, 0], xy[:, 1])
        count = max(4, round(COMMUNITIES * households[inside].sum() / households.sum()))
        centres = _weighted_kmeans(xy[inside], households[inside], _spread(xy[inside], count))
        for community in _fix_fragments(_voronoi(centres, street)):
            inside_c = shapely.contains_xy(community, xy[:, 0], xy[:, 1])
            communities.append(community)
            k = max(1, round(households[inside_c].sum() / target_households))
            grids += _fix_fragments(_bisect(community, xy[inside_c], households[inside_c], k))
    station_xy = _stations(xy, households, outline)

    def wgs(geoms):
        return shapely.transform(np.asarray(geoms), _plane_to_lonlat)

    grid_households = _sum_in(grids, xy, households)
    raw = RawLayers({
        "streets": gpd.GeoDataFrame({"name": list(STREETS)}, geometry=wgs(streets), crs=WGS84),
        "communities": gpd.GeoDataFrame(geometry=wgs(communities), crs=WGS84),
        "grids": gpd.GeoDataFrame({"households": grid_households}, geometry=wgs(grids),
                                  crs=WGS84),
        "stations": gpd.GeoDataFrame(_station_table(rng), geometry=wgs(shapely.points(station_xy)),
                                     crs=WGS84),
        "buildings": gpd.GeoDataFrame({"households": households},
                                      geometry=wgs(shapely.points(xy)), crs=WGS84),
    }, single_layer=False)
    bset = build_boundaries(raw, district_code=DISTRICT_CODE)
    _name_features(bset)
    return bset


def write_demo(folder, seed: int = SEED) -> list[Path]:
    """Generate the demo district into ``folder``: ``demo.gpkg`` and ``demo/*.geojson``.

    The GeoPackage's timestamps are pinned, so the files are the same bytes on every run.
    """
    folder = Path(folder)
    bset = generate(seed)
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FILE_DATE})
    try:
        return write_boundaries(bset, folder / "demo.gpkg", folder / "demo")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def write_sample_reports(path, bset: BoundarySet, seed: int = SEED) -> Path:
    """Write ``SAMPLE_REPORTS`` reports: 60 % GCJ-02, 5 outside the district, 3 malformed."""
    rng = np.random.default_rng(seed + 1)
    grids = bset.grids
    picks = rng.choice(len(grids), SAMPLE_REPORTS, replace=True)
    points = gpd.GeoSeries(grids.geometry.values[picks]).sample_points(1, rng=rng)
    lon, lat = shapely.get_coordinates(points.values).T
    gcj = rng.random(SAMPLE_REPORTS) < 0.6
    glon, glat = from_wgs84(lon, lat, "gcj02")
    lon, lat = np.where(gcj, glon, lon), np.where(gcj, glat, lat)
    west, south, east, north = grids.total_bounds
    start = datetime(2026, 11, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    rows = []
    for i in range(SAMPLE_REPORTS):
        category = list(REPORT_CATEGORIES)[int(rng.integers(len(REPORT_CATEGORIES)))]
        rows.append({
            "report_id": f"R{i + 1:04d}",
            "reported_at": (start + timedelta(minutes=int(rng.integers(0, 60 * 24 * 28))))
            .isoformat(),
            "category": category,
            "description": REPORT_CATEGORIES[category],
            "lon": f"{lon[i]:.6f}", "lat": f"{lat[i]:.6f}",
            "crs": "gcj02" if gcj[i] else "wgs84",
        })
    for i, row in enumerate(rows[-8:-3]):  # outside the district, a little beyond its edge
        row.update(lon=f"{east + 0.01 * (i + 1):.6f}", lat=f"{(south + north) / 2:.6f}",
                   crs="wgs84")
    rows[-3].update(lon="", lat=rows[-3]["lat"])  # missing longitude
    rows[-2].update(lon=rows[-2]["lat"], lat=rows[-2]["lon"])  # swapped order
    rows[-1].update(lat="134.27")  # latitude out of range
    rows.sort(key=lambda r: r["reported_at"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- drawing ------------------------------------------------------------------------------------


def _plane_to_lonlat(xy):
    """The drawing plane → lon/lat: an affine map, so straight edges stay straight in lon/lat.

    The plane is metres east and north of ``CENTRE`` at the local scale (accurate to about 0.1 %
    across the district); drawing on it rather than in UTM keeps every shared vertex and
    T-junction exactly on its neighbours' edges once the polygons are stored in lon/lat.
    """
    lon0, lat0 = CENTRE
    return np.column_stack([lon0 + xy[:, 0] / _metres_per_degree()[0],
                            lat0 + xy[:, 1] / _metres_per_degree()[1]])


def _metres_per_degree():
    phi = np.radians(CENTRE[1])
    return (111412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi),
            111132.92 - 559.82 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi))


def _outline() -> shapely.Polygon:
    theta = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    wobble = (1 + 0.06 * np.sin(3 * theta + 0.4) + 0.04 * np.sin(5 * theta + 1.3)
              + 0.02 * np.sin(9 * theta + 2.1))
    a, b = SEMI_AXES_M
    shape = shapely.Polygon(np.column_stack([a * wobble * np.cos(theta),
                                             b * wobble * np.sin(theta)]))
    coords = np.asarray(shape.exterior.coords) * np.sqrt(AREA_M2 / shape.area)
    return shapely.Polygon(np.round(coords, 3))


def _buildings(rng, outline, count=9000):
    """Building points and their households: neighbourhood clusters over a sparse background."""
    west, south, east, north = outline.bounds
    centres = np.column_stack([rng.uniform(west, east, 60), rng.uniform(south, north, 60)])
    weights = 1 + 2.0 * (centres[:, 0] > 800)  # the old town in the east is denser
    pick = rng.choice(len(centres), count * 2, p=weights / weights.sum())
    xy = centres[pick] + rng.normal(0, 380, (count * 2, 2))
    background = np.column_stack([rng.uniform(west, east, count), rng.uniform(south, north, count)])
    xy = np.vstack([xy, background])
    xy = xy[shapely.contains_xy(outline.buffer(-30), xy[:, 0], xy[:, 1])][:count]
    return np.round(xy, 2), rng.integers(10, 41, len(xy))


def _streets(outline, xy, households):
    west, south, east, north = outline.bounds
    anchors = np.array([(west + fx * (east - west), south + fy * (north - south))
                        for fx, fy in STREETS.values()])
    centres = _weighted_kmeans(xy, households, anchors, iterations=8)
    return _fix_fragments(_voronoi(centres, outline))


def _weighted_kmeans(xy, weights, centres, iterations=25):
    """Lloyd's algorithm with household weights, from the given starting centres."""
    centres = np.array(centres, dtype=float)
    for _ in range(iterations):
        _, label = cKDTree(centres).query(xy)
        totals = np.bincount(label, weights, minlength=len(centres))
        for axis in (0, 1):
            sums = np.bincount(label, weights * xy[:, axis], minlength=len(centres))
            centres[:, axis] = np.where(totals > 0, sums / np.maximum(totals, 1),
                                        centres[:, axis])
    return centres


def _spread(xy, count):
    """``count`` starting centres spread over the points (a deterministic farthest-point pick)."""
    chosen = [int(np.argmin(xy[:, 0] + xy[:, 1]))]
    distance = np.hypot(*(xy - xy[chosen[0]]).T)
    while len(chosen) < min(count, len(xy)):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.hypot(*(xy - xy[chosen[-1]]).T))
    return xy[chosen]


def _voronoi(centres, within):
    cells = shapely.voronoi_polygons(shapely.multipoints(centres), extend_to=within,
                                     ordered=True)
    pieces = shapely.intersection(np.asarray(shapely.get_parts(cells)), within)
    return [p for p in pieces if not p.is_empty]


def _bisect(polygon, xy, weights, k):
    """Cut ``polygon`` into ``k`` pieces of balanced weight by axis-parallel cuts."""
    if k <= 1 or len(xy) < 2:
        return [polygon]
    left_k = k // 2
    span = xy.max(axis=0) - xy.min(axis=0)
    axis = 0 if span[0] >= span[1] else 1
    order = np.argsort(xy[:, axis], kind="stable")
    cumulative = np.cumsum(weights[order])
    j = int(np.clip(np.searchsorted(cumulative, cumulative[-1] * left_k / k), 0, len(xy) - 2))
    cut = (xy[order[j], axis] + xy[order[j + 1], axis]) / 2
    west, south, east, north = polygon.bounds
    if axis == 0:
        low, high = shapely.box(west - 1, south - 1, cut, north + 1), shapely.box(
            cut, south - 1, east + 1, north + 1)
    else:
        low, high = shapely.box(west - 1, south - 1, east + 1, cut), shapely.box(
            west - 1, cut, east + 1, north + 1)
    below = xy[:, axis] < cut
    return (_bisect(polygon.intersection(low), xy[below], weights[below], left_k)
            + _bisect(polygon.intersection(high), xy[~below], weights[~below], k - left_k))


def _fix_fragments(pieces):
    """Make every piece one polygon: stray parts join the neighbour they share most edge with."""
    pieces = [shapely.Polygon() if p.is_empty else p for p in pieces]
    main = [max(shapely.get_parts(p), key=lambda g: g.area) if not p.is_empty else p
            for p in pieces]
    strays = [(i, part) for i, p in enumerate(pieces) for part in shapely.get_parts(p)
              if part.geom_type == "Polygon" and part is not None and not part.equals(main[i])]
    for owner, part in strays:
        shared = [main[j].intersection(part.boundary).length if j != owner else -1
                  for j in range(len(main))]
        best = int(np.argmax(shared))
        target = best if shared[best] > 0 else owner
        main[target] = shapely.union(main[target], part)
    return [m for m in main if not m.is_empty]


def _sum_in(polygons, xy, weights):
    tree = shapely.STRtree(polygons)
    point_idx, poly_idx = tree.query(shapely.points(xy), predicate="within")
    return np.bincount(poly_idx, weights[point_idx], minlength=len(polygons)).astype(int)


def _stations(xy, households, outline):
    centres = _weighted_kmeans(xy, households, _spread(xy, STATIONS), iterations=10)
    inside = shapely.contains_xy(outline, centres[:, 0], centres[:, 1])
    _, nearest = cKDTree(xy).query(centres[~inside])
    centres[~inside] = xy[nearest]
    return np.round(centres, 2)


def _station_table(rng) -> pd.DataFrame:
    services = [";".join(sorted(rng.choice(SERVICES, int(rng.integers(3, 7)), replace=False)))
                for _ in range(STATIONS)]
    return pd.DataFrame({"station_id": [f"ST{i:03d}" for i in range(1, STATIONS + 1)],
                         "services": services})


def _name_features(bset: BoundarySet) -> None:
    """Name communities, grids and stations after their codes and streets."""
    street_names = dict(zip(bset.streets["code"], bset.streets["name"], strict=True))
    short = {code: name.removesuffix("街道") for code, name in street_names.items()}
    bset.communities["name"] = [f"{short[s]}{_numeral(int(c[-3:]))}社区"
                                for c, s in zip(bset.communities["code"],
                                                bset.communities["street_code"], strict=True)]
    community_names = dict(zip(bset.communities["code"], bset.communities["name"], strict=True))
    bset.grids["name"] = [f"{community_names[c]}第{int(code[-3:])}网格"
                          for code, c in zip(bset.grids["code"], bset.grids["community_code"],
                                             strict=True)]
    station_street = _street_of(bset)
    bset.stations["name"] = [f"{short[s]}红色驿站{i + 1}号" if s else f"红色驿站{i + 1}号"
                             for i, s in enumerate(station_street)]


def _street_of(bset: BoundarySet):
    tree = shapely.STRtree(bset.streets.geometry.values)
    point_idx, street_idx = tree.query(bset.stations.geometry.values, predicate="intersects")
    codes = [None] * len(bset.stations)
    for p, s in zip(point_idx, street_idx, strict=True):
        codes[p] = codes[p] or bset.streets["code"].iloc[s]
    return codes


def _numeral(n: int) -> str:
    """Chinese numerals up to 99 (一, 十二, 二十三 ...)."""
    tens, ones = divmod(n, 10)
    text = ("" if tens == 0 else ("" if tens == 1 else CHINESE_NUMERALS[tens]) + "十")
    return text + (CHINESE_NUMERALS[ones] if ones or not text else "")
