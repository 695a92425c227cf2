"""Open311 GeoReport v2 at ``/open311/v2/``, in JSON and in the spec's XML.

Service codes are the catalogue's category codes. A service request is one report; its status
is its work order's Open311 status, and its status notes say why the order was rejected or
which request a duplicate is followed in. ``POST requests`` needs an ``api_key`` (an API token),
keeps ``address_string`` as the request's ``address`` (the location itself is lat/long: no
address is looked up) and takes, besides the spec's fields, ``crs`` (wgs84, gcj02 or bd09) for
phone apps that send offset coordinates, and an uploaded photo as the multipart file ``media``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import Blueprint, current_app, jsonify, request, url_for
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.checks import MAX_ADDRESS, check_datetime, check_text
from dispatch.errors import Forbidden, InputError, NotFound
from dispatch.model import FINAL, open311_status
from dispatch.storage import MAX_ID
from web.args import whole_number
from web.auth import accounts
from web.formats import to_xml, to_xml_one

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
FORMATS = ("json", "xml")
DEFAULT_DAYS = 90
MAX_REQUESTS = 1000
SPEC = "http://wiki.open311.org/GeoReport_v2"
ATTRIBUTE = re.compile(r"attribute\[([^\[\]]+)\](\[\])?")


def service():
    return current_app.extensions["gridline"]


def respond(fmt: str, root: str, item: str, rows, status: int = 200):
    """``rows`` as JSON, or as Open311 XML (``<root><item>...``) for ``.xml``."""
    if fmt not in FORMATS:
        raise NotFound(f"format {fmt!r}: use .json or .xml")
    if fmt == "xml":
        return _xml(to_xml(root, item, rows), status)
    response = jsonify(rows)
    response.status_code = status
    return response


@bp.get("/discovery.<fmt>")
def discovery(fmt):
    base = url_for("open311.services", fmt="json", _external=True).rsplit("/", 1)[0] + "/"
    body = {"changeset": "2026-11-29T00:00:00Z", "contact": "gridline service desk",
            "key_service": "API tokens are issued by the district: gridline tokens create",
            "endpoints": [{"specification": SPEC, "url": base, "changeset":
                           "2026-11-29T00:00:00Z", "type": "production",
                           "formats": ["text/xml", "application/json"]}]}
    if fmt == "xml":
        return _xml(to_xml_one("discovery", body))
    return respond(fmt, "discovery", "discovery", body)


@bp.get("/services.<fmt>")
def services(fmt):
    rows = [{"service_code": c.code, "service_name": c.name_en,
             "description": f"{c.name} / {c.name_en}", "metadata": bool(c.attributes),
             "type": "realtime", "keywords": c.urgency, "group": c.department}
            for c in service().catalogue.categories.values()]
    return respond(fmt, "services", "service", rows)


@bp.get("/services/<code>.<fmt>")
def service_definition(code, fmt):
    category = service().catalogue.categories.get(code)
    if category is None:
        raise NotFound(f"no service {code!r}")
    attributes = [{"variable": True, "code": a["code"], "datatype": a.get("datatype", "string"),
                   "required": bool(a.get("required")), "datatype_description": "",
                   "order": n, "description": a.get("description", ""),
                   **({"values": [{"key": v["key"], "name": v["name"]} for v in a["values"]]}
                      if a.get("values") else {})}
                  for n, a in enumerate(category.attributes, start=1)]
    body = {"service_code": code, "attributes": attributes}
    if fmt == "xml":
        return _xml(to_xml_one("service_definition", body))
    return respond(fmt, "service_definition", "_", body)


@bp.post("/requests.<fmt>")
def create_request(fmt):
    form = request.form
    user = accounts().user_for_token(form.get("api_key"))
    if user is None:
        raise Forbidden("api_key is missing or not valid")
    if not form.get("service_code"):
        raise InputError("service_code is required", field="service_code")
    if form["service_code"] not in service().catalogue.categories:
        raise NotFound(f"no service {form['service_code']!r}")
    if not form.get("lat") or not form.get("long"):
        raise InputError("lat and long are required (address_string alone cannot be located)",
                         field="lat")
    address = check_text(form.get("address_string"), "address_string", MAX_ADDRESS,
                         required=False) or None  # checked here to be named as sent
    name = " ".join(p for p in (form.get("first_name"), form.get("last_name")) if p) or None
    data = {"category": form["service_code"], "description": form.get("description") or
            form["service_code"], "lon": form["long"], "lat": form["lat"],
            "crs": form.get("crs") or "wgs84", "reporter_name": name,
            "reporter_phone": form.get("phone") or None, "reporter_role": "resident",
            "idempotency_key": form.get("token") or None, "attributes": _attributes(form),
            "media_url": form.get("media_url") or None,
            "address": address}
    upload = request.files.get("media")
    # A location outside the district is an error here, so nothing is kept of it (the native
    # API keeps such a report, rejected, and says so).
    answer = service().submit_report(data, photo=upload.read() if upload else None,
                                     user_id=user.id, keep_outside=False)
    notice = (f"joined work order {answer['work_order_id']}" if answer["outcome"] == "attached"
              else f"work order {answer['work_order_id']} created")
    row = {"service_request_id": str(answer["report_id"]), "service_notice": notice,
           "account_id": None}
    return respond(fmt, "service_requests", "request", [row], status=201)


@bp.get("/requests.<fmt>")
def list_requests(fmt):
    args = request.args
    r = t.reports.c
    query = _requests()
    if args.get("service_request_id"):
        ids = [_int(i, "service_request_id") for i in args["service_request_id"].split(",")
               if i.strip()]
        query = query.where(r.id.in_([i for i in ids if 0 < i <= MAX_ID]))
    else:
        end = _date(args.get("end_date"), "end_date") or service().clock()
        start = _date(args.get("start_date"), "start_date") or end - timedelta(days=DEFAULT_DAYS)
        query = query.where(r.created_at >= start, r.created_at <= end)
        if args.get("service_code"):
            query = query.where(r.category.in_(args["service_code"].split(",")))
        statuses = {s for s in args.get("status", "").split(",") if s}
        if not statuses <= {"open", "closed"}:
            raise InputError("status is open, closed or both (comma separated)", field="status")
        closed = [str(s) for s in FINAL]
        if statuses == {"open"}:
            query = query.where(t.work_orders.c.state.not_in(closed))
        elif statuses == {"closed"}:
            query = query.where(t.work_orders.c.state.in_(closed))
    query = query.where(r.work_order_id.is_not(None)).order_by(r.created_at.desc()).limit(
        MAX_REQUESTS)
    with service().db.read() as uow:
        rows = uow.execute(query).all()
        followed = _followed_by(uow, rows)
    return respond(fmt, "service_requests", "request",
                   [_request(row, followed) for row in rows])


@bp.get("/requests/<request_id>.<fmt>")
def get_request(request_id, fmt):
    r = t.reports.c
    number = _int(request_id, "service_request_id", missing=NotFound)
    with service().db.read() as uow:
        row = uow.execute(_requests().where(r.id == number, r.work_order_id.is_not(None))
                          ).first() if 0 < number <= MAX_ID else None
        if row is None:
            raise NotFound(f"no service request {request_id}")
        followed = _followed_by(uow, [row])
    return respond(fmt, "service_requests", "request", [_request(row, followed)])


@bp.get("/tokens/<token>.<fmt>")
def get_token(token, fmt):
    with service().db.read() as uow:
        rid = uow.execute(select(t.reports.c.id).where(
            t.reports.c.idempotency_key == token)).scalar()
    if rid is None:
        raise NotFound(f"no request for token {token!r}")
    return respond(fmt, "service_requests", "request",
                   [{"service_request_id": str(rid), "token": token}])


def _requests():
    """Reports with what Open311 tells of them: their order's state, agency, due time and
    notes, and when the order last changed (its newest audit entry)."""
    o, a = t.work_orders.c, t.audit.c
    updated = select(func.max(a.at)).where(a.work_order_id == t.reports.c.work_order_id)
    return select(t.reports, o.state, o.department, o.resolve_due, o.feedback, o.reject_reason,
                  o.duplicate_of, updated.scalar_subquery().label("updated_at")
                  ).outerjoin(t.work_orders)


def _followed_by(uow, rows) -> dict[int, int]:
    """For the orders of ``rows`` merged into another: order id → the first service request
    of the order it was merged into, where a client follows the problem from then on."""
    targets = {row.duplicate_of for row in rows if row.duplicate_of is not None}
    if not targets:
        return {}
    r = t.reports.c
    first = dict(uow.execute(select(r.work_order_id, func.min(r.id)).where(
        r.work_order_id.in_(targets)).group_by(r.work_order_id)).all())
    return {target: first[target] for target in targets if target in first}


def _attributes(form) -> dict:
    """Answers sent as ``attribute[code]``, several for a list as ``attribute[code][]`` (or the
    same name again)."""
    answers = {}
    for key in form:
        if not key.startswith("attribute["):
            continue
        found = ATTRIBUTE.fullmatch(key)
        if found is None:
            raise InputError(f"{key} is not an attribute: use attribute[code] or "
                             "attribute[code][]", field=key)
        values = form.getlist(key)
        answers[found[1]] = values if found[2] or len(values) > 1 else values[0]
    return answers


def _xml(text: str, status: int = 200):
    return current_app.response_class(text, status=status, mimetype="text/xml")


def _status_notes(row, followed: dict[int, int]) -> str | None:
    """What the district last said of the request: why it was rejected, where a duplicate is
    followed, or the repair feedback."""
    if row.duplicate_of is not None:
        where = (f"; follow service request {followed[row.duplicate_of]}"
                 if row.duplicate_of in followed else "")
        return f"closed as a duplicate of work order {row.duplicate_of}{where}"
    if row.reject_reason:
        return f"rejected: {row.reject_reason}"
    return row.feedback


def _request(row, followed: dict[int, int]) -> dict:
    svc = service()
    category = svc.catalogue.categories.get(row.category)
    local = svc.local_time
    return {
        "service_request_id": str(row.id), "status": open311_status(row.state),
        "status_notes": _status_notes(row, followed),
        "service_name": category.name_en if category else None,
        "service_code": row.category, "description": row.description,
        "agency_responsible": svc.catalogue.departments[row.department].name_en
        if row.department in svc.catalogue.departments else None,
        "service_notice": None, "requested_datetime": local(row.created_at).isoformat(),
        "updated_datetime": local(row.updated_at or row.created_at).isoformat(),
        "expected_datetime": local(row.resolve_due).isoformat() if row.resolve_due else None,
        "address": row.address, "address_id": None, "zipcode": None, "lat": row.lat,
        "long": row.lon,
        "media_url": row.media_url or (url_for("api.photo", name=row.photo, _external=True)
                                       if row.photo else None),
    }


def _int(value, field, missing=InputError) -> int:
    """``value`` as a whole number; else ``missing`` is raised (a 400, or a 404 for an id in
    the path: no request has that id)."""
    try:
        return whole_number(value, field)
    except InputError:
        if missing is NotFound:
            raise NotFound(f"no service request {value}") from None
        raise


def _date(value, field) -> datetime | None:
    return check_datetime(value, field, service().timezone) if value else None
