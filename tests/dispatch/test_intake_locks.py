"""The lock keys of intake: reports that may be of one problem always wait for each other,
reports far apart do not."""

import random
from types import SimpleNamespace

import pytest

from dispatch.intake import _neighbourhood
from dispatch.storage import GEOD


def pending(category, radius_m, lon, lat):
    return SimpleNamespace(category=SimpleNamespace(code=category, duplicate_radius_m=radius_m),
                           where=SimpleNamespace(lon=lon, lat=lat))


@pytest.mark.parametrize("latitude", [0.0, 34.27, 59.9, -41.3, 75.0, -85.0])
@pytest.mark.parametrize("radius_m", [0, 50, 150])
def test_reports_within_the_radius_share_a_lock_and_far_ones_do_not(latitude, radius_m):
    rng = random.Random(7)
    for _ in range(400):
        lon, lat = 108.9 + rng.uniform(-0.05, 0.05), latitude + rng.uniform(-0.05, 0.05)
        azimuth = rng.uniform(-180, 180)
        near_lon, near_lat, _ = GEOD.fwd(lon, lat, azimuth, rng.uniform(0, radius_m))
        far_lon, far_lat, _ = GEOD.fwd(lon, lat, azimuth, 15 * max(radius_m, 1) + 20)
        mine = set(_neighbourhood(pending("garbage", radius_m, lon, lat)))
        assert mine & set(_neighbourhood(pending("garbage", radius_m, near_lon, near_lat)))
        assert not mine & set(_neighbourhood(pending("garbage", radius_m, far_lon, far_lat)))
        assert not mine & set(_neighbourhood(pending("noise", radius_m, lon, lat)))
        assert len(mine) <= 4
