"""The OpenAPI 3 document at ``/openapi.json``: every endpoint of the service's APIs (native,
Open311, OGC API – Features, point lookup, login); the HTML pages and their assets are left
out."""

from __future__ import annotations

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/responses/Error"}
JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}
JSON_ARRAY = {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}
GEOJSON = {"application/geo+json": {"schema": {"type": "object"}},
           "text/html": {"schema": {"type": "string"}}}
XML_OR_JSON = {"application/json": {"schema": {}}, "text/xml": {"schema": {"type": "string"}}}


def _param(name, where="query", kind="string", required=False, description="", schema=None,
           **serialised):
    """A parameter of type ``kind``, or of ``schema`` (with ``style``/``explode`` given as
    ``serialised``)."""
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema or {"type": kind}, "description": description, **serialised}


def _op(summary, params=(), ok=None, ok_status="200", body=None, secure=False, errors=(400,),
        body_required=True):
    responses = {ok_status: {"description": "success", "content": ok or JSON_OBJECT}}
    for status in (*errors, *((401, 403) if secure else ())):
        responses[str(status)] = ERROR
    operation = {"summary": summary, "parameters": list(params), "responses": responses}
    if body:
        operation["requestBody"] = {"required": body_required, "content": body}
    if secure:
        operation["security"] = [{"bearer": []}, {"session": []}]
    return operation


def _also(operation, status):
    """``operation`` with one more success status, answered like its first."""
    first = next(iter(operation["responses"].values()))
    operation["responses"][status] = first
    return operation


def _fields(*names, required=()):
    schema = {"type": "object", "properties": {n: {} for n in names},
              "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


ORDER_ID = _param("order_id", "path", "integer")
FMT = _param("fmt", "path", description="json or xml")
REPORT = _fields("category", "description", "lon", "lat", "crs", "reporter_name",
                 "reporter_phone", "reporter_role", "idempotency_key", "attributes", "media_url",
                 "address", required=("category", "description", "lon", "lat"))
ACTION_BODY = {"application/json": {"schema": {"type": "object"}},
               "multipart/form-data": {"schema": {"type": "object", "properties": {
                   "feedback": {"type": "string"}, "photo": {"type": "string",
                                                             "format": "binary"}}}}}
WHISTLE = {"type": "object", "additionalProperties": False, "required": ["departments"],
           "properties": {
               "departments": {
                   "description": "department codes (with due_minutes), or an object of "
                                  "department code → minutes to report for duty",
                   "oneOf": [{"type": "array", "items": {"type": "string"}},
                             {"type": "object", "additionalProperties": {"type": "integer"}}]},
               "due_minutes": {"type": "integer",
                               "description": "minutes to report for duty, 1 to 10080"},
               "reason": {"type": "string"}}}
VERSION = _param("version", "path", "integer")
MONTHS = _param("months", kind="integer")
# The items parameters as OGC API – Features Part 1's OpenAPI fragments describe them.
OGC_ITEMS = [
    _param("bbox", description="minx,miny,maxx,maxy or minx,miny,minz,maxx,maxy,maxz in CRS84 "
           "(heights ignored; minx > maxx crosses the antimeridian)", style="form",
           explode=False, schema={"type": "array", "items": {"type": "number"},
                                  "oneOf": [{"minItems": 4, "maxItems": 4},
                                            {"minItems": 6, "maxItems": 6}]}),
    _param("limit", description="features per page; above 10000 means 10000", style="form",
           explode=False, schema={"type": "integer", "minimum": 1, "maximum": 10000,
                                  "default": 10}),
    _param("offset", kind="integer"),
    _param("datetime", description="a date-time or an interval start/end (.. for an open "
           "end), ends included", style="form", explode=False),
    _param("f", description="json or html")]
CSV = {"text/csv": {"schema": {"type": "string"}}}
PATHS = {
    "/healthz": {"get": _op("the process is up", errors=())},
    "/readyz": {"get": _op("the database answers and boundaries are active", errors=(503,))},
    "/login": {"post": _op("session login", body={"application/json": {"schema": _fields(
        "username", "password")}}, errors=(400, 401))},
    "/logout": {"post": _op("end the session", errors=(400,))},
    "/openapi.json": {"get": _op("this document", errors=())},
    "/point/{crs}/{coords}": {"get": _op(
        "street, community, grid, gridworkers and nearest station of a point",
        [_param("crs", "path", description="4326, 4490, gcj02 or bd09"),
         _param("coords", "path", description="lon,lat")], errors=(400, 404))},
    "/open311/v2/discovery.{fmt}": {"get": _op("Open311 discovery", [FMT], XML_OR_JSON,
                                               errors=(404,))},
    "/open311/v2/services.{fmt}": {"get": _op("Open311 service list", [FMT], XML_OR_JSON,
                                              errors=(404,))},
    "/open311/v2/services/{code}.{fmt}": {"get": _op(
        "Open311 service definition", [_param("code", "path"), FMT], XML_OR_JSON,
        errors=(404,))},
    "/open311/v2/requests.{fmt}": {
        "get": _op("Open311 service requests", [
            FMT, _param("service_request_id"), _param("service_code"),
            _param("start_date"), _param("end_date"), _param("status")], XML_OR_JSON,
            errors=(400, 404)),
        "post": _op("Open311: create a service request", [FMT], XML_OR_JSON, "201",
                    body={"application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                          "multipart/form-data": {"schema": {"type": "object"}}},
                    errors=(400, 403, 404, 429))},
    "/open311/v2/requests/{request_id}.{fmt}": {"get": _op(
        "Open311 service request", [_param("request_id", "path"), FMT], XML_OR_JSON,
        errors=(400, 404))},
    "/open311/v2/tokens/{token}.{fmt}": {"get": _op(
        "Open311 token lookup", [_param("token", "path"), FMT], XML_OR_JSON, errors=(404,))},
    "/ogc/": {"get": _op("OGC API landing page", [_param("f")])},
    "/ogc/conformance": {"get": _op("conformance classes", [_param("f")])},
    "/ogc/collections": {"get": _op("collections", [_param("f")])},
    "/ogc/collections/{cid}": {"get": _op("a collection", [_param("cid", "path"),
                                                           _param("f")], errors=(400, 404))},
    "/ogc/collections/{cid}/items": {"get": _op(
        "features", [_param("cid", "path"), *OGC_ITEMS], GEOJSON, errors=(400, 404))},
    "/ogc/collections/{cid}/items/{fid}": {"get": _op(
        "one feature", [_param("cid", "path"), _param("fid", "path"), _param("f")], GEOJSON,
        errors=(400, 404))},
    "/map/live/orders.geojson": {"get": _op(
        "open work orders for the live map (display coordinates, no personal data)",
        [_param("category"), _param("state"), _param("hours", kind="integer"), _param("lang")],
        {"application/geo+json": GEOJSON["application/geo+json"]})},
    "/stats.csv": {"get": _op(
        "the statistics table as CSV", [_param("by"), _param("since"), _param("until")],
        {"text/csv": {"schema": {"type": "string"}}})},
    "/api/v1/categories": {"get": _op("the service catalogue", ok=JSON_ARRAY, errors=())},
    "/api/v1/reports": {"post": _op(
        "submit a report", ok_status="201",
        body={"application/json": {"schema": REPORT},
              "multipart/form-data": {"schema": {"type": "object"}}}, errors=(400, 429))},
    "/api/v1/reports/{report_id}": {"get": _op(
        "one report (its reporter or staff)", [_param("report_id", "path", "integer")],
        secure=True, errors=(404,))},
    "/api/v1/orders": {"get": _op(
        "work orders (staff)", [_param("bbox"), _param("state"), _param("category"),
                                _param("street"), _param("grid"),
                                _param("limit", kind="integer"),
                                _param("offset", kind="integer")], secure=True)},
    "/api/v1/orders/{order_id}": {"get": _op("one work order", [ORDER_ID], errors=(404,))},
    "/api/v1/orders/{order_id}/{action}": {"post": _op(
        "a lifecycle action: accept, start, resolve, verify, close, reopen, transfer, reject, "
        "merge", [ORDER_ID, _param("action", "path")], body=ACTION_BODY, secure=True,
        errors=(400, 404, 409))},
    "/api/v1/orders/{order_id}/whistles": {"post": _op(
        "blow the whistle (吹哨): departments all due within due_minutes, or each within its "
        "own minutes", [ORDER_ID], ok_status="201",
        body={"application/json": {"schema": WHISTLE}}, secure=True, errors=(400, 404, 409))},
    "/api/v1/orders/{order_id}/whistles/{number}/{step}": {"post": _op(
        "a department reports for duty (duty) or closes its part (complete)",
        [ORDER_ID, _param("number", "path", "integer"), _param("step", "path")],
        body={"application/json": {"schema": _fields("department", "note",
                                                     required=("department",))}},
        secure=True, errors=(400, 404, 409))},
    "/api/v1/orders/{order_id}/meetings": {"post": _op(
        "record a consultation meeting (协商议事)", [ORDER_ID], ok_status="201",
        body={"application/json": {"schema": _fields("participants", "decisions", "tasks")}},
        secure=True, errors=(400, 404, 409))},
    "/api/v1/gridworkers": {"get": _op("the roster (staff)", ok=JSON_ARRAY, secure=True)},
    "/api/v1/mobile-gridworkers": {"post": _op(
        "register as a mobile gridworker (流动网格员)", ok_status="201",
        body={"application/json": {"schema": _fields("name", "phone", "lon", "lat", "crs",
                                                     required=("name", "phone", "lon",
                                                               "lat"))}},
        secure=True)},
    "/api/v1/stats": {"get": _op("closure statistics (staff)", [_param("by")], ok=JSON_ARRAY,
                                 secure=True)},
    "/api/v1/photos/{name}": {"get": _op(
        "a stored photo", [_param("name", "path"), _param("thumb")],
        {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
         "image/png": {"schema": {"type": "string", "format": "binary"}},
         "image/webp": {"schema": {"type": "string", "format": "binary"}}}, errors=(404,))},
    **{f"/api/v1/boundary-versions{path}": item for path, item in {
        "": {"get": _op("boundary versions, newest first (planners)", ok=JSON_ARRAY,
                        secure=True)},
        "/{version}": {"get": _op("one version with its validation report and edits",
                                  [VERSION], secure=True, errors=(404,)),
                       "delete": _op("discard a draft", [VERSION], ok={}, ok_status="204",
                                     secure=True, errors=(400, 404, 409))},
        "/{version}/drafts": {"post": _op(
            "start a draft from a version", [VERSION], ok_status="201",
            body={"application/json": {"schema": _fields("name")}}, secure=True,
            errors=(400, 404))},
        "/{version}/edits": {"post": _op(
            "edit a draft: split (grid, line), merge (grids), reshape (grid, polygon), "
            "reassign (grid, community), partition (communities, target, min, max, weight), "
            "station (station; name, services, point to add or change it, or remove)",
            [VERSION], body={"application/json": {"schema": _fields(
                "operation", "grid", "grids", "line", "polygon", "community", "communities",
                "target", "min", "max", "weight", "station", "name", "services", "point",
                "remove", "crs", "expected_revision", required=("operation",))}},
            secure=True, errors=(400, 404, 409))},
        "/{version}/layers/{layer}": {"post": _op(
            "replace a layer of a draft by a GeoJSON, GeoPackage, FlatGeobuf or zipped shapefile "
            "(.zip) file",
            [VERSION, _param("layer", "path")],
            body={"multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"}, "crs": {"type": "string"},
                "expected_revision": {"type": "integer"}}}}},
            secure=True, errors=(400, 404, 409))},
        "/{version}/activate": {"post": _op(
            "activate a valid version (a draft is frozen by it); with expected_revision a "
            "draft edited since is refused", [VERSION],
            body={"application/json": {"schema": _fields("expected_revision")}},
            body_required=False, secure=True, errors=(400, 404, 409))},
        "/{version}/impact": {"get": _op(
            "impact preview against the active version", [VERSION, MONTHS], secure=True,
            errors=(400, 404))},
        "/{version}/impact.csv": {"get": _op(
            "the preview's changed grids as CSV", [VERSION, MONTHS], CSV, secure=True,
            errors=(400, 404))},
        "/{version}/grids.geojson": {"get": _op(
            "a version's grids in display coordinates", [VERSION], GEOJSON, secure=True,
            errors=(404,))},
        "/{version}/reresolve.csv": {"get": _op(
            "past reports re-resolved against a version, nothing changed",
            [VERSION, _param("since"), _param("until")], CSV, secure=True, errors=(400, 404))},
    }.items()},
}

ANY_ERROR = (400, 404, 409)
PARTICIPATION = {
    "/api/v1/points/me": {"get": _op(
        "my points: balance, ledger and redemptions", [_param("limit", kind="integer")],
        secure=True)},
    "/api/v1/points/users/{user_id}": {"get": _op(
        "a person's points (the person or a community worker)",
        [_param("user_id", "path", "integer"), _param("limit", kind="integer")], secure=True,
        errors=(400, 404))},
    "/api/v1/points/activities": {"post": _op(
        "check in a volunteer's activity (community workers); sent again with the same "
        "idempotency_key, the first entry is answered and nothing more is earned",
        ok_status="201",
        body={"application/json": {"schema": _fields(
            "user_id", "activity", "hours", "community_code", "idempotency_key",
            required=("user_id", "activity", "hours", "community_code"))}},
        secure=True, errors=ANY_ERROR)},
    "/api/v1/points/adjustments": {"post": _op(
        "adjust a person's points with a reason (admin)", ok_status="201",
        body={"application/json": {"schema": _fields(
            "user_id", "amount", "reason", "community_code",
            required=("user_id", "amount", "reason"))}}, secure=True, errors=ANY_ERROR)},
    "/api/v1/points/entries/{entry_id}/reversal": {"post": _op(
        "reverse a ledger entry by a new one (admin)", [_param("entry_id", "path", "integer")],
        ok_status="201", body={"application/json": {"schema": _fields(
            "reason", required=("reason",))}}, secure=True, errors=ANY_ERROR)},
    "/api/v1/points/leaderboard": {"get": _op(
        "who earned most in a community in a month", [
            _param("community", required=True), _param("month", description="YYYY-MM"),
            _param("limit", kind="integer")], ok=JSON_ARRAY, errors=(400, 401))},
    "/api/v1/supermarket/items": {
        "get": _op("items of the points supermarket",
                   [_param("community"), _param("station")], ok=JSON_ARRAY),
        "post": _op("put an item on the shelf (community workers)", ok_status="201",
                    body={"application/json": {"schema": _fields(
                        "name", "price", "stock", "community_code", "station_id",
                        required=("name", "price", "stock"))}}, secure=True)},
    "/api/v1/supermarket/redemptions": {"post": _op(
        "redeem points for an item, for yourself; sent again with the same idempotency_key, "
        "the first redemption is answered and nothing more is paid", ok_status="201",
        body={"application/json": {"schema": _fields("item_id", "quantity", "user_id",
                                                     "idempotency_key",
                                                     required=("item_id",))}},
        secure=True, errors=ANY_ERROR)},
    "/api/v1/supermarket/redemptions/{redemption_id}": {"get": _op(
        "one redemption (its owner or a community worker)",
        [_param("redemption_id", "path", "integer")], secure=True, errors=(404,))},
    "/api/v1/supermarket/redemptions/{redemption_id}/{step}": {"post": _op(
        "hand-over (a community worker confirms) or cancel (stock and points come back)",
        [_param("redemption_id", "path", "integer"), _param("step", "path")],
        body={"application/json": {"schema": _fields()}}, secure=True, errors=ANY_ERROR)},
    "/api/v1/service-menu": {"get": _op("the services a community offers",
                                        [_param("community")], ok=JSON_ARRAY, errors=())},
    "/api/v1/service-orders": {"post": _op(
        "order a service (点单)", ok_status="201", body={"application/json": {
            "schema": _fields("service", "description", "lon", "lat", "crs",
                              required=("service", "description", "lon", "lat"))}},
        secure=True, errors=(400,))},
    "/api/v1/service-orders/{order_id}": {"get": _op(
        "one service order with its trail (its resident, its community's workers, the "
        "department it was placed with, an admin)", [ORDER_ID], secure=True, errors=(404,))},
    "/api/v1/service-orders/{order_id}/{step}": {"post": _op(
        "place (下单), take (接单), complete, confirm (rating 1-5, comment) or cancel (reason)",
        [ORDER_ID, _param("step", "path")], body={"application/json": {"schema": _fields(
            "note", "rating", "comment", "reason")}}, secure=True, errors=ANY_ERROR)},
    "/api/v1/service-orders/{order_id}/meetings": {"post": _op(
        "a consultation meeting (协商议事) on a dispute", [ORDER_ID], ok_status="201",
        body={"application/json": {"schema": _fields("participants", "decisions", "tasks",
                                                     required=("participants",))}},
        secure=True, errors=ANY_ERROR)},
    "/api/v1/compounds/coverage": {"get": _op(
        "old compounds and the share of them with a property manager", errors=())},
    "/api/v1/stations/near": {"get": _op(
        "open service stations near a point, nearest first, in metres",
        [_param("lon", required=True), _param("lat", required=True), _param("crs"),
         _param("radius_m"), _param("services", description="comma-separated, all required"),
         _param("all", description="1: closed stations too")], ok=JSON_ARRAY)},
    "/api/v1/stations/{station_id}/checkins": {"post": _also(_op(
        "check in at a station (201; 200 with the earlier check-in when repeated within 30 "
        "minutes); it takes no fields", [_param("station_id", "path")], ok_status="201",
        secure=True), "200")},
    "/api/v1/stations/counts": {"get": _op(
        "check-ins and riders' reports per station (staff)", ok=JSON_ARRAY, secure=True)},
}
PATHS.update(PARTICIPATION)

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "gridline", "version": "1",
             "description": "Grid management: point lookup, Open311 GeoReport v2, OGC API – "
                            "Features and the native work-order API."},
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                            "session": {"type": "apiKey", "in": "cookie", "name": "session"}},
        "responses": {"Error": {"description": "an error", "content": {
            "application/json": {"schema": {}}, "text/xml": {"schema": {"type": "string"}}}}},
    },
}


@bp.get("/openapi.json")
def spec():
    return jsonify(SPEC)
