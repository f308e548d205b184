"""Two-way fixed effects (unit and period) without dummy columns: the exact within transformation.

Why written here: the RM x month panels of notebook 04 have thousands of RMs (5,000 at a bank
with 10M customers) but only tens of periods. Dummy columns for the RMs make the design matrix
``n x (k + n_RM + n_period)`` (7 GB at 180k rows and 5,000 RMs) and the least-squares solve
cubic in the number of RMs. Projecting the dummies out instead (Frisch-Waugh-Lovell) gives the
same slopes, residuals and cluster scores, in memory and time linear in the rows.

The maintained absorbers (``pyhdfe``, ``pyfixest``, ``linearmodels``' ``PanelOLS``) iterate the
alternating projections (or LSMR) to a tolerance, and none is a dependency of the project. Here
the projection is *exact* (a direct solve) because one of the two factors is small:

- ``M_A v`` (off the unit dummies ``A``) is ``v`` minus its unit mean;
- the period dummies ``B`` projected off ``A`` span ``B~ = M_A B``, orthogonal to ``A``, so
  ``M_[A B] v = M_A v - B~ H^+ B~' M_A v`` with ``H = B' M_A B = diag(n_t) - C' diag(1/n_u) C``,
  ``C`` the unit x period count matrix (sparse). ``H`` is ``n_period x n_period``, its entries
  summed exactly by unit size;
- ``B~ c`` is ``c[period] - (C c / n_u)[unit]`` and ``B~' w`` (for ``w`` orthogonal to ``A``) is
  the per-period sum of ``w``: no ``n x n_period`` matrix is formed either.

The rank of ``[A B]`` is ``n_unit + n_period - n_components``, where the components are those of
the bipartite unit-period graph (an edge per observed unit-period pair); it is computed
exactly (:func:`scipy.sparse.csgraph.connected_components`) and ``H``'s pseudo-inverse drops
exactly that many (zero) eigenvalues. A balanced or an ordinary unbalanced panel (RMs joining and
leaving, months missing) is one component.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from rmanalytics.errors import DataError


class TwoWayProjector:
    """Projection off the dummies of two factors (``unit`` with many levels, ``period`` with few).

    Parameters
    ----------
    units, periods : one label per row (missing values are not allowed). Unit levels are numbered
        by first appearance, period levels in sorted order (``H``'s rows and columns).

    Attributes
    ----------
    n, n_units, n_periods : rows and levels.
    n_components : connected components of the unit-period graph (1 for a connected panel).
    rank : rank of the dummy matrix ``[A B]`` (``n_units + n_periods - n_components``).
    """

    def __init__(self, units, periods) -> None:
        u = pd.factorize(np.asarray(units), use_na_sentinel=True)[0]
        t = pd.factorize(np.asarray(periods), sort=True, use_na_sentinel=True)[0]  # levels in sorted order
        if len(u) != len(t):
            raise DataError(f"TwoWayProjector: {len(u)} unit labels but {len(t)} period labels")
        if len(u) == 0:
            raise DataError("TwoWayProjector: no rows")
        if (u < 0).any() or (t < 0).any():
            raise DataError(f"TwoWayProjector: {int((u < 0).sum())} rows lack the unit, "
                            f"{int((t < 0).sum())} the period")
        self.unit_codes, self.period_codes = u, t
        self.n, self.n_units, self.n_periods = len(u), int(u.max()) + 1, int(t.max()) + 1
        self.unit_n = np.bincount(u, minlength=self.n_units).astype(float)
        self.period_n = np.bincount(t, minlength=self.n_periods).astype(float)
        counts = sparse.csr_array((np.ones(self.n), (u, t)), shape=(self.n_units, self.n_periods))
        counts.sum_duplicates()
        self.counts = counts  # C: rows per unit and period
        self.H = self._period_gram()
        graph = sparse.block_array([[None, counts], [counts.T, None]], format="csr")
        self.n_components = int(connected_components(graph, directed=False)[0])
        self.rank = self.n_units + self.n_periods - self.n_components
        w, vecs = np.linalg.eigh(self.H)
        keep = np.argsort(w)[self.n_components:]  # H has exactly n_components zero eigenvalues
        self.H_pinv = (vecs[:, keep] / w[keep]) @ vecs[:, keep].T

    def _period_gram(self) -> np.ndarray:
        """``H = B' M_A B = diag(n_t) - sum_d C_d' C_d / d``, with ``C_d`` the count rows of the units
        with ``d`` rows: ``C_d' C_d`` is an integer matrix (exact), so each entry of ``H`` is a sum of
        one rounded quotient per distinct unit size, added exactly (``math.fsum``). (Summing
        ``c_ut c_us / n_u`` over thousands of units in floating point instead costs two digits.)"""
        parts = [np.diag(self.period_n)]
        for d in np.unique(self.unit_n):
            rows = self.counts[np.flatnonzero(self.unit_n == d)]
            parts.append(-(rows.T @ rows).toarray() / d)
        stacked = np.stack(parts).reshape(len(parts), -1)
        return np.array([math.fsum(col) for col in stacked.T]).reshape(self.n_periods, self.n_periods)

    def unit_mean(self, v: np.ndarray) -> np.ndarray:
        """Per-unit means of the columns of ``v`` (``n_units`` rows)."""
        v2 = v.reshape(self.n, -1)
        out = np.column_stack([np.bincount(self.unit_codes, weights=v2[:, j], minlength=self.n_units)
                               for j in range(v2.shape[1])]) / self.unit_n[:, None]
        return out.reshape((self.n_units,) + v.shape[1:])

    def within_unit(self, v: np.ndarray) -> np.ndarray:
        """``M_A v``: each column minus its unit mean."""
        return v - self.unit_mean(v)[self.unit_codes]

    def period_sums(self, w: np.ndarray) -> np.ndarray:
        """``B' w``: per-period sums of the columns of ``w`` (``n_periods`` rows)."""
        w2 = w.reshape(self.n, -1)
        out = np.column_stack([np.bincount(self.period_codes, weights=w2[:, j], minlength=self.n_periods)
                               for j in range(w2.shape[1])])
        return out.reshape((self.n_periods,) + w.shape[1:])

    def period_part(self, c: np.ndarray) -> np.ndarray:
        """``B~ c = M_A B c`` for period coefficients ``c`` (``n_periods`` rows)."""
        c2 = c.reshape(self.n_periods, -1)
        per_unit = (self.counts @ c2) / self.unit_n[:, None]
        out = c2[self.period_codes] - per_unit[self.unit_codes]
        return out.reshape((self.n,) + c.shape[1:])

    def residualize(self, v: np.ndarray) -> np.ndarray:
        """``M_[A B] v``: the residual of each column of ``v`` (rows x columns, or one vector) after
        least squares on the unit and the period dummies (the two-way within transformation)."""
        v = np.asarray(v, dtype=float)
        w = self.within_unit(v)
        c = self.H_pinv @ self.period_sums(w).reshape(self.n_periods, -1)
        return w - self.period_part(c).reshape(w.shape)
