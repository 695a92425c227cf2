"""The native API: who may do what (the role × action matrix), mass assignment, the
lifecycle over HTTP, conflicts, sessions with CSRF, and rate limits."""

import io
import json
from datetime import timedelta

import pytest

from dispatch.services import Actor
from tests.dispatch.helpers import photo, report

ADMIN = Actor("admin", "admin")
ROLES = ["reporter", "gridworker", "grid_leader", "dispatcher", "other_dispatcher",
         "department", "planner", "admin", None]
ALLOWED = {
    "accept": {"gridworker", "grid_leader", "dispatcher", "admin"},
    "start": {"gridworker", "grid_leader", "dispatcher", "admin"},
    "resolve": {"gridworker", "grid_leader", "dispatcher", "admin"},
    "verify": {"grid_leader", "dispatcher", "admin"},
    "close": {"dispatcher", "admin"},
    "reopen": {"dispatcher", "admin"},
    "transfer": {"dispatcher", "admin"},
    "reject": {"grid_leader", "dispatcher", "admin"},
    "merge": {"dispatcher", "admin"},
}
BEFORE = {"accept": [], "start": ["accept"], "resolve": ["accept", "start"],
          "verify": ["accept", "start", "resolve"],
          "close": ["accept", "start", "resolve", "verify"],
          "reopen": ["accept", "start", "resolve"], "transfer": [], "reject": [], "merge": []}


def new_order(service, demo, clock, steps=(), category="road_collapse") -> int:
    """An order in grid 100 taken through ``steps`` by an admin."""
    order_id = service.submit_report(report(demo, 100, category=category))["work_order_id"]
    for step in steps:
        extra = {"feedback": "done", "photo": photo()} if step == "resolve" else {}
        service.act(order_id, step, ADMIN, **extra)
    clock.advance(days=31)  # the next order in the same place is not a duplicate
    return order_id


def call(client, people, role, order_id, action, service, demo, clock):
    headers = people[role]["headers"] if role else {}
    if action == "resolve":
        return client.post(f"/api/v1/orders/{order_id}/resolve", headers=headers,
                           data={"feedback": "修好了", "photo": (io.BytesIO(photo()), "p.jpg")},
                           content_type="multipart/form-data")
    body = {"reopen": {"reason": "again"}, "reject": {"reason": "not ours"},
            "transfer": {"reason": "theirs", "department": "chengguan"}}.get(action, {})
    if action == "merge":
        body = {"into": new_order(service, demo, clock, category="garbage")}
    return client.post(f"/api/v1/orders/{order_id}/{action}", json=body, headers=headers)


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("role", ROLES, ids=[str(r) for r in ROLES])
def test_the_role_action_matrix(client, people, service, demo, clock, action, role):
    order_id = new_order(service, demo, clock, BEFORE[action])
    before = service.order(order_id)
    answer = call(client, people, role, order_id, action, service, demo, clock)
    if role is None:
        assert answer.status_code == 401
    elif role in ALLOWED[action]:
        assert answer.status_code == 200, answer.json
        assert answer.json["version"] > before["version"]
        return
    else:
        assert answer.status_code == 403, answer.json
        assert answer.json["error"]["code"] == "forbidden"
    assert service.order(order_id) == before  # refused: nothing changed


@pytest.mark.parametrize("role, status", [
    ("dispatcher", 201), ("grid_leader", 201), ("admin", 201), ("gridworker", 403),
    ("other_dispatcher", 403), ("department", 403), ("planner", 403), ("reporter", 403)])
def test_who_may_blow_the_whistle(client, people, service, demo, clock, role, status):
    order_id = new_order(service, demo, clock)
    answer = client.post(f"/api/v1/orders/{order_id}/whistles", headers=people[role]["headers"],
                         json={"departments": ["zhujian", "chengguan"], "due_minutes": 30})
    assert answer.status_code == status
    assert len(service.order(order_id)["whistles"]) == (1 if status == 201 else 0)


def test_a_department_answers_only_its_own_summons(client, people, service, demo, clock):
    order_id = new_order(service, demo, clock)
    service.blow_whistle(order_id, ["zhujian", "chengguan"], 30, ADMIN)
    own = people["department"]["headers"]  # zhujian
    other = people["other_department"]["headers"]  # chengguan
    url = f"/api/v1/orders/{order_id}/whistles/1"
    assert client.post(f"{url}/duty", json={"department": "zhujian"},
                       headers=other).status_code == 403
    assert client.post(f"{url}/duty", json={"department": "zhujian"},
                       headers=own).status_code == 200
    assert client.post(f"{url}/complete", json={"department": "zhujian", "note": "ok"},
                       headers=own).status_code == 200
    assert client.post(f"{url}/duty", json={"department": "zhujian"},
                       headers=people["dispatcher"]["headers"]).status_code == 403
    summons = {s["department"]: s for s in service.order(order_id)["whistles"][0]["summons"]}
    assert summons["zhujian"]["done_at"] and summons["chengguan"]["reported_at"] is None


def test_an_admin_answering_for_a_department_is_recorded_as_admin(client, people, service,
                                                                   demo, clock):
    order_id = new_order(service, demo, clock)
    service.blow_whistle(order_id, ["zhujian"], 30, ADMIN)
    url = f"/api/v1/orders/{order_id}/whistles/1"
    for step, body in (("duty", {"department": "zhujian"}),
                       ("complete", {"department": "zhujian", "note": "ok"})):
        answer = client.post(f"{url}/{step}", json=body, headers=people["admin"]["headers"])
        assert answer.status_code == 200, answer.json
    trail = [(a["action"], a["actor"], a["role"]) for a in answer.json["audit"]][-2:]
    assert trail == [("report_for_duty", "admin", "admin"), ("complete_part", "admin", "admin")]


def test_each_summoned_department_may_have_its_own_deadline(client, people, service, demo,
                                                            clock):
    order_id = new_order(service, demo, clock)
    url = f"/api/v1/orders/{order_id}/whistles"
    headers = people["dispatcher"]["headers"]
    answer = client.post(url, headers=headers, json={
        "departments": {"xiaofang": 10, "zhujian": 45}, "reason": "塌陷"})
    assert answer.status_code == 201, answer.json
    due = {s["department"]: s["due_at"] for s in answer.json["whistles"][0]["summons"]}
    assert due == {"xiaofang": (clock.now + timedelta(minutes=10)).isoformat(),
                   "zhujian": (clock.now + timedelta(minutes=45)).isoformat()}
    quoted = client.post(url, headers=headers, json={"departments": ["chengguan"],
                                                     "due_minutes": "20"})
    assert quoted.status_code == 201 and len(quoted.json["whistles"]) == 2


@pytest.mark.parametrize("body, field", [
    ({"departments": {"zhujian": 0}}, "departments[zhujian]"),
    ({"departments": {"zhujian": -5}}, "departments[zhujian]"),
    ({"departments": {"zhujian": 2.5}}, "departments[zhujian]"),
    ({"departments": {"zhujian": "soon"}}, "departments[zhujian]"),
    ({"departments": {"nasa": 30}}, "departments"),
    ({"departments": {"zhujian": 30}, "due_minutes": 30}, "due_minutes"),
    ({"departments": ["zhujian"]}, "due_minutes"),
    ({"departments": ["zhujian"], "due_minutes": 2.5}, "due_minutes"),
    ({"departments": ["zhujian"], "due_minutes": "soon"}, "due_minutes"),
    ({"departments": ["zhujian"], "due_minutes": 10**30}, "due_minutes"),
    ({"departments": ["nasa"], "due_minutes": 30}, "departments"),
    ({"departments": "zhujian", "due_minutes": 30}, "departments"),
    ({"departments": [["zhujian"]], "due_minutes": 30}, "departments"),
    ({"due_minutes": 30}, "departments"),
    ({"departments": ["zhujian"], "due_minutes": 30, "reason": 42}, "reason"),
])
def test_bad_whistles_are_refused_by_name(client, people, service, demo, clock, body, field):
    order_id = new_order(service, demo, clock)
    before = service.order(order_id, staff=True)
    answer = client.post(f"/api/v1/orders/{order_id}/whistles", json=body,
                         headers=people["dispatcher"]["headers"])
    assert answer.status_code == 400 and answer.json["error"]["field"] == field, answer.json
    assert service.order(order_id, staff=True) == before


def test_mass_assignment_is_refused(client, people, service, demo, clock):
    data = report(demo, 100)
    answer = client.post("/api/v1/reports", json={**data, "state": "closed"})
    assert answer.status_code == 400 and answer.json["error"]["field"] == "state"
    answer = client.post("/api/v1/reports", json={**data, "assignee_id": 1})
    assert answer.status_code == 400 and answer.json["error"]["field"] == "assignee_id"
    order_id = new_order(service, demo, clock)
    answer = client.post(f"/api/v1/orders/{order_id}/accept", json={"state": "closed"},
                         headers=people["gridworker"]["headers"])
    assert answer.status_code == 400 and answer.json["error"]["field"] == "state"
    assert service.order(order_id)["state"] == "dispatched"


def test_reporters_see_their_own_private_fields_only(client, people, service, demo):
    created = client.post("/api/v1/reports", json=report(demo, 100),
                          headers=people["reporter"]["headers"])
    assert created.status_code == 201
    report_id, order_id = created.json["report_id"], created.json["work_order_id"]
    own = client.get(f"/api/v1/reports/{report_id}", headers=people["reporter"]["headers"])
    assert own.status_code == 200 and own.json["reporter_phone"] == "13812341234"
    other = client.get(f"/api/v1/reports/{report_id}",
                       headers=people["other_reporter"]["headers"])
    assert other.status_code == 403
    public = client.get(f"/api/v1/orders/{order_id}").json["reports"][0]
    assert public["reporter_phone"] == "138****1234" and public["reporter_name"] is None
    mine = client.get(f"/api/v1/orders/{order_id}",
                      headers=people["reporter"]["headers"]).json["reports"][0]
    assert mine["reporter_phone"] == "13812341234"
    assert client.get("/api/v1/orders", headers=people["reporter"]["headers"]).status_code == 403


def test_the_lifecycle_over_the_api_with_a_stale_version(client, people, service, demo, clock):
    order_id = new_order(service, demo, clock)
    worker = people["gridworker"]["headers"]
    version = client.get(f"/api/v1/orders/{order_id}").json["version"]
    assert client.post(f"/api/v1/orders/{order_id}/accept", json={"expected_version": version},
                       headers=worker).status_code == 200
    stale = client.post(f"/api/v1/orders/{order_id}/start", json={"expected_version": version},
                        headers=worker)
    assert stale.status_code == 409 and stale.json["error"]["code"] == "conflict"
    illegal = client.post(f"/api/v1/orders/{order_id}/close", json={},
                          headers=people["dispatcher"]["headers"])
    assert illegal.status_code == 409 and illegal.json["error"]["code"] == "illegal_transition"
    listed = client.get("/api/v1/orders?state=accepted", headers=people["dispatcher"]["headers"])
    assert [o["id"] for o in listed.json["orders"]] == [order_id]
    stats = client.get("/api/v1/stats?by=street", headers=people["admin"]["headers"])
    assert stats.status_code == 200 and stats.json[0]["reported"] >= 1
    assert client.get("/api/v1/orders/999999").status_code == 404
    assert client.get(f"/api/v1/orders/{order_id}").status_code == 200
    arabic = "".join(chr(0x660 + int(d)) for d in str(order_id))  # one order, one address
    assert client.get(f"/api/v1/orders/{arabic}").status_code == 404


def test_revoked_tokens_stop_working(app, client, people):
    headers = {"Authorization": "Bearer " + people["admin"]["token"]}
    assert client.get("/api/v1/gridworkers", headers=headers).status_code == 200
    app.extensions["gridline.accounts"].revoke_token(people["admin"]["token"])
    answer = client.get("/api/v1/gridworkers", headers=headers)
    assert answer.status_code == 401 and "revoked" in answer.json["error"]["message"]


def test_session_login_needs_csrf_for_changes(client, people, service, demo, clock):
    order_id = new_order(service, demo, clock)
    assert client.post("/login", json={"username": "dispatcher",
                                       "password": "wrong"}).status_code == 401
    login = client.post("/login", json={"username": "dispatcher", "password": "correct horse"})
    assert login.status_code == 200
    url = f"/api/v1/orders/{order_id}/reject"
    refused = client.post(url, data={"reason": "x"})
    assert refused.status_code == 400 and refused.json["error"]["code"] == "csrf"
    accepted = client.post(url, data={"reason": "x", "csrf_token": login.json["csrf_token"]})
    assert accepted.status_code == 200 and accepted.json["state"] == "rejected"


def test_a_call_without_a_session_cookie_is_given_none_and_a_login_still_is(client, people,
                                                                            demo):
    answer = client.post("/api/v1/reports", json=report(demo, 300))
    assert answer.status_code == 201 and "Set-Cookie" not in answer.headers
    assert client.get("/api/v1/gridworkers").status_code == 401
    login = client.post("/login", json={"username": "dispatcher", "password": "correct horse"})
    assert "session=" in login.headers["Set-Cookie"]
    assert client.get("/api/v1/gridworkers").status_code == 200  # the cookie is read


def test_report_creation_is_rate_limited(app, client, demo):
    app.config["REPORT_RATE_LIMIT"] = "3 per minute"
    codes = [client.post("/api/v1/reports", json=report(demo, 10 * i + 1, category="noise"))
             .status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]
    limited = client.post("/api/v1/reports", json=report(demo, 300))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.json["error"]["status"] == 429


def test_a_form_carries_a_categorys_answers_as_json_text_beside_the_photo(client, demo, service):
    data = {k: str(v) for k, v in report(demo, 100, category="illegal_parking").items()}
    answers = {"plate_number": "陕A12345"}
    sent = client.post("/api/v1/reports", data={
        **data, "attributes": json.dumps(answers, ensure_ascii=False),
        "photo": (io.BytesIO(photo()), "p.jpg")}, content_type="multipart/form-data")
    assert sent.status_code == 201, sent.json
    order = service.order(sent.json["work_order_id"], staff=True)
    assert order["reports"][0]["photo"]
    bad = client.post("/api/v1/reports", data={**data, "attributes": "{not json"},
                      content_type="multipart/form-data")
    assert bad.status_code == 400 and bad.json["error"]["field"] == "attributes"
