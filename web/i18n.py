"""The pages' two languages: Simplified Chinese and English.

Page text is written in English and translated to Chinese from the tables in
``web/translations/zh/*.toml`` (``"English text" = "中文"``). The language comes from ``?lang=``
(remembered in a cookie), else the cookie, else the browser's ``Accept-Language``; Chinese when
nothing says otherwise, as the district's staff expect.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

from flask import g, request

LANGUAGES = ("zh", "en")
DEFAULT = "zh"
COOKIE = "lang"
FOLDER = Path(__file__).parent / "translations"


@cache
def _table(language: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for path in sorted((FOLDER / language).glob("*.toml")):
        with path.open("rb") as f:
            table.update(tomllib.load(f))
    return table


def locale() -> str:
    """The language of this request's page."""
    if "locale" not in g:
        chosen = request.args.get("lang") or request.cookies.get(COOKIE)
        g.locale = chosen if chosen in LANGUAGES else (
            request.accept_languages.best_match(LANGUAGES, default=DEFAULT))
    return g.locale


def gettext(text: str, **values) -> str:
    """``text`` in the page's language, with ``{name}`` fields filled from ``values``."""
    translated = text if locale() == "en" else _table(locale()).get(text, text)
    return translated.format(**values) if values else translated


def category_name(category) -> str:
    """A catalogue category's name in the page's language."""
    return category.name_en if locale() == "en" else category.name


def lang_url(language: str) -> str:
    """This page in another language (its other query parameters kept)."""
    return request.path + "?" + urlencode({**request.args.to_dict(), "lang": language})


def init_app(app) -> None:
    app.jinja_env.globals.update(_=gettext, locale=locale, category_name=category_name,
                                 languages=LANGUAGES, lang_url=lang_url)

    @app.after_request
    def remember(response):
        """Keep a language chosen with ``?lang=`` for the next pages."""
        chosen = request.args.get("lang") if request.query_string else None
        if chosen in LANGUAGES and request.cookies.get(COOKIE) != chosen:
            response.set_cookie(COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax")
        return response
