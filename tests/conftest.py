"""Shared fixtures: the real public data, the bundled demo district and a small toy district."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo.boundaries import load_boundaries
from geo.demo import default_source
from geo.resolver import Resolver

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The folder of real public data (``GRIDLINE_REALDATA`` or ``../shared/realdata``)."""
    folder = Path(os.environ.get("GRIDLINE_REALDATA") or PROJECT.parent / "shared" / "realdata")
    if not (folder / "SOURCES.md").is_file():
        pytest.fail(f"real data folder {folder} is missing: set GRIDLINE_REALDATA to the folder "
                    "holding SOURCES.md and the files it lists")
    return folder


@pytest.fixture(scope="session")
def demo():
    """The bundled demo district, loaded once."""
    return load_boundaries(default_source())


@pytest.fixture(scope="session")
def demo_resolver(demo):
    return Resolver(demo)


# A toy district near Lianhu, in degrees: two streets side by side; street A holds communities
# A1 (south) and A2 (north), street B holds B1, whose grids leave its north-east quarter bare.
TOY_STREETS = {"A": (108.90, 34.20, 108.92, 34.22), "B": (108.92, 34.20, 108.94, 34.22)}
TOY_COMMUNITIES = {"A1": ("A", (108.90, 34.20, 108.92, 34.21)),
                   "A2": ("A", (108.90, 34.21, 108.92, 34.22)),
                   "B1": ("B", (108.92, 34.20, 108.94, 34.22))}
TOY_GRIDS = {"A1w": (108.90, 34.20, 108.91, 34.21), "A1e": (108.91, 34.20, 108.92, 34.21),
             "A2w": (108.90, 34.21, 108.91, 34.22), "A2e": (108.91, 34.21, 108.92, 34.22),
             "B1w": (108.92, 34.20, 108.93, 34.22), "B1se": (108.93, 34.20, 108.94, 34.21)}
TOY_STATIONS = {"S1": (108.905, 34.205), "S2": (108.935, 34.215)}


def toy_layers():
    """The toy district as four GeoDataFrames without codes (names only)."""
    streets = gpd.GeoDataFrame({"name": [f"street {k}" for k in TOY_STREETS]},
                               geometry=[shapely.box(*b) for b in TOY_STREETS.values()],
                               crs="EPSG:4326")
    communities = gpd.GeoDataFrame(
        {"name": [f"community {k}" for k in TOY_COMMUNITIES]},
        geometry=[shapely.box(*b) for _, b in TOY_COMMUNITIES.values()], crs="EPSG:4326")
    grids = gpd.GeoDataFrame({"name": list(TOY_GRIDS)},
                             geometry=[shapely.box(*b) for b in TOY_GRIDS.values()],
                             crs="EPSG:4326")
    stations = gpd.GeoDataFrame({"station_id": list(TOY_STATIONS), "name": list(TOY_STATIONS)},
                                geometry=shapely.points(list(TOY_STATIONS.values())),
                                crs="EPSG:4326")
    return {"streets": streets, "communities": communities, "grids": grids,
            "stations": stations}


def write_gpkg(path: Path, layers: dict) -> Path:
    for name, frame in layers.items():
        frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
    return path


@pytest.fixture
def toy_gpkg(tmp_path) -> Path:
    return write_gpkg(tmp_path / "toy.gpkg", toy_layers())


@pytest.fixture
def toy(toy_gpkg):
    return load_boundaries(toy_gpkg, district_code="610104")
