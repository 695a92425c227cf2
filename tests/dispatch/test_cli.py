"""The dispatch commands: db upgrade, seed-demo, import-boundaries, activate, sweep, stats."""

import json

import pytest
import shapely
from click.testing import CliRunner

from dispatch.settings import Settings, make_service
from tests.conftest import toy_layers, write_gpkg
from tests.dispatch.helpers import report
from web.cli import main


@pytest.fixture
def env(tmp_path):
    return {"GRIDLINE_INSTANCE": str(tmp_path / "instance"), "GRIDLINE_DATABASE_URL": ""}


def run(env, *args):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def test_a_fresh_instance_is_set_up_by_seed_demo(env, demo):
    result = run(env, "seed-demo")
    assert result.exit_code == 0, result.output
    assert "activated; 688 gridworkers, 18 dispatchers" in result.output
    assert "nothing to do" in run(env, "seed-demo").output
    service = make_service(Settings.from_env(env))
    order = service.submit_report(report(demo))
    service.db.dispose()
    stats = json.loads(run(env, "stats", "--json").output)
    assert stats[0]["reported"] == 1 and stats[0]["closed"] == 0
    by_street = json.loads(run(env, "stats", "--by", "street", "--json").output)
    assert by_street[0]["street"] == order["street_code"]
    assert json.loads(run(env, "sweep").output)["marked"] == 0


def test_import_keeps_an_invalid_version_inactive(env, tmp_path):
    assert run(env, "db", "upgrade").exit_code == 0
    layers = toy_layers()
    layers["grids"].loc[0, "geometry"] = shapely.Polygon(
        [(108.91, 34.20), (108.92, 34.21), (108.92, 34.20), (108.91, 34.21)])
    broken = write_gpkg(tmp_path / "broken.gpkg", layers)
    result = run(env, "import-boundaries", broken, "--activate")
    assert result.exit_code == 1 and "was not activated" in result.output
    version = json.loads(result.output.split("\nError")[0])["version"]
    refused = run(env, "activate", version)
    assert refused.exit_code == 2 and "has validation errors" in refused.output
    assert run(env, "activate", 999).exit_code == 2
    good = run(env, "import-boundaries", write_gpkg(tmp_path / "ok.gpkg", toy_layers()),
               "--activate")
    assert good.exit_code == 0 and json.loads(good.output)["active"] is True


def test_import_takes_a_metric_crs_and_refuses_one_in_degrees(env, tmp_path):
    assert run(env, "db", "upgrade").exit_code == 0
    source = write_gpkg(tmp_path / "ok.gpkg", toy_layers())
    chosen = run(env, "import-boundaries", source, "--metric-crs", "EPSG:4545")
    assert chosen.exit_code == 0 and json.loads(chosen.output)["metric_crs"] == "EPSG:4545"
    refused = run(env, "import-boundaries", source, "--metric-crs", "EPSG:4326")
    assert refused.exit_code == 2 and "is not a projected system in metres" in refused.output
    listed = run(env, "versions", "list")
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == 1  # nothing stored


def test_stats_refuses_bad_options(env):
    assert run(env, "db", "upgrade").exit_code == 0
    assert run(env, "stats", "--by", "planet").exit_code == 2
    assert run(env, "stats", "--since", "yesterday").exit_code == 2
    for until in ("2026-11-01", "2026-11-05"):
        backwards = run(env, "stats", "--since", "2026-11-05", "--until", until)
        assert backwards.exit_code == 2
        assert "error: since (2026-11-05 00:00 CST) must be before until" in backwards.output
    assert "no work orders" in run(env, "stats").output


def test_db_upgrade_on_postgres_is_idempotent(postgres, pg_url):
    env = {"GRIDLINE_DATABASE_URL": pg_url}
    result = run(env, "db", "upgrade")
    assert result.exit_code == 0 and "is up to date" in result.output
    assert json.loads(run(env, "stats", "--json").output) == []


def test_a_draft_is_started_edited_previewed_and_re_resolved_from_the_command_line(
        env, demo, tmp_path):
    assert run(env, "seed-demo").exit_code == 0
    service = make_service(Settings.from_env(env))
    service.submit_report(report(demo, 100))
    service.db.dispose()
    assert "draft 2 started from version 1" in run(env, "versions", "draft", "1").output
    grid = demo.grids.iloc[100]
    x0, y0, x1, y1 = grid.geometry.bounds
    line = {"type": "LineString", "coordinates": [[(x0 + x1) / 2, y0 - 0.001],
                                                  [(x0 + x1) / 2, y1 + 0.001]]}
    edited = run(env, "versions", "edit", 2, "split",
                 json.dumps({"grid": grid["code"], "line": line}))
    assert edited.exit_code == 0 and f"revision 1: split grid {grid['code']}" in edited.output
    refused = run(env, "versions", "edit", 2, "merge", "{not json")
    assert refused.exit_code == 2 and "PARAMS is not JSON" in refused.output
    impact = json.loads(run(env, "versions", "impact", 2, "--json").output)
    assert impact["summary"]["grids_added"] == 1 and impact["summary"]["open_orders"] == 1
    assert "grids_reshaped" in run(env, "versions", "impact", 2).output
    out = tmp_path / "moved.csv"
    answer = run(env, "versions", "reresolve", 2, "--out", out)
    assert answer.exit_code == 0 and out.read_text().startswith("report_id,")
    listing = run(env, "versions", "list").output.splitlines()
    assert listing[0].split()[:2] == ["2", "draft"] and listing[1].split()[:2] == ["1", "active"]
    assert "draft 2 discarded" in run(env, "versions", "discard", 2).output
    assert run(env, "versions", "discard", 1).exit_code == 2


def test_partition_of_stored_communities_makes_a_draft(env, demo):
    assert run(env, "seed-demo").exit_code == 0
    codes = list(demo.communities["code"][:2])
    done = run(env, "partition", ",".join(codes), "--target-households", 400, "--min", 300,
               "--max", 500)
    assert done.exit_code == 0, done.output
    assert f"draft 2: partitioned {', '.join(codes)} into" in done.output
    service = make_service(Settings.from_env(env))
    draft = service.boundaries(2)
    service.db.dispose()
    new = draft.grids[draft.grids["community_code"].isin(codes)]
    assert new["households"].between(300, 500).all()
    assert set(draft.grids["code"]) - set(new["code"]) == set(
        demo.grids.loc[~demo.grids["community_code"].isin(codes), "code"])
    impact = json.loads(run(env, "versions", "impact", 2, "--json").output)
    assert impact["summary"]["grids_added"] + impact["summary"]["grids_reshaped"] > 0
    refused = run(env, "partition", codes[0], "--target-households", 400, "--out", "x.gpkg")
    assert refused.exit_code == 2 and "--out goes with a SOURCE file" in refused.output
    unknown = run(env, "partition", "610104999999", "--target-households", 400)
    assert unknown.exit_code == 2 and "610104999999" in unknown.output
    listing = run(env, "versions", "list").output.splitlines()
    assert [line.split()[0] for line in listing] == ["2", "1"]  # the refused draft is gone
    typo = run(env, "partition", "distrct.gpkg", "--target-households", 400)
    assert typo.exit_code == 2 and "neither a file nor community codes" in typo.output
