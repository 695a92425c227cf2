"""The participation commands on a fresh demo instance: the demo seeds compounds and
supermarket shelves; coverage, points adjustments and statements, the service-order sweep."""

import json

from click.testing import CliRunner

from dispatch.compounds import demo_compounds_file
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
