"""The native JSON API for staff and reporter apps, at ``/api/v1``.

Each endpoint takes only the fields it names (anything else is refused by name, so no field can
be set that the caller may not set), checks who is calling against the object it touches, calls
one service handler and returns its answer.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify, request, send_from_directory
from sqlalchemy import select

from dispatch import schema as t
from dispatch.accounts import check_order_action, staff
from dispatch.errors import Forbidden, InputError, NotFound
from dispatch.photos import thumbnail_name
from dispatch.services import MAX_OFFSET, MAX_PAGE
from dispatch.storage import known_id
from web.args import int_arg, whole_number
from web.auth import current_user, require_user

bp = Blueprint("api", __name__, url_prefix="/api/v1")
REPORT_FIELDS = {"category", "description", "lon", "lat", "crs", "reporter_name",
                 "reporter_phone", "reporter_role", "idempotency_key", "attributes", "media_url",
                 "address"}
ACTION_FIELDS = {
    "accept": {"note"}, "start": {"note"}, "verify": {"note"}, "close": {"note"},
    "resolve": {"feedback"}, "reopen": {"reason"}, "reject": {"reason"},
    "transfer": {"reason", "grid_code", "department"}, "merge": {"into"},
}


def service():
    return current_app.extensions["gridline"]


def body(allowed: set[str]) -> dict:
    """The request's fields (JSON, or a multipart/urlencoded form), refusing unknown ones."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise InputError("the body is not a JSON object", field="body")
    else:
        data = {key: request.form.get(key) for key in request.form}
    unknown = sorted(set(data) - allowed - {"expected_version", "csrf_token"})
    if unknown:
        raise InputError(f"field {unknown[0]!r} may not be set here; allowed: "
                         f"{', '.join(sorted(allowed))}", field=unknown[0])
    return data


def _photo() -> bytes | None:
    """The uploaded ``photo`` file; a JSON body carries none (and no form to parse)."""
    if request.is_json:
        return None
    upload = request.files.get("photo")
    return upload.read() if upload else None


def _version(data) -> int | None:
    value = data.get("expected_version", request.headers.get("If-Match"))
    if value in (None, ""):
        return None
    return whole_number(value.strip('"') if isinstance(value, str) else value, "expected_version")


@bp.get("/categories")
def categories():
    return jsonify([{"code": c.code, "name": c.name, "name_en": c.name_en,
                     "department": c.department, "urgency": c.urgency,
                     "respond_within_minutes": c.respond_within,
                     "resolve_within_minutes": c.resolve_within, "escalable": c.escalable,
                     "duplicate_radius_m": c.duplicate_radius_m, "anonymous": c.anonymous,
                     "attributes": list(c.attributes)}
                    for c in service().catalogue.categories.values()])


@bp.post("/reports")
def create_report():
    user = current_user()
    data = body(REPORT_FIELDS)
    if not request.is_json and "attributes" in data:  # a form carries them as JSON text
        try:
            data["attributes"] = json.loads(data["attributes"])
        except ValueError:
            raise InputError("attributes must be a JSON object", field="attributes") from None
    answer = service().submit_report(data, photo=_photo(), user_id=user.id if user else None)
    return jsonify(answer), 200 if answer["outcome"] == "outside" else 201


@bp.get("/reports/<int:report_id>")
def get_report(report_id: int):
    user = require_user()
    with service().db.read() as uow:
        row = uow.execute(select(t.reports).where(
            t.reports.c.id == known_id(report_id, "report"))).first()
    if row is None:
        raise NotFound(f"no report {report_id}")
    if not user.is_staff and row.user_id != user.id:
        raise Forbidden("you can see only your own reports")
    return jsonify({"id": row.id, "outcome": row.outcome, "work_order_id": row.work_order_id,
                    "category": row.category, "description": row.description,
                    "lon": row.lon, "lat": row.lat, "original_crs": row.original_crs,
                    "grid_code": row.grid_code, "status": row.resolve_status,
                    "reason": row.reason, "reporter_name": row.reporter_name,
                    "reporter_phone": row.reporter_phone, "attributes": row.attributes,
                    "photo": row.photo, "created_at": row.created_at.isoformat()})


@bp.get("/orders")
def list_orders():
    staff(require_user())
    args = request.args
    bbox = args.get("bbox")
    answer = service().list_orders(
        bbox=bbox.split(",") if bbox else None,
        states=args.get("state").split(",") if args.get("state") else None,
        category=args.get("category"), street_code=args.get("street"),
        grid_code=args.get("grid"), limit=int_arg("limit", 100, 1, MAX_PAGE),
        offset=int_arg("offset", 0, 0, MAX_OFFSET))
    return jsonify(answer)


@bp.get("/orders/<int:order_id>")
def get_order(order_id: int):
    user = current_user()
    is_staff = user is not None and user.is_staff
    return jsonify(service().order(order_id, staff=is_staff,
                                   viewer_id=user.id if user else None))


@bp.post("/orders/<int:order_id>/<action>")
def act(order_id: int, action: str):
    if action not in ACTION_FIELDS:
        raise NotFound(f"no action {action!r}; actions: {', '.join(ACTION_FIELDS)}")
    user = require_user()
    data = body(ACTION_FIELDS[action])
    check_order_action(service().db, user, service().order_summary(order_id), action)
    kwargs = {k: v for k, v in data.items() if k in ACTION_FIELDS[action]}
    if action == "resolve":
        kwargs["photo"] = _photo()
    if action == "merge":  # it changes the order merged into too: the caller must reach both
        kwargs["into"] = whole_number(kwargs.get("into"), "into")
        check_order_action(service().db, user, service().order_summary(kwargs["into"]), action)
    return jsonify(service().act(order_id, action, user.actor,
                                 expected_version=_version(data), **kwargs))


@bp.post("/orders/<int:order_id>/whistles")
def blow_whistle(order_id: int):
    user = require_user()
    data = body({"departments", "due_minutes", "reason"})
    check_order_action(service().db, user, service().order_summary(order_id), "whistle")
    due_minutes = data.get("due_minutes")
    if isinstance(due_minutes, str):  # a form field, or a client that quotes its numbers
        due_minutes = whole_number(due_minutes, "due_minutes")
    return jsonify(service().blow_whistle(order_id, data.get("departments"), due_minutes,
                                          user.actor, data.get("reason"))), 201


@bp.post("/orders/<int:order_id>/whistles/<int:number>/<step>")
def answer_summons(order_id: int, number: int, step: str):
    if step not in ("duty", "complete"):
        raise NotFound("the steps of a summons are duty and complete")
    user = require_user()
    data = body({"department", "note"})
    department = data.get("department")
    check_order_action(service().db, user, service().order_summary(order_id), "duty", department)
    handler = service().report_for_duty if step == "duty" else service().complete_part
    return jsonify(handler(order_id, number, department, user.actor, data.get("note")))


@bp.post("/orders/<int:order_id>/meetings")
def record_meeting(order_id: int):
    user = require_user()
    data = body({"participants", "decisions", "tasks"})
    check_order_action(service().db, user, service().order_summary(order_id), "meeting")
    return jsonify(service().record_meeting(order_id, data.get("participants", []),
                                            data.get("decisions", []), data.get("tasks", []),
                                            user.actor)), 201


@bp.get("/gridworkers")
def gridworkers():
    staff(require_user())
    g = t.gridworkers.c
    with service().db.read() as uow:
        rows = uow.execute(select(t.gridworkers).where(g.removed_at.is_(None))
                           .order_by(g.id)).all()
        links = uow.execute(select(t.gridworker_grids)).all()
    grids: dict[int, list[str]] = {}
    for link in links:
        grids.setdefault(link.gridworker_id, []).append(link.grid_code)
    return jsonify([{"id": r.id, "name": r.name, "phone": r.phone, "role": r.role,
                     "on_duty": r.on_duty, "grids": sorted(grids.get(r.id, [])),
                     "station_id": r.station_id} for r in rows])


@bp.post("/mobile-gridworkers")
def register_mobile_gridworker():
    require_user()
    data = body({"name", "phone", "lon", "lat", "crs"})
    return jsonify(service().register_mobile_gridworker(
        data.get("name"), data.get("phone"), data.get("lon"), data.get("lat"),
        data.get("crs"))), 201


@bp.get("/stats")
def stats():
    staff(require_user())
    by = request.args.get("by")
    return jsonify(service().stats(by=by))


@bp.get("/photos/<name>")
def photo(name: str):
    """A stored photo (``?thumb=1`` for its thumbnail); names are the server's own."""
    if request.args.get("thumb"):
        name = thumbnail_name(name)
    return send_from_directory(service().media, name)
