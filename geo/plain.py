"""Values from numpy and pandas as plain JSON values, for every layer's output."""

from __future__ import annotations

import math

import pandas as pd


def plain(value):
    """A numpy scalar unwrapped into its Python value; NaN and infinity as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def plain_record(record: dict) -> dict:
    return {key: plain(value) for key, value in record.items()}


def plain_records(frame: pd.DataFrame) -> list[dict]:
    """A frame's rows as plain JSON objects."""
    return [plain_record(row) for row in frame.to_dict("records")]
