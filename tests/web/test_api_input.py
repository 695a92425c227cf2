"""The native API refuses what it cannot take — a 400 naming the field, a 403 for an order out of
the caller's reach — before anything is written, instead of failing with a 500 or storing it."""

import pytest
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.services import MAX_DESCRIPTION
from tests.dispatch.helpers import inside, report
from tests.web.test_api import ADMIN, BEFORE, new_order


def order_in_street_of(service, demo, clock, street_code) -> int:
    """A new order in the first grid of ``street_code``."""
    index = list(demo.grids["street_code"]).index(street_code)
    order_id = service.submit_report(report(demo, index))["work_order_id"]
    clock.advance(days=31)
    return order_id


def count(service, table) -> int:
    with service.db.read() as uow:
        return uow.execute(select(func.count()).select_from(table)).scalar_one()


def refused(answer, field, status=400):
    assert answer.status_code == status, answer.json
    if status == 400:
        assert answer.json["error"]["field"] == field, answer.json


def test_a_dispatcher_may_not_merge_into_an_order_of_another_street(client, people, service,
                                                                    demo, clock):
    own = new_order(service, demo, clock)  # in the dispatcher's street
    theirs = order_in_street_of(service, demo, clock,
                                people["other_dispatcher"]["user"].street_code)
    before = {i: service.order(i, staff=True) for i in (own, theirs)}
    for source, target, who in ((own, theirs, "dispatcher"), (theirs, own, "other_dispatcher")):
        answer = client.post(f"/api/v1/orders/{source}/merge", json={"into": target},
                             headers=people[who]["headers"])
        assert answer.status_code == 403 and answer.json["error"]["code"] == "forbidden"
        assert f"#{target}" in answer.json["error"]["message"]
    assert {i: service.order(i, staff=True) for i in (own, theirs)} == before
    missing = client.post(f"/api/v1/orders/{own}/merge", json={"into": 999999},
                          headers=people["dispatcher"]["headers"])
    assert missing.status_code == 404
    merged = client.post(f"/api/v1/orders/{own}/merge", json={"into": theirs},
                         headers=people["admin"]["headers"])
    assert merged.status_code == 200 and merged.json["duplicate_of"] == theirs


BAD_NOTES = [{"text": "x"}, ["x"], 5, "x" * (MAX_DESCRIPTION + 1), "x" * 200_000]


@pytest.mark.parametrize("note", BAD_NOTES, ids=["object", "list", "number",
                                                 "just_too_long", "200k"])
@pytest.mark.parametrize("action", ["accept", "start", "verify", "close"])
def test_a_lifecycle_note_must_be_text_of_limited_length(client, people, service, demo, clock,
                                                         action, note):
    order_id = new_order(service, demo, clock, BEFORE[action])
    before = service.order(order_id, staff=True)
    answer = client.post(f"/api/v1/orders/{order_id}/{action}", json={"note": note},
                         headers=people["admin"]["headers"])
    refused(answer, "note")
    assert service.order(order_id, staff=True) == before


def test_a_lifecycle_note_is_kept_trimmed(client, people, service, demo, clock):
    order_id = new_order(service, demo, clock)
    answer = client.post(f"/api/v1/orders/{order_id}/accept", json={"note": " 马上到 "},
                         headers=people["admin"]["headers"])
    assert answer.status_code == 200 and answer.json["audit"][-1]["note"] == "马上到"
    left_out = client.post(f"/api/v1/orders/{order_id}/start", json={"note": None},
                           headers=people["admin"]["headers"])  # null: as if left out
    assert left_out.status_code == 200 and left_out.json["audit"][-1]["note"] == ""


@pytest.mark.parametrize("body, field", [
    ({"department": ["chengguan"]}, "department"), ({"department": {"a": 1}}, "department"),
    ({"department": 7}, "department"), ({"grid_code": ["a"]}, "grid_code"),
    ({"grid_code": {"a": 1}}, "grid_code"), ({"grid_code": 610104001001001}, "grid_code"),
])
def test_a_transfer_takes_text_only(client, people, service, demo, clock, body, field):
    order_id = new_order(service, demo, clock)
    before = service.order(order_id, staff=True)
    answer = client.post(f"/api/v1/orders/{order_id}/transfer",
                         json={"reason": "not ours", **body},
                         headers=people["dispatcher"]["headers"])
    refused(answer, field)
    assert service.order(order_id, staff=True) == before


@pytest.mark.parametrize("into", [1.7, "1.7", True, "two", None, {"id": 1}, [1]])
def test_merge_into_must_be_a_whole_number(client, people, service, demo, clock, into):
    target = new_order(service, demo, clock)
    order_id = new_order(service, demo, clock)
    before = {i: service.order(i, staff=True) for i in (target, order_id)}
    if into == 1.7:  # truncated, it would name a real order
        into = target + 0.7
    answer = client.post(f"/api/v1/orders/{order_id}/merge", json={"into": into},
                         headers=people["dispatcher"]["headers"])
    refused(answer, "into")
    assert {i: service.order(i, staff=True) for i in (target, order_id)} == before


def test_merge_into_may_come_as_digits_from_a_form(client, people, service, demo, clock):
    target = new_order(service, demo, clock)
    order_id = new_order(service, demo, clock)
    answer = client.post(f"/api/v1/orders/{order_id}/merge", data={"into": f" {target} "},
                         headers=people["dispatcher"]["headers"])
    assert answer.status_code == 200 and answer.json["duplicate_of"] == target


GOOD_MEETING = {"participants": ["街道", "物业"], "decisions": ["物业维修"],
                "tasks": [{"task": "更换井盖", "owner": "物业"}]}
BAD_MEETINGS = [
    ({"participants": "街道"}, "participants"),
    ({"participants": []}, "participants"),
    ({"participants": [""]}, "participants"),
    ({"participants": ["  "]}, "participants"),
    ({"participants": [1]}, "participants"),
    ({"participants": [{"name": "街道"}]}, "participants"),
    ({"participants": [None]}, "participants"),
    ({"participants": ["x" * 101]}, "participants"),
    ({"decisions": "维修"}, "decisions"),
    ({"decisions": [1]}, "decisions"),
    ({"decisions": [{"text": "维修"}]}, "decisions"),
    ({"decisions": [""]}, "decisions"),
    ({"decisions": ["x" * (MAX_DESCRIPTION + 1)]}, "decisions"),
    ({"tasks": {"task": "a", "owner": "b"}}, "tasks"),
    ({"tasks": ["更换井盖"]}, "tasks"),
    ({"tasks": [{"task": "更换井盖"}]}, "tasks"),
    ({"tasks": [{"task": "更换井盖", "owner": "物业", "due": "明天"}]}, "tasks"),
    ({"tasks": [{"task": 1, "owner": "物业"}]}, "tasks"),
    ({"tasks": [{"task": "更换井盖", "owner": ["物业"]}]}, "tasks"),
    ({"tasks": [{"task": {"a": 1}, "owner": "物业"}]}, "tasks"),
]


@pytest.mark.parametrize("change, field", BAD_MEETINGS,
                         ids=[f"{f}:{i}" for i, (_, f) in enumerate(BAD_MEETINGS)])
def test_a_meeting_record_has_the_documented_shape(client, people, service, demo, clock, change,
                                                   field):
    order_id = new_order(service, demo, clock)
    before = service.order(order_id, staff=True)
    answer = client.post(f"/api/v1/orders/{order_id}/meetings", json={**GOOD_MEETING, **change},
                         headers=people["dispatcher"]["headers"])
    refused(answer, field)
    assert service.order(order_id, staff=True) == before


def test_a_good_meeting_record_is_kept(client, people, service, demo, clock):
    order_id = new_order(service, demo, clock)
    answer = client.post(f"/api/v1/orders/{order_id}/meetings", json=GOOD_MEETING,
                         headers=people["dispatcher"]["headers"])
    assert answer.status_code == 201, answer.json
    meeting = answer.json["meetings"][0]
    assert {k: meeting[k] for k in GOOD_MEETING} == GOOD_MEETING


@pytest.mark.parametrize("step", ["duty", "complete"])
@pytest.mark.parametrize("note", [{"text": "到了"}, ["到了"], 5, "x" * (MAX_DESCRIPTION + 1)],
                         ids=["object", "list", "number", "too_long"])
def test_a_summons_note_must_be_text(client, people, service, demo, clock, step, note):
    order_id = new_order(service, demo, clock)
    service.blow_whistle(order_id, ["zhujian"], 30, ADMIN)
    if step == "complete":
        service.report_for_duty(order_id, 1, "zhujian", ADMIN)
    before = service.order(order_id, staff=True)
    answer = client.post(f"/api/v1/orders/{order_id}/whistles/1/{step}",
                         json={"department": "zhujian", "note": note},
                         headers=people["department"]["headers"])
    refused(answer, "note")
    assert service.order(order_id, staff=True) == before


def test_a_mobile_gridworker_gives_a_phone(client, people, service, demo):
    lon, lat = inside(demo, 200)
    before = count(service, t.gridworkers)
    for phone in ({}, {"phone": None}, {"phone": ""}):
        answer = client.post("/api/v1/mobile-gridworkers",
                             json={"name": "骑手小王", "lon": lon, "lat": lat, **phone},
                             headers=people["reporter"]["headers"])
        refused(answer, "phone")
    assert count(service, t.gridworkers) == before
    schema = client.get("/openapi.json").json["paths"]["/api/v1/mobile-gridworkers"]["post"]
    required = schema["requestBody"]["content"]["application/json"]["schema"]["required"]
    assert "phone" in required


FAR_OFF = [("EPSG:4547", 1e9, 3.8e6, "lon"), ("EPSG:3857", 1e30, 1e30, "lon"),
           ("EPSG:3857", 1e6, 1e30, "lat"), ("EPSG:3857", 3e7, 4e6, "lon")]


@pytest.mark.parametrize("crs, x, y, field", FAR_OFF)
def test_projected_points_that_are_nowhere_on_earth_are_refused(client, people, service, demo,
                                                                crs, x, y, field):
    sent = client.post("/api/v1/reports", json=report(demo, crs=crs, lon=x, lat=y))
    refused(sent, field)
    assert crs in sent.json["error"]["message"]
    placed = client.post("/api/v1/mobile-gridworkers", json={
        "name": "骑手小王", "phone": "13900001111", "crs": crs, "lon": x, "lat": y},
        headers=people["reporter"]["headers"])
    refused(placed, field)
    assert count(service, t.reports) == 0 and count(service, t.work_orders) == 0


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:4547", "EPSG:32649", "gcj02"])
def test_projected_points_in_the_district_are_taken(client, people, demo, crs):
    sent = client.post("/api/v1/reports", json=report(demo, 300, crs=crs))
    assert sent.status_code == 201 and sent.json["grid_code"] == demo.grids.iloc[300]["code"]
    lon, lat = inside(demo, 200, crs)
    placed = client.post("/api/v1/mobile-gridworkers", json={
        "name": "骑手小王", "phone": "13900001111", "crs": crs, "lon": lon, "lat": lat},
        headers=people["reporter"]["headers"])
    assert placed.status_code == 201 and placed.json["grid_code"] == demo.grids.iloc[200]["code"]


@pytest.mark.parametrize("query, field", [
    ("offset=9223372036854775808", "offset"), ("offset=99999999999", "offset"),
    ("offset=-1", "offset"), ("offset=1.5", "offset"), ("limit=9223372036854775808", "limit"),
    ("limit=0", "limit"), ("limit=ten", "limit"), ("limit=1_0", "limit"),
    ("offset=%D9%A1", "offset"), ("offset=" + "9" * 2000, "offset")])
def test_paging_arguments_are_bounded(client, people, query, field):
    answer = client.get(f"/api/v1/orders?{query}", headers=people["dispatcher"]["headers"])
    refused(answer, field)


def test_the_last_page_is_still_answered(client, people, service, demo, clock):
    new_order(service, demo, clock)
    answer = client.get("/api/v1/orders?offset=2147483647&limit=10000",
                        headers=people["dispatcher"]["headers"])
    assert answer.status_code == 200 and answer.json["orders"] == []


def test_an_idempotency_key_taken_by_another_reporter_is_a_conflict(client, people, service,
                                                                   demo):
    data = report(demo, 100, idempotency_key="phone-7")
    first = client.post("/api/v1/reports", json=data, headers=people["reporter"]["headers"])
    assert first.status_code == 201
    other = client.post("/api/v1/reports", json=data,
                        headers=people["other_reporter"]["headers"])
    assert other.status_code == 409 and other.json["error"]["code"] == "conflict"
    assert str(first.json["report_id"]) not in other.json["error"]["message"]
    again = client.post("/api/v1/reports", json=data, headers=people["reporter"]["headers"])
    assert again.status_code == 201 and again.json == first.json
    assert count(service, t.reports) == 1


@pytest.mark.parametrize("address", [12, ["北大街"], {"street": "北大街"}, "x" * 501])
def test_a_report_address_must_be_text_of_limited_length(client, service, demo, address):
    answer = client.post("/api/v1/reports", json=report(demo, 300, address=address))
    refused(answer, "address")
    assert count(service, t.reports) == 0


def test_a_report_address_is_kept_and_shown_with_the_order(client, people, service, demo):
    answer = client.post("/api/v1/reports",
                         json=report(demo, 300, address="  莲湖区 北大街 12 号 "))
    assert answer.status_code == 201
    order = client.get(f"/api/v1/orders/{answer.json['work_order_id']}",
                       headers=people["admin"]["headers"]).json
    assert [r["address"] for r in order["reports"]] == ["莲湖区 北大街 12 号"]
