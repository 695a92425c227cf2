"""Open311's XML: elements named after the fields, lists nested under singular names."""

from __future__ import annotations

import csv
import io
from xml.etree import ElementTree

from flask import current_app

from dispatch.checks import UNPRINTABLE

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'


def to_xml(root: str, item: str, rows: list[dict]) -> str:
    """``<root><item><field>value</field>...</item>...</root>``; a list of dicts nests the
    same way under the singular of its name (``attributes`` → ``attribute``)."""
    top = ElementTree.Element(root)
    for row in rows:
        _fill(ElementTree.SubElement(top, item), row)
    return DECLARATION + ElementTree.tostring(top, "unicode")


def to_xml_one(root: str, body: dict) -> str:
    """One object as ``<root><field>value</field>...</root>``."""
    top = ElementTree.Element(root)
    _fill(top, body)
    return DECLARATION + ElementTree.tostring(top, "unicode")


def _fill(element, row: dict) -> None:
    for key, value in row.items():
        child = ElementTree.SubElement(element, key)
        if isinstance(value, list):
            singular = key[:-1] if key.endswith("s") else key
            for entry in value:
                grandchild = ElementTree.SubElement(child, singular)
                if isinstance(entry, dict):
                    _fill(grandchild, entry)
                else:
                    grandchild.text = _text(entry)
        elif isinstance(value, dict):
            _fill(child, value)
        elif value is not None:
            child.text = _text(value)


def _text(value) -> str:
    """The value as XML text; a character no XML document can carry (stored before input
    refused it, or from an imported file) becomes U+FFFD, so that the document stays whole."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return UNPRINTABLE.sub("\ufffd", str(value))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_response(header: list[str], rows, filename: str):
    """A CSV download: a byte-order mark first, so that spreadsheet programs read Chinese names
    as UTF-8, and text cells that a spreadsheet would run as a formula quoted away."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) if isinstance(v, str) else v for v in row])
    response = current_app.response_class("\ufeff" + buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    return response


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (names come from imported files)."""
    return "'" + text if text.startswith(FORMULA_START) else text
