"""Command-line commands of the dispatch core: database, boundary versions and drafts, sweep,
statistics, the roster.

All of them read their settings from ``GRIDLINE_*`` variables (see :mod:`dispatch.settings`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from dispatch.errors import GridlineError, InputError
from dispatch.people import GRIDWORKER_ROLES
from dispatch.roster import seed_demo, write_demo_roster
from dispatch.services import Actor
from dispatch.settings import Settings, make_service
from dispatch.stats import GROUPS
from dispatch.storage import normalise_url
from geo.boundaries import load_boundaries
from geo.cli import check_output_folder, reports_errors
from geo.cli import partition_command as geo_partition
from geo.demo import data_dir, default_source
from geo.sources import LAYERS


@contextmanager
def database_errors(url: str):
    """Turn a database URL that is not one, or a database that cannot be reached or used, into
    a one-line error naming the database at ``url`` without its password."""
    try:
        yield
    except ArgumentError:
        raise GridlineError("GRIDLINE_DATABASE_URL is not a database URL (e.g. "
                            "postgresql://user@host/gridline)") from None
    except (OperationalError, InterfaceError) as exc:
        shown = make_url(normalise_url(url))
        reason = str(exc.orig or exc).strip().splitlines()[0]
        if shown.password:
            reason = reason.replace(shown.password, "***")
        raise GridlineError(f"database {shown.render_as_string(hide_password=True)}: "
                            f"{reason}") from None


@contextmanager
def service():
    """The configured service, with the schema migrated to the newest version first (as the
    web app does, unless GRIDLINE_AUTO_UPGRADE is false) and its database connections closed
    afterwards."""
    settings = Settings.from_env()
    with database_errors(settings.database_url):
        svc = make_service(settings)
        try:
            if settings.auto_upgrade:
                svc.db.upgrade()
            yield svc
        finally:
            svc.db.dispose()


@click.group("db")
def db_group():
    """The database."""


@db_group.command("upgrade")
@reports_errors
def upgrade_command():
    """Create or migrate the tables to the newest version."""
    with service() as svc:
        svc.db.upgrade()
        svc.seed_departments()
        url = svc.db.engine.url.render_as_string(hide_password=True)
    click.echo(f"database at {url} is up to date")


@click.command("import-boundaries")
@click.argument("source", type=click.Path(exists=True))
@click.option("--activate", is_flag=True, help="Make it the active version if it is valid.")
@click.option("--name", help="A name for the version (default: the file name).")
@click.option("--crs", help="CRS of the source files, where they need one.")
@click.option("--metric-crs", help="Projected CRS in metres for distances and areas, kept with "
              "the version (default: the UTM zone of the grids' centre).")
@reports_errors
def import_boundaries_command(source, activate, name, crs, metric_crs):
    """Store a boundary SOURCE as a new version (inactive unless --activate)."""
    with service() as svc:
        result = svc.import_boundaries(source, activate=activate, name=name, crs=crs,
                                       metric_crs=metric_crs)
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    if activate and not result["valid"]:
        raise click.ClickException(f"version {result['version']} has {result['errors']} errors "
                                   "and was not activated; see gridline validate")


@click.command("activate")
@click.argument("version", type=int)
@reports_errors
def activate_command(version):
    """Make boundary VERSION the active one; grid assignments and open work orders follow."""
    with service() as svc:
        done = svc.activate_version(version)
    orders = done["orders"]
    click.echo(f"boundary version {version} is active; {orders['moved']} open work orders moved "
               f"to their new grid ({orders['rerouted']} handed to its people)")
    for old, new in done["grids_followed"].items():
        click.echo(f"  the people of grid {old} now serve grid {new}")
    if done["grids_unplaced"]:
        click.echo(f"  no grid took over from {', '.join(done['grids_unplaced'])}: assign "
                   "their people again (gridline gridworkers update)")


@click.group("versions")
def versions_group():
    """Boundary versions and drafts: list, start, edit, preview the impact, re-resolve."""


PLANNER = Actor("command line", "planner")


@versions_group.command("list")
@reports_errors
def versions_list_command():
    """Every boundary version, newest first."""
    with service() as svc:
        for v in svc.versions():
            valid = "valid" if v["valid"] else "ERRORS"
            click.echo(f"{v['version']:>4}  {v['state']:<8}  {valid:<6}  rev {v['revision']:<3}"
                       f"  {v['summary'].get('grids', 0):>5} grids  {v['name']}")


@versions_group.command("draft")
@click.argument("base", type=int)
@click.option("--name", help="A name for the draft.")
@reports_errors
def versions_draft_command(base, name):
    """Start a draft from version BASE."""
    with service() as svc:
        draft = svc.start_draft(base, PLANNER, name=name)
    click.echo(f"draft {draft['version']} started from version {base}")


@versions_group.command("edit")
@click.argument("version", type=int)
@click.argument("operation",
                type=click.Choice(["split", "merge", "reshape", "reassign", "station"]))
@click.argument("params")
@reports_errors
def versions_edit_command(version, operation, params):
    """Edit draft VERSION. PARAMS is JSON: split {"grid", "line"}, merge {"grids"}, reshape
    {"grid", "polygon"}, reassign {"grid", "community"}, station {"station", "name",
    "services", "point"} or {"station", "remove": true}; geometries are GeoJSON in WGS84."""
    try:
        values = json.loads(params)
    except json.JSONDecodeError as exc:
        raise InputError(f"PARAMS is not JSON: {exc}", field="params") from None
    with service() as svc:
        done = svc.edit_draft(version, operation, values, PLANNER)
    click.echo(f"revision {done['revision']}: {done['edit']}")


@versions_group.command("replace")
@click.argument("version", type=int)
@click.argument("layer", type=click.Choice(LAYERS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--crs", help="CRS of the file, where it needs one.")
@reports_errors
def versions_replace_command(version, layer, file, crs):
    """Replace LAYER of draft VERSION by FILE."""
    with service() as svc:
        done = svc.replace_draft_layer(version, layer, file, PLANNER, crs=crs)
    click.echo(f"revision {done['revision']}: {done['edit']}")


@versions_group.command("impact")
@click.argument("version", type=int)
@click.option("--months", default=6, show_default=True, help="Months of reports to weigh.")
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def versions_impact_command(version, months, as_json):
    """What activating VERSION would change, against the active version."""
    with service() as svc:
        impact = svc.planning.impact(version, months)
    if as_json:
        click.echo(json.dumps(impact, ensure_ascii=False, indent=2))
        return
    for key, value in impact["summary"].items():
        click.echo(f"{key:>32}  {value}")
    columns = ("code", "change", "area_change_m2", "reports_per_month_before",
               "reports_per_month_after", "households_before", "households_after")
    click.echo("  ".join(f"{c:>16}" for c in columns))
    for row in impact["grids"]:
        click.echo("  ".join(f"{'' if row[c] is None else row[c]!s:>16}" for c in columns))
    for person in impact["gridworkers"]:
        click.echo(f"gridworker {person['name']}: {person['change_per_month']:+} reports/month")
    for station in impact["stations"]:
        click.echo(f"station {station['station_id']}: gains {station['grids_gained']}, "
                   f"loses {station['grids_lost']}")


@versions_group.command("reresolve")
@click.argument("version", type=int)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First local day.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="First local day not included.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="CSV to write.")
@reports_errors
def versions_reresolve_command(version, since, until, out):
    """Past reports with their grid and the grid VERSION would give them (nothing changes)."""
    check_output_folder(out, "out")
    with service() as svc:
        frame = svc.planning.reresolve(version, *_local_period(svc, since, until))
    frame.to_csv(out, index=False)
    click.echo(f"{len(frame)} reports, {int(frame['changes_grid'].sum())} would change grid; "
               f"wrote {out}")


@versions_group.command("discard")
@click.argument("version", type=int)
@reports_errors
def versions_discard_command(version):
    """Delete draft VERSION."""
    with service() as svc:
        svc.discard_draft(version)
    click.echo(f"draft {version} discarded")


def _partition(source, **options):
    """A SOURCE file (or none: the demo district) is partitioned into a GeoPackage; community
    codes (comma-separated) of the active version become a new draft version."""
    if source is None or Path(source).exists():
        return geo_partition.callback(source=source, **options)
    codes = [c.strip() for c in source.split(",") if c.strip()]
    if not codes or not all(c.isdigit() for c in codes):
        raise click.UsageError(f"{source} is neither a file nor community codes")
    for option, name in (("reports_csv", "--reports"), ("output", "--out")):
        if options[option]:
            raise click.UsageError(f"{name} goes with a SOURCE file; community codes make a "
                                   "draft version (weigh it by stored reports with --weight "
                                   "reports)")
    with service() as svc:
        done = svc.partition_draft(codes, PLANNER, target=options["target"],
                                   low=options["low"], high=options["high"],
                                   weight=options["weight"])
    if options["as_json"]:
        click.echo(json.dumps(done, ensure_ascii=False, indent=2))
        return
    click.echo(f"draft {done['version']}: {done['edit']}")
    click.echo(f"preview it with: gridline versions impact {done['version']}")


partition_command = click.Command(
    "partition", callback=reports_errors(_partition),
    params=[click.Argument(["source"], required=False, metavar="[COMMUNITY_OR_SOURCE]"),
            *(p for p in geo_partition.params if p.name != "source")],
    help="Split communities into balanced, compact grids. COMMUNITY_OR_SOURCE is community "
         "codes of the active version (comma-separated; the result is a new draft version) or "
         "a boundary SOURCE (default: the demo district; the result goes to --out).")


def _local_period(svc, since: datetime | None, until: datetime | None):
    """The days given on the command line as the service's local midnights; a period that ends
    before it starts is refused rather than answered with nothing."""
    since, until = (day.replace(tzinfo=svc.timezone) if day else None for day in (since, until))
    if since is not None and until is not None and since >= until:
        raise InputError(f"since ({since:%Y-%m-%d %H:%M %Z}) must be before until "
                         f"({until:%Y-%m-%d %H:%M %Z}); the period would be empty",
                         field="since")
    return since, until


@click.command("sweep")
@reports_errors
def sweep_command():
    """Mark missed deadlines and deliver pending notifications (safe to run every minute)."""
    with service() as svc:
        click.echo(json.dumps(svc.sweep()))


@click.command("stats")
@click.option("--by", type=click.Choice(list(GROUPS)), help="Group the figures.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First local day counted.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="First local day not counted.")
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def stats_command(by, since, until, as_json):
    """Reported, closed, closure and on-time rates, time to close, reopened, whistles."""
    with service() as svc:
        since, until = _local_period(svc, since, until)
        rows = svc.stats(by=by, since=since, until=until)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no work orders in that period")
        return
    columns = list(rows[0])
    click.echo("  ".join(f"{c:>14}" for c in columns))
    for row in rows:
        click.echo("  ".join(f"{'' if row[c] is None else row[c]!s:>14}" for c in columns))


@click.command("demo-roster")
@reports_errors
def demo_roster_command():
    """Regenerate the demo roster (data/roster) from the demo district."""
    for path in write_demo_roster(load_boundaries(default_source()), data_dir() / "roster"):
        click.echo(f"wrote {path}")


@click.command("seed-demo")
@reports_errors
def seed_demo_command():
    """Set up an empty database with the demo district and its roster (once)."""
    with service() as svc:
        done = seed_demo(svc, data_dir() / "roster")
    if done is None:
        click.echo("a boundary version is already active: nothing to do")
    else:
        click.echo(f"demo district imported as version {done['version']} and activated; "
                   f"{done['gridworkers']} gridworkers, {done['dispatchers']} dispatchers")


ROSTER_ADMIN = Actor("command line", "admin")


def _answer(call) -> None:
    """Print what ``call(service)`` answers, as JSON."""
    with service() as svc:
        click.echo(json.dumps(call(svc), ensure_ascii=False, indent=2))


def _roster_group(name: str, kind: str, remove, remove_help: str) -> click.Group:
    """A command group for one ``kind`` of person on the roster, with ``show ID`` (what
    ``service.<kind>(id)`` answers) and ``remove ID`` (``remove(service, id)``)."""
    group = click.Group(name, help=f"{name.capitalize()} of the roster: show, update, remove.")
    person = click.argument("person_id", metavar="ID", type=int)

    @group.command("show", help=f"The {kind} ID.")
    @person
    @reports_errors
    def show(person_id):
        _answer(lambda svc: getattr(svc, kind)(person_id))

    @group.command("remove", help=remove_help)
    @person
    @reports_errors
    def remove_command(person_id):
        _answer(lambda svc: remove(svc, person_id))

    return group


gridworkers_group = _roster_group(
    "gridworkers", "gridworker", lambda svc, gid: svc.remove_gridworker(gid, ROSTER_ADMIN),
    "Take gridworker ID off the roster: their open work orders go to whom intake would "
    "assign now, their accounts are deactivated.")
dispatchers_group = _roster_group(
    "dispatchers", "dispatcher", lambda svc, did: svc.remove_dispatcher(did),
    "Take dispatcher ID off the roster.")


@gridworkers_group.command("update")
@click.argument("gridworker_id", metavar="ID", type=int)
@click.option("--name")
@click.option("--phone")
@click.option("--role", type=click.Choice(GRIDWORKER_ROLES))
@click.option("--grids", help="Grid codes of the active version, comma-separated; they replace "
                              "the gridworker's grids (\"\" for none).")
@click.option("--on-duty/--off-duty", default=None, help="Whether intake assigns to them.")
@reports_errors
def gridworkers_update_command(gridworker_id, name, phone, role, grids, on_duty):
    """Change what is given of gridworker ID (if anything is wrong, nothing changes)."""
    codes = None if grids is None else [c.strip() for c in grids.split(",") if c.strip()]
    _answer(lambda svc: svc.update_gridworker(gridworker_id, name=name, phone=phone, role=role,
                                              grids=codes, on_duty=on_duty))


@dispatchers_group.command("update")
@click.argument("dispatcher_id", metavar="ID", type=int)
@click.option("--name")
@click.option("--phone")
@click.option("--street", "street_code", help="A street code of the active version.")
@reports_errors
def dispatchers_update_command(dispatcher_id, name, phone, street_code):
    """Change what is given of dispatcher ID (if anything is wrong, nothing changes)."""
    _answer(lambda svc: svc.update_dispatcher(dispatcher_id, name=name, phone=phone,
                                              street_code=street_code))


COMMANDS = (db_group, import_boundaries_command, activate_command, versions_group,
            partition_command, sweep_command, stats_command, demo_roster_command,
            seed_demo_command, gridworkers_group, dispatchers_group)
