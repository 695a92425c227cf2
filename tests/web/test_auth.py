"""Session logins and CSRF: a change sent with a session cookie needs the session's token,
whichever way the session was opened, and an account deactivated since is logged out."""

from __future__ import annotations

from sqlalchemy import update

from dispatch import schema as t
from tests.web.conftest import PASSWORD
from tests.web.test_api import new_order


def _form_login(client, username="dispatcher"):
    answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                         "next": "/map/live"})
    assert answer.status_code == 303
    with client.session_transaction() as session:
        return session["csrf"]


def _state(client, people, order_id):
    return client.get(f"/api/v1/orders/{order_id}",
                      headers=people["admin"]["headers"]).json["state"]


def test_a_form_login_still_needs_the_csrf_token_for_changes(client, people, service, demo,
                                                             clock):
    order_id = new_order(service, demo, clock)
    token = _form_login(client)
    url = f"/api/v1/orders/{order_id}/reject"
    for sent in ({}, {"csrf_token": ""}, {"csrf_token": "not-it"}):
        refused = client.post(url, data={"reason": "x", **sent})
        assert refused.status_code == 400
        error = refused.json["error"]
        assert (error["code"], error["field"]) == ("csrf", "csrf_token")
        assert error["request_id"]  # the common error shape
    assert _state(client, people, order_id) == "dispatched"
    accepted = client.post(url, data={"reason": "x", "csrf_token": token})
    assert accepted.status_code == 200 and accepted.json["state"] == "rejected"


def test_only_a_bearer_token_spares_a_session_the_csrf_check(client, people, service, demo,
                                                             clock):
    order_id = new_order(service, demo, clock)
    _form_login(client)
    url = f"/api/v1/orders/{order_id}/reject"
    refused = client.post(url, json={"reason": "x"}, headers={"Authorization": "Basic eDp5"})
    assert refused.status_code == 400 and refused.json["error"]["code"] == "csrf"
    assert _state(client, people, order_id) == "dispatched"
    # With a bearer token the token's holder acts, and the cookie plays no part.
    with_token = client.post(url, json={"reason": "x"}, headers=people["dispatcher"]["headers"])
    assert with_token.status_code == 200 and with_token.json["state"] == "rejected"


def test_a_token_that_is_not_ascii_is_refused_not_a_crash(client, people, service, demo, clock):
    order_id = new_order(service, demo, clock)
    _form_login(client)
    url = f"/api/v1/orders/{order_id}/reject"
    by_header = client.post(url, json={"reason": "x"}, headers={"X-CSRF-Token": "é"})
    by_form = client.post(url, data={"reason": "x", "csrf_token": "é"})
    assert by_header.status_code == by_form.status_code == 400
    assert by_header.json["error"]["code"] == by_form.json["error"]["code"] == "csrf"


def test_each_login_gets_a_new_csrf_token(client, people):
    first = client.post("/login", json={"username": "dispatcher", "password": PASSWORD})
    second = client.post("/login", json={"username": "dispatcher", "password": PASSWORD})
    assert first.json["csrf_token"] and second.json["csrf_token"] != first.json["csrf_token"]


def test_a_deactivated_account_is_logged_out(client, people, service):
    client.post("/login", json={"username": "dispatcher", "password": PASSWORD})
    assert client.get("/api/v1/gridworkers").status_code == 200
    with service.db.unit_of_work() as uow:
        uow.execute(update(t.users).where(t.users.c.username == "dispatcher").values(
            active=False))
    answer = client.get("/api/v1/gridworkers")
    assert answer.status_code == 401 and answer.json["error"]["code"] == "unauthorized"
    with client.session_transaction() as session:
        assert "user_id" not in session
    assert client.get("/healthz").status_code == 200
