"""Intake on both databases: resolve, assign, duplicates, idempotency, photos, bad input."""

import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.errors import InputError
from tests.dispatch.helpers import inside, photo, report


def count(service, table) -> int:
    with service.db.unit_of_work() as uow:
        return uow.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_report_becomes_a_dispatched_order_for_the_grids_gridworker(service, demo):
    answer = service.submit_report(report(demo))
    assert answer["outcome"] == "created" and answer["status"] == "ok"
    grid = demo.grids.iloc[100]
    assert answer["grid_code"] == grid["code"]
    order = service.order(answer["work_order_id"], staff=True)
    assert order["state"] == "dispatched" and order["queue"] == "gridworker"
    assert order["department"] == "zhujian"
    with service.db.unit_of_work() as uow:
        worker = uow.execute(select(t.gridworkers).where(
            t.gridworkers.c.id == order["assignee_id"])).one()
        grids = set(uow.execute(select(t.gridworker_grids.c.grid_code).where(
            t.gridworker_grids.c.gridworker_id == worker.id)).scalars())
    assert worker.role == "gridworker" and worker.on_duty and grid["code"] in grids
    assert [(a["action"], a["to"]) for a in order["audit"]] == [("dispatch", "dispatched")]


def test_gcj02_input_is_converted_and_the_original_kept(service, demo):
    wgs = inside(demo, 100)
    answer = service.submit_report(report(demo, crs="gcj02"))
    with service.db.unit_of_work() as uow:
        row = uow.execute(select(t.reports).where(t.reports.c.id == answer["report_id"])).one()
    assert (row.lon, row.lat) == pytest.approx(wgs, abs=1e-9)
    assert row.original_crs == "gcj02" and abs(row.original_x - row.lon) > 1e-3
    assert answer["grid_code"] == demo.grids.iloc[100]["code"]


def test_assignment_falls_back_to_the_grid_leader_then_the_community_then_the_street(
        service, demo):
    grid = demo.grids.iloc[100]
    with service.db.unit_of_work() as uow:
        people = uow.execute(select(t.gridworkers.c.id, t.gridworkers.c.role).join(
            t.gridworker_grids).where(t.gridworker_grids.c.grid_code == grid["code"])).all()
    workers = [p.id for p in people if p.role == "gridworker"]
    leaders = [p.id for p in people if p.role == "grid_leader"]
    assert workers and leaders
    for gid in workers:
        service.set_on_duty(gid, False)
    first = service.order(service.submit_report(report(demo))["work_order_id"])
    assert (first["queue"], first["assignee_id"]) == ("grid_leader", leaders[0])

    for gid in leaders:
        service.set_on_duty(gid, False)
    sibling = demo.grids[(demo.grids["community_code"] == grid["community_code"])
                         & (demo.grids["code"] != grid["code"])]["code"].iloc[0]
    stand_in = service.add_gridworker("刘代班", "13700000000", "grid_leader", [sibling])
    second = service.order(service.submit_report(report(
        demo, category="water_leak"))["work_order_id"])
    assert (second["queue"], second["assignee_id"]) == ("community", stand_in)

    service.set_on_duty(stand_in, False)
    third = service.order(service.submit_report(report(demo, category="garbage"))[
        "work_order_id"])
    assert (third["queue"], third["assignee_id"]) == ("street", None)
    assert third["street_code"] == grid["street_code"]


def test_a_nearby_report_of_the_same_category_joins_the_open_order(service, demo, clock):
    first = service.submit_report(report(demo, idempotency_key="a"))
    before = service.order(first["work_order_id"], staff=True)
    lon, lat = inside(demo, 100)
    second = service.submit_report(report(demo, lon=lon + 0.0002, lat=lat))  # about 18 m away
    assert second["outcome"] == "attached"
    assert second["work_order_id"] == first["work_order_id"]
    after = service.order(first["work_order_id"], staff=True)
    assert (after["version"], after["reports_count"]) == (before["version"] + 1, 2)
    assert after["audit"][:-1] == before["audit"]
    assert (after["audit"][-1]["action"], after["audit"][-1]["note"]) == (
        "attach_report", "report 2 attached")
    changed = ("version", "audit", "reports", "reports_count")
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed}
    other_category = service.submit_report(report(demo, category="garbage"))
    assert other_category["outcome"] == "created"
    far = service.submit_report(report(demo, lon=lon + 0.003, lat=lat))  # about 280 m away
    assert far["outcome"] == "created"
    clock.advance(hours=73)  # past road_collapse's 72-hour window
    late = service.submit_report(report(demo))
    assert late["outcome"] == "created"
    order = service.order(first["work_order_id"], staff=True)
    assert len(order["reports"]) == 2
    assert "attach_report" in [a["action"] for a in order["audit"]]


def test_outside_the_district_is_rejected_with_a_reason_and_kept(service, demo):
    west, south, east, north = demo.grids.total_bounds
    answer = service.submit_report(report(demo, lon=east + 0.02, lat=(south + north) / 2))
    assert answer["outcome"] == "outside" and answer["work_order_id"] is None
    assert "outside the district" in answer["reason"] and " m from the nearest grid" in (
        answer["reason"])
    assert count(service, t.reports) == 1 and count(service, t.work_orders) == 0


def test_a_retried_report_with_the_same_key_returns_the_same_order(service, demo):
    first = service.submit_report(report(demo, idempotency_key="phone-42-0001"))
    again = service.submit_report(report(demo, idempotency_key="phone-42-0001"))
    assert again == first
    assert count(service, t.reports) == 1 and count(service, t.work_orders) == 1


def test_photos_are_stored_without_exif_with_a_thumbnail(service, demo):
    original = photo("JPEG")
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the upload has GPS
    answer = service.submit_report(report(demo), photo=original)
    stored = service.order(answer["work_order_id"])["reports"][0]["photo"]
    assert stored.endswith(".jpg") and len(stored) == 36
    with Image.open(service.media / stored) as saved:
        assert not saved.getexif() and not saved.getexif().get_ifd(0x8825)
        assert "exif" not in saved.info and saved.size == (64, 48)
    with Image.open(service.media / stored.replace(".jpg", ".thumb.jpg")) as thumb:
        assert max(thumb.size) <= 320


def test_phone_numbers_are_masked_outside_staff_views(service, demo):
    order_id = service.submit_report(report(demo))["work_order_id"]
    public = service.order(order_id)["reports"][0]
    staff = service.order(order_id, staff=True)["reports"][0]
    assert public["reporter_phone"] == "138****1234" and public["reporter_name"] is None
    assert staff["reporter_phone"] == "13812341234" and staff["reporter_name"] == "张三"


BAD_REPORTS = [
    ({"category": None}, "category", "unknown category"),
    ({"category": "ufo"}, "category", "unknown category 'ufo'"),
    ({"description": ""}, "description", "description is required"),
    ({"description": 42}, "description", "must be text"),
    ({"description": "x" * 4001}, "description", "at most 4000"),
    ({"lon": None}, "lon", "lon is required"),
    ({"lon": "east"}, "lon", "must be a number"),
    ({"lat": True}, "lat", "lat is required"),
    ({"lat": 95.0}, "lat", "latitude 95.0 is beyond"),
    ({"lon": float("nan")}, "lon", "finite number"),
    ({"lat": float("inf")}, "lat", "finite number"),
    ({"lon": 181.0}, "lon", "longitude 181.0 is beyond ±180"),
    ({"lon": -180.5}, "lon", "longitude -180.5 is beyond ±180"),
    ({"lat": -90.5}, "lat", "latitude -90.5 is beyond ±90"),
    ({"lon": [108.9]}, "lon", "must be a number"),
    ({"crs": "mars"}, "crs", "unknown coordinate system"),
    ({"crs": 4326.5}, "crs", "unknown coordinate system"),
    ({"reporter_phone": "call me"}, "reporter_phone", "phone must be digits"),
    ({"reporter_phone": 13812341234}, "reporter_phone", "phone must be digits"),
    ({"reporter_phone": "1" * 21}, "reporter_phone", "6 to 20 long"),
    ({"reporter_role": "mayor"}, "reporter_role", "reporter_role must be one of"),
    ({"reporter_role": {}}, "reporter_role", "reporter_role must be one of"),
    ({"reporter_name": "名" * 101}, "reporter_name", "at most 100"),
    ({"reporter_name": 42}, "reporter_name", "reporter_name must be text"),
    ({"reporter_name": ["张三"]}, "reporter_name", "reporter_name must be text"),
    ({"idempotency_key": ""}, "idempotency_key", "1 to 100"),
    ({"idempotency_key": 42}, "idempotency_key", "must be text of 1 to 100"),
    ({"idempotency_key": "k" * 101}, "idempotency_key", "1 to 100"),
    ({"category": 42}, "category", "unknown category 42"),
    ({"category": ["road_collapse"]}, "category", "unknown category"),
    ({"media_url": "javascript:alert(1)"}, "media_url", "http:// or https:// address"),
    ({"media_url": "photo.jpg"}, "media_url", "http:// or https:// address"),
    ({"media_url": "https://"}, "media_url", "http:// or https:// address"),
    ({"media_url": 42}, "media_url", "media_url must be text"),
    ({"media_url": "https://x.cn/" + "p" * 1000}, "media_url", "at most 1000"),
    ({"attributes": {"colour": "red"}}, "attribute[colour]", "has no attribute 'colour'"),
    ({"attributes": ["plate_number"]}, "attributes", "must be an object"),
    ({"category": "illegal_parking", "attributes": {"plate_number": 42}},
     "attribute[plate_number]", "must be text"),
    ({"category": "illegal_parking", "attributes": {"plate_number": "陕" * 501}},
     "attribute[plate_number]", "at most 500"),
    ({"category": "elderly_assistance", "attributes": {"need": "flying"}}, "attribute[need]",
     "must be one of"),
    ({"category": "elderly_assistance", "attributes": {"need": "meal", "age": 80}},
     "attribute[age]", "has no attribute 'age'"),
]


def nothing_written(service) -> bool:
    return all(count(service, table) == 0
               for table in (t.reports, t.work_orders, t.audit, t.outbox))


@pytest.mark.parametrize("change, field, message", BAD_REPORTS,
                         ids=[f"{c[1]}:{c[2][:12]}" for c in BAD_REPORTS])
def test_bad_fields_are_refused_by_name_and_nothing_is_written(service, demo, change, field,
                                                              message):
    with pytest.raises(InputError, match=message) as info:
        service.submit_report(report(demo, **change))
    assert info.value.field == field
    assert nothing_written(service)


REQUIRED = [
    ("category", {}, "unknown category None"),
    ("description", {}, "description is required"),
    ("lon", {}, "lon is required"),
    ("lat", {}, "lat is required"),
    ("reporter_phone", {"category": "elderly_assistance", "attributes": {"need": "meal"}},
     "cannot be reported anonymously"),
    ("attributes", {"category": "elderly_assistance"}, "attribute need is required"),
]


@pytest.mark.parametrize("absent, change, message", REQUIRED, ids=[r[0] for r in REQUIRED])
def test_each_required_field_left_out_is_refused_by_name(service, demo, absent, change,
                                                         message):
    data = report(demo, **change)
    data.pop(absent, None)  # the key is absent, not None
    with pytest.raises(InputError, match=message) as info:
        service.submit_report(data)
    assert info.value.field == ("attribute[need]" if absent == "attributes" else absent)
    assert nothing_written(service)


def test_a_plain_web_address_is_taken_as_media_url(service, demo):
    answer = service.submit_report(report(demo, media_url="https://img.example.cn/a.jpg?x=1"))
    with service.db.read() as uow:
        stored = uow.execute(select(t.reports.c.media_url).where(
            t.reports.c.id == answer["report_id"])).scalar_one()
    assert stored == "https://img.example.cn/a.jpg?x=1"


def test_swapped_coordinates_are_refused(service, demo):
    lon, lat = inside(demo)
    with pytest.raises(InputError, match="order looks swapped"):
        service.submit_report(report(demo, lon=lat, lat=lon))
    assert count(service, t.reports) == 0


@pytest.mark.parametrize("data, message", [
    (b"GIF89a" + b"\0" * 40, "must be a JPEG, PNG or WebP"),
    (b"%PDF-1.4 not an image", "must be a JPEG, PNG or WebP"),
    (b"", "empty"),
    (None, None),
])
def test_bad_photos_are_refused_and_nothing_is_written(service, demo, data, message):
    if data is None:  # a truncated JPEG: right magic bytes, broken body
        data, message = photo("JPEG")[:200], "not a readable JPEG"
    with pytest.raises(InputError, match=message) as info:
        service.submit_report(report(demo), photo=data)
    assert info.value.field == "photo"
    assert count(service, t.reports) == 0
    assert not service.media.exists() or not list(service.media.iterdir())


def test_oversized_photos_are_refused(service, demo):
    data = photo("PNG", size=(300, 300))
    service.max_photo_bytes = len(data) - 1
    with pytest.raises(InputError, match=f"the photo has {len(data):,} bytes"):
        service.submit_report(report(demo), photo=data)
    assert count(service, t.reports) == 0


@pytest.mark.parametrize("kind", ["PNG", "WEBP"])
def test_png_and_webp_are_taken(service, demo, kind):
    answer = service.submit_report(report(demo), photo=photo(kind))
    name = service.order(answer["work_order_id"])["reports"][0]["photo"]
    with Image.open(service.media / name) as saved:
        assert saved.format == kind


def test_a_rider_registers_as_a_mobile_gridworker_where_they_stand(service, demo):
    lon, lat = inside(demo, 200, "gcj02")
    placed = service.register_mobile_gridworker("骑手小王", "13900001111", lon, lat, "gcj02")
    assert placed["grid_code"] == demo.grids.iloc[200]["code"]
    assert placed["station_id"].startswith("ST") and placed["station_distance_m"] > 0
    with pytest.raises(InputError, match="outside the district"):
        service.register_mobile_gridworker("骑手", "13900001111", 108.5, 34.26)
