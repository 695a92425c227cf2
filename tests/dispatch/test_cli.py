"""The dispatch commands: db upgrade, seed-demo, import-boundaries, activate, sweep, stats."""

import json
import socket
import stat

import pytest
import shapely
from click.testing import CliRunner
from sqlalchemy import inspect

from dispatch.settings import Settings, make_service
from geo.demo import default_source
from tests.conftest import toy_layers, write_gpkg
from tests.dispatch.helpers import movable_grid, neighbour_community, report
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


def test_activation_says_whom_and_what_it_moved(env, demo):
    assert run(env, "seed-demo").exit_code == 0
    index = movable_grid(demo)
    grid = demo.grids.iloc[index]
    community = neighbour_community(demo, grid)
    service = make_service(Settings.from_env(env))
    service.submit_report(report(demo, index))
    service.db.dispose()
    run(env, "versions", "draft", "1")
    edited = run(env, "versions", "edit", 2, "reassign",
                 json.dumps({"grid": grid["code"], "community": community}))
    assert edited.exit_code == 0, edited.output
    done = run(env, "activate", 2)
    assert done.exit_code == 0, done.output
    assert "1 open work orders moved to their new grid (0 handed to its people)" in done.output
    assert f"the people of grid {grid['code']} now serve grid {community}" in done.output


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


def test_every_command_migrates_a_fresh_instance_and_keeps_it_private(env, tmp_path):
    assert run(env, "versions", "list").output == ""
    instance = tmp_path / "instance"
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert stat.S_IMODE((instance / "gridline.db").stat().st_mode) == 0o600
    assert run(env, "stats").output == "no work orders in that period\n"
    assert json.loads(run(env, "sweep").output)["marked"] == 0
    imported = run(env, "import-boundaries", default_source())
    assert imported.exit_code == 0 and json.loads(imported.output)["version"] == 1


def test_a_sqlite_url_with_options_keeps_the_database_file_private(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db?timeout=30"
    make_service(Settings.from_config({"DATABASE_URL": url, "INSTANCE": str(tmp_path / "i")})
                 ).db.dispose()
    assert stat.S_IMODE((tmp_path / "q.db").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("q.db")) == ["q.db"]


@pytest.mark.parametrize("value, migrated", [("off", False), ("no", False), ("0", False),
                                             ("yes", True), ("true", True)])
def test_the_web_app_reads_auto_upgrade_as_the_command_line_does(tmp_path, value, migrated):
    from web import create_app

    app = create_app({"INSTANCE": str(tmp_path), "TESTING": True, "AUTO_UPGRADE": value,
                      "DELIVERY_WORKER": False, "GROUP_COMMIT": False})
    db = app.extensions["gridline"].db
    tables = inspect(db.engine).get_table_names()
    db.dispose()
    assert ("work_orders" in tables) == migrated


def test_a_database_that_cannot_be_used_is_a_one_line_error(env):
    refused = {**env, "GRIDLINE_DATABASE_URL": "postgresql://gridline:s3cret@127.0.0.1:5999/x"}
    unmigrated = {**env, "GRIDLINE_AUTO_UPGRADE": "false"}
    for setting, args, message in (
            (refused, ("versions", "list"), "database postgresql+psycopg://gridline:***@"),
            (refused, ("tokens", "create", "someone"), "Connection refused"),
            ({**env, "GRIDLINE_DATABASE_URL": "notaurl"}, ("stats",), "is not a database URL"),
            (unmigrated, ("versions", "list"), "no such table")):
        result = run(setting, *args)
        assert result.exit_code == 2, args
        assert result.output.startswith("error: ") and message in result.output, args
        assert len(result.output.splitlines()) == 1 and "s3cret" not in result.output


def test_re_resolving_refuses_a_reversed_period_and_a_missing_folder(env, tmp_path):
    assert run(env, "seed-demo").exit_code == 0
    out = tmp_path / "rr.csv"
    backwards = run(env, "versions", "reresolve", 1, "--out", out, "--since", "2030-01-01",
                    "--until", "2020-01-01")
    assert backwards.exit_code == 2 and "must be before until" in backwards.output
    missing = run(env, "versions", "reresolve", 1, "--out", tmp_path / "nodir" / "rr.csv")
    assert missing.exit_code == 2 and "is not an existing folder" in missing.output
    assert not out.exists() and not (tmp_path / "nodir").exists()


def test_partition_of_stored_communities_answers_json(env, demo):
    assert run(env, "seed-demo").exit_code == 0
    code = demo.communities["code"].iloc[0]
    done = run(env, "partition", code, "--target-households", 400, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["version"] == 2


def test_accounts_must_name_what_exists_and_what_their_role_takes(env, demo):
    assert run(env, "seed-demo").exit_code == 0
    street = demo.streets["code"].iloc[0]
    password = ("--password", "secret123")
    for args, message in (
            (("gw1", "--role", "gridworker", "--gridworker-id", 99999),
             "no gridworker #99999 on the roster"),
            (("dep1", "--role", "department", "--department", "NOPE"), "no department 'NOPE'"),
            (("dep1", "--role", "department", "--department", "x" * 41), "no department"),
            (("dis1", "--role", "dispatcher", "--street", 999), "no street '999'"),
            (("rep1", "--role", "reporter", "--street", street), "takes no street_code"),
            (("rep1", "--role", "reporter", "--department", "chengguan"), "takes no department")):
        result = run(env, "users", "add", *args, *password)
        assert result.exit_code == 2 and result.output == f"error: {result.output[7:]}", args
        assert message in result.output, args
    added = [run(env, "users", "add", *args, *password) for args in (
        ("gwtwo", "--role", "gridworker", "--gridworker-id", 2),
        ("dis1", "--role", "dispatcher", "--street", street),
        ("dep1", "--role", "department", "--department", "chengguan"))]
    assert all(a.exit_code == 0 for a in added), [a.output for a in added]
    too_long = run(env, "tokens", "create", "dis1", "--name", "x" * 101)
    assert too_long.exit_code == 2 and "token name: 1-100 characters" in too_long.output
    assert run(env, "gridworkers", "remove", 2).exit_code == 0
    deactivated = run(env, "tokens", "create", "gwtwo")
    assert deactivated.exit_code == 2 and "'gwtwo' is deactivated" in deactivated.output


def test_over_long_account_fields_on_postgres_show_no_password_hash(env, postgres, pg_url):
    env = {**env, "GRIDLINE_DATABASE_URL": pg_url, "GRIDLINE_DELIVERY_WORKER": "false"}
    for option in ("--department", "--street"):
        role = "department" if option == "--department" else "dispatcher"
        result = run(env, "users", "add", "longone", "--role", role, option, "9" * 300,
                     "--password", "secret123")
        assert result.exit_code == 2 and result.output.startswith("error: no ")
        assert "scrypt" not in result.output
    assert run(env, "users", "add", "plan1", "--role", "planner", "--password",
               "secret123").exit_code == 0
    refused = run(env, "tokens", "create", "plan1", "--name", "x" * 101)
    assert refused.exit_code == 2 and "DataError" not in refused.output


def test_a_short_username_is_refused_before_the_password_is_asked_for(env):
    result = CliRunner().invoke(main, ["users", "add", "li", "--role", "dispatcher", "--street",
                                       "610104001"], env=env, input="")
    assert result.exit_code == 2
    assert result.output == "error: username: 3-100 letters, digits or _ . @ -\n"


@pytest.mark.parametrize("option, message", [
    (("--threads", 0), "0 is not in the range x>=1"),
    (("--port", 99999), "99999 is not in the range 0<=x<=65535"),
])
def test_serve_refuses_options_it_cannot_serve_with(env, option, message):
    result = run(env, "serve", *option)
    assert result.exit_code == 2 and message in result.output


def test_serve_on_a_taken_port_is_a_one_line_error(env, postgres, pg_url, monkeypatch):
    monkeypatch.setattr("web.logs.log_to_stderr", lambda level: None)
    env = {**env, "GRIDLINE_DATABASE_URL": pg_url, "GRIDLINE_DELIVERY_WORKER": "false",
           "GRIDLINE_GROUP_COMMIT": "false"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(env, "serve", "--port", port)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: cannot serve on 127.0.0.1:{port}: ")
    assert len(result.output.splitlines()) == 1
