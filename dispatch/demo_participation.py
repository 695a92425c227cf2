"""The demo district's participation data: its compounds and a few shelves of the points
supermarket, so that a fresh demo shows them."""

from __future__ import annotations

from sqlalchemy import select

from dispatch import schema as t
from dispatch.compounds import Compounds
from dispatch.supermarket import Supermarket

# (name, price in points, stock) on the shelf of each of the first communities
DEMO_ITEMS = (("面粉 5kg", 200, 20), ("食用油 1.8L", 300, 10), ("洗衣液 2kg", 150, 30),
              ("抽纸 10包", 80, 50))
DEMO_COMMUNITIES = 3
DEMO_STATION_ITEMS = (("暖手宝", 120, 10), ("充电线", 60, 20))


def seed_participation(service) -> dict:
    """Load the demo compounds and, if the supermarket is empty, stock it: the first
    communities' supermarkets and the first station. Returns the counts."""
    compounds = Compounds(service.db).load()
    with service.db.read() as uow:
        stocked = uow.execute(select(t.supermarket_items.c.id)).first() is not None
    items = 0
    if not stocked:
        market = Supermarket(service)
        bset = service.active_resolver()[1].boundaries
        for community in bset.communities["code"][:DEMO_COMMUNITIES]:
            for name, price, stock in DEMO_ITEMS:
                market.add_item(name, price, stock, community_code=community)
                items += 1
        station = bset.layer("stations")["station_id"].iloc[0]
        for name, price, stock in DEMO_STATION_ITEMS:
            market.add_item(name, price, stock, station_id=station)
            items += 1
    return {"compounds": compounds, "items": items}
