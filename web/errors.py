"""One place that turns errors into HTTP answers.

The native API answers ``{"error": {"status", "code", "message", "field", "request_id"}}``;
Open311 endpoints answer Open311's list of ``{"code", "description"}`` (in XML for ``.xml``).
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from dispatch.errors import Conflict, Forbidden, IllegalTransition, InputError, NotFound
from geo.errors import GridlineError
from web.formats import to_xml


class Unauthorized(GridlineError):
    """No valid credentials were sent."""


class TooManyRequests(GridlineError):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


STATUS = [(InputError, 400, "invalid_input"), (Unauthorized, 401, "unauthorized"),
          (Forbidden, 403, "forbidden"), (NotFound, 404, "not_found"),
          (Conflict, 409, "conflict"), (IllegalTransition, 409, "illegal_transition"),
          (TooManyRequests, 429, "too_many_requests")]


def status_of(exc: Exception) -> tuple[int, str]:
    for kind, status, code in STATUS:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal_error"


def init_app(app) -> None:
    @app.errorhandler(GridlineError)
    def gridline_error(exc):
        status, code = status_of(exc)
        return answer(status, code, str(exc), getattr(exc, "field", None), exc)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        code = (exc.name or "error").lower().replace(" ", "_")
        return answer(exc.code or 500, code, exc.description or exc.name, None, exc)


def answer(status: int, code: str, message: str, field, exc=None):
    if is_open311():
        response = open311_errors(status, message)
    else:
        response = jsonify({"error": {"status": status, "code": code, "message": message,
                                      "field": field, "request_id": g.get("request_id")}})
        response.status_code = status
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def is_open311() -> bool:
    return request.path.startswith("/open311/")


def open311_errors(status: int, message: str):
    """Open311's error list, as XML when the path ends in ``.xml``, else JSON."""
    errors = [{"code": status, "description": message}]
    if request.path.endswith(".xml"):
        response = current_app.response_class(to_xml("errors", "error", errors),
                                              mimetype="text/xml")
    else:
        response = jsonify(errors)
    response.status_code = status
    return response
