"""Masking of customer identifiers in reports that leave the run folder (数据脱敏).

Masking is a keyed hash: the same identifier always gets the same mask within one key, so masked
tables can still be joined with each other, but the mask cannot be reversed without the key.
"""

from __future__ import annotations

import hashlib

import pandas as pd

ID_COLUMNS: tuple[str, ...] = ("customer_id",)
DEFAULT_KEY = "rmanalytics"


def mask_id(value: object, key: str = DEFAULT_KEY) -> object:
    """Mask one identifier as ``'C#'`` + 10 hex digits of a keyed SHA-256; nulls stay null."""
    if value is None or (isinstance(value, float) and value != value):
        return value
    digest = hashlib.sha256(f"{key}:{value}".encode()).hexdigest()[:10]
    return f"C#{digest}"


def mask_frame(df: pd.DataFrame, columns: tuple[str, ...] = ID_COLUMNS, key: str = DEFAULT_KEY) -> pd.DataFrame:
    """A copy of ``df`` with every identifier column in ``columns`` (and such an index) masked."""
    out = df.copy()
    for col in columns:
        if col in out.columns:
            out[col] = out[col].map(lambda v: mask_id(v, key))
    if out.index.name in columns:
        out.index = out.index.map(lambda v: mask_id(v, key))
    return out
