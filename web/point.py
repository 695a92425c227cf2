"""Point lookup in MapIt's style: ``GET /point/{crs}/{lon},{lat}``."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import select

from dispatch import schema as t
from dispatch.errors import InputError
from dispatch.services import mask_phone
from geo.resolver import OUTSIDE
from web.auth import current_user

bp = Blueprint("point", __name__)
SYSTEMS = {"4326": "EPSG:4326", "4490": "EPSG:4490", "gcj02": "gcj02", "bd09": "bd09"}


@bp.get("/point/<crs>/<coords>")
def point(crs: str, coords: str):
    """Street, community, grid, its gridworkers (phones masked unless the caller is staff) and
    the nearest station of a point; status ``outside`` with 404 beyond the district."""
    if crs not in SYSTEMS:
        raise InputError(f"crs must be one of {', '.join(SYSTEMS)}", field="crs")
    parts = coords.split(",")
    if len(parts) != 2:
        raise InputError("give the point as {lon},{lat}", field="coords")
    service = current_app.extensions["gridline"]
    version, resolver = service.active_resolver()
    where = resolver.resolve(parts[0], parts[1], crs=SYSTEMS[crs])
    user = current_user()
    staff = user is not None and user.is_staff
    body = {
        "status": where.status, "boundary_version": version, "input_crs": crs,
        "lon": where.lon, "lat": where.lat,
        "street": {"code": where.street_code, "name": where.street_name},
        "community": {"code": where.community_code, "name": where.community_name},
        "grid": {"code": where.grid_code, "name": where.grid_name},
        "gridworkers": _gridworkers(service, where.grid_code, staff),
        "station": {"id": where.station_id, "name": where.station_name,
                    "distance_m": where.station_distance_m},
        "outside_distance_m": where.outside_distance_m,
    }
    return jsonify(body), 404 if where.status == OUTSIDE else 200


def _gridworkers(service, grid_code, staff: bool) -> list[dict]:
    if not grid_code:
        return []
    g, gg = t.gridworkers.c, t.gridworker_grids.c
    with service.db.read() as uow:
        rows = uow.execute(select(g.id, g.name, g.phone, g.role, g.on_duty).join(
            t.gridworker_grids, gg.gridworker_id == g.id).where(gg.grid_code == grid_code)
            .order_by(g.id)).all()
    return [{"id": r.id, "name": r.name, "role": r.role, "on_duty": r.on_duty,
             "phone": r.phone if staff else mask_phone(r.phone)} for r in rows]
