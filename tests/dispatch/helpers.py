"""Small builders shared by the dispatch tests."""

from __future__ import annotations

import io

import shapely
from PIL import Image

from geo.crs import from_wgs84

GPS_IFD = 0x8825


def photo(kind="JPEG", size=(64, 48), gps=True) -> bytes:
    """An image in ``kind``; JPEGs carry EXIF with a GPS position unless ``gps`` is False."""
    image = Image.new("RGB", size, (200, 30, 30))
    buffer = io.BytesIO()
    if kind == "JPEG" and gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"
        gps_ifd = exif.get_ifd(GPS_IFD)
        gps_ifd[1], gps_ifd[2] = "N", (34.0, 15.0, 30.0)
        gps_ifd[3], gps_ifd[4] = "E", (108.0, 56.0, 10.0)
        image.save(buffer, kind, exif=exif)
    else:
        image.save(buffer, kind)
    return buffer.getvalue()


def inside(demo, grid_index: int = 100, crs: str = "wgs84") -> tuple[float, float]:
    """A point well inside the demo district's grid number ``grid_index``, in ``crs``."""
    point = demo.grids.geometry.values[grid_index].representative_point()
    x, y = from_wgs84(point.x, point.y, crs)
    return float(x), float(y)


def report(demo, grid_index=100, **fields) -> dict:
    lon, lat = inside(demo, grid_index, fields.get("crs", "wgs84"))
    data = {"category": "road_collapse", "description": "路面塌陷，有一个大坑", "lon": lon,
            "lat": lat, "reporter_name": "张三", "reporter_phone": "13812341234",
            "reporter_role": "rider"}
    data.update(fields)
    return data


def neighbour_community(bset, grid) -> str | None:
    """A community other than ``grid``'s that shares part of its outline (None if none)."""
    for row in bset.communities.itertuples():
        if row.code != grid["community_code"] and shapely.length(shapely.intersection(
                grid.geometry.boundary, row.geometry.boundary)) > 0:
            return row.code
    return None


def movable_grid(bset, start=100) -> int:
    """The index of a grid from ``start`` on that can move to a neighbouring community: its
    own keeps other grids, and it borders another."""
    counts = bset.grids["community_code"].value_counts()
    return next(i for i in range(start, len(bset.grids))
                if counts[bset.grids["community_code"].iloc[i]] > 1
                and neighbour_community(bset, bset.grids.iloc[i]) is not None)
