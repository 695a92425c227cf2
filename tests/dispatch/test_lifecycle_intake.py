"""Where an order's life begins, through the service on both databases: a report outside the
district refused on request, and idempotency keys that belong to whoever sent them."""

import pytest
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.errors import Conflict, InputError
from tests.dispatch.helpers import photo, report


def count(service, table) -> int:
    with service.db.read() as uow:
        return uow.execute(select(func.count()).select_from(table)).scalar_one()


def stored_files(service) -> list:
    return sorted(service.media.iterdir()) if service.media.exists() else []


def far_away(demo) -> dict:
    west, south, east, north = demo.grids.total_bounds
    return report(demo, lon=east + 0.02, lat=(south + north) / 2)


def test_a_report_outside_the_district_may_be_refused_instead_of_kept(service, demo):
    with pytest.raises(InputError) as info:
        service.submit_report(far_away(demo), photo=photo(), keep_outside=False)
    assert info.value.field == "lat"
    assert all(count(service, table) == 0 for table in (t.reports, t.work_orders, t.audit))
    assert stored_files(service) == []
    kept = service.submit_report(far_away(demo))  # the native API's way: kept, and told why
    assert kept["outcome"] == "outside" and str(info.value) == kept["reason"]
    assert "outside the district" in kept["reason"] and " m from the nearest grid" in (
        kept["reason"])


def test_a_report_inside_is_taken_as_ever_when_outside_ones_are_refused(service, demo):
    answer = service.submit_report(report(demo), keep_outside=False)
    assert answer["outcome"] == "created" and answer["work_order_id"] is not None


def test_an_idempotency_key_answers_only_the_user_who_sent_it(service, demo):
    first = service.submit_report(report(demo, idempotency_key="phone-1"), user_id=1)
    for user_id in (2, None):
        with pytest.raises(Conflict, match="idempotency_key 'phone-1' is taken"):
            service.submit_report(report(demo, 300, idempotency_key="phone-1"), photo=photo(),
                                  user_id=user_id)
    assert service.submit_report(report(demo, idempotency_key="phone-1"), user_id=1) == first
    assert count(service, t.reports) == 1 and count(service, t.work_orders) == 1
    assert stored_files(service) == []  # the refused reports' photos are not kept


def test_anonymous_retries_with_one_key_still_get_the_first_answer(service, demo):
    first = service.submit_report(report(demo, idempotency_key="anonymous-1"))
    assert service.submit_report(report(demo, idempotency_key="anonymous-1")) == first
    with pytest.raises(Conflict):
        service.submit_report(report(demo, idempotency_key="anonymous-1"), user_id=1)
    assert count(service, t.reports) == 1
