"""End to end over real HTTP (waitress on a local port), on both databases: a rider's verified
hazard report earns points that buy a bag of flour; a resident's property repair is placed,
taken, done and rated."""

from tests.dispatch.helpers import photo, report
from tests.dispatch.test_service_orders import in_compound
from tests.web.test_participation import HOME


def test_a_rider_earns_points_and_redeems_flour(live, http, people, demo):
    def as_(name):
        return {"headers": people[name]["headers"]}

    hazard = report(demo, 100, category="electrical_hazard", description="电线裸露在人行道上")
    created = http.post(f"{live}/api/v1/reports", json=hazard, **as_("reporter"))
    assert created.status_code == 201, created.text
    community = created.json()["community_code"]
    url = f"{live}/api/v1/orders/{created.json()['work_order_id']}"
    for action in ("accept", "start"):
        assert http.post(f"{url}/{action}", json={}, **as_("gridworker")).status_code == 200
    assert http.post(f"{url}/resolve", data={"feedback": "已包扎"},
                     files={"photo": ("fix.jpg", photo(), "image/jpeg")},
                     **as_("gridworker")).status_code == 200
    assert http.post(f"{url}/verify", json={}, **as_("dispatcher")).status_code == 200
    assert http.get(f"{live}/api/v1/points/me", **as_("reporter")).json()["balance"] == 20

    flour = http.post(f"{live}/api/v1/supermarket/items", json={
        "name": "面粉 5kg", "price": 20, "stock": 3, "community_code": community},
        **as_("grid_leader"))
    assert flour.status_code == 201, flour.text
    taken = http.post(f"{live}/api/v1/supermarket/redemptions",
                      json={"item_id": flour.json()["id"]}, **as_("reporter"))
    assert taken.status_code == 201, taken.text
    handed = http.post(f"{live}/api/v1/supermarket/redemptions/{taken.json()['id']}/hand-over",
                       json={}, **as_("grid_leader"))
    assert handed.status_code == 200 and handed.json()["state"] == "handed_over"
    shelf = http.get(f"{live}/api/v1/supermarket/items", params={"community": community}).json()
    assert shelf[0]["stock"] == 2

    statement = http.get(f"{live}/api/v1/points/me", **as_("reporter")).json()
    assert statement["balance"] == 0
    assert [(e["cause"], e["amount"]) for e in statement["entries"]] == [("redemption", -20),
                                                                         ("report", 20)]
    assert statement["redemptions"][0]["item"] == "面粉 5kg"
    assert statement["redemptions"][0]["state"] == "handed_over"
    month = {"community": community, "month": "2026-11"}
    board = http.get(f"{live}/api/v1/points/leaderboard", params=month, **as_("reporter"))
    assert board.json() == [{"rank": 1, "user_id": people["reporter"]["user"].id,
                             "username": "reporter", "points": 20}]
    public = http.get(f"{live}/api/v1/points/leaderboard", params=month).json()
    assert public[0]["username"] == "r*******"


def test_a_resident_orders_a_property_repair(live, http, people, demo):
    def as_(name):
        return {"headers": people[name]["headers"]}

    lon, lat, compound = in_compound(demo, managed=True, community=HOME)
    made = http.post(f"{live}/api/v1/service-orders", json={
        "service": "property_repair", "description": "楼道灯不亮", "lon": lon, "lat": lat},
        **as_("reporter"))
    assert made.status_code == 201, made.text
    url = f"{live}/api/v1/service-orders/{made.json()['id']}"
    assert http.post(f"{url}/place", json={}, **as_("reporter")).status_code == 403
    placed = http.post(f"{url}/place", json={}, **as_("grid_leader"))
    assert placed.json()["provider"] == compound["property_company"]
    assert http.post(f"{url}/take", json={}, **as_("gridworker")).status_code == 403
    assert http.post(f"{url}/take", json={"note": "街道接单"},
                     **as_("dispatcher")).status_code == 200
    assert http.post(f"{url}/complete", json={"note": "已更换灯泡"},
                     **as_("grid_leader")).status_code == 200
    assert http.post(f"{url}/confirm", json={"rating": 5},
                     **as_("other_reporter")).status_code == 403
    rated = http.post(f"{url}/confirm", json={"rating": 5, "comment": "很快"},
                      **as_("reporter"))
    assert rated.status_code == 200 and rated.json()["state"] == "confirmed"
    trail = http.get(url, **as_("reporter")).json()["audit"]
    assert [a["action"] for a in trail] == ["order", "place", "take", "complete", "confirm"]
    assert http.get(url, **as_("other_reporter")).status_code == 403
    coverage = http.get(f"{live}/api/v1/compounds/coverage").json()
    assert 0 < coverage["share"] < 1


def test_a_dispute_meets_over_http(client, people, demo):
    lon, lat, compound = in_compound(demo, managed=True, community=HOME)
    made = client.post("/api/v1/service-orders", headers=people["reporter"]["headers"], json={
        "service": "mediation", "description": "楼上漏水，邻里协商", "lon": lon, "lat": lat})
    url = f"/api/v1/service-orders/{made.json['id']}/meetings"
    meeting = {"participants": ["居民甲", "居民乙", compound["property_company"]],
               "decisions": ["物业维修"], "tasks": [{"task": "维修", "owner": "物业"}]}
    refused = client.post(url, headers=people["gridworker"]["headers"], json=meeting)
    assert refused.status_code == 403
    bad = client.post(url, headers=people["grid_leader"]["headers"],
                      json={**meeting, "tasks": [{"task": "维修"}]})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "tasks"
    assert client.get(f"/api/v1/service-orders/{made.json['id']}", headers=people[
        "reporter"]["headers"]).json["work_order_id"] is None  # refused: no case opened
    held = client.post(url, headers=people["grid_leader"]["headers"], json=meeting)
    assert held.status_code == 201 and held.json["meetings"][0]["decisions"] == ["物业维修"]
    assert len(client.get(f"/api/v1/service-orders/{made.json['id']}",
                          headers=people["reporter"]["headers"]).json["meetings"]) == 1


def test_staff_act_on_service_orders_of_their_own_communities_only(client, people, demo):
    lon, lat, _ = in_compound(demo, managed=True, community="610104001001")  # another street
    made = client.post("/api/v1/service-orders", headers=people["reporter"]["headers"], json={
        "service": "greening", "description": "树枝挡住路灯", "lon": lon, "lat": lat}).json
    url = f"/api/v1/service-orders/{made['id']}"
    for step, role in (("place", "grid_leader"), ("place", "dispatcher"),
                       ("cancel", "gridworker")):
        refused = client.post(f"{url}/{step}", headers=people[role]["headers"],
                              json={"reason": "x"} if step == "cancel" else {})
        assert refused.status_code == 403, (step, role)
    for step, role in (("place", "admin"), ("take", "admin")):
        assert client.post(f"{url}/{step}", headers=people[role]["headers"],
                           json={}).status_code == 200
    wrong = client.post(f"{url}/complete", headers=people["department"]["headers"],  # zhujian
                        json={"note": "已修剪"})
    assert wrong.status_code == 403
    done = client.post(f"{url}/complete", headers=people["other_department"]["headers"],
                       json={"note": "已修剪"})
    assert done.status_code == 200 and done.json["provider"] == "chengguan"
