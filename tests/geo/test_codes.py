"""Codes: their form and the reading-order numbering rule."""

import numpy as np
import pytest

from geo.codes import is_well_formed, number_children, reading_order
from geo.errors import BoundaryError


@pytest.mark.parametrize("code, level, ok", [
    ("610104001", "street", True), ("610104001002", "community", True),
    ("610104001002003", "grid", True), ("61010400100200", "grid", False),
    ("61010400100200x", "grid", False), (610104001002003, "grid", False), (None, "grid", False),
])
def test_well_formed_codes(code, level, ok):
    assert is_well_formed(code, level) is ok


def test_reading_order_runs_north_to_south_then_west_to_east():
    # A 3 x 2 block of equal 100 m cells, listed in scrambled order.
    x = np.array([250, 50, 150, 50, 250, 150])
    y = np.array([50, 150, 150, 50, 150, 50])
    areas = np.full(6, 100.0 * 100.0)
    order = reading_order(x, y, areas)
    assert [(x[i], y[i]) for i in order] == [(50, 150), (150, 150), (250, 150),
                                             (50, 50), (150, 50), (250, 50)]


def test_reading_order_treats_slightly_staggered_cells_as_one_row():
    # The second cell sits 30 m lower than the first but within the same 100 m row.
    order = reading_order(np.array([150, 50]), np.array([120, 150]), np.array([1e4, 1e4]))
    assert list(order) == [1, 0]


def test_missing_codes_follow_the_highest_existing_number():
    x, y, areas = np.array([0, 100, 200]), np.array([0, 0, 0]), np.full(3, 1e4)
    codes = number_children([None, "610104001002007", None], "610104001002", x, y, areas, "grid")
    assert codes == ["610104001002008", "610104001002007", "610104001002009"]


def test_malformed_existing_codes_are_kept_for_validation_to_report():
    codes = number_children(["bad", None], "610104001", np.array([0, 1]), np.array([0, 0]),
                            np.full(2, 1.0), "community")
    assert codes == ["bad", "610104001001"]


def test_more_than_999_children_is_refused():
    n = 1000
    with pytest.raises(BoundaryError, match="more than 999"):
        number_children([None] * n, "610104001", np.arange(n), np.zeros(n), np.ones(n),
                        "community")
