"""End to end on the demo district: a rider's GCJ-02 report of a road collapse, the street's
whistle to 城管, 住建 and 消防, repair, verification, closure — and the statistics after."""

from dispatch.services import Actor
from tests.dispatch.helpers import inside, photo


def test_road_collapse_from_report_to_closure(service, demo, clock):
    grid = demo.grids.iloc[250]
    lon, lat = inside(demo, 250, "gcj02")
    answer = service.submit_report({
        "category": "road_collapse", "description": "桃园路口路面塌陷，直径约两米",
        "lon": lon, "lat": lat, "crs": "gcj02", "reporter_name": "外卖骑手小刘",
        "reporter_phone": "13988887777", "reporter_role": "rider",
        "idempotency_key": "rider-liu-0001"}, photo=photo())
    assert answer["outcome"] == "created" and answer["grid_code"] == grid["code"]
    order_id = answer["work_order_id"]
    order = service.order(order_id, staff=True)
    assert order["state"] == "dispatched" and order["queue"] == "gridworker"
    assert order["street_code"] == grid["street_code"]

    worker = Actor("网格员", "gridworker")
    street = Actor("街道指挥中心", "dispatcher")
    clock.advance(minutes=3)
    service.act(order_id, "accept", worker)
    clock.advance(minutes=2)
    service.blow_whistle(order_id, ["chengguan", "zhujian", "xiaofang"], 30, street,
                         "路面塌陷危及通行，吹哨报到")
    for minutes, department in ((8, "xiaofang"), (4, "chengguan"), (6, "zhujian")):
        clock.advance(minutes=minutes)
        service.report_for_duty(order_id, 1, department, Actor(department, "department"),
                                "到场")
    service.record_meeting(order_id, ["街道", "城管", "住建", "消防"], ["住建牵头抢修"],
                           [{"task": "围挡警示", "owner": "城管"},
                            {"task": "回填修复", "owner": "住建"}], street)
    service.act(order_id, "start", worker)
    clock.advance(hours=3)
    for department in ("xiaofang", "chengguan", "zhujian"):
        service.complete_part(order_id, 1, department, Actor(department, "department"),
                              "本部分完成")
    service.act(order_id, "resolve", worker, feedback="塌陷处已回填压实并恢复路面",
                photo=photo())
    clock.advance(hours=1)
    service.act(order_id, "verify", street, note="现场核验合格")
    closed = service.act(order_id, "close", street)

    assert closed["state"] == "closed" and closed["open311_status"] == "closed"
    assert closed["whistles"][0]["ended_at"] is not None
    assert all(s["reported_at"] <= s["due_at"] for s in closed["whistles"][0]["summons"])
    actions = [a["action"] for a in closed["audit"]]
    assert actions == ["dispatch", "accept", "whistle", "report_for_duty", "report_for_duty",
                       "report_for_duty", "meeting", "start", "complete_part", "complete_part",
                       "complete_part", "resolve", "verify", "close"]
    assert service.sweep()["marked"] == 0  # nothing was late

    [street_row] = service.stats(by="street")
    assert street_row["street"] == grid["street_code"]
    assert (street_row["reported"], street_row["closed"]) == (1, 1)
    assert street_row["closure_rate"] == 1.0 and street_row["on_time_rate"] == 1.0
    assert street_row["whistles"] == street_row["whistles_answered_on_time"] == 1
    minutes_to_close = 3 + 2 + 8 + 4 + 6 + 180 + 60
    assert street_row["median_hours_to_close"] == round(minutes_to_close / 60, 2)
