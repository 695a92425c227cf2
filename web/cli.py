"""The ``gridline`` command: one group holding every layer's commands, plus the web ones."""

from __future__ import annotations

from contextlib import contextmanager

import click

from dispatch.accounts import ROLES, check_username
from dispatch.cli import COMMANDS as DISPATCH_COMMANDS
from dispatch.cli import database_errors
from dispatch.errors import GridlineError
from dispatch.participation_cli import COMMANDS as PARTICIPATION_COMMANDS
from dispatch.roster import seed_demo
from dispatch.settings import Settings
from geo.cli import COMMANDS as GEO_COMMANDS
from geo.cli import reports_errors
from geo.demo import data_dir


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gridline")
def main():
    """gridline: grid partitioning, point resolution and dispatch for urban grid management."""


for command in (*GEO_COMMANDS, *DISPATCH_COMMANDS, *PARTICIPATION_COMMANDS):
    main.add_command(command)


def _app(config: dict | None = None):
    from web import create_app

    with database_errors(Settings.from_env().database_url):
        return create_app(config)


@contextmanager
def _accounts():
    """The configured service and its accounts, the database connections closed afterwards."""
    app = _app()
    service = app.extensions["gridline"]
    try:
        yield service, app.extensions["gridline.accounts"]
    finally:
        service.db.dispose()


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8311, show_default=True, type=click.IntRange(0, 65535),
              help="0: any free port.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1),
              help="Request threads in each worker process.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Worker processes sharing the port (one per core uses every core).")
@reports_errors
def serve_command(host, port, threads, workers):
    """Serve the web service with waitress (a fresh install serves the demo district). Each
    request and notification is logged to stderr as a JSON line (GRIDLINE_LOG_LEVEL, default
    INFO)."""
    from web.logs import log_to_stderr
    from web.serving import serve

    # With several workers, set up once here; each worker then builds its own app.
    app = _app() if workers == 1 else _app({"DELIVERY_WORKER": False, "GROUP_COMMIT": False})
    log_to_stderr(app.config.get("LOG_LEVEL", "INFO"))  # forked workers inherit it
    _set_up(app)
    if workers == 1:
        app.extensions["gridline"].active_resolver()  # loaded now, not by the first request
    else:
        app.extensions["gridline"].db.dispose()
    where = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL

    def serving(bound_port: int) -> None:
        click.echo(f"gridline serving on http://{where}:{bound_port}/ (Open311 at /open311/v2/, "
                   "OGC API at /ogc/, point lookup at /point/4326/LON,LAT)")

    try:
        serve((lambda _number: app) if workers == 1 else _worker_app, host, port, threads,
              workers, ident="gridline", bound=serving)
    except OSError as exc:  # the port is taken or not ours to use, the host is unknown
        raise GridlineError(f"cannot serve on {where}:{port}: {exc.strerror or exc}") from None
    finally:
        app.extensions["gridline"].db.dispose()


def _set_up(app) -> None:
    done = seed_demo(app.extensions["gridline"], data_dir() / "roster")
    if done:
        click.echo(f"set up the demo district (boundary version {done['version']}, "
                   f"{done['gridworkers']} gridworkers)")


def _worker_app(number: int):
    """One worker's app: the first worker delivers every worker's notifications from the
    shared outbox (one deliverer is enough; rounds elsewhere, such as ``gridline sweep``,
    claim other events); the active district is loaded before the first request, not by it."""
    app = _app({"DELIVERY_WORKER": number == 0})
    service = app.extensions["gridline"]
    if number > 0:
        service.deliver_inline = False
    service.active_resolver()
    return app


@main.group("users")
def users_group():
    """Accounts."""


def _valid_username(ctx, param, value):
    """Refuse a bad username before the password is asked for (twice)."""
    try:
        check_username(value)
    except GridlineError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    return value


@users_group.command("add")
@click.argument("username", callback=_valid_username)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--gridworker-id", type=int, help="For gridworker and grid_leader accounts.")
@click.option("--department", help="For department accounts: the department code.")
@click.option("--street", "street_code", help="For dispatchers: the street code.")
@reports_errors
def users_add(username, role, password, gridworker_id, department, street_code):
    """Create an account."""
    with _accounts() as (service, accounts):
        service.seed_departments()  # the catalogue's, as db upgrade stores them
        user = accounts.add_user(username, password, role, gridworker_id=gridworker_id,
                                 department=department, street_code=street_code)
    click.echo(f"user {user.username} ({user.role}) created with id {user.id}")


@main.group("tokens")
def tokens_group():
    """API tokens (also Open311 api_keys)."""


@tokens_group.command("create")
@click.argument("username")
@click.option("--name", default="api", show_default=True)
@reports_errors
def tokens_create(username, name):
    """Make a token for USERNAME; it is printed once and cannot be shown again."""
    with _accounts() as (_service, accounts):
        click.echo(accounts.create_token(username, name))


@tokens_group.command("revoke")
@click.argument("token")
@reports_errors
def tokens_revoke(token):
    """Revoke a token (whole, or its first 8 characters)."""
    with _accounts() as (_service, accounts):
        accounts.revoke_token(token)
    click.echo("revoked")


if __name__ == "__main__":
    main()
