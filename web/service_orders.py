"""Resident service orders over HTTP, at ``/api/v1/service-orders``, with the service menu and
the compounds' property-manager coverage.

A logged-in resident orders, confirms and rates, and may cancel their own order before it is
taken; the service desk (community workers) places orders and may cancel them; the street or
community (grid leaders, dispatchers, admins) takes them and holds consultation meetings;
community workers, or the department it was placed with, mark them done. Staff act only in
their own communities (:func:`dispatch.accounts.check_community`).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from dispatch.compounds import Compounds
from dispatch.errors import Forbidden, NotFound
from dispatch.service_orders import ServiceOrders, load_menu
from web.api import body
from web.auth import require_user
from web.participation import COMMUNITY_STAFF, community_staff

bp = Blueprint("service_orders", __name__, url_prefix="/api/v1")
ORDER_FIELDS = {"service", "description", "lon", "lat", "crs"}
TAKERS = ("grid_leader", "dispatcher", "admin")
FINISHERS = (*COMMUNITY_STAFF, "department")
STEP_FIELDS = {"place": {"note"}, "take": {"note"}, "complete": {"note"},
               "confirm": {"rating", "comment"}, "cancel": {"reason"}}


def orders() -> ServiceOrders:
    return current_app.extensions["gridline.service_orders"]


@bp.get("/service-menu")
def menu():
    return jsonify(orders().menu_for(request.args.get("community")))


@bp.post("/service-orders")
def create():
    user = require_user()
    return jsonify(orders().order(user.id, body(ORDER_FIELDS), user.actor)), 201


@bp.get("/service-orders/<int:order_id>")
def get(order_id: int):
    user = require_user()
    found = orders().get(order_id)
    if found["user_id"] != user.id and user.role != "admin":
        if user.role == "department":
            _provider(user, found)
        elif user.is_staff:
            community_staff(user, found["community_code"])
        else:
            raise Forbidden("you can see only your own service orders")
    return jsonify(found)


@bp.post("/service-orders/<int:order_id>/meetings")
def hold_meeting(order_id: int):
    """A consultation meeting on a dispute (grid leaders, dispatchers, admins)."""
    user = require_user()
    data = body({"participants", "decisions", "tasks"})
    _taker(user, order_id)
    return jsonify(orders().hold_meeting(order_id, data.get("participants", []),
                                         data.get("decisions", []), data.get("tasks", []),
                                         user.actor)), 201


@bp.post("/service-orders/<int:order_id>/<step>")
def act(order_id: int, step: str):
    """place, take, complete, confirm (rating, comment) or cancel (reason)."""
    if step not in STEP_FIELDS:
        raise NotFound(f"no step {step!r}; steps: {', '.join(STEP_FIELDS)}")
    user = require_user()
    data = body(STEP_FIELDS[step])
    if step == "place":
        return jsonify(orders().place(order_id, community_staff(user, _community(order_id))
                                      .actor, data.get("note") or ""))
    if step == "take":
        _taker(user, order_id)
        return jsonify(orders().take(order_id, user.actor, data.get("note") or ""))
    if step == "complete":
        if user.role not in FINISHERS:
            raise Forbidden("community workers or the department mark an order done")
        if user.role == "department":
            _provider(user, orders().brief(order_id))
        else:
            community_staff(user, _community(order_id))
        return jsonify(orders().complete(order_id, user.actor, data.get("note")))
    if step == "confirm":
        return jsonify(orders().confirm(order_id, user.id, data.get("rating"),
                                        data.get("comment"), user.actor))
    found = orders().brief(order_id)  # staff may order at home too, and cancel as its owner
    owner = user.id if found["user_id"] == user.id or user.role not in COMMUNITY_STAFF else None
    if owner is None:
        community_staff(user, found["community_code"])
    return jsonify(orders().cancel(order_id, user.actor, data.get("reason"), user_id=owner))


def _provider(user, found: dict) -> None:
    """A department sees and completes only what was placed with it."""
    if found["provider_kind"] != "department" or found["provider"] != user.department:
        raise Forbidden("this order was not placed with your department")


def _community(order_id: int) -> str | None:
    return orders().brief(order_id)["community_code"]


def _taker(user, order_id: int) -> None:
    """The street or community answering for the order: its grid leaders and dispatchers."""
    if user.role not in TAKERS:
        raise Forbidden("the street or community does this: grid leaders, dispatchers")
    community_staff(user, _community(order_id))


@bp.get("/compounds/coverage")
def coverage():
    """How many compounds are old, and the share of those with a property manager."""
    return jsonify(Compounds(orders().db).coverage())


def init_app(app) -> None:
    """Service orders over the app's dispatch service (menu from ``GRIDLINE_SERVICE_MENU``,
    else the shipped ``service_menu.toml``)."""
    service = app.extensions["gridline"]
    menu = load_menu(app.config.get("SERVICE_MENU"), service.catalogue.departments)
    app.extensions["gridline.service_orders"] = ServiceOrders(service, menu)
    app.register_blueprint(bp)
