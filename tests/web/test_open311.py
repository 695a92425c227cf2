"""Open311 GeoReport v2: the spec's JSON and XML, errors in its shape, real clients' requests."""

from dataclasses import replace
from datetime import datetime
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select, update

from dispatch import schema as t
from dispatch.services import Actor
from tests.dispatch.helpers import inside, photo

BASE = "/open311/v2"


def xml(answer):
    assert answer.mimetype == "text/xml"
    return ElementTree.fromstring(answer.data)


def post(client, people, demo, **fields):
    lon, lat = inside(demo, 100)
    form = {"api_key": people["reporter"]["token"], "service_code": "road_collapse",
            "lat": str(lat), "long": str(lon), "description": "路面塌陷", "phone": "13912345678",
            "first_name": "Li", "last_name": "Ming"}
    form.update({k: v for k, v in fields.items() if v is not None})
    for key in [k for k, v in fields.items() if v is None]:
        form.pop(key)
    return client.post(f"{BASE}/requests.json", data=form)


def test_discovery_in_both_formats(client):
    answer = client.get(f"{BASE}/discovery.json").json
    assert answer["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    root = xml(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    formats = [f.text for f in root.find("endpoints/endpoint/formats")]
    assert formats == ["text/xml", "application/json"]


def test_services_list_in_both_formats(client):
    services = client.get(f"{BASE}/services.json").json
    codes = {s["service_code"] for s in services}
    assert {"road_collapse", "elderly_assistance", "streetlight"} <= codes
    assert set(services[0]) == {"service_code", "service_name", "description", "metadata",
                                "type", "keywords", "group"}
    root = xml(client.get(f"{BASE}/services.xml"))
    assert root.tag == "services" and len(root.findall("service")) == len(services)
    assert root.find("service/service_code").text == services[0]["service_code"]


def test_service_definition_with_attributes(client):
    definition = client.get(f"{BASE}/services/elderly_assistance.json").json
    [attribute] = definition["attributes"]
    assert attribute["code"] == "need" and attribute["datatype"] == "singlevaluelist"
    assert {v["key"] for v in attribute["values"]} == {"meal", "medical", "companionship",
                                                       "other"}
    root = xml(client.get(f"{BASE}/services/elderly_assistance.xml"))
    assert root.tag == "service_definition"
    assert root.find("attributes/attribute/code").text == "need"
    assert len(root.findall("attributes/attribute/values/value")) == 4
    assert client.get(f"{BASE}/services/ufo.json").status_code == 404


def test_posting_a_request_and_reading_it_back(client, people, demo):
    answer = post(client, people, demo)
    assert answer.status_code == 201
    [created] = answer.json
    request_id = created["service_request_id"]
    assert "work order" in created["service_notice"]
    [found] = client.get(f"{BASE}/requests/{request_id}.json").json
    assert found["status"] == "open" and found["service_code"] == "road_collapse"
    assert found["agency_responsible"] == "Housing and Construction"
    assert found["requested_datetime"].endswith("+08:00")
    assert "13912345678" not in str(found) and "Li" not in str(found)
    root = xml(client.get(f"{BASE}/requests/{request_id}.xml"))
    assert root.tag == "service_requests"
    assert root.find("request/service_request_id").text == request_id
    assert root.find("request/status").text == "open"


def test_listing_requests_with_filters(client, people, demo):
    first = post(client, people, demo).json[0]["service_request_id"]
    post(client, people, demo, service_code="garbage", description="垃圾")
    assert len(client.get(f"{BASE}/requests.json").json) == 2
    garbage = client.get(f"{BASE}/requests.json?service_code=garbage").json
    assert [r["service_code"] for r in garbage] == ["garbage"]
    assert client.get(f"{BASE}/requests.json?status=closed").json == []
    by_id = client.get(f"{BASE}/requests.json?service_request_id={first}").json
    assert [r["service_request_id"] for r in by_id] == [first]
    later = client.get(f"{BASE}/requests.json?start_date=2027-01-01T00:00:00Z").json
    assert later == []
    root = xml(client.get(f"{BASE}/requests.xml"))
    assert len(root.findall("request")) == 2


def test_attributes_gcj02_and_a_photo(client, people, demo):
    lon, lat = inside(demo, 120, "gcj02")
    answer = client.post(f"{BASE}/requests.json", data={
        "api_key": people["reporter"]["token"], "service_code": "elderly_assistance",
        "lat": str(lat), "long": str(lon), "crs": "gcj02", "description": "独居老人需要助餐",
        "attribute[need]": "meal", "media": (__import__("io").BytesIO(photo()), "p.jpg")},
        content_type="multipart/form-data")
    assert answer.status_code == 201, answer.json
    request_id = answer.json[0]["service_request_id"]
    found = client.get(f"{BASE}/requests/{request_id}.json").json[0]
    assert found["media_url"].endswith(".jpg")
    assert found["lat"] == pytest.approx(inside(demo, 120)[1], abs=1e-8)


@pytest.mark.parametrize("fields, status, needle", [
    ({"api_key": None}, 403, "api_key"),
    ({"api_key": "not-a-token"}, 403, "api_key"),
    ({"service_code": None}, 400, "service_code is required"),
    ({"service_code": "ufo"}, 404, "no service 'ufo'"),
    ({"lat": None}, 400, "lat and long are required"),
    ({"lat": "north"}, 400, "lat must be a number"),
    ({"description": "x" * 4001}, 400, "at most 4000"),
    ({"service_code": "elderly_assistance"}, 400, "attribute need is required"),
    ({"attribute[colour]": "red"}, 400, "has no attribute 'colour'"),
    ({"crs": "mars"}, 400, "unknown coordinate system"),
])
def test_bad_requests_get_open311_errors(client, people, demo, fields, status, needle):
    answer = post(client, people, demo, **fields)
    assert answer.status_code == status
    [error] = answer.json
    assert error["code"] == status and needle in error["description"]
    assert client.get(f"{BASE}/requests.json").json == []


def test_outside_the_district_is_an_error_and_nothing_is_kept(client, people, demo, service):
    west, south, east, north = demo.grids.total_bounds
    answer = post(client, people, demo, long=str(east + 0.03), lat=str((south + north) / 2))
    assert answer.status_code == 400 and "outside the district" in answer.json[0]["description"]
    assert " m from the nearest grid" in answer.json[0]["description"]
    assert _stored(service) == 0


def test_a_token_is_the_sender_s_own(client, people, demo):
    first = post(client, people, demo, token="app-7-0002")
    again = post(client, people, demo, token="app-7-0002")
    assert first.status_code == again.status_code == 201
    assert again.json[0]["service_request_id"] == first.json[0]["service_request_id"]
    taken = post(client, people, demo, token="app-7-0002", service_code="garbage",
                 api_key=people["other_reporter"]["token"])
    assert taken.status_code == 409 and "taken" in taken.json[0]["description"]
    assert len(client.get(f"{BASE}/requests.json").json) == 1


def test_errors_in_xml_for_xml_paths(client):
    answer = client.post(f"{BASE}/requests.xml", data={"service_code": "garbage"})
    assert answer.status_code == 403
    root = xml(answer)
    assert root.tag == "errors" and root.find("error/code").text == "403"
    missing = client.get(f"{BASE}/requests/99999.xml")
    assert missing.status_code == 404 and xml(missing).find("error/description").text


def test_tokens_map_to_requests(client, people, demo):
    request_id = post(client, people, demo, token="app-7-0001").json[0]["service_request_id"]
    assert client.get(f"{BASE}/tokens/app-7-0001.json").json == [
        {"service_request_id": request_id, "token": "app-7-0001"}]
    assert client.get(f"{BASE}/tokens/none.json").status_code == 404



def _order_of(service, request_id) -> int:
    with service.db.read() as uow:
        return uow.execute(select(t.reports.c.work_order_id).where(
            t.reports.c.id == int(request_id))).scalar_one()


def _stored(service) -> int:
    with service.db.read() as uow:
        return uow.execute(select(func.count()).select_from(t.reports)).scalar_one()


def test_status_may_name_both_states(client, people, demo, service):
    first = post(client, people, demo).json[0]["service_request_id"]
    service.act(_order_of(service, first), "reject", Actor("admin", "admin"), reason="no")
    both = client.get(f"{BASE}/requests.json?status=open,closed").json
    assert [r["service_request_id"] for r in both] == [first]
    assert [r["status"] for r in client.get(f"{BASE}/requests.json?status=closed,").json] == [
        "closed"]
    assert client.get(f"{BASE}/requests.json?status=open").json == []
    wrong = client.get(f"{BASE}/requests.json?status=open,done")
    assert wrong.status_code == 400 and "status" in wrong.json[0]["description"]


def test_updated_datetime_is_the_last_change_of_the_order(client, people, demo, service, clock):
    request_id = post(client, people, demo).json[0]["service_request_id"]
    order_id = _order_of(service, request_id)

    def times():
        [found] = client.get(f"{BASE}/requests/{request_id}.json").json
        return (datetime.fromisoformat(found["requested_datetime"]),
                datetime.fromisoformat(found["updated_datetime"]))

    requested, updated = times()
    assert updated == requested
    admin = Actor("admin", "admin")
    for step in ("accept", "start"):
        clock.advance(hours=2)
        service.act(order_id, step, admin)
        before, (requested, updated) = updated, times()
        assert updated > before and updated == clock.now
    root = xml(client.get(f"{BASE}/requests/{request_id}.xml"))
    assert datetime.fromisoformat(root.find("request/updated_datetime").text) == updated


def test_a_list_attribute_takes_several_answers(client, people, demo, service, monkeypatch):
    garbage = service.catalogue.categories["garbage"]
    kinds = {"code": "kinds", "datatype": "multivaluelist", "required": False,
             "description": "what lies there",
             "values": [{"key": "bags", "name": "Bags"}, {"key": "glass", "name": "Glass"}]}
    monkeypatch.setitem(service.catalogue.categories, "garbage",
                        replace(garbage, attributes=(kinds,)))

    def answers(**fields):
        answer = post(client, people, demo, service_code="garbage", **fields)
        assert answer.status_code == 201, answer.json
        with service.db.read() as uow:
            return uow.execute(select(t.reports.c.attributes).where(
                t.reports.c.id == int(answer.json[0]["service_request_id"]))).scalar_one()

    assert answers(**{"attribute[kinds][]": ["bags", "glass"]}) == {"kinds": ["bags", "glass"]}
    assert answers(**{"attribute[kinds]": ["bags", "glass"]}) == {"kinds": ["bags", "glass"]}
    assert answers(**{"attribute[kinds][]": "glass"}) == {"kinds": ["glass"]}
    wrong = post(client, people, demo, service_code="garbage", **{"attribute[kinds][x]": "a"})
    assert wrong.status_code == 400 and "attribute[code][]" in wrong.json[0]["description"]


def test_ids_that_cannot_exist_are_not_found(client, people, demo):
    first = post(client, people, demo).json[0]["service_request_id"]
    for path in ("abc", "0", "99999999999", "-3"):
        answer = client.get(f"{BASE}/requests/{path}.json")
        assert answer.status_code == 404, path
    listed = client.get(f"{BASE}/requests.json?service_request_id={first},99999999999,")
    assert [r["service_request_id"] for r in listed.json] == [first]
    wrong = client.get(f"{BASE}/requests.json?service_request_id={first},abc")
    assert wrong.status_code == 400
    # only ASCII digits name a request, not other scripts' digits nor Python's 1_000
    arabic = "".join(chr(0x660 + int(d)) for d in first)
    for other in (arabic, f"0_{first}"):
        assert client.get(f"{BASE}/requests/{other}.json").status_code == 404, other
        listed = client.get(f"{BASE}/requests.json?service_request_id={other}")
        assert listed.status_code == 400, other


@pytest.mark.parametrize("query", ["end_date=0001-01-01T00:00:00Z",
                                   "start_date=9999-12-31T23:59:59-12:00",
                                   "start_date=0001-01-01T00:00:00%2B14:00&end_date=9999-12-31",
                                   ])
def test_dates_at_the_ends_of_the_calendar(client, people, demo, query):
    post(client, people, demo)
    answer = client.get(f"{BASE}/requests.json?{query}")
    assert answer.status_code == 200
    assert len(answer.json) == (1 if query.startswith("start_date=0001") else 0)


def test_unprintable_text_is_refused_and_the_xml_stays_whole(client, people, demo, service):
    refused = post(client, people, demo, description="bad\x01char")
    assert refused.status_code == 400 and "U+0001" in refused.json[0]["description"]
    assert _stored(service) == 0
    request_id = post(client, people, demo).json[0]["service_request_id"]
    with service.db.unit_of_work() as uow:  # as text stored before the check might be
        uow.execute(update(t.reports).values(description="bad\x01char"))
    root = xml(client.get(f"{BASE}/requests.xml"))
    assert root.find("request/service_request_id").text == request_id
    assert root.find("request/description").text == "bad\ufffdchar"


def test_an_address_string_is_kept_beside_the_location(client, people, demo, service):
    request_id = post(client, people, demo, address_string="莲湖区 北大街 12 号").json[0][
        "service_request_id"]
    [found] = client.get(f"{BASE}/requests/{request_id}.json").json
    assert found["address"] == "莲湖区 北大街 12 号"
    root = xml(client.get(f"{BASE}/requests/{request_id}.xml"))
    assert root.find("request/address").text == "莲湖区 北大街 12 号"
    without = post(client, people, demo).json[0]["service_request_id"]
    assert client.get(f"{BASE}/requests/{without}.json").json[0]["address"] is None


@pytest.mark.parametrize("address, needle", [("x" * 501, "at most 500"),
                                             ("北大街\x0012 号", "unprintable")],
                         ids=["too_long", "unprintable"])
def test_a_bad_address_string_is_refused_and_nothing_kept(client, people, demo, service,
                                                          address, needle):
    answer = post(client, people, demo, address_string=address)
    assert answer.status_code == 400
    assert answer.json[0]["description"].startswith("address_string ")
    assert needle in answer.json[0]["description"]
    assert _stored(service) == 0


def test_status_notes_say_why_a_request_was_closed(client, people, demo, service, clock):
    kept = post(client, people, demo).json[0]["service_request_id"]
    clock.advance(days=31)  # past the duplicate window: the next report opens an order of its own
    duplicate = post(client, people, demo).json[0]["service_request_id"]
    clock.advance(days=31)
    refused = post(client, people, demo).json[0]["service_request_id"]
    survivor = _order_of(service, kept)
    admin = Actor("admin", "admin")
    assert len({survivor, _order_of(service, duplicate), _order_of(service, refused)}) == 3
    service.act(_order_of(service, duplicate), "merge", admin, into=survivor)
    service.act(_order_of(service, refused), "reject", admin, reason="not public land")
    notes = {r["service_request_id"]: (r["status"], r["status_notes"])
             for r in client.get(f"{BASE}/requests.json").json}
    assert notes == {
        kept: ("open", None),
        duplicate: ("closed", f"closed as a duplicate of work order {survivor}; follow "
                              f"service request {kept}"),
        refused: ("closed", "rejected: not public land")}
    root = xml(client.get(f"{BASE}/requests/{duplicate}.xml"))
    assert root.find("request/status_notes").text == notes[duplicate][1]
    followed = client.get(f"{BASE}/requests.json?service_request_id={kept}").json[0]
    assert followed["status"] == "open"
