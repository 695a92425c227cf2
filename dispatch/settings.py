"""Settings from ``GRIDLINE_*`` environment variables, with defaults that need nothing else.

``GRIDLINE_INSTANCE`` (default ``./instance``) holds the SQLite file and the media folder;
``GRIDLINE_DATABASE_URL`` points at PostgreSQL instead; ``GRIDLINE_MEDIA``,
``GRIDLINE_CATALOGUE``, ``GRIDLINE_TIMEZONE`` (default Asia/Shanghai) and
``GRIDLINE_WEBHOOK_URL`` (default: notifications go to the log) complete the set;
``GRIDLINE_AUTO_UPGRADE`` (default true) says whether the schema is migrated on start.

The instance folder and the SQLite file hold password hashes and phone numbers: a folder made
here is readable by its owner only (0700), and so is a database file made here (0600).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from dispatch.catalogue import load_catalogue
from dispatch.notify import notifier_from_settings
from dispatch.services import Service
from dispatch.storage import Database, normalise_url

PREFIX = "GRIDLINE_"


@dataclass(frozen=True)
class Settings:
    database_url: str
    media: Path
    catalogue: str | None
    timezone: str
    webhook_url: str | None
    instance: Path
    auto_upgrade: bool = True

    @classmethod
    def from_env(cls, env=None) -> Settings:
        """Settings from ``GRIDLINE_*`` variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        return cls.from_config({k.removeprefix(PREFIX): v for k, v in env.items()
                                if k.startswith(PREFIX)})

    @classmethod
    def from_config(cls, config) -> Settings:
        """Settings from unprefixed keys (``DATABASE_URL``, ``INSTANCE`` ...)."""
        instance = Path(config.get("INSTANCE") or "instance").absolute()
        return cls(
            database_url=(config.get("DATABASE_URL")
                          or f"sqlite:///{instance / 'gridline.db'}"),
            media=Path(config.get("MEDIA") or instance / "media"),
            catalogue=config.get("CATALOGUE"),
            timezone=config.get("TIMEZONE") or "Asia/Shanghai",
            webhook_url=config.get("WEBHOOK_URL"),
            instance=instance,
            auto_upgrade=str(config.get("AUTO_UPGRADE", True)).strip().lower()
            not in ("0", "false", "no", "off"),
        )


def make_service(settings: Settings) -> Service:
    """A service wired to the configured database, catalogue and notifier."""
    url = make_url(normalise_url(settings.database_url))
    if url.get_backend_name() == "sqlite" and url.database:
        _private_file(Path(url.database))
    return Service(Database(settings.database_url), load_catalogue(settings.catalogue),
                   settings.media, notifier=notifier_from_settings(settings.webhook_url),
                   timezone=settings.timezone)


def _private_file(path: Path) -> None:
    """Make the folders and the empty file at ``path`` where they are missing, for the owner's
    eyes only (SQLite gives its -wal and -shm files the database file's mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.name not in ("", ":memory:"):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
