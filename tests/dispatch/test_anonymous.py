"""Anonymous reports: allowed unless the category needs a way to reach the reporter."""

import pytest
from sqlalchemy import func, select

from dispatch import schema as t
from dispatch.catalogue import load_catalogue
from dispatch.errors import InputError
from tests.dispatch.helpers import report

NEEDS_CONTACT = {"elderly_assistance": {"need": "meal"}, "property_dispute": {"compound": "绿地"}}


def count_reports(service) -> int:
    with service.db.read() as uow:
        return uow.execute(select(func.count()).select_from(t.reports)).scalar_one()


def test_the_catalogue_says_which_categories_need_contact():
    catalogue = load_catalogue()
    closed = {c.code for c in catalogue.categories.values() if not c.anonymous}
    assert closed == set(NEEDS_CONTACT)
    assert catalogue.category("road_collapse").anonymous is True


def test_a_non_boolean_anonymous_flag_is_refused(tmp_path):
    path = tmp_path / "catalogue.toml"
    path.write_text("[departments]\na={name='A'}\n[categories.x]\nname='x'\ndepartment='a'\n"
                    "respond_within=1\nresolve_within=2\nanonymous='no'\n")
    with pytest.raises(InputError, match="anonymous must be true or false"):
        load_catalogue(path)


@pytest.mark.parametrize("category", sorted(NEEDS_CONTACT))
def test_no_account_and_no_phone_is_refused_and_nothing_written(service, demo, category):
    data = report(demo, category=category, attributes=NEEDS_CONTACT[category],
                  reporter_name=None, reporter_phone=None)
    with pytest.raises(InputError, match="cannot be reported anonymously") as refused:
        service.submit_report(data)
    assert refused.value.field == "reporter_phone"
    assert count_reports(service) == 0


@pytest.mark.parametrize("contact", [{"reporter_phone": "13912345678"}, {"user_id": 7}])
def test_a_phone_or_an_account_is_enough(service, demo, contact):
    phone = contact.get("reporter_phone")
    data = report(demo, category="elderly_assistance", attributes={"need": "medical"},
                  reporter_phone=phone)
    answer = service.submit_report(data, user_id=contact.get("user_id"))
    assert answer["outcome"] == "created"
    with service.db.read() as uow:
        row = uow.execute(select(t.reports)).one()
    assert (row.reporter_phone, row.user_id) == (phone, contact.get("user_id"))


def test_other_categories_may_be_anonymous(service, demo):
    answer = service.submit_report(report(demo, category="garbage", reporter_name=None,
                                          reporter_phone=None))
    assert answer["outcome"] == "created" and count_reports(service) == 1


def test_a_malformed_phone_is_still_a_phone_error(service, demo):
    data = report(demo, category="elderly_assistance", attributes={"need": "meal"},
                  reporter_phone="call me")
    with pytest.raises(InputError, match="phone must be digits") as refused:
        service.submit_report(data)
    assert refused.value.field == "reporter_phone"
