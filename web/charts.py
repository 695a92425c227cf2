"""Small bar charts drawn as inline SVG on the server.

The statistics page needs only two shapes of chart, so it draws them itself rather than shipping a
chart library: the page then works without JavaScript and loads nothing from elsewhere. Every
value becomes one ``<rect class="bar …">`` carrying its value in ``data-value`` and a ``<title>``
tooltip, so people can hover for exact figures and tests can count and read the bars.
"""

from __future__ import annotations

from markupsafe import Markup, escape

COLUMN_HEIGHT = 160
COLUMN_WIDTH = 960
AXIS_LEFT = 34
AXIS_BOTTOM = 22
MAX_DAY_LABELS = 8
ROW_HEIGHT = 22
LABEL_WIDTH = 200
BAR_AREA = 300
LABEL_CHARS = 28


def columns(chart_id: str, days: list[str], series: list[tuple[str, str, list[int]]],
            caption: str) -> Markup:
    """Overlaid columns per day: ``series`` is ``(css_class, name, values)`` from the back bar to
    the front one, each with one value per day; each front bar is drawn narrower so the back one
    shows around it."""
    top = max([1, *(v for _, _, values in series for v in values)])
    plot_width = COLUMN_WIDTH - AXIS_LEFT - 4
    slot = plot_width / max(len(days), 1)
    height = COLUMN_HEIGHT + AXIS_BOTTOM + 8
    parts = [f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {COLUMN_WIDTH} {height}" '
             f'role="img" aria-label="{escape(caption)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(caption)}</title>"]
    for tick in sorted({0, top // 2, top}):
        y = _y(tick, top)
        parts.append(f'<line class="grid" x1="{AXIS_LEFT}" x2="{COLUMN_WIDTH - 4}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{AXIS_LEFT - 4}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{tick}</text>')
    for layer, (css, name, values) in enumerate(series):
        width = slot * max(0.85 - 0.35 * layer, 0.2)
        for index, (day, value) in enumerate(zip(days, values, strict=True)):
            x = AXIS_LEFT + index * slot + (slot - width) / 2
            y = _y(value, top)
            parts.append(f'<rect class="bar {escape(css)}" data-day="{escape(day)}" '
                         f'data-value="{value}" x="{x:.2f}" y="{y:.2f}" width="{width:.2f}" '
                         f'height="{COLUMN_HEIGHT + 8 - y:.2f}"><title>{escape(day)} · '
                         f"{escape(name)}: {value}</title></rect>")
    step = max(1, -(-len(days) // MAX_DAY_LABELS))
    for index in range(0, len(days), step):
        x = AXIS_LEFT + (index + 0.5) * slot
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - 6}" text-anchor="middle">'
                     f"{escape(days[index][5:])}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _y(value: float, top: float) -> float:
    """The vertical position of ``value`` on a column axis running from 0 to ``top``."""
    return 8 + COLUMN_HEIGHT * (1 - value / top)


def rate_bars(chart_id: str, rows: list[tuple[str, float | None]], caption: str,
              missing: str) -> Markup:
    """Horizontal bars of rates between 0 and 1, one per ``(label, rate)`` row; a rate of
    ``None`` (nothing to measure) gets an empty bar and the ``missing`` text."""
    width = LABEL_WIDTH + BAR_AREA + 60
    height = ROW_HEIGHT * len(rows) + 6
    parts = [f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(caption)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(caption)}</title>"]
    for index, (label, rate) in enumerate(rows):
        y = 3 + index * ROW_HEIGHT
        shown = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
        figure = percent(rate, missing)
        parts.append(f'<text class="label" x="{LABEL_WIDTH - 6}" y="{y + 15}" '
                     f'text-anchor="end">{escape(shown)}</text>')
        parts.append(f'<rect class="bar" data-value="{"" if rate is None else rate}" '
                     f'x="{LABEL_WIDTH}" y="{y + 3}" width="{BAR_AREA * (rate or 0):.2f}" '
                     f'height="{ROW_HEIGHT - 6}"><title>{escape(label)}: {escape(figure)}'
                     "</title></rect>")
        parts.append(f'<text class="value" x="{LABEL_WIDTH + BAR_AREA * (rate or 0) + 4:.2f}" '
                     f'y="{y + 15}">{escape(figure)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def percent(rate: float | None, missing: str = "–") -> str:
    """A rate between 0 and 1 as a percentage with one decimal (``missing`` for ``None``)."""
    return missing if rate is None else f"{rate * 100:.1f}%"
