"""Settings from ``GRIDLINE_*`` environment variables, with defaults that need nothing else.

``GRIDLINE_INSTANCE`` (default ``./instance``) holds the SQLite file and the media folder;
``GRIDLINE_DATABASE_URL`` points at PostgreSQL instead; ``GRIDLINE_MEDIA``,
``GRIDLINE_CATALOGUE``, ``GRIDLINE_TIMEZONE`` (default Asia/Shanghai) and
``GRIDLINE_WEBHOOK_URL`` (default: notifications go to the log) complete the set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dispatch.catalogue import load_catalogue
from dispatch.notify import notifier_from_settings
from dispatch.services import Service
from dispatch.storage import Database

PREFIX = "GRIDLINE_"


@dataclass(frozen=True)
class Settings:
    database_url: str
    media: Path
    catalogue: str | None
    timezone: str
    webhook_url: str | None
    instance: Path

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
        )


def make_service(settings: Settings) -> Service:
    """A service wired to the configured database, catalogue and notifier."""
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True,
                                                                            exist_ok=True)
    return Service(Database(settings.database_url), load_catalogue(settings.catalogue),
                   settings.media, notifier=notifier_from_settings(settings.webhook_url),
                   timezone=settings.timezone)
