"""End to end over real HTTP (waitress on a local port), on both databases."""

from tests.dispatch.helpers import inside, photo


def test_from_an_open311_report_to_a_closed_order(live, http, people, demo):
    lon, lat = inside(demo, 100, "gcj02")
    created = http.post(f"{live}/open311/v2/requests.json", data={
        "api_key": people["reporter"]["token"], "service_code": "road_collapse",
        "lat": lat, "long": lon, "crs": "gcj02", "description": "路面塌陷",
        "phone": "13900000001"})
    assert created.status_code == 201, created.text
    request_id = created.json()[0]["service_request_id"]

    def staff(name):
        return {"headers": people[name]["headers"]}

    orders = http.get(f"{live}/api/v1/orders?state=dispatched", **staff("dispatcher")).json()
    [order] = orders["orders"]
    url = f"{live}/api/v1/orders/{order['id']}"
    assert http.post(f"{url}/accept", json={}, **staff("gridworker")).status_code == 200
    whistle = http.post(f"{url}/whistles", json={"departments": ["zhujian"], "due_minutes": 30,
                                                "reason": "吹哨"}, **staff("dispatcher"))
    assert whistle.status_code == 201
    for step, body in (("duty", {"department": "zhujian"}),
                       ("complete", {"department": "zhujian", "note": "已修复"})):
        answer = http.post(f"{url}/whistles/1/{step}", json=body, **staff("department"))
        assert answer.status_code == 200, answer.text
    assert http.post(f"{url}/start", json={}, **staff("gridworker")).status_code == 200
    resolved = http.post(f"{url}/resolve", data={"feedback": "回填完成"},
                         files={"photo": ("fix.jpg", photo(), "image/jpeg")},
                         **staff("gridworker"))
    assert resolved.status_code == 200, resolved.text
    repair = http.get(f"{live}/api/v1/photos/{resolved.json()['repair_photo']}")
    assert repair.status_code == 200 and repair.headers["Content-Type"] == "image/jpeg"
    for action in ("verify", "close"):
        assert http.post(f"{url}/{action}", json={}, **staff("dispatcher")).status_code == 200
    status = http.get(f"{live}/open311/v2/requests/{request_id}.json").json()[0]
    assert status["status"] == "closed" and status["status_notes"] == "回填完成"
    stats = http.get(f"{live}/api/v1/stats", **staff("admin")).json()
    assert stats[0]["closed"] == 1 and stats[0]["whistles_answered_on_time"] == 1
