"""Several processes racing for the last item and for the last points, on both databases:
exactly one redemption succeeds, and the ledger still adds up."""

import time

from sqlalchemy import func, select

from dispatch import schema as t
from tests.dispatch.conftest import ADMIN, COMMUNITY
from tests.dispatch.test_processes import WORKERS, finish, spawn


def test_several_people_race_for_the_last_item(database, points, market, person, tmp_path):
    racers = [person(f"racer{n}") for n in range(WORKERS)]
    for racer in racers:
        points.adjust(racer.id, 100, "奖励", ADMIN)
    flour = market.add_item("面粉", 30, 1, community_code=COMMUNITY)
    start = time.time() + 8
    outcomes = finish([spawn("redeem", database, tmp_path / "media",
                             {"user_id": racer.id, "item_id": flour["id"]}, start)
                       for racer in racers])
    assert sorted(outcomes) == ["redeemed"] + ["refused"] * (WORKERS - 1)
    assert market.item(flour["id"])["stock"] == 0
    assert sorted(points.balance(r.id) for r in racers) == [70] + [100] * (WORKERS - 1)


def test_one_person_spends_the_last_points_once(database, points, market, person, tmp_path):
    spender = person("spender")
    points.adjust(spender.id, 30, "奖励", ADMIN)
    oil = market.add_item("食用油", 30, 10, community_code=COMMUNITY)
    start = time.time() + 8
    outcomes = finish([spawn("redeem", database, tmp_path / "media",
                             {"user_id": spender.id, "item_id": oil["id"]}, start)
                       for _ in range(WORKERS)])
    assert sorted(outcomes) == ["redeemed"] + ["refused"] * (WORKERS - 1)
    assert market.item(oil["id"])["stock"] == 9 and points.balance(spender.id) == 0
    with database.read() as uow:
        total = uow.execute(select(func.sum(t.points_ledger.c.amount)).where(
            t.points_ledger.c.user_id == spender.id)).scalar_one()
        redeemed = uow.execute(select(func.count()).select_from(t.redemptions)).scalar_one()
    assert total == 0 and redeemed == 1
