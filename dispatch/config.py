"""Reading the service's configuration files (catalogue, points rules, service menu, station
hours): TOML, and an unreadable file is an input error naming it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from dispatch.errors import InputError


def read_toml(path, what: str, field: str) -> dict:
    """The TOML file ``path`` as a dict; ``what`` names it in the error, ``field`` is the
    setting that chose it."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}", field=field) from exc
