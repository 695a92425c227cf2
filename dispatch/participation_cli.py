"""Command-line commands for participation: the demo's compounds and station hours, compound
coverage, points adjustments and statements, and the service orders' deadline sweep."""

from __future__ import annotations

import json
import os

import click
from sqlalchemy import select

from dispatch import schema as t
from dispatch.cli import service
from dispatch.compounds import Compounds, write_demo_compounds
from dispatch.errors import NotFound
from dispatch.points import Points, load_points_rules
from dispatch.service_orders import ServiceOrders
from dispatch.services import Actor
from dispatch.stations import write_demo_station_hours
from geo.boundaries import load_boundaries
from geo.cli import reports_errors
from geo.demo import default_source

CLI_ADMIN = Actor("command line", "admin")


@click.command("demo-participation")
@reports_errors
def demo_participation_command():
    """Regenerate the demo district's compounds and station hours (deterministic)."""
    bset = load_boundaries(default_source())
    for path in (write_demo_compounds(bset), write_demo_station_hours(bset)):
        click.echo(f"wrote {path}")


@click.command("load-compounds")
@click.argument("source", type=click.Path(exists=True), required=False)
@reports_errors
def load_compounds_command(source):
    """Replace the stored compounds by those of a GeoJSON SOURCE (default: the demo's)."""
    with service() as svc:
        click.echo(f"{Compounds(svc.db).load(source)} compounds loaded")


@click.command("compound-coverage")
@reports_errors
def compound_coverage_command():
    """Old compounds (built before 2001) and the share of them with a property manager."""
    with service() as svc:
        click.echo(json.dumps(Compounds(svc.db).coverage(), ensure_ascii=False, indent=2))


@click.group("points")
def points_group():
    """Points (积分)."""


# ignore_unknown_options lets a negative AMOUNT through as an argument instead of an option.
@points_group.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("username")
@click.argument("amount", type=int)
@click.option("--reason", required=True, help="Why: kept in the ledger.")
@reports_errors
def points_adjust(username, amount, reason):
    """Add (or, negative, take) AMOUNT points for USERNAME."""
    with service() as svc:
        entry = _points(svc).adjust(_user_id(svc, username), amount, reason, CLI_ADMIN)
    click.echo(f"entry {entry['id']}: {entry['amount']:+d}, balance {entry['balance_after']}")


@points_group.command("statement")
@click.argument("username")
@reports_errors
def points_statement(username):
    """USERNAME's balance, ledger and redemptions as JSON."""
    with service() as svc:
        click.echo(json.dumps(_points(svc).statement(_user_id(svc, username)),
                              ensure_ascii=False, indent=2))


@click.command("sweep-service-orders")
@reports_errors
def sweep_service_orders_command():
    """Mark service orders not done by their deadline as overdue (safe to run every minute)."""
    with service() as svc:
        click.echo(json.dumps({"marked": ServiceOrders(svc).sweep()}))


def _points(svc) -> Points:
    """Points with the rules the web service uses (``GRIDLINE_POINTS_RULES``)."""
    return Points(svc, load_points_rules(os.environ.get("GRIDLINE_POINTS_RULES")))


def _user_id(svc, username: str) -> int:
    with svc.db.read() as uow:
        found = uow.execute(select(t.users.c.id).where(t.users.c.username == username)).scalar()
    if found is None:
        raise NotFound(f"no user {username!r}")
    return found


COMMANDS = (demo_participation_command, load_compounds_command, compound_coverage_command,
            points_group, sweep_service_orders_command)
