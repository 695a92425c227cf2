"""Who is calling: API tokens (``Authorization: Bearer``), Open311 ``api_key``s, or a session
login for pages — and CSRF protection for forms sent with a session cookie."""

from __future__ import annotations

import hmac
import re
import secrets

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from dispatch.accounts import User
from dispatch.checks import UNPRINTABLE
from dispatch.errors import InputError, NotFound
from web.errors import Unauthorized, answer
from web.i18n import gettext as _

bp = Blueprint("auth", __name__)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def accounts():
    return current_app.extensions["gridline.accounts"]


def current_user() -> User | None:
    """The caller's account, or None for an anonymous request (cached per request)."""
    if "user" not in g:
        g.user = _identify()
    return g.user


def require_user() -> User:
    user = current_user()
    if user is None:
        raise Unauthorized("send an API token (Authorization: Bearer ...) or log in")
    return user


def bearer_token() -> str | None:
    """The API token of an ``Authorization: Bearer`` header, if one was sent."""
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None


def _identify() -> User | None:
    token = bearer_token()
    if token is not None:
        user = accounts().user_for_token(token)
        if user is None:
            raise Unauthorized("the API token is unknown or revoked")
        return user
    if session.get("user_id") is not None:
        try:
            return accounts().user(session["user_id"])
        except NotFound:  # deactivated or removed since logging in: the session is over
            session.clear()
    return None


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


class SessionCookie(SecureCookieSessionInterface):
    """Flask's signed session cookie, read only when a request sends one: apps calling the API
    send none, and for them making the cookie's signer would be work for nothing."""

    def open_session(self, app: Flask, request):
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def init_app(app) -> None:
    app.session_interface = SessionCookie()
    app.register_blueprint(bp)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def check_csrf():
        """Changes sent with a session cookie must carry the session's CSRF token (a request
        with a bearer token is identified by the token alone, never by the cookie)."""
        if request.method not in UNSAFE or bearer_token() is not None:
            return None
        if session.get("user_id") is None or request.path == "/login":
            return None
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return answer(400, "csrf", "missing or wrong CSRF token", "csrf_token")
        return None


@bp.get("/login")
def login_page():
    """The login form of the pages; it comes back to ``next`` (a path of this site)."""
    return render_template("login.html", title=_("Log in"),
                           next=local_path(request.args.get("next")), failed=False)


@bp.post("/login")
def login():
    """Session login for pages: form or JSON ``username`` and ``password``. The page's form
    (which sends ``next``) is answered by going there, or by the form again on a wrong
    password; anything else gets JSON."""
    data = request.get_json(silent=True) if request.is_json else request.form
    if not hasattr(data, "get"):
        raise InputError("send username and password as a JSON object or a form",
                         field="username")
    from_page = not request.is_json and "next" in data
    user = accounts().authenticate(str(data.get("username", "")), str(data.get("password", "")))
    if user is None and from_page:
        return render_template("login.html", title=_("Log in"), failed=True,
                               next=local_path(data.get("next"))), 401
    if user is None:
        raise Unauthorized("wrong username or password")
    session.clear()
    session["user_id"] = user.id
    token = csrf_token()  # a new one for each login, whichever way it came
    if from_page:
        return redirect(local_path(data.get("next")), code=303)
    return jsonify({"username": user.username, "role": user.role, "csrf_token": token})


def local_path(value) -> str:
    """``value`` if it is a path on this site, else the home page (no open redirects). It is
    read as a browser reads a URL: tabs and line breaks dropped, ``\\`` taken for ``/``."""
    text = re.sub(r"[\t\n\r]", "", str(value or ""))
    local = (text.startswith("/") and not text.startswith("//") and "\\" not in text
             and not UNPRINTABLE.search(text))
    return text if local else "/map/live"


def login_redirect():
    """Send a page's visitor who is not logged in to the login form, and back afterwards."""
    return redirect(url_for("auth.login_page", next=request.full_path.rstrip("?")))


@bp.post("/logout")
def logout():
    session.clear()
    return jsonify({"logged_out": True})
