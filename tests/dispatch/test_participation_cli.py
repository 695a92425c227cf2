"""The participation commands on a fresh demo instance: the demo seeds compounds and
supermarket shelves; coverage, points adjustments and statements, the service-order sweep."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from dispatch import schema as t
from dispatch.compounds import Compounds, demo_compounds_file
from dispatch.errors import InputError
from dispatch.settings import Settings, make_service
from dispatch.stations import demo_station_hours_file
from dispatch.supermarket import Supermarket
from tests.dispatch.test_cli import env, run  # noqa: F401  (the fixture and the runner)
from web.cli import main


def test_the_demo_shows_participation_and_the_commands_work(env, tmp_path):  # noqa: F811
    assert run(env, "seed-demo").exit_code == 0
    svc = make_service(Settings.from_env(env))
    try:
        items = Supermarket(svc).items()
    finally:
        svc.db.dispose()
    assert {i["name"] for i in items} >= {"面粉 5kg", "暖手宝"}
    coverage = json.loads(run(env, "compound-coverage").output)
    assert coverage["compounds"] > 500 and 0 < coverage["share"] < 1
    added = run(env, "users", "add", "rider1", "--role", "reporter", "--password",
                "correct horse")
    assert added.exit_code == 0, added.output
    adjusted = run(env, "points", "adjust", "rider1", "30", "--reason", "开户奖励")
    assert adjusted.exit_code == 0 and "balance 30" in adjusted.output
    refused = run(env, "points", "adjust", "--reason", "扣减", "rider1", "--", "-31")
    assert refused.exit_code != 0 and "not enough points" in refused.output
    statement = json.loads(run(env, "points", "statement", "rider1").output)
    assert statement["balance"] == 30 and statement["entries"][0]["note"] == "开户奖励"
    assert run(env, "points", "statement", "nobody").exit_code != 0
    assert json.loads(run(env, "sweep-service-orders").output) == {"marked": 0}


def test_the_demo_files_regenerate_unchanged():
    files = [demo_compounds_file(), demo_station_hours_file()]
    before = [f.read_bytes() for f in files]
    result = CliRunner().invoke(main, ["demo-participation"])
    assert result.exit_code == 0 and result.output.count("wrote") == 2
    assert [f.read_bytes() for f in files] == before


def test_a_negative_amount_takes_points_as_the_help_says(env):  # noqa: F811
    assert run(env, "db", "upgrade").exit_code == 0
    assert run(env, "users", "add", "rep1", "--role", "reporter", "--password",
               "correct horse").exit_code == 0
    assert run(env, "points", "adjust", "rep1", 10, "--reason", "奖励").exit_code == 0
    taken = run(env, "points", "adjust", "rep1", "-5", "--reason", "扣减")
    assert taken.exit_code == 0, taken.output
    assert "-5, balance 5" in taken.output


def _compounds_file(path, change):
    """The first four demo compounds, with ``change`` applied to their features."""
    features = json.loads(demo_compounds_file().read_text(encoding="utf-8"))["features"][:4]
    change(features)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


BOWTIE = {"type": "Polygon", "coordinates": [[[108.91, 34.20], [108.92, 34.21], [108.92, 34.20],
                                              [108.91, 34.21], [108.91, 34.20]]]}


@pytest.mark.parametrize("change, message", [
    (lambda f: f[0]["properties"].update(built_year="abc"),
     "feature 1: built_year 'abc' is not a year"),
    (lambda f: f[1]["properties"].update(built_year=None), "feature 2: built_year is missing"),
    (lambda f: f[1]["properties"].update(code=f[0]["properties"]["code"]),
     "feature 2: code 610104001001001C is repeated"),
    (lambda f: f[2].update(geometry=None),
     "feature 3: geometry must be a polygon or multipolygon"),
    (lambda f: f[2].update(geometry=BOWTIE), "feature 3: geometry is invalid (Self-intersection"),
    (lambda f: f[3]["properties"].update(community_code="999"),
     "feature 4: community_code '999' is not a community of the active boundary version"),
])
def test_a_bad_compounds_file_is_refused_whole(env, tmp_path, change, message):  # noqa: F811
    assert run(env, "seed-demo").exit_code == 0
    before = json.loads(run(env, "compound-coverage").output)
    result = run(env, "load-compounds", _compounds_file(tmp_path / "bad.geojson", change))
    assert result.exit_code == 2
    assert result.output.startswith("error: compounds file: ") and message in result.output
    assert len(result.output.splitlines()) == 1
    assert json.loads(run(env, "compound-coverage").output) == before


def test_a_bad_compounds_file_changes_nothing_on_either_backend(database, tmp_path):
    compounds = Compounds(database)
    before = compounds.coverage()
    bad = _compounds_file(tmp_path / "bad.geojson",
                          lambda f: f[1]["properties"].update(code=f[0]["properties"]["code"]))
    with pytest.raises(InputError, match="code 610104001001001C is repeated"):
        compounds.load(bad)
    assert compounds.coverage() == before


def test_years_written_as_text_are_read_as_years(database, tmp_path):
    def as_text(features):
        features[0]["properties"]["built_year"] = "1998.0"
        features[1]["properties"]["built_year"] = "2003"

    path = _compounds_file(tmp_path / "text.geojson", as_text)
    compounds = Compounds(database)
    try:
        assert compounds.load(path) == 4
        codes = [f["properties"]["code"]
                 for f in json.loads(path.read_text("utf-8"))["features"]]
        with database.read() as uow:
            years = dict(uow.execute(select(t.compounds.c.code,
                                            t.compounds.c.built_year)).all())
        assert (years[codes[0]], years[codes[1]]) == (1998, 2003)
    finally:  # the seeded database is shared by the tests after this one
        compounds.load()
