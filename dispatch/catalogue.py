"""The service catalogue: categories of reports and the departments that own them.

Read from a TOML file (the shipped ``catalogue.toml`` by default, or ``GRIDLINE_CATALOGUE``).
Every category names its responsible department, its urgency, its deadlines (minutes from
dispatch), whether it may be escalated by a whistle, its duplicate radius and window, and whether
it may be reported anonymously (``anonymous = false`` where staff must be able to reach the
reporter: such reports need an account or a phone number).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dispatch.checks import check_printable
from dispatch.config import read_toml
from dispatch.errors import InputError

DEFAULT_CATALOGUE = Path(__file__).with_name("catalogue.toml")
URGENCIES = ("normal", "urgent", "emergency")
MAX_ATTRIBUTE_TEXT = 500


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    name_en: str
    contact: str


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    name_en: str
    department: str
    urgency: str
    respond_within: int
    resolve_within: int
    escalable: bool
    duplicate_radius_m: float
    duplicate_window_hours: float
    attributes: tuple[dict, ...] = ()
    anonymous: bool = True

    def check_attributes(self, given) -> dict:
        """The answers to this category's extra questions, checked; unknown codes, missing
        required answers and values outside a list are refused by name."""
        given = {} if given is None else given
        if not isinstance(given, dict):
            raise InputError("attributes must be an object of code → value", field="attributes")
        known = {a["code"]: a for a in self.attributes}
        for code in given:
            if code not in known:
                raise InputError(f"category {self.code} has no attribute {code!r}",
                                 field=f"attribute[{code}]")
        answers = {}
        for code, attribute in known.items():
            value = given.get(code)
            if value in (None, ""):
                if attribute.get("required"):
                    raise InputError(f"attribute {code} is required", field=f"attribute[{code}]")
                continue
            answers[code] = _check_value(attribute, value)
        return answers


@dataclass(frozen=True)
class Catalogue:
    categories: dict[str, Category]
    departments: dict[str, Department]

    def category(self, code) -> Category:
        """The category ``code``; an :class:`InputError` naming the known codes otherwise."""
        if not isinstance(code, str) or code not in self.categories:
            raise InputError(f"unknown category {code!r}; known: "
                             f"{', '.join(sorted(self.categories))}", field="category")
        return self.categories[code]


def load_catalogue(path=None) -> Catalogue:
    """Read and check a catalogue file; every problem is reported with its category."""
    path = Path(path or os.environ.get("GRIDLINE_CATALOGUE") or DEFAULT_CATALOGUE)
    data = read_toml(path, "catalogue", "catalogue")
    departments = {code: Department(code, d["name"], d.get("name_en", d["name"]),
                                    d.get("contact", ""))
                   for code, d in data.get("departments", {}).items()}
    categories = {}
    for code, c in data.get("categories", {}).items():
        try:
            category = Category(code, c["name"], c.get("name_en", c["name"]), c["department"],
                                c.get("urgency", "normal"), int(c["respond_within"]),
                                int(c["resolve_within"]), bool(c.get("escalable", False)),
                                float(c.get("duplicate_radius_m", 0)),
                                float(c.get("duplicate_window_hours", 24)),
                                tuple(c.get("attributes", ())), c.get("anonymous", True))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"catalogue category {code}: missing or bad field {exc}",
                             field="catalogue") from exc
        if category.department not in departments:
            raise InputError(f"catalogue category {code}: unknown department "
                             f"{category.department!r}", field="catalogue")
        if not isinstance(category.anonymous, bool):
            raise InputError(f"catalogue category {code}: anonymous must be true or false",
                             field="catalogue")
        if category.urgency not in URGENCIES:
            raise InputError(f"catalogue category {code}: urgency must be one of {URGENCIES}",
                             field="catalogue")
        categories[code] = category
    return Catalogue(categories, departments)


def _check_value(attribute: dict, value):
    field = f"attribute[{attribute['code']}]"
    kind = attribute.get("datatype", "string")
    if kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"{attribute['code']} must be a number", field=field) from None
    if kind in ("singlevaluelist", "multivaluelist"):
        keys = {v["key"] for v in attribute.get("values", ())}
        chosen = value if isinstance(value, list) else [value]
        if (kind == "singlevaluelist" and len(chosen) != 1) or not set(map(str, chosen)) <= keys:
            raise InputError(f"{attribute['code']} must be one of {', '.join(sorted(keys))}",
                             field=field)
        return chosen[0] if kind == "singlevaluelist" else chosen
    if not isinstance(value, str) or len(value) > MAX_ATTRIBUTE_TEXT:
        raise InputError(f"{attribute['code']} must be text of at most {MAX_ATTRIBUTE_TEXT} "
                         "characters", field=field)
    return check_printable(value, field).strip()
