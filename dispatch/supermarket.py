"""The points supermarket (积分超市): items held by a community or a station, and redemptions.

A redemption reserves at once — the item's stock and the person's points both go down in one
transaction — and is then handed over by a community worker, who confirms it, or cancelled,
which gives both back. Stock and points move by conditional updates (``stock >= n``,
``balance >= price``), so when several people race for the last item or one person spends the
last points twice, exactly one redemption succeeds. Rows are always taken in the same order —
the item, then the account — so concurrent redemptions cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update

from dispatch import schema as t
from dispatch.checks import check_text
from dispatch.errors import Conflict, InputError, NotFound
from dispatch.points import (
    check_user,
    known_place,
    post,
    redemption,
    whole_points,
)
from dispatch.storage import known_id

MAX_QUANTITY = 20
MAX_NAME = 200
MAX_STOCK = 100_000
MAX_PRICE = 1_000_000


class Supermarket:
    """Items and redemptions, over the dispatch service's database and clock."""

    def __init__(self, service):
        self.service = service
        self.db = service.db

    def add_item(self, name: str, price, stock, *, community_code: str | None = None,
                 station_id: str | None = None) -> dict:
        """Put an item on the shelf of one community's supermarket or one station."""
        name = check_text(name, "name", MAX_NAME)
        price = whole_points(price, "price")
        if price > MAX_PRICE:
            raise InputError(f"price may be at most {MAX_PRICE} points", field="price")
        if isinstance(stock, bool) or not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK:
            raise InputError(f"stock must be a whole number from 0 to {MAX_STOCK}",
                             field="stock")
        if (community_code is None) == (station_id is None):
            raise InputError("an item is held by a community_code or a station_id (one of them)",
                             field="community_code")
        for code, field in ((community_code, "community_code"), (station_id, "station_id")):
            if code is not None:
                known_place(self.service, code, field)
        values = {"name": name, "price": price, "stock": stock, "active": True,
                  "community_code": community_code, "station_id": station_id,
                  "created_at": self.service.clock()}
        with self.db.unit_of_work() as uow:
            values["id"] = uow.execute(insert(t.supermarket_items).returning(
                t.supermarket_items.c.id), values).scalar_one()
        return _item(values)

    def items(self, community_code: str | None = None, station_id: str | None = None) -> list:
        """The items on offer, of one community or station if given."""
        i = t.supermarket_items.c
        query = select(t.supermarket_items).where(i.active).order_by(i.id)
        if community_code is not None:
            query = query.where(i.community_code == community_code)
        if station_id is not None:
            query = query.where(i.station_id == station_id)
        with self.db.read() as uow:
            return [_item(r._mapping) for r in uow.execute(query)]

    def item(self, item_id) -> dict:
        with self.db.read() as uow:
            return _item(_item_row(uow, item_id)._mapping)

    def redeem(self, user_id: int, item_id, quantity, actor,
               idempotency_key: str | None = None) -> dict:
        """Reserve ``quantity`` of an item for ``user_id``, paying its price in points.
        :class:`Conflict` when the stock or the points do not suffice; nothing changes then.

        Sent again with the same ``idempotency_key`` (a phone retrying after a timeout), it
        is answered with the first redemption and nothing more is paid; the key used by the
        same person for another item or quantity is a :class:`Conflict`."""
        quantity = whole_points(quantity, "quantity")
        if quantity > MAX_QUANTITY:
            raise InputError(f"quantity may be at most {MAX_QUANTITY}", field="quantity")
        if idempotency_key is not None:
            idempotency_key = check_text(idempotency_key, "idempotency_key", 100)
        now = self.service.clock()
        i, r = t.supermarket_items.c, t.redemptions.c
        with self.db.unit_of_work() as uow:
            check_user(uow, user_id)
            item = _item_row(uow, item_id)
            if idempotency_key is not None:
                uow.lock(f"redemption:{user_id}:{idempotency_key}")  # a retry waits for it
                earlier = uow.execute(select(r.id, r.item_id, r.quantity).where(
                    r.user_id == user_id, r.idempotency_key == idempotency_key)).first()
                if earlier is not None:
                    if (earlier.item_id, earlier.quantity) != (item.id, quantity):
                        raise Conflict("this idempotency_key was used for another redemption")
                    return _redemption(uow, earlier.id)
            taken = uow.execute(update(t.supermarket_items).where(
                i.id == item.id, i.stock >= quantity).values(stock=i.stock - quantity))
            if taken.rowcount != 1:
                raise Conflict(f"{item.name}: only {item.stock} left, {quantity} asked for")
            points = item.price * quantity
            rid = uow.execute(insert(t.redemptions).returning(t.redemptions.c.id), {
                "user_id": user_id, "item_id": item.id, "quantity": quantity,
                "points": points, "state": "reserved", "reserved_at": now,
                "idempotency_key": idempotency_key}).scalar_one()
            post(uow, user_id, -points, "redemption", actor, now, ref=f"redemption:{rid}",
                 key=f"redemption:{rid}", note=f"{quantity} × {item.name}",
                 community_code=item.community_code)
            return _redemption(uow, rid)

    def hand_over(self, redemption_id, actor) -> dict:
        """A community worker confirms the item was handed over (only a reserved one)."""
        return self._close(redemption_id, "handed_over", actor)

    def cancel(self, redemption_id, actor) -> dict:
        """Cancel a reserved redemption: the stock and the points come back."""
        return self._close(redemption_id, "cancelled", actor)

    def redemption(self, redemption_id) -> dict:
        with self.db.read() as uow:
            return _redemption(uow, known_id(redemption_id, "redemption"))

    def _close(self, redemption_id, state: str, actor) -> dict:
        known_id(redemption_id, "redemption")
        now = self.service.clock()
        r, i = t.redemptions.c, t.supermarket_items.c
        with self.db.unit_of_work() as uow:
            row = _redemption(uow, redemption_id)
            if state == "cancelled":  # the item's row first, as a redemption takes them
                uow.execute(update(t.supermarket_items).where(i.id == row["item_id"])
                            .values(stock=i.stock + row["quantity"]))
            done = uow.execute(update(t.redemptions).where(
                r.id == redemption_id, r.state == "reserved").values(
                state=state, closed_at=now, closed_by=actor.name))
            if done.rowcount != 1:
                raise Conflict(f"redemption {redemption_id} is already {row['state']}")
            if state == "cancelled":
                post(uow, row["user_id"], row["points"], "refund", actor, now,
                     ref=f"redemption:{redemption_id}", key=f"redemption:{redemption_id}:refund",
                     note=f"cancelled: {row['quantity']} × {row['item']}",
                     community_code=row["community_code"])
            return _redemption(uow, redemption_id)


def _item_row(uow, item_id):
    known_id(item_id, "item")
    row = uow.execute(select(t.supermarket_items).where(
        t.supermarket_items.c.id == item_id, t.supermarket_items.c.active)).first()
    if row is None:
        raise NotFound(f"no item {item_id} in the points supermarket")
    return row


def _redemption(uow, redemption_id: int) -> dict:
    row = uow.execute(select(t.redemptions, t.supermarket_items.c.name,
                             t.supermarket_items.c.community_code).join(t.supermarket_items)
                      .where(t.redemptions.c.id == redemption_id)).first()
    if row is None:
        raise NotFound(f"no redemption {redemption_id}")
    return {**redemption(row), "community_code": row.community_code}


def _item(row) -> dict:
    return {"id": row["id"], "name": row["name"], "price": row["price"], "stock": row["stock"],
            "community_code": row["community_code"], "station_id": row["station_id"]}
