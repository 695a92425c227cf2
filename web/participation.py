"""Points and the points supermarket over HTTP: the JSON API at ``/api/v1/points`` and
``/api/v1/supermarket``, and a person's statement page at ``/points``.

Who may do what: anyone sees the items and the leaderboard (names masked, but for staff and
one's own); a logged-in person reads their own statement and redeems for themselves only;
community workers (gridworkers, grid leaders, dispatchers, admins) check in volunteering, stock
the shelves, hand items over and cancel in their own communities, and read anyone's statement;
only an admin adjusts or reverses points.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify, render_template, request

from dispatch.accounts import User, check_community
from dispatch.errors import Forbidden, NotFound
from dispatch.points import Points, load_points_rules
from dispatch.supermarket import Supermarket
from web import args
from web.api import body
from web.auth import current_user, require_user

bp = Blueprint("participation", __name__)
COMMUNITY_STAFF = ("gridworker", "grid_leader", "dispatcher", "admin")


def points() -> Points:
    return current_app.extensions["gridline.points"]


def market() -> Supermarket:
    return current_app.extensions["gridline.supermarket"]


_ANY = object()  # no particular community: the role alone is checked


def community_staff(user: User, community_code=_ANY) -> User:
    """The user, if they work for a community — ``community_code``'s, when given — or
    administer the service; else Forbidden."""
    if user.role not in COMMUNITY_STAFF:
        raise Forbidden(f"a {user.role} account may not do this; it needs a community worker")
    if community_code is not _ANY:
        check_community(current_app.extensions["gridline"].db, user, community_code)
    return user


def admin(user: User) -> User:
    if user.role != "admin":
        raise Forbidden("only an admin may adjust or reverse points")
    return user


def self_or_staff(user: User, owner_id: int) -> None:
    if user.id != owner_id and user.role not in COMMUNITY_STAFF:
        raise Forbidden("you may see and act on your own points only")


# --- points -----------------------------------------------------------------------------------


@bp.get("/api/v1/points/me")
def my_statement():
    return jsonify(points().statement(require_user().id, args.int_arg("limit", 100, 1, 500)))


@bp.get("/api/v1/points/users/<int:user_id>")
def statement(user_id: int):
    self_or_staff(require_user(), user_id)
    return jsonify(points().statement(user_id, args.int_arg("limit", 100, 1, 500)))


@bp.post("/api/v1/points/activities")
def check_in():
    data = body({"user_id", "activity", "hours", "community_code", "idempotency_key"})
    user = community_staff(require_user(), data.get("community_code"))
    if data.get("user_id") == user.id:
        raise Forbidden("a community worker cannot check in their own volunteering")
    return jsonify(points().check_in(data.get("user_id"), data.get("activity"),
                                     data.get("hours"), data.get("community_code"),
                                     user.actor, data.get("idempotency_key"))), 201


@bp.post("/api/v1/points/adjustments")
def adjust():
    user = admin(require_user())
    data = body({"user_id", "amount", "reason", "community_code"})
    return jsonify(points().adjust(data.get("user_id"), data.get("amount"), data.get("reason"),
                                   user.actor, data.get("community_code"))), 201


@bp.post("/api/v1/points/entries/<int:entry_id>/reversal")
def reverse(entry_id: int):
    user = admin(require_user())
    data = body({"reason"})
    return jsonify(points().reverse(entry_id, data.get("reason"), user.actor)), 201


@bp.get("/api/v1/points/leaderboard")
def leaderboard():
    month = request.args.get("month") or points().service.clock().astimezone(
        points().service.timezone).strftime("%Y-%m")
    board = points().leaderboard(args.text_arg("community", required=True), month,
                                 args.int_arg("limit", 20, 1, 100))
    user = current_user()
    if user is None or not user.is_staff:  # others see a name masked, but their own in full
        board = [row if user is not None and row["user_id"] == user.id
                 else {**row, "username": _masked(row["username"])} for row in board]
    return jsonify(board)


def _masked(name: str) -> str:
    """A name shown to the public: its first character and stars (张**, r*******)."""
    return name[:1] + "*" * max(len(name) - 1, 2)


# --- the supermarket --------------------------------------------------------------------------


@bp.get("/api/v1/supermarket/items")
def items():
    return jsonify(market().items(args.text_arg("community"), args.text_arg("station")))


@bp.post("/api/v1/supermarket/items")
def add_item():
    data = body({"name", "price", "stock", "community_code", "station_id"})
    community_staff(require_user(), data.get("community_code"))
    return jsonify(market().add_item(data.get("name"), data.get("price"), data.get("stock"),
                                     community_code=data.get("community_code"),
                                     station_id=data.get("station_id"))), 201


@bp.post("/api/v1/supermarket/redemptions")
def redeem():
    user = require_user()
    data = body({"item_id", "quantity", "user_id", "idempotency_key"})
    if data.get("user_id", user.id) != user.id:
        raise Forbidden("you may redeem points for yourself only")
    return jsonify(market().redeem(user.id, data.get("item_id"), data.get("quantity", 1),
                                   user.actor, data.get("idempotency_key"))), 201


@bp.get("/api/v1/supermarket/redemptions/<int:redemption_id>")
def get_redemption(redemption_id: int):
    user = require_user()
    found = market().redemption(redemption_id)
    self_or_staff(user, found["user_id"])
    return jsonify(found)


@bp.post("/api/v1/supermarket/redemptions/<int:redemption_id>/<step>")
def close_redemption(redemption_id: int, step: str):
    """``hand-over`` (a community worker confirms) or ``cancel`` (its owner or a worker)."""
    if step not in ("hand-over", "cancel"):
        raise NotFound("the steps of a redemption are hand-over and cancel")
    user = require_user()
    body(set())
    found = market().redemption(redemption_id)
    if step == "hand-over" and found["user_id"] == user.id:
        raise Forbidden("a hand-over is confirmed by someone other than the person redeeming")
    if step == "hand-over" or found["user_id"] != user.id:
        community_staff(user, found["community_code"])
    close = market().hand_over if step == "hand-over" else market().cancel
    return jsonify(close(redemption_id, user.actor))


# --- the statement page -----------------------------------------------------------------------


@bp.get("/points")
def page():
    """The logged-in person's points: balance, ledger and redemptions (a login hint if none)."""
    user = current_user()
    found = points().statement(user.id) if user else None
    return render_template("points.html", user=user, statement=found, local=_local)


def _local(iso: str) -> str:
    """An ISO time as the district's clocks show it, to the minute."""
    return points().service.local_time(datetime.fromisoformat(iso)).strftime("%Y-%m-%d %H:%M")


def init_app(app) -> None:
    """Points and the supermarket over the app's dispatch service (rules from
    ``GRIDLINE_POINTS_RULES``, else the shipped ``points.toml``)."""
    service = app.extensions["gridline"]
    app.extensions["gridline.points"] = Points(service,
                                               load_points_rules(app.config.get("POINTS_RULES")))
    app.extensions["gridline.supermarket"] = Supermarket(service)
    app.register_blueprint(bp)
