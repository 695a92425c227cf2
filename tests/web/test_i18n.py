"""Every text a page shows through ``_()`` has a Chinese translation, and the translation
tables — merged into one — never translate the same English two ways."""

import re
import tomllib
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
LITERAL = re.compile(r"""\b_\(\s*(?:"([^"]+)"|'([^']+)')""")


def _tables() -> dict[str, dict[str, str]]:
    tables = {}
    for path in sorted((WEB / "translations" / "zh").glob("*.toml")):
        with path.open("rb") as f:
            tables[path.name] = tomllib.load(f)
    return tables


def test_every_page_text_has_a_chinese_translation():
    merged = {k: v for table in _tables().values() for k, v in table.items()}
    sources = [*(WEB / "templates").glob("*.html"), *WEB.glob("*.py")]
    used = {a or b for path in sources
            for a, b in LITERAL.findall(path.read_text(encoding="utf-8"))}
    assert len(used) > 100
    assert sorted(used - set(merged)) == []


def test_no_text_is_translated_two_ways():
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for name, table in _tables().items():
        for key, value in table.items():
            if key in seen and seen[key][1] != value:
                clashes.append((key, seen[key], (name, value)))
            seen.setdefault(key, (name, value))
    assert clashes == []
