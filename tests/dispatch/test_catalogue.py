"""The service catalogue file."""

import pytest

from dispatch.catalogue import load_catalogue
from dispatch.errors import InputError

EXPECTED = {"road_collapse", "manhole_cover", "electrical_hazard", "fire_hazard", "water_leak",
            "illegal_parking", "bus_stop_congestion", "streetlight", "garbage", "noise",
            "property_dispute", "elderly_assistance"}


def test_the_shipped_catalogue_is_complete_and_consistent():
    catalogue = load_catalogue()
    assert EXPECTED <= set(catalogue.categories)
    for category in catalogue.categories.values():
        assert category.department in catalogue.departments
        assert 0 < category.respond_within <= category.resolve_within
        assert category.name and category.name_en and category.duplicate_radius_m > 0
    assert catalogue.category("road_collapse").urgency == "emergency"


@pytest.mark.parametrize("text, message", [
    ("[categories.x]\nname='x'\n", "missing or bad field"),
    ("[departments]\na={name='A'}\n[categories.x]\nname='x'\ndepartment='b'\n"
     "respond_within=1\nresolve_within=2\n", "unknown department 'b'"),
    ("[departments]\na={name='A'}\n[categories.x]\nname='x'\ndepartment='a'\n"
     "respond_within=1\nresolve_within=2\nurgency='whenever'\n", "urgency must be one of"),
    ("not = [toml", "cannot read catalogue"),
])
def test_bad_catalogues_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "catalogue.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_catalogue(path)


def test_unknown_category_lists_the_known_ones():
    with pytest.raises(InputError, match="known: bus_stop_congestion, elderly_assistance"):
        load_catalogue().category("ufo")


def test_answers_are_checked_by_kind_and_text_must_be_printable():
    parking = load_catalogue().category("illegal_parking")  # plate_number, free text
    assert parking.check_attributes({"plate_number": " 陕A12345 "}) == {
        "plate_number": "陕A12345"}
    for bad in ("陕A\x0012345", "陕A\ud80012345", 12345):
        with pytest.raises(InputError) as refused:
            parking.check_attributes({"plate_number": bad})
        assert refused.value.field == "attribute[plate_number]"
    elderly = load_catalogue().category("elderly_assistance")  # need: one of a list
    assert elderly.check_attributes({"need": ["meal"]}) == {"need": "meal"}
    with pytest.raises(InputError, match="must be one of"):
        elderly.check_attributes({"need": ["meal", "medical"]})
