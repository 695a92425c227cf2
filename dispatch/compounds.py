"""Compounds (小区): residential compounds as polygons, each with its property company (物业)
if it has one, and the year it was built.

An order placed at a location goes to the property company of the compound there. A compound
built before 2001 counts as old (老旧小区, the national renovation programme's line); the share of
old compounds that have a property manager is one of the district's reported figures.

The demo district's compounds are drawn deterministically from its grids (one compound inside
each grid, its outline 20 m in from the grid's) and shipped as ``data/participation/
compounds.geojson``; ``gridline demo-compounds`` writes them again.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import case, delete, func, insert, select

from dispatch import schema as t
from dispatch.errors import InputError
from geo.demo import data_dir

SEED = 610104
OLD_BEFORE = 2001
INSET_M = 20.0
METRIC_CRS = "EPSG:32649"  # UTM zone 49N: metres around Xi'an
COMPANIES = ("长安物业", "鑫苑物业", "西旅物业", "绿城服务", "万科物业", "曲江物业")
POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)
FIELDS = ("code", "name", "community_code", "property_company", "built_year")


def demo_compounds_file() -> Path:
    return data_dir() / "participation" / "compounds.geojson"


def demo_compounds(bset, seed: int = SEED) -> gpd.GeoDataFrame:
    """One compound inside each grid of ``bset`` (but grids too thin to hold one): built
    1975–2020, a property company for every newer compound and about half of the old ones."""
    rng = np.random.default_rng(seed)
    grids = bset.grids.sort_values("code")
    inset = grids.geometry.to_crs(METRIC_CRS).buffer(-INSET_M).to_crs("EPSG:4326")
    built = rng.integers(1975, 2021, len(grids))
    managed = (built >= OLD_BEFORE) | (rng.random(len(grids)) < 0.5)
    company = rng.choice(COMPANIES, len(grids))
    number = grids.groupby("community_code").cumcount().to_numpy() + 1
    names = dict(zip(bset.communities["code"], bset.communities["name"], strict=True))
    frame = gpd.GeoDataFrame({
        "code": [f"{code}C" for code in grids["code"]],
        "name": [f"{names[c]}{n}号院" for c, n in zip(grids["community_code"], number,
                                                      strict=True)],
        "community_code": grids["community_code"].to_numpy(),
        "property_company": np.where(managed, company, None),
        "built_year": built,
    }, geometry=shapely.set_precision(inset.to_numpy(), 1e-6), crs="EPSG:4326")
    return frame[~frame.geometry.is_empty].reset_index(drop=True)


def write_demo_compounds(bset, path=None) -> Path:
    """Write the demo compounds as GeoJSON, one feature a line with sorted keys, so
    regenerating changes nothing."""
    path = Path(path or demo_compounds_file())
    path.parent.mkdir(parents=True, exist_ok=True)
    features = json.loads(demo_compounds(bset).to_json(drop_id=True))["features"]
    lines = ",\n".join(json.dumps(f, ensure_ascii=False, sort_keys=True) for f in features)
    path.write_text('{"type": "FeatureCollection", "features": [\n' + lines + "\n]}\n",
                    encoding="utf-8")
    return path


class Compounds:
    """The compounds stored in the service's database."""

    def __init__(self, db):
        self.db = db

    def load(self, path=None) -> int:
        """Replace the stored compounds by those of a GeoJSON file (the demo's by default).

        The whole file is checked first (see :func:`_problems`); if any compound is wrong, the
        error names it and the stored compounds stay as they were."""
        try:
            with warnings.catch_warnings():  # a mixed-type column is kept as text, then checked
                warnings.filterwarnings("ignore", "Could not parse column", UserWarning)
                frame = gpd.read_file(path or demo_compounds_file()).to_crs("EPSG:4326")
        except Exception as exc:  # any unreadable file is the caller's input error
            raise InputError(f"compounds file {path}: {exc}", field="compounds") from exc
        missing = [f for f in FIELDS if f not in frame.columns]
        if missing:
            raise InputError(f"compounds file lacks {', '.join(missing)}", field="compounds")
        fields = frame[list(FIELDS)].astype(object)
        frame[list(FIELDS)] = fields.where(fields.notna(), None)  # a missing value is None
        with self.db.unit_of_work() as uow:
            v, f = t.boundary_versions.c, t.boundary_features.c
            communities = set(uow.execute(select(f.code).join(
                t.boundary_versions, v.id == f.version_id).where(
                v.active, f.layer == "communities")).scalars())
            problems = _problems(frame, communities)
            if problems:
                more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
                raise InputError(f"compounds file: {'; '.join(problems[:5])}{more}; nothing "
                                 "was loaded", field="compounds")
            bounds = shapely.bounds(frame.geometry.to_numpy())
            rows = [{"code": str(code), "name": name, "community_code": community,
                     "property_company": company or None, "built_year": int(float(year)),
                     "geometry": wkb, "west": box[0], "south": box[1], "east": box[2],
                     "north": box[3]}
                    for code, name, community, company, year, wkb, box in zip(
                        *(frame[f] for f in FIELDS), shapely.to_wkb(frame.geometry.to_numpy()),
                        bounds, strict=True)]
            uow.execute(delete(t.compounds))
            if rows:
                uow.execute(insert(t.compounds), rows)
        return len(rows)

    def at(self, uow, lon: float, lat: float) -> dict | None:
        """The compound containing the point, if any (candidates by bounding box, then the
        exact test)."""
        c = t.compounds.c
        rows = uow.execute(select(t.compounds).where(
            c.west <= lon, c.east >= lon, c.south <= lat, c.north >= lat)).all()
        if not rows:
            return None
        inside = shapely.contains_xy(shapely.from_wkb([r.geometry for r in rows]), lon, lat)
        hits = [r for r, hit in zip(rows, inside, strict=True) if hit]
        return _compound(hits[0]) if hits else None

    def coverage(self) -> dict:
        """How many compounds are old, and the share of those with a property manager — for
        the district and per community."""
        c = t.compounds.c
        old = c.built_year < OLD_BEFORE
        managed = func.sum(case((c.property_company.is_not(None), 1), else_=0))
        with self.db.read() as uow:
            rows = uow.execute(select(c.community_code, func.count().label("old"),
                                      managed.label("managed")).where(old)
                               .group_by(c.community_code).order_by(c.community_code)).all()
            total = uow.execute(select(func.count()).select_from(t.compounds)).scalar_one()
        per = [{"community_code": r.community_code, "old": r.old, "managed": int(r.managed),
                "share": round(int(r.managed) / r.old, 4)} for r in rows]
        old_count = sum(r["old"] for r in per)
        with_manager = sum(r["managed"] for r in per)
        return {"compounds": total, "old": old_count, "old_with_property_manager": with_manager,
                "share": round(with_manager / old_count, 4) if old_count else None,
                "communities": per}


def _problems(frame: gpd.GeoDataFrame, communities: set[str]) -> list[str]:
    """What is wrong with each compound of ``frame``, as "feature N: ..." texts: a code that is
    missing, too long or repeated; a missing or too long name or property company; a
    community_code that is not a community of the active boundary version; a built_year that
    is not a whole year; a geometry that is not one valid polygon (or multipolygon)."""
    c = t.compounds.c
    problems = []
    seen = set()
    geoms = frame.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), POLYGONAL) & ~shapely.is_empty(geoms)
    reasons = shapely.is_valid_reason(geoms)
    valid = shapely.is_valid(geoms) | ~polygonal  # a missing shape is reported once, above
    for number, (code, name, community, company, year) in enumerate(
            zip(*(frame[f] for f in FIELDS), strict=True), start=1):
        i = number - 1
        checks = (
            (code is None or not 0 < len(str(code)) <= c.code.type.length,
             f"code must be 1-{c.code.type.length} characters"),
            (code is not None and str(code) in seen, f"code {code} is repeated"),
            (not isinstance(name, str) or not 0 < len(name) <= c.name.type.length,
             f"name must be 1-{c.name.type.length} characters"),
            (community is not None and community not in communities,
             f"community_code {community!r} is not a community of the active boundary "
             "version"),
            (company is not None and not (isinstance(company, str)
                                          and len(company) <= c.property_company.type.length),
             f"property_company must be text of at most {c.property_company.type.length} "
             "characters"),
            (not _is_year(year), "built_year is missing" if year is None
             else f"built_year {year!r} is not a year"),
            (not polygonal[i], "geometry must be a polygon or multipolygon"),
            (not valid[i], f"geometry is invalid ({reasons[i]})"),
        )
        problems += [f"feature {number}: {why}" for wrong, why in checks if wrong]
        seen.add(str(code))
    return problems


def _is_year(value) -> bool:
    """A whole number of a year a building may have been built in (1000-9999)."""
    try:
        return float(value).is_integer() and 1000 <= float(value) <= 9999
    except (TypeError, ValueError):
        return False


def _compound(row) -> dict:
    return {"code": row.code, "name": row.name, "community_code": row.community_code,
            "property_company": row.property_company, "built_year": row.built_year,
            "old": row.built_year < OLD_BEFORE}
