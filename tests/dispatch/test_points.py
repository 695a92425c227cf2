"""Points: earning by verified reports and volunteering, adjustments, reversals, the
supermarket's reserve → hand over / cancel, the leaderboard — on both databases."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.errors import Conflict, InputError, NotFound
from dispatch.points import load_points_rules
from tests.dispatch.conftest import ADMIN, COMMUNITY, WORKER
from tests.dispatch.helpers import photo, report


def ledger_sums(database) -> dict[int, int]:
    with database.read() as uow:
        return dict(uow.execute(select(t.points_ledger.c.user_id, func.sum(
            t.points_ledger.c.amount)).group_by(t.points_ledger.c.user_id)).all())


def balances(database) -> dict[int, int]:
    with database.read() as uow:
        return dict(uow.execute(select(t.points_accounts.c.user_id,
                                       t.points_accounts.c.balance)).all())


def verify(service, order_id):
    service.act(order_id, "accept", ADMIN)
    service.act(order_id, "start", ADMIN)
    service.act(order_id, "resolve", ADMIN, feedback="修好了", photo=photo())
    return service.act(order_id, "verify", ADMIN)


def test_the_shipped_rules_load():
    rules = load_points_rules()
    assert rules.for_report("road_collapse", me_too=False) == 20
    assert rules.for_report("garbage", me_too=False) == 10
    assert rules.for_report("garbage", me_too=True) < rules.for_report("garbage", me_too=False)


def test_a_verified_report_earns_and_a_me_too_earns_less(service, points, person, demo):
    rider, neighbour, anonymous_order = person("rider"), person("neighbour"), None
    first = service.submit_report(report(demo, 100), user_id=rider.id)
    joined = service.submit_report(report(demo, 100), user_id=neighbour.id)
    anonymous_order = service.submit_report(report(demo, 100))  # no account: nobody to credit
    assert joined["outcome"] == anonymous_order["outcome"] == "attached"
    assert points.balance(rider.id) == 0
    verify(service, first["work_order_id"])
    assert points.balance(rider.id) == 20 and points.balance(neighbour.id) == 5
    statement = points.statement(rider.id)
    [entry] = statement["entries"]
    assert entry["cause"] == "report" and entry["ref"] == f"report:{first['report_id']}"
    assert entry["community_code"] == first["community_code"] and entry["actor"] == "admin"
    # closed, reopened and verified again: the reports are not credited twice
    service.act(first["work_order_id"], "close", ADMIN)
    service.act(first["work_order_id"], "reopen", ADMIN, reason="又塌了")
    verify(service, first["work_order_id"])
    assert points.balance(rider.id) == 20
    assert ledger_sums(service.db) == balances(service.db)


def test_an_account_earns_once_per_order_however_often_it_reports(service, points, person,
                                                                  demo):
    rider, neighbour = person("rider"), person("neighbour")
    first = service.submit_report(report(demo, 100), user_id=rider.id)
    sent = [service.submit_report(report(demo, 100), user_id=who.id)
            for who in (rider, neighbour, neighbour, neighbour)]
    assert {s["outcome"] for s in sent} == {"attached"}
    verify(service, first["work_order_id"])
    assert points.balance(rider.id) == 20 and points.balance(neighbour.id) == 5
    # reopened, another "me too" from the neighbour, verified again: still nothing more
    service.act(first["work_order_id"], "close", ADMIN)
    service.act(first["work_order_id"], "reopen", ADMIN, reason="又塌了")
    assert service.submit_report(report(demo, 100), user_id=neighbour.id)["outcome"] == \
        "attached"
    verify(service, first["work_order_id"])
    assert points.balance(rider.id) == 20 and points.balance(neighbour.id) == 5
    assert [e["cause"] for e in points.statement(neighbour.id)["entries"]] == ["me_too"]
    assert ledger_sums(service.db) == balances(service.db)


def test_rejected_and_duplicate_reports_earn_nothing(service, points, person, demo, clock):
    rider = person("rider")
    rejected = service.submit_report(report(demo, 100), user_id=rider.id)["work_order_id"]
    service.act(rejected, "reject", ADMIN, reason="不属实")
    clock.advance(days=10)
    kept = service.submit_report(report(demo, 200), user_id=rider.id)["work_order_id"]
    twin = service.submit_report(report(demo, 300), user_id=rider.id)["work_order_id"]
    service.act(twin, "merge", ADMIN, into=kept)
    assert service.order(twin)["state"] == "duplicate"
    assert points.statement(rider.id)["entries"] == []
    verify(service, kept)
    assert [e["amount"] for e in points.statement(rider.id)["entries"]] == [20]


def test_volunteering_is_checked_in_by_hours(points, person):
    volunteer = person("volunteer")
    entry = points.check_in(volunteer.id, "助老服务", 1.5, COMMUNITY, WORKER)
    assert entry["amount"] == 30 and entry["cause"] == "activity"
    assert entry["note"] == "助老服务, 1.5 h" and entry["actor"] == WORKER.name
    for hours in (0, -1, 0.3, 13, "2", True, float("nan")):
        with pytest.raises(InputError) as caught:
            points.check_in(volunteer.id, "助老服务", hours, COMMUNITY, WORKER)
        assert caught.value.field == "hours"
    with pytest.raises(InputError, match="activity"):
        points.check_in(volunteer.id, " ", 1, COMMUNITY, WORKER)
    with pytest.raises(NotFound):
        points.check_in(9999, "助老服务", 1, COMMUNITY, WORKER)
    assert points.balance(volunteer.id) == 30


def test_a_check_in_sent_again_with_its_key_earns_once(points, person):
    volunteer, other = person("volunteer"), person("other")
    first = points.check_in(volunteer.id, "助老服务", 2, COMMUNITY, WORKER, "visit-7")
    again = points.check_in(volunteer.id, "助老服务", 2, COMMUNITY, WORKER, "visit-7")
    assert again == first and points.balance(volunteer.id) == 40
    for changed in ((other.id, "助老服务", 2), (volunteer.id, "助老服务", 3),
                    (volunteer.id, "清扫", 2)):  # the key of another check-in
        with pytest.raises(Conflict, match="idempotency_key"):
            points.check_in(*changed, COMMUNITY, WORKER, "visit-7")
    for bad in ("", " ", 7, "k" * 101):
        with pytest.raises(InputError) as caught:
            points.check_in(volunteer.id, "助老服务", 2, COMMUNITY, WORKER, bad)
        assert caught.value.field == "idempotency_key"
    assert points.balance(volunteer.id) == 40 and points.balance(other.id) == 0
    assert len(points.statement(volunteer.id)["entries"]) == 1
    # Without a key every check-in counts, as before.
    points.check_in(volunteer.id, "助老服务", 2, COMMUNITY, WORKER)
    assert points.balance(volunteer.id) == 80


def test_a_check_in_retried_at_once_earns_once(points, person):
    volunteer = person("volunteer")
    start, answers = threading.Barrier(4), []

    def send():
        start.wait()
        answers.append(points.check_in(volunteer.id, "巡逻", 1, COMMUNITY, WORKER, "patrol-1"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 4 and all(a == answers[0] for a in answers)
    assert points.balance(volunteer.id) == 20


@pytest.mark.parametrize("amount", [-5.5, 2.5, "10", None, True, 0, 1001, -1001])
def test_bad_adjustments_are_refused_and_change_nothing(points, person, amount):
    someone = person("someone")
    points.adjust(someone.id, 10, "开户奖励", ADMIN)
    with pytest.raises(InputError) as caught:
        points.adjust(someone.id, amount, "试试", ADMIN)
    assert caught.value.field == "amount"
    assert points.balance(someone.id) == 10 and len(points.statement(someone.id)["entries"]) == 1


def test_an_adjustment_needs_a_reason_and_never_goes_below_zero(points, person):
    someone = person("someone")
    with pytest.raises(InputError, match="reason"):
        points.adjust(someone.id, 10, "", ADMIN)
    points.adjust(someone.id, 10, "补录", ADMIN)
    with pytest.raises(Conflict, match="balance is 10"):
        points.adjust(someone.id, -11, "扣减", ADMIN)
    assert points.adjust(someone.id, -10, "扣减", ADMIN)["balance_after"] == 0


def test_a_reversal_is_a_new_entry_made_once(service, points, person, demo):
    rider = person("rider")
    order_id = service.submit_report(report(demo, 100), user_id=rider.id)["work_order_id"]
    verify(service, order_id)
    [credit] = points.statement(rider.id)["entries"]
    reversal = points.reverse(credit["id"], "虚假上报", ADMIN)
    assert reversal["amount"] == -20 and reversal["ref"] == f"entry:{credit['id']}"
    assert points.balance(rider.id) == 0
    assert [e["id"] for e in points.statement(rider.id)["entries"]] == [reversal["id"],
                                                                          credit["id"]]
    with pytest.raises(Conflict, match="already reversed"):
        points.reverse(credit["id"], "again", ADMIN)
    with pytest.raises(InputError, match="reversal"):
        points.reverse(reversal["id"], "undo the undo", ADMIN)
    with pytest.raises(NotFound):
        points.reverse(9999, "nothing", ADMIN)


def test_spent_points_cannot_be_reversed(points, market, person):
    someone = person("someone")
    credit = points.check_in(someone.id, "清扫", 1, COMMUNITY, WORKER)
    flour = market.add_item("面粉", 20, 3, community_code=COMMUNITY)
    market.redeem(someone.id, flour["id"], 1, someone.actor)
    with pytest.raises(Conflict, match="not enough points"):
        points.reverse(credit["id"], "虚报", ADMIN)
    assert points.balance(someone.id) == 0


def test_redeem_hand_over_and_cancel(points, market, person):
    someone = person("someone")
    points.adjust(someone.id, 100, "奖励", ADMIN)
    flour = market.add_item("面粉 5kg", 30, 2, community_code=COMMUNITY)
    taken = market.redeem(someone.id, flour["id"], 2, someone.actor)
    assert taken["state"] == "reserved" and taken["points"] == 60
    assert market.item(flour["id"])["stock"] == 0 and points.balance(someone.id) == 40
    with pytest.raises(Conflict, match="only 0 left"):
        market.redeem(someone.id, flour["id"], 1, someone.actor)
    cancelled = market.cancel(taken["id"], someone.actor)
    assert cancelled["state"] == "cancelled"
    assert market.item(flour["id"])["stock"] == 2 and points.balance(someone.id) == 100
    with pytest.raises(Conflict, match="already cancelled"):
        market.cancel(taken["id"], someone.actor)
    with pytest.raises(Conflict):
        market.hand_over(taken["id"], WORKER)
    again = market.redeem(someone.id, flour["id"], 1, someone.actor)
    handed = market.hand_over(again["id"], WORKER)
    assert handed["state"] == "handed_over" and handed["closed_by"] == WORKER.name
    with pytest.raises(Conflict, match="already handed_over"):
        market.cancel(again["id"], someone.actor)
    assert market.item(flour["id"])["stock"] == 1 and points.balance(someone.id) == 70
    causes = [e["cause"] for e in points.statement(someone.id)["entries"]]
    assert causes == ["redemption", "refund", "redemption", "adjustment"]


def test_a_redemption_sent_again_with_its_key_is_paid_once(points, market, person):
    someone, other = person("someone"), person("other")
    for who in (someone, other):
        points.adjust(who.id, 100, "奖励", ADMIN)
    flour = market.add_item("面粉 5kg", 30, 5, community_code=COMMUNITY)
    first = market.redeem(someone.id, flour["id"], 1, someone.actor, "tap-1")
    again = market.redeem(someone.id, flour["id"], 1, someone.actor, "tap-1")
    assert again == first and points.balance(someone.id) == 70
    theirs = market.redeem(other.id, flour["id"], 1, other.actor, "tap-1")  # keys are per person
    assert theirs["id"] != first["id"] and points.balance(other.id) == 70
    oil = market.add_item("食用油", 20, 5, community_code=COMMUNITY)
    for item_id, quantity in ((flour["id"], 2), (oil["id"], 1)):
        with pytest.raises(Conflict, match="idempotency_key"):
            market.redeem(someone.id, item_id, quantity, someone.actor, "tap-1")
    for bad in ("", 7, "k" * 101):
        with pytest.raises(InputError) as caught:
            market.redeem(someone.id, flour["id"], 1, someone.actor, bad)
        assert caught.value.field == "idempotency_key"
    assert market.item(flour["id"])["stock"] == 3 and market.item(oil["id"])["stock"] == 5
    assert points.balance(someone.id) == 70 and len(points.statement(someone.id)[
        "redemptions"]) == 1


def test_a_redemption_retried_at_once_is_paid_once(points, market, person):
    someone = person("someone")
    points.adjust(someone.id, 100, "奖励", ADMIN)
    flour = market.add_item("面粉 5kg", 30, 5, community_code=COMMUNITY)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: market.redeem(
            someone.id, flour["id"], 1, someone.actor, "tap-2"), range(4)))
    assert len({a["id"] for a in answers}) == 1
    assert points.balance(someone.id) == 70 and market.item(flour["id"])["stock"] == 4


def test_redemption_refusals_change_nothing(points, market, person):
    someone = person("someone")
    points.adjust(someone.id, 10, "奖励", ADMIN)
    oil = market.add_item("食用油", 50, 5, community_code=COMMUNITY)
    with pytest.raises(Conflict, match="not enough points"):
        market.redeem(someone.id, oil["id"], 1, someone.actor)
    for item_id, error in ((999, NotFound), ("1", NotFound), (-1, NotFound)):
        with pytest.raises(error):
            market.redeem(someone.id, item_id, 1, someone.actor)
    for quantity in (0, -1, 1.5, 21, "1"):
        with pytest.raises(InputError) as caught:
            market.redeem(someone.id, oil["id"], quantity, someone.actor)
        assert caught.value.field == "quantity"
    assert market.item(oil["id"])["stock"] == 5 and points.balance(someone.id) == 10
    assert points.statement(someone.id)["redemptions"] == []


@pytest.mark.parametrize("fields, field", [
    ({"name": "米", "price": -1, "stock": 1}, "price"),
    ({"name": "米", "price": 2.5, "stock": 1}, "price"),
    ({"name": "米", "price": 10, "stock": -1}, "stock"),
    ({"name": "", "price": 10, "stock": 1}, "name"),
])
def test_bad_items_are_refused(market, fields, field):
    with pytest.raises(InputError) as caught:
        market.add_item(**fields, community_code=COMMUNITY)
    assert caught.value.field == field
    with pytest.raises(InputError, match="one of them"):
        market.add_item("米", 10, 1)
    assert market.items() == []


def test_the_leaderboard_counts_earnings_per_community_and_month(points, market, person,
                                                                 clock):
    a, b, c = person("aaa"), person("bbb"), person("ccc")
    points.check_in(a.id, "巡逻", 2, COMMUNITY, WORKER)  # 40
    points.check_in(b.id, "巡逻", 3, COMMUNITY, WORKER)  # 60
    points.check_in(c.id, "巡逻", 5, "610104001002", WORKER)  # another community
    soap = market.add_item("肥皂", 30, 9, community_code=COMMUNITY)
    market.redeem(b.id, soap["id"], 1, b.actor)  # spending does not lower the rank
    clock.advance(days=40)
    points.check_in(a.id, "巡逻", 10, COMMUNITY, WORKER)  # next month
    board = points.leaderboard(COMMUNITY, "2026-11")
    assert [(r["username"], r["points"]) for r in board] == [("bbb", 60), ("aaa", 40)]
    assert [r["username"] for r in points.leaderboard(COMMUNITY, "2026-12")] == ["aaa"]
    with pytest.raises(InputError, match="YYYY-MM"):
        points.leaderboard(COMMUNITY, "November")


OPERATIONS = st.lists(st.tuples(
    st.sampled_from(["check_in", "adjust", "redeem", "cancel", "hand_over", "reverse"]),
    st.integers(0, 2), st.integers(-60, 60)), max_size=12)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_balance_is_the_ledger_sum_and_never_negative(service, points, market, person,
                                                      operations):
    """Any sequence of operations, each allowed to fail as the rules say: afterwards every
    balance equals the sum of its ledger and none is negative, and every item's stock is what
    it started with less what is reserved or handed over."""
    people = getattr(service, "_property_people", None)
    if people is None:
        people = service._property_people = [person(f"member{n}") for n in range(3)]
        service._property_item = market.add_item("面粉", 25, 4, community_code=COMMUNITY)
    item = service._property_item
    for name, who, amount in operations:
        user = people[who]
        try:
            if name == "check_in":
                points.check_in(user.id, "清扫", abs(amount) % 12 / 2 + 0.5, COMMUNITY, WORKER)
            elif name == "adjust":
                points.adjust(user.id, amount, "调整", ADMIN)
            elif name == "redeem":
                market.redeem(user.id, item["id"], 1 + abs(amount) % 2, user.actor)
            elif name in ("cancel", "hand_over", "reverse"):
                statement = points.statement(user.id)
                targets = statement["entries" if name == "reverse" else "redemptions"]
                if targets:
                    chosen = targets[abs(amount) % len(targets)]["id"]
                    if name == "reverse":
                        points.reverse(chosen, "复核", ADMIN)
                    else:
                        getattr(market, name)(chosen, WORKER)
        except (InputError, Conflict):
            pass
    sums, held = ledger_sums(service.db), balances(service.db)
    assert sums == held and all(v >= 0 for v in held.values())
    with service.db.read() as uow:
        out = uow.execute(select(func.coalesce(func.sum(t.redemptions.c.quantity), 0)).where(
            t.redemptions.c.state != "cancelled")).scalar_one()
    assert market.item(item["id"])["stock"] == 4 - out
