"""Command-line commands of the spatial core: validate, resolve, resolve-file, partition,
demo-data.

Each command is a thin shell over :mod:`geo`: it parses options, calls one function and prints.
A :class:`~geo.errors.GridlineError` becomes a one-line ``error:`` message and exit status 2 (with
``--json``, a JSON object ``{"error": ..., "field": ...}`` on standard output instead);
``validate`` exits 1 when the set has errors.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from geo.boundaries import load_boundaries, write_boundaries
from geo.bulk import report_points, resolve_csv
from geo.demo import default_source, sample_reports, write_demo, write_sample_reports
from geo.errors import GridlineError, InputError
from geo.partition import partition
from geo.resolver import Resolver
from geo.validation import DEFAULT_TOLERANCE_M2, validate

CRS_HELP = "wgs84, gcj02, bd09, cgcs2000 or EPSG:<code>"


def reports_errors(command):
    """Turn gridline's own errors, and files that cannot be read or written, into a clean
    message and exit status 2; a command run with ``--json`` gets the error as JSON too, so that
    its output is always JSON."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (GridlineError, OSError) as exc:
            message = _os_message(exc) if isinstance(exc, OSError) else str(exc)
            if kwargs.get("as_json"):
                error = {"error": message, "field": getattr(exc, "field", None)}
                click.echo(json.dumps(error, ensure_ascii=False))
            else:
                click.echo(f"error: {message}", err=True)
            sys.exit(2)
    return wrapper


def _os_message(exc: OSError) -> str:
    """What the system said, and about which file, without the ``[Errno n]`` prefix."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def check_output_folder(path, field: str) -> None:
    """An output file's folder must exist already: a mistyped path is refused before any work
    is done, and no folder is made for it."""
    folder = Path(path).absolute().parent
    if not folder.is_dir():
        raise InputError(f"{field} {path}: {folder} is not an existing folder", field=field)


def source_options(command):
    """The options that say how to read a boundary SOURCE (shared by every command).

    They are named after :func:`~geo.boundaries.load_boundaries`' parameters, which take them
    as they are (the ``reading`` keywords of the commands).
    """
    options = [
        click.option("--code-field", help="Property holding each polygon's code (default: code)."),
        click.option("--name-field", help="Property holding each polygon's name (default: name)."),
        click.option("--stations", type=click.Path(exists=True, dir_okay=False),
                     help="Station file: GeoJSON, GeoPackage or CSV with lon/lat columns."),
        click.option("--stations-crs", help=f"CRS of the stations ({CRS_HELP}); default: the "
                     "one their file declares, WGS84 for a CSV."),
        click.option("--metric-crs", help="Projected CRS in metres for distances and areas, "
                     "e.g. EPSG:4545 (default: the UTM zone of the grids' centre)."),
        click.option("--district-code", help="6-digit district code for codes to assign."),
        click.option("--fix", is_flag=True, help="Repair invalid polygons (each is listed)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load(source, crs, **reading):
    return load_boundaries(source or default_boundaries(), crs=crs, **reading)


def default_boundaries() -> Path:
    """``GRIDLINE_BOUNDARIES`` if set, else the bundled demo district."""
    return Path(os.environ.get("GRIDLINE_BOUNDARIES") or default_source())


def _resolver(source, crs, **reading) -> Resolver:
    bset = _load(source, crs, **reading)
    report = validate(bset)
    if not report.ok:
        raise click.ClickException(
            f"the boundary set has {len(report.errors)} errors (first: {report.errors[0].feature}"
            f" {report.errors[0].check}: {report.errors[0].message}); run 'gridline validate' "
            "for the full report, or --fix to repair invalid polygons")
    return Resolver(bset)


@click.command("validate")
@click.argument("source", required=False)
@click.option("--crs", help=f"CRS of the source files ({CRS_HELP}); needed for GCJ-02/BD-09.")
@source_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=DEFAULT_TOLERANCE_M2,
              show_default=True, help="Overlaps, gaps and overhangs below this many m² pass.")
@click.option("--output", type=click.Path(dir_okay=False),
              help="With --fix: write the repaired set to this GeoPackage.")
@reports_errors
def validate_command(source, crs, as_json, tolerance, output, **reading):
    """Check a boundary SOURCE (default: the demo district) and report every problem."""
    if output and not reading["fix"]:
        raise InputError("--output writes the repaired set: it goes with --fix", field="output")
    if output:
        check_output_folder(output, "output")
    bset = _load(source, crs, **reading)
    report = validate(bset, tolerance_m2=tolerance)
    click.echo(report.to_json() if as_json else report.to_text())
    if output:
        write_boundaries(bset, output)
        click.echo(f"wrote {output}", err=True)
    sys.exit(0 if report.ok else 1)


@click.command("resolve")
@click.argument("lon")
@click.argument("lat")
@click.option("--crs", default="wgs84", show_default=True, help=f"CRS of the point ({CRS_HELP}).")
@click.option("--boundaries", "source", help="Boundary SOURCE (default: the demo district).")
@click.option("--boundaries-crs", help="CRS of the boundary files, where they need one.")
@source_options
@reports_errors
def resolve_command(lon, lat, crs, source, boundaries_crs, **reading):
    """Resolve one point LON LAT to its grid, community, street and nearest station (JSON)."""
    resolver = _resolver(source, boundaries_crs, **reading)
    result = resolver.resolve(lon, lat, crs=crs).to_dict()
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@click.command("resolve-file")
@click.argument("input_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_csv", type=click.Path(dir_okay=False))
@click.option("--boundaries", "source", help="Boundary SOURCE (default: the demo district).")
@click.option("--boundaries-crs", help="CRS of the boundary files, where they need one.")
@source_options
@click.option("--lon-col", default="lon", show_default=True)
@click.option("--lat-col", default="lat", show_default=True)
@click.option("--crs", default="wgs84", show_default=True,
              help=f"CRS of the points ({CRS_HELP}) where a row does not name its own.")
@click.option("--crs-col", default="crs", show_default=True,
              help="Column naming a row's own CRS, if the file has it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors
def resolve_file_command(input_csv, output_csv, source, boundaries_crs, lon_col, lat_col, crs,
                         crs_col, quiet, **reading):
    """Resolve every row of INPUT_CSV and write it, with the answers appended, to OUTPUT_CSV."""
    check_output_folder(output_csv, "OUTPUT_CSV")
    resolver = _resolver(source, boundaries_crs, **reading)
    counts = resolve_csv(resolver, input_csv, output_csv, lon_col=lon_col, lat_col=lat_col,
                         crs=crs, crs_col=crs_col, progress=not quiet)
    total = sum(counts.values())
    click.echo(f"resolved {total} rows against {resolver.boundaries.summary()['grids']} grids "
               f"-> {output_csv}")
    for status in ("ok", "gap", "outside", "invalid"):
        share = 100 * counts.get(status, 0) / total
        click.echo(f"  {status:8} {counts.get(status, 0):8d}  {share:5.1f} %")


@click.command("partition")
@click.argument("source", required=False)
@click.option("--crs", help=f"CRS of the source files ({CRS_HELP}); needed for GCJ-02/BD-09.")
@source_options
@click.option("--target-households", "target", type=float, required=True,
              help="Households (or reports, with --weight reports) each grid should hold.")
@click.option("--min", "low", type=float, help="Fewest households a grid may hold.")
@click.option("--max", "high", type=float, help="Most households a grid may hold.")
@click.option("--communities", help="Comma-separated community codes (default: all).")
@click.option("--weight", type=click.Choice(["households", "reports"]), default="households",
              show_default=True, help="Balance the buildings' households, or reports.")
@click.option("--reports", "reports_csv", type=click.Path(exists=True, dir_okay=False),
              help="With --weight reports: a CSV of reports with lon, lat (and crs) columns.")
@click.option("--out", "output", type=click.Path(dir_okay=False),
              help="GeoPackage to write the partitioned boundary set to.")
@click.option("--json", "as_json", is_flag=True, help="Print the quality report as JSON.")
@reports_errors
def partition_command(source, crs, target, low, high, communities, weight, reports_csv, output,
                      as_json, **reading):
    """Split communities of SOURCE (default: the demo district) into balanced, compact grids."""
    if (weight == "reports") != (reports_csv is not None):
        raise InputError("--weight reports and --reports CSV go together", field="reports")
    if output is None:
        raise InputError("--out is needed: the GeoPackage to write the partitioned set to",
                         field="out")
    check_output_folder(output, "out")
    bset = _load(source, crs, **reading)
    codes = [c.strip() for c in communities.split(",") if c.strip()] if communities else None
    points, skipped = None, 0
    if reports_csv:
        lon, lat, skipped = report_points(reports_csv)
        points = (lon, lat)
    result = partition(bset, codes, target=target, min_households=low, max_households=high,
                       points=points, weight_name=weight)
    write_boundaries(result.boundaries, output)
    click.echo(result.quality.to_json() if as_json else result.quality.to_text())
    if skipped:
        click.echo(f"skipped {skipped} reports without usable coordinates", err=True)
    click.echo(f"wrote {output}", err=True)


@click.command("demo-data")
@click.option("--out", "folder", type=click.Path(file_okay=False), default=None,
              help="Folder to write into (default: the project's data folder).")
@reports_errors
def demo_data_command(folder):
    """Regenerate the bundled demo district and sample reports (deterministic)."""
    data = Path(folder) if folder else default_source().parents[1]
    written = write_demo(data / "boundaries")
    bset = load_boundaries(written[0])
    report = validate(bset)
    written.append(write_sample_reports(data / "samples" / sample_reports().name, bset))
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(report.to_text().splitlines()[-1])
    sys.exit(0 if report.ok else 1)


# ``partition`` is registered by the dispatch commands, which add community codes of the stored
# active version to the SOURCE files handled here.
COMMANDS = (validate_command, resolve_command, resolve_file_command, demo_data_command)
