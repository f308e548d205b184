"""The customer nine-grid (客户九宫格): customers and value per cell of two banded attributes.

Default (docs/domain.md §1, seed 001): AUM band (mass < 500k <= affluent < 6M <= private, currency)
x risk level (1-2 low, 3 mid, 4-5 high). Any two columns work: numeric ones with edges (bands
left-inclusive [edge_k, edge_k+1)), categorical ones (e.g. ``industry``) with ``edges: null``.
Missing values go to an explicit ``"unknown"`` band (the cells of a "3 x 3" grid may thus be more
than nine).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.errors import DataError, ParameterError


def band(values: pd.Series, edges: list[float] | None, labels: list[str] | None) -> pd.Series:
    """Band labels: ``labels[k]`` for edges[k-1] <= value < edges[k]; NaN -> "unknown".

    ``edges=None``: categorical, each value is its band (as a string); with ``labels`` given,
    values not among them go to "other".
    """
    if edges is None:
        out = values.map(lambda v: v if isinstance(v, str) else str(v)).astype(object)
        if labels is not None:
            out = out.where(out.isin(labels), "other")
        out[values.isna()] = "unknown"
        return out
    if labels is None or len(labels) != len(edges) + 1:
        raise ParameterError(f"{len(edges)} edges need {len(edges) + 1} labels, got {len(labels)}")
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    idx = np.searchsorted(np.asarray(edges, dtype="float64"), v, side="right")
    out = np.asarray(labels, dtype=object)[np.minimum(idx, len(labels) - 1)]
    out[np.isnan(v)] = "unknown"
    return pd.Series(out, index=values.index, dtype=object)


def _levels(b, banded: pd.Series) -> list[str]:
    base = list(b.labels) if b.labels is not None else sorted(set(banded) - {"unknown", "other"})
    extra = [x for x in ("other", "unknown") if (banded == x).any() and x not in base]
    return base + extra


@dataclass(frozen=True)
class BandSpec:
    """How one column is banded: ``edges`` (ascending, None for a categorical column) and ``labels``."""

    column: str
    edges: list[float] | None = None
    labels: list[str] | None = None

    @classmethod
    def of(cls, spec: Any) -> "BandSpec":
        """From a mapping (``{"column": ..., "edges": ..., "labels": ...}``) or any object with those attributes."""
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"column", "edges", "labels"}
            if unknown or "column" not in spec:
                raise ParameterError(f"band {dict(spec)!r}: needs 'column' (and optional 'edges', 'labels'); "
                                     f"unknown keys {sorted(unknown)}")
            return cls(spec["column"], spec.get("edges"), spec.get("labels"))
        return cls(spec.column, getattr(spec, "edges", None), getattr(spec, "labels", None))


def nine_grid(df: pd.DataFrame, *, rows: Any, cols: Any, value: str = "aum") -> pd.DataFrame:
    """Counts and value per cell of two banded attributes (every cell listed, empty ones with 0).

    Parameters
    ----------
    df : one row per customer with the two banded columns and ``value``.
    rows, cols : the two bandings (:class:`BandSpec`, mappings with column, edges, labels, or the
        notebook's ``Band`` parameters; the notebook default is AUM band x risk level).
    value : column summed per cell (currency).

    Returns
    -------
    Long DataFrame: row_band, col_band, customers, value, customer_share, value_share.
    """
    rows, cols = BandSpec.of(rows), BandSpec.of(cols)
    missing = [c for c in (rows.column, cols.column, value) if c not in df.columns]
    if missing:
        raise DataError(f"nine_grid: input lacks column(s) {missing}")
    rb = band(df[rows.column], rows.edges, rows.labels)
    cb = band(df[cols.column], cols.edges, cols.labels)
    g = (pd.DataFrame({"row_band": rb, "col_band": cb, "value": df[value].astype("float64").fillna(0.0)})
         .groupby(["row_band", "col_band"]).agg(customers=("value", "size"), value=("value", "sum")))
    row_labels = _levels(rows, rb)
    col_labels = _levels(cols, cb)
    full = pd.MultiIndex.from_product([row_labels, col_labels], names=["row_band", "col_band"])
    g = g.reindex(full, fill_value=0).reset_index()
    g["customers"] = g["customers"].astype("int64")
    n, v = g["customers"].sum(), g["value"].sum()
    g["customer_share"] = g["customers"] / n if n else np.nan
    g["value_share"] = g["value"] / v if v else np.nan
    g.attrs["rows"], g.attrs["cols"] = rows.column, cols.column
    return g
