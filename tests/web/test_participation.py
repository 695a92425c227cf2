"""Points and the supermarket over HTTP: who may do what, bad input refused with nothing
changed, and the statement page."""

import pytest

HOME = "610104003005"  # the community of grid 100, where the people fixture's staff work


@pytest.fixture
def shelf(app):
    """A bag of flour (30 points, 2 in stock) in the community's supermarket."""
    return app.extensions["gridline.supermarket"].add_item("面粉 5kg", 30, 2,
                                                           community_code=HOME)


def grant(client, people, who, amount=100):
    answer = client.post("/api/v1/points/adjustments", headers=people["admin"]["headers"],
                         json={"user_id": people[who]["user"].id, "amount": amount,
                               "reason": "开户奖励"})
    assert answer.status_code == 201, answer.json
    return answer.json


def mine(client, people, who):
    return client.get("/api/v1/points/me", headers=people[who]["headers"]).json


@pytest.mark.parametrize("amount", [-5.5, 2.5, "10", 0, None, True, 10**9])
def test_fractional_or_out_of_range_adjustments_are_refused(client, people, amount):
    grant(client, people, "reporter", 10)
    answer = client.post("/api/v1/points/adjustments", headers=people["admin"]["headers"],
                         json={"user_id": people["reporter"]["user"].id, "amount": amount,
                               "reason": "试试"})
    assert answer.status_code == 400 and answer.json["error"]["field"] == "amount"
    statement = mine(client, people, "reporter")
    assert statement["balance"] == 10 and len(statement["entries"]) == 1


@pytest.mark.parametrize("role", ["reporter", "gridworker", "dispatcher", "department"])
def test_only_an_admin_adjusts_points(client, people, role):
    answer = client.post("/api/v1/points/adjustments", headers=people[role]["headers"],
                         json={"user_id": people[role]["user"].id, "amount": 50,
                               "reason": "自己加分"})
    assert answer.status_code == 403 and answer.json["error"]["code"] == "forbidden"
    assert mine(client, people, role)["balance"] == 0


@pytest.mark.parametrize("role, status", [("grid_leader", 201), ("dispatcher", 201),
                                          ("other_dispatcher", 403), ("reporter", 403),
                                          ("department", 403), ("planner", 403)])
def test_community_workers_check_in_volunteering(client, people, role, status):
    answer = client.post("/api/v1/points/activities", headers=people[role]["headers"],
                         json={"user_id": people["reporter"]["user"].id, "activity": "助老",
                               "hours": 2, "community_code": HOME})
    assert answer.status_code == status
    assert mine(client, people, "reporter")["balance"] == (40 if status == 201 else 0)


def test_a_check_in_retried_with_its_key_is_answered_as_the_first(client, people):
    sent = {"user_id": people["reporter"]["user"].id, "activity": "助老", "hours": 2,
            "community_code": HOME, "idempotency_key": "app-42"}
    headers = people["grid_leader"]["headers"]
    first = client.post("/api/v1/points/activities", headers=headers, json=sent)
    again = client.post("/api/v1/points/activities", headers=headers, json=sent)
    assert first.status_code == again.status_code == 201 and again.json == first.json
    other = client.post("/api/v1/points/activities", headers=headers,
                        json={**sent, "hours": 3})
    assert other.status_code == 409
    assert mine(client, people, "reporter")["balance"] == 40


def test_an_unknown_community_is_named(client, people):
    answer = client.post("/api/v1/points/activities", headers=people["admin"]["headers"],
                         json={"user_id": people["reporter"]["user"].id, "activity": "助老",
                               "hours": 2, "community_code": "nowhere"})
    assert answer.status_code == 400 and answer.json["error"]["field"] == "community_code"


def test_redeem_and_hand_over(client, people, shelf):
    grant(client, people, "reporter")
    taken = client.post("/api/v1/supermarket/redemptions", headers=people["reporter"]["headers"],
                        json={"item_id": shelf["id"]})
    assert taken.status_code == 201 and taken.json["state"] == "reserved"
    url = f"/api/v1/supermarket/redemptions/{taken.json['id']}"
    for role in ("reporter", "department", "planner", "other_dispatcher"):  # not here
        refused = client.post(f"{url}/hand-over", headers=people[role]["headers"], json={})
        assert refused.status_code == 403
    assert client.get(url, headers=people["reporter"]["headers"]).json["state"] == "reserved"
    assert client.get(url, headers=people["other_reporter"]["headers"]).status_code == 403
    handed = client.post(f"{url}/hand-over", headers=people["grid_leader"]["headers"], json={})
    assert handed.status_code == 200 and handed.json["state"] == "handed_over"
    again = client.post(f"{url}/cancel", headers=people["reporter"]["headers"], json={})
    assert again.status_code == 409
    items = client.get(f"/api/v1/supermarket/items?community={HOME}").json
    assert items == [{**shelf, "stock": 1}]
    assert mine(client, people, "reporter")["balance"] == 70


def test_a_redemption_retried_with_its_key_is_answered_as_the_first(client, people, shelf):
    grant(client, people, "reporter")
    sent = {"item_id": shelf["id"], "idempotency_key": "tap-9"}
    headers = people["reporter"]["headers"]
    first = client.post("/api/v1/supermarket/redemptions", headers=headers, json=sent)
    again = client.post("/api/v1/supermarket/redemptions", headers=headers, json=sent)
    assert first.status_code == again.status_code == 201 and again.json == first.json
    other = client.post("/api/v1/supermarket/redemptions", headers=headers,
                        json={**sent, "quantity": 2})
    assert other.status_code == 409
    assert mine(client, people, "reporter")["balance"] == 70
    assert client.get(f"/api/v1/supermarket/items?community={HOME}").json[0]["stock"] == 1


def test_bad_redemptions_are_refused_and_change_nothing(client, people, shelf):
    grant(client, people, "reporter", 40)
    headers = people["reporter"]["headers"]
    cases = [({"item_id": 9999}, 404, None),
             ({"item_id": shelf["id"], "user_id": people["other_reporter"]["user"].id}, 403,
              None),
             ({"item_id": shelf["id"], "quantity": 2}, 409, None),  # 60 points, 40 held
             ({"item_id": shelf["id"], "quantity": -1}, 400, "quantity"),
             ({"item_id": shelf["id"], "quantity": 1.5}, 400, "quantity"),
             ({"item_id": shelf["id"], "price": 0}, 400, "price")]
    for data, status, field in cases:
        answer = client.post("/api/v1/supermarket/redemptions", headers=headers, json=data)
        assert answer.status_code == status, (data, answer.json)
        assert answer.json["error"]["field"] == field
    assert client.post("/api/v1/supermarket/redemptions", json={"item_id": shelf["id"]}
                       ).status_code == 401
    assert mine(client, people, "reporter")["balance"] == 40
    assert mine(client, people, "reporter")["redemptions"] == []
    assert client.get("/api/v1/supermarket/items").json[0]["stock"] == 2


def test_cancel_by_its_owner_gives_everything_back(client, people, shelf):
    grant(client, people, "reporter")
    taken = client.post("/api/v1/supermarket/redemptions", headers=people["reporter"]["headers"],
                        json={"item_id": shelf["id"], "quantity": 2}).json
    url = f"/api/v1/supermarket/redemptions/{taken['id']}/cancel"
    assert client.post(url, headers=people["other_reporter"]["headers"],
                       json={}).status_code == 403
    assert client.post(url, headers=people["reporter"]["headers"], json={}).status_code == 200
    assert client.get("/api/v1/supermarket/items").json[0]["stock"] == 2
    assert mine(client, people, "reporter")["balance"] == 100


def test_reversal_and_statements_by_role(client, people):
    entry = client.post("/api/v1/points/activities", headers=people["grid_leader"]["headers"],
                        json={"user_id": people["reporter"]["user"].id, "activity": "清扫",
                              "hours": 1, "community_code": HOME}).json
    url = f"/api/v1/points/entries/{entry['id']}/reversal"
    assert client.post(url, headers=people["grid_leader"]["headers"],
                       json={"reason": "x"}).status_code == 403
    assert client.post(url, headers=people["admin"]["headers"], json={}).status_code == 400
    reversed_ = client.post(url, headers=people["admin"]["headers"], json={"reason": "重复登记"})
    assert reversed_.status_code == 201 and reversed_.json["amount"] == -20
    owner = people["reporter"]["user"].id
    for role, status in (("reporter", 200), ("gridworker", 200), ("other_reporter", 403)):
        answer = client.get(f"/api/v1/points/users/{owner}", headers=people[role]["headers"])
        assert answer.status_code == status
    board = client.get(f"/api/v1/points/leaderboard?community={HOME}&month=2026-11")
    assert board.status_code == 200 and board.json == []


def test_the_statement_page(client, people, shelf):
    assert "登录" in client.get("/points").get_data(as_text=True)
    grant(client, people, "reporter")
    client.post("/api/v1/supermarket/redemptions", headers=people["reporter"]["headers"],
                json={"item_id": shelf["id"]})
    client.post("/login", json={"username": "reporter", "password": "correct horse"})
    html = client.get("/points").get_data(as_text=True)
    assert 'id="balance">70<' in html and "面粉 5kg" in html and "积分超市兑换" in html
    english = client.get("/points?lang=en").get_data(as_text=True)
    assert "Redeemed in the points supermarket" in english


def test_staff_neither_credit_nor_hand_over_to_themselves(client, people, shelf):
    leader = people["grid_leader"]
    own = client.post("/api/v1/points/activities", headers=leader["headers"],
                      json={"user_id": leader["user"].id, "activity": "巡查", "hours": 8,
                            "community_code": HOME})
    assert own.status_code == 403 and mine(client, people, "grid_leader")["balance"] == 0
    grant(client, people, "grid_leader")
    taken = client.post("/api/v1/supermarket/redemptions", headers=leader["headers"],
                        json={"item_id": shelf["id"]}).json
    url = f"/api/v1/supermarket/redemptions/{taken['id']}"
    assert client.post(f"{url}/hand-over", headers=leader["headers"], json={}).status_code == 403
    handed = client.post(f"{url}/hand-over", headers=people["dispatcher"]["headers"], json={})
    assert handed.status_code == 200 and handed.json["state"] == "handed_over"


def test_a_station_shelf_belongs_to_no_community_and_is_for_an_admin(client, people):
    item = {"name": "矿泉水", "price": 5, "stock": 10, "station_id": "ST001"}
    for role in ("grid_leader", "dispatcher", "gridworker"):
        answer = client.post("/api/v1/supermarket/items", headers=people[role]["headers"],
                             json=item)
        assert answer.status_code == 403, role
    assert client.get("/api/v1/supermarket/items").json == []
    added = client.post("/api/v1/supermarket/items", headers=people["admin"]["headers"],
                        json=item)
    assert added.status_code == 201


@pytest.mark.parametrize("month", ["9999-12", "0001-01", "1999-12"])
def test_a_leaderboard_month_out_of_range_is_refused(client, month):
    answer = client.get(f"/api/v1/points/leaderboard?community={HOME}&month={month}")
    assert answer.status_code == 400 and answer.json["error"]["field"] == "month"
