"""Reading one layer of a source alone: a stations layer may come as a CSV of lon/lat rows."""

import pytest

from geo.errors import BoundaryError
from geo.sources import read_source


def test_a_stations_csv_is_read_as_the_stations_layer(tmp_path):
    path = tmp_path / "stations.csv"
    path.write_text("station_id,name,lon,lat\nS9,新驿站,108.93,34.26\n", encoding="utf-8")
    frame = read_source(path, layer="stations").layers["stations"]
    assert list(frame["station_id"]) == ["S9"]
    assert (frame.geometry.x[0], frame.geometry.y[0]) == (108.93, 34.26)
    with pytest.raises(BoundaryError, match=r"\.csv for stations"):
        read_source(path, layer="grids")
