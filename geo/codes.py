"""Administrative codes: their form, and numbering features that have none.

A full grid code has 15 digits: 6 for the district, 3 for the street, 3 for the community and 3
for the grid (``610104 001 002 003``). A street's code is its first 9 digits, a community's its
first 12. Codes a file already has are kept; missing ones are numbered in *reading order*:

    Siblings' centroids (in the metric CRS) are sorted north to south, and a new row starts
    wherever the step down to the next centroid is more than half a typical sibling — half the
    square root of the median sibling area. Siblings are numbered row by row, north to south, and
    west to east within a row (ties: the more northern first, then the order in the file). New
    numbers start after the highest number the parent already uses.

This reproduces the usual "west→east, north→south" rule for grids of similar size, and is
deterministic for any layout.
"""

from __future__ import annotations

import numpy as np

from geo.errors import BoundaryError

DISTRICT_DIGITS = 6
LEVEL_DIGITS = 3
CODE_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}
MAX_CHILDREN = 10**LEVEL_DIGITS - 1
# A new row starts where centroids step down by more than this share of a typical sibling's size.
ROW_GAP = 0.5


def is_well_formed(code, level: str) -> bool:
    """True when ``code`` is a string of exactly the digits a code of ``level`` has."""
    return isinstance(code, str) and code.isdigit() and len(code) == CODE_LENGTH[level]


def reading_order(x, y, areas) -> np.ndarray:
    """Indices putting features with centroids ``(x, y)`` and ``areas`` (m) in reading order."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) == 0:
        return np.zeros(0, dtype=int)
    gap = ROW_GAP * float(np.sqrt(np.median(np.asarray(areas, dtype=float))))
    by_height = np.lexsort((np.arange(len(x)), -y))
    steps = -np.diff(y[by_height])
    rows = np.empty(len(x), dtype=int)
    rows[by_height] = np.concatenate([[0], np.cumsum(steps > gap)])
    # lexsort sorts by the last key first: row, then west→east, then north first, then file order.
    return np.lexsort((np.arange(len(x)), -y, x, rows))


def number_children(existing, parent: str, x, y, areas, level: str) -> list[str]:
    """Codes for one parent's children: keep well-formed ones, number the rest in reading order.

    ``existing`` holds each child's code or ``None``; a code that is present but malformed is
    kept as it is (validation reports it). Raises :class:`BoundaryError` when the parent would
    need more than 999 children.
    """
    codes = [c if isinstance(c, str) and c else None for c in existing]
    used = [int(c[-LEVEL_DIGITS:]) for c in codes if c is not None and is_well_formed(c, level)]
    next_number = max(used, default=0) + 1
    for i in reading_order(x, y, areas):
        if codes[i] is None:
            if next_number > MAX_CHILDREN:
                raise BoundaryError(f"{parent or 'the district'} would need more than "
                                    f"{MAX_CHILDREN} {level} codes")
            codes[i] = f"{parent}{next_number:0{LEVEL_DIGITS}d}"
            next_number += 1
    return codes
