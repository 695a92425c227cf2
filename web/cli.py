"""The ``gridline`` command: one group holding every layer's commands."""

from __future__ import annotations

import click

from dispatch.cli import COMMANDS as DISPATCH_COMMANDS
from geo.cli import COMMANDS as GEO_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gridline")
def main():
    """gridline: grid partitioning, point resolution and dispatch for urban grid management."""


for command in (*GEO_COMMANDS, *DISPATCH_COMMANDS):
    main.add_command(command)
