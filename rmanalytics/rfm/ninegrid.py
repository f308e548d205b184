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
from rmanalytics.rules import DEFAULT_GRID_CELLS


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


# ----------------------------------------------------------------------------- named cells (asset x industry x risk)
@dataclass(frozen=True)
class GridCell:
    """One named cell of the nine-grid: conditions on the asset, industry and risk bands (None =
    any band; a list = one of these band labels) and the cell's service plan (free text). The
    notebook parameter ``nine_grid.cells`` (pydantic, :mod:`rmanalytics.params.segmentation`) has
    the same fields; :meth:`of` takes either."""

    name: str
    asset: list[str] | None = None
    industry: list[str] | None = None
    risk: list[str] | None = None
    service_plan: str = ""

    @classmethod
    def of(cls, cell: Any) -> "GridCell":
        if isinstance(cell, Mapping):
            return cls(**dict(cell))
        return cls(cell.name, getattr(cell, "asset", None), getattr(cell, "industry", None),
                   getattr(cell, "risk", None), getattr(cell, "service_plan", ""))


def default_cells() -> list[GridCell]:
    """The named cells of :data:`rmanalytics.rules.DEFAULT_GRID_CELLS` (seed 001 §三(二))."""
    return [GridCell(**dict(c)) for c in DEFAULT_GRID_CELLS]


def grid_cells(df: pd.DataFrame, *, asset: Any, industry: Any, risk: Any, cells: list[GridCell] | None = None,
               default: GridCell | None = None) -> pd.DataFrame:
    """Each customer's nine-grid cell (asset x industry x risk, docs/domain.md §1) and its service plan.

    ``asset``, ``industry``, ``risk`` are bandings (:class:`BandSpec`, mappings or the notebook's ``Band``);
    the first cell in ``cells`` (default :func:`default_cells`) whose conditions all hold names the
    customer's cell; no match -> ``default`` (name "basic"). Returns ``customer_id`` (when present),
    ``asset_band``, ``industry_band``, ``risk_band``, ``cell``, ``service_plan``.
    """
    bands = {}
    for key, b in (("asset", asset), ("industry", industry), ("risk", risk)):
        b = BandSpec.of(b)
        if b.column not in df.columns:
            raise DataError(f"grid_cells: input lacks column {b.column!r} for the {key} band")
        bands[key] = band(df[b.column], b.edges, b.labels)
    cells = default_cells() if cells is None else [GridCell.of(c) for c in cells]
    default = GridCell.of(default) if default is not None else GridCell(
        name="basic", service_plan="Digital self-service; semi-annual contact")
    name = pd.Series(default.name, index=df.index, dtype=object)
    plan = pd.Series(default.service_plan, index=df.index, dtype=object)
    done = pd.Series(False, index=df.index)
    for c in cells:
        ok = ~done
        for key in ("asset", "industry", "risk"):
            allowed = getattr(c, key)
            if allowed is not None:
                ok &= bands[key].isin(allowed)
        name[ok], plan[ok] = c.name, c.service_plan
        done |= ok
    out = pd.DataFrame({"asset_band": bands["asset"], "industry_band": bands["industry"], "risk_band": bands["risk"],
                        "cell": name, "service_plan": plan}, index=df.index)
    if "customer_id" in df.columns:
        out.insert(0, "customer_id", df["customer_id"].to_numpy())
    return out


def cell_summary(cells: pd.DataFrame, value: pd.Series | None = None) -> pd.DataFrame:
    """Customers (and summed ``value``) per named cell with its service plan."""
    g = cells.assign(value=0.0 if value is None else value.to_numpy(float)).groupby(["cell", "service_plan"])
    out = g.agg(customers=("cell", "size"), value=("value", "sum")).reset_index()
    out["customer_share"] = out["customers"] / out["customers"].sum()
    return out.sort_values("customers", ascending=False).reset_index(drop=True)
