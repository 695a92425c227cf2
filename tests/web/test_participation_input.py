"""Points, the supermarket and service orders refuse what they cannot take — a 400 naming the
field, a 403 for what is out of the caller's reach — before anything is written, on both
databases."""

import pytest

from dispatch.service_orders import ServiceOrders
from tests.dispatch.test_service_orders import in_compound
from tests.web.test_participation import HOME, mine

ORDERS = "/api/v1/service-orders"


def refused(answer, field, status=400):
    assert answer.status_code == status, answer.json
    if status == 400:
        assert answer.json["error"]["field"] == field, answer.json


def service_order(client, people, demo, who="reporter", community=HOME, service="greening"):
    lon, lat, _ = in_compound(demo, managed=True, community=community)
    made = client.post(ORDERS, headers=people[who]["headers"], json={
        "service": service, "description": "树枝挡住路灯", "lon": lon, "lat": lat})
    assert made.status_code == 201, made.json
    return made.json


@pytest.mark.parametrize("code", [123, ["610104003005"], {"code": HOME}, True])
def test_a_community_code_that_is_not_text_is_refused(client, people, code):
    for role in ("grid_leader", "dispatcher"):
        refused(client.post("/api/v1/points/activities", headers=people[role]["headers"],
                            json={"user_id": people["reporter"]["user"].id, "activity": "助老",
                                  "hours": 2, "community_code": code}), "community_code")
        refused(client.post("/api/v1/supermarket/items", headers=people[role]["headers"],
                            json={"name": "面粉", "price": 20, "stock": 3,
                                  "community_code": code}), "community_code")
    assert mine(client, people, "reporter")["balance"] == 0
    assert client.get("/api/v1/supermarket/items").json == []


@pytest.mark.parametrize("query", ["community=61010400\x003005", "community=" + "9" * 101,
                                   "station=s\x00"], ids=["nul", "too_long", "station_nul"])
def test_community_and_station_in_a_query_are_printable_codes(client, query):
    refused(client.get(f"/api/v1/supermarket/items?{query}"), query.split("=")[0])
    if query.startswith("community"):
        refused(client.get(f"/api/v1/points/leaderboard?{query}"), "community")


def test_a_leaderboard_names_its_community(client, people):
    refused(client.get("/api/v1/points/leaderboard"), "community")
    assert client.get(f"/api/v1/points/leaderboard?community={HOME}").json == []
    spec = client.get("/openapi.json").json["paths"]["/api/v1/points/leaderboard"]["get"]
    assert {"400", "401"} <= set(spec["responses"])
    assert client.get(f"/api/v1/points/leaderboard?community={HOME}",
                      headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize("note", [["a"], {"a": 1}, 7, "ok\x00\x07", "x" * 4001],
                         ids=["list", "object", "number", "unprintable", "too_long"])
@pytest.mark.parametrize("step", ["place", "take"])
def test_a_step_note_must_be_text_of_limited_length(client, people, demo, step, note):
    made = service_order(client, people, demo)
    if step == "take":
        assert client.post(f"{ORDERS}/{made['id']}/place", headers=people["admin"]["headers"],
                           json={}).status_code == 200
    before = client.get(f"{ORDERS}/{made['id']}", headers=people["admin"]["headers"]).json
    refused(client.post(f"{ORDERS}/{made['id']}/{step}", headers=people["admin"]["headers"],
                        json={"note": note}), "note")
    assert client.get(f"{ORDERS}/{made['id']}", headers=people["admin"]["headers"]).json == before


@pytest.mark.parametrize("path, kind", [(ORDERS, '"service": "greening"'),
                                        ("/api/v1/reports", '"category": "garbage"')])
def test_an_integer_too_large_for_a_coordinate_is_refused(client, people, demo, path, kind):
    lon, lat, _ = in_compound(demo, managed=True, community=HOME)
    body = f'{{{kind}, "description": "x", "lon": {10 ** 400}, "lat": {lat}}}'
    refused(client.post(path, headers={**people["reporter"]["headers"],
                                       "Content-Type": "application/json"}, data=body), "lon")


@pytest.mark.parametrize("who, status", [
    ("reporter", 200), ("other_reporter", 403), ("grid_leader", 200), ("dispatcher", 200),
    ("other_dispatcher", 403), ("department", 403), ("other_department", 200),
    ("planner", 403), ("admin", 200)])
def test_a_service_order_is_seen_by_its_resident_community_provider_and_admin(
        client, people, demo, who, status):
    made = service_order(client, people, demo)  # greening: placed with chengguan
    assert client.post(f"{ORDERS}/{made['id']}/place", headers=people["admin"]["headers"],
                       json={}).status_code == 200
    answer = client.get(f"{ORDERS}/{made['id']}", headers=people[who]["headers"])
    assert answer.status_code == status
    if status == 200:
        assert answer.json["id"] == made["id"]


def test_staff_cancel_their_own_order_placed_at_home_elsewhere(client, people, demo):
    made = service_order(client, people, demo, who="grid_leader", community="610104001001")
    stranger = service_order(client, people, demo, who="reporter", community="610104001001")
    refused(client.post(f"{ORDERS}/{stranger['id']}/cancel", json={"reason": "不需要了"},
                        headers=people["grid_leader"]["headers"]), None, status=403)
    cancelled = client.post(f"{ORDERS}/{made['id']}/cancel", json={"reason": "不需要了"},
                            headers=people["grid_leader"]["headers"])
    assert cancelled.status_code == 200 and cancelled.json["state"] == "cancelled"


def test_an_order_of_a_withdrawn_service_is_not_placed_but_may_be_cancelled(app, client,
                                                                            people, demo):
    made = service_order(client, people, demo)
    extensions = app.extensions
    current = extensions["gridline.service_orders"]
    withdrawn = ServiceOrders(current.service, menu={k: v for k, v in current.menu.items()
                                                     if k != "greening"})
    extensions["gridline.service_orders"] = withdrawn
    url = f"{ORDERS}/{made['id']}"
    placed = client.post(f"{url}/place", headers=people["admin"]["headers"], json={})
    assert placed.status_code == 409 and "no longer on the menu" in placed.json["error"][
        "message"]
    assert client.get(url, headers=people["admin"]["headers"]).json["state"] == "ordered"
    cancelled = client.post(f"{url}/cancel", headers=people["reporter"]["headers"],
                            json={"reason": "停止服务"})
    assert cancelled.status_code == 200 and cancelled.json["state"] == "cancelled"


def test_a_meeting_is_shown_to_staff_and_its_resident_only(client, people, demo):
    made = service_order(client, people, demo, service="mediation")
    held = client.post(f"{ORDERS}/{made['id']}/meetings", headers=people["grid_leader"][
        "headers"], json={"participants": ["居民甲", "居民乙"], "decisions": ["赔偿三千元"]})
    assert held.status_code == 201
    order_url = f"/api/v1/orders/{held.json['work_order_id']}"
    for headers in ({}, people["other_reporter"]["headers"]):
        public = client.get(order_url, headers=headers)
        assert public.status_code == 200 and public.json["meetings"] == []
        assert "赔偿三千元" not in public.get_data(as_text=True)
    staff = client.get(order_url, headers=people["dispatcher"]["headers"]).json
    assert staff["meetings"][0]["decisions"] == ["赔偿三千元"]
    own = client.get(f"{ORDERS}/{made['id']}", headers=people["reporter"]["headers"]).json
    assert own["meetings"][0]["decisions"] == ["赔偿三千元"]
