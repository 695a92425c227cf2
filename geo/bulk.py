"""Resolving tables of reports: CSV in, CSV out, in chunks, with a progress bar.

The output keeps every input column as it was and appends ``grid_code``, ``community_code``,
``street_code``, ``station_id``, ``station_distance_m``, ``resolve_status`` and
``resolve_reason``. A row with unusable coordinates gets ``resolve_status=invalid`` and a reason;
it never stops the run. Points may all be in one CRS or name theirs in a column (``crs`` by
default), as a mix of phone apps sends them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from geo.crs import parse_crs, to_wgs84
from geo.errors import CRSError, InputError
from geo.resolver import INVALID, Resolver, input_problems

APPENDED = {"grid_code": "grid_code", "community_code": "community_code",
            "street_code": "street_code", "station_id": "station_id",
            "station_distance_m": "station_distance_m", "status": "resolve_status",
            "reason": "resolve_reason"}
CHUNK_ROWS = 200_000


def resolve_table(resolver: Resolver, frame: pd.DataFrame, lon_col="lon", lat_col="lat",
                  crs=None, crs_col=None) -> pd.DataFrame:
    """The resolution columns (as in :data:`APPENDED`) for every row of ``frame``.

    ``crs`` is the default system; where ``crs_col`` is given and a row has a value there, that
    row's value wins. A row naming an unknown system is marked invalid.
    """
    for column in (lon_col, lat_col):
        if column not in frame:
            raise InputError(f"the table has no column {column!r} (columns: "
                             f"{', '.join(map(str, frame.columns))})", field=column)
    default = parse_crs(crs)
    systems = pd.Series(default.name, index=frame.index, dtype=object)
    if crs_col is not None and crs_col in frame:
        given = frame[crs_col].astype(object).where(frame[crs_col].notna(), "")
        given = given.astype(str).str.strip()
        systems = given.where(given != "", default.name)
    parts = []
    for name, rows in systems.groupby(systems, sort=False).groups.items():
        part = frame.loc[rows]
        try:
            system = parse_crs(name)
        except CRSError as exc:
            parts.append(_invalid(part.index, str(exc)))
            continue
        parts.append(resolver.resolve_frame(part, lon_col, lat_col, crs=system, errors="mark"))
    result = pd.concat(parts).loc[frame.index] if parts else _invalid(frame.index, "")
    out = result[list(APPENDED)].rename(columns=APPENDED)
    out["station_distance_m"] = out["station_distance_m"].round(1)
    return out


def _invalid(index, reason: str) -> pd.DataFrame:
    data = {key: pd.Series(None, index=index, dtype=object) for key in APPENDED}
    data["status"] = pd.Series(INVALID, index=index, dtype=object)
    data["reason"] = pd.Series(reason, index=index, dtype=object)
    data["station_distance_m"] = pd.Series(np.nan, index=index)
    return pd.DataFrame(data)


def resolve_csv(resolver: Resolver, source, target, *, lon_col="lon", lat_col="lat", crs=None,
                crs_col="crs", progress=True) -> Counter:
    """Resolve the CSV ``source`` into ``target`` chunk by chunk; returns counts per status.

    ``target`` appears only when the whole file is done; a failure leaves nothing behind.
    """
    source, target = Path(source), Path(target)
    total = _count_rows(source)
    counts: Counter = Counter()
    tmp = target.with_name(target.name + ".part")
    try:
        reader = pd.read_csv(source, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS)
        with reader, tqdm(total=total, unit="rows", disable=not progress, desc="resolving") as bar:
            for i, chunk in enumerate(reader):
                result = resolve_table(resolver, chunk, lon_col, lat_col, crs, crs_col)
                counts.update(result["resolve_status"])
                pd.concat([chunk, result], axis=1).to_csv(tmp, mode="w" if i == 0 else "a",
                                                          header=i == 0, index=False)
                bar.update(len(chunk))
        if not counts:
            raise InputError(f"{source.name} has no rows to resolve", field="source")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{source.name} is not a readable CSV table: {exc}",
                         field="source") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    return counts


def report_points(source, *, lon_col="lon", lat_col="lat", crs=None, crs_col="crs"):
    """The WGS84 points of a CSV of reports, e.g. to weigh a partition by reports.

    Returns ``(lon, lat, skipped)``: the rows' points converted from ``crs`` (or the system a
    row names in ``crs_col``), and how many rows were left out for unusable coordinates or an
    unknown system.
    """
    source = Path(source)
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{source.name} is not a readable CSV table: {exc}",
                         field="reports") from exc
    for column in (lon_col, lat_col):
        if column not in frame:
            raise InputError(f"{source.name} has no column {column!r}", field="reports")
    default = parse_crs(crs).name
    given = (frame[crs_col].str.strip() if crs_col in frame
             else pd.Series("", index=frame.index))
    systems = given.where(given != "", default)
    x = pd.to_numeric(frame[lon_col], errors="coerce").to_numpy(float)
    y = pd.to_numeric(frame[lat_col], errors="coerce").to_numpy(float)
    lon, lat = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    for name, rows in systems.groupby(systems, sort=False).indices.items():
        try:
            system = parse_crs(name)
        except CRSError:
            continue
        usable = rows[input_problems(x[rows], y[rows], system) == ""]
        lon[usable], lat[usable] = to_wgs84(x[usable], y[usable], system)
    found = np.isfinite(lon) & np.isfinite(lat)
    return lon[found], lat[found], int((~found).sum())


def _count_rows(path: Path) -> int:
    with path.open("rb") as f:
        lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return max(lines - 1, 0)
