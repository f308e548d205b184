"""ChurnModel: Cox and parametric AFT churn models on lifelines, with left truncation done right.

Why some code here is not lifelines'
------------------------------------
- lifelines' ``CoxPHFitter(entry_col=...)`` estimates the coefficients correctly under left
  truncation, but its baseline hazard (and so ``predict_survival_function``) ignores entry times
  (an open lifelines issue): customers who joined before the window inflate early risk sets.
  Left-truncated Cox fits therefore go through ``CoxTimeVaryingFitter`` (start = entry, stop =
  duration), whose coefficients are the same.
- ``CoxTimeVaryingFitter``'s baseline ignores row weights and loops over every death time. The
  baseline cumulative hazard is therefore computed here by :func:`breslow_baseline` — the Breslow
  estimator with risk sets ``{entry < t <= duration}`` and weights, vectorised (checked against
  both lifelines fitters in the tests). All survival predictions use it.
- For large left-truncated data ``solver="fast"`` fits the same Efron partial likelihood with a
  vectorised Newton-Raphson (:func:`fit_cox_efron`), checked against lifelines to 1e-6; lifelines'
  start/stop gradient scans all rows for each distinct death time (O(rows x times)).

Conventions: durations, entries and horizons in days (tenure since ``open_date``); hazard ratios
per unit of a numeric covariate, or against the reference level (the most frequent level in the
training data) of a categorical one.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from rmanalytics.errors import ConvergenceError, DataError, ParameterError, examples, rule_message
from rmanalytics.estimator import check_alpha, check_fitted, interval_columns

MODELS = ("cox", "weibull_aft", "lognormal_aft", "loglogistic_aft")
SOLVERS = ("lifelines", "fast")
# the AFT models' location ("primary") parameter in lifelines' params_ index (level 0)
AFT_LOCATION = {"weibull_aft": "lambda_", "lognormal_aft": "mu_", "loglogistic_aft": "alpha_"}


class ChurnModelError(ConvergenceError):
    """A churn model could not be fitted; the message says what to try."""


ADVICE = ("Try: a small penalizer (penalizer=0.01 to 0.1); dropping collinear or near-constant covariates; "
          "merging rare categorical levels; checking for a covariate that separates churners from stayers "
          "perfectly (e.g. one only recorded after churn).")


@dataclass
class _Design:
    """How covariates become a numeric design matrix (fitted on the training frame)."""

    numeric: list[str]
    categorical: dict[str, list]  # column -> levels kept (reference level excluded)
    reference: dict[str, object]

    @classmethod
    def fit(cls, frame: pd.DataFrame, covariates: list[str]) -> "_Design":
        numeric, categorical, reference = [], {}, {}
        for c in covariates:
            s = frame[c]
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                numeric.append(c)
            else:
                # a categorical column counted by codes (no object copy of a long frame), unused levels dropped
                counts = (s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("object")).value_counts()
                counts = dict(zip(counts.index.tolist(), counts.to_numpy().tolist()))
                levels = sorted((v for v, m in counts.items() if m > 0), key=lambda v: (-counts[v], str(v)))
                reference[c] = levels[0]
                categorical[c] = sorted(levels[1:], key=str)
        return cls(numeric, categorical, reference)

    @property
    def columns(self) -> list[str]:
        cols = list(self.numeric)
        for c, levels in self.categorical.items():
            cols += [f"{c}[{v}]" for v in levels]
        return cols

    def rows(self, frame: pd.DataFrame) -> "_DesignRows":
        """The design matrix of ``frame`` without materialising it: rows are built on demand, chunk
        by chunk, from the frame's columns (numeric ones as they are, categorical ones by codes).
        Same values as :meth:`transform` (same checks of the levels), for the fast solver's passes
        over long frames: no n x d float64 array."""
        return _DesignRows(self, frame)

    def _check_levels(self, frame: pd.DataFrame, c: str, s: pd.Series | None = None) -> None:
        """DataError when categorical ``c`` has levels not seen in training (``s``: the column as object)."""
        levels = self.categorical[c]
        s = frame[c].astype("object") if s is None else s
        known = set(levels) | {self.reference[c]}
        unknown = ~s.isin(known) & s.notna()
        if unknown.any():
            raise DataError(rule_message(
                f"frame.{c}", "rule 'levels seen in training'", int(unknown.sum()),
                [{"row": i, c: v} for i, v in s[unknown].head(5).items()],
                hint=f"levels not seen in training: {examples(s[unknown])}; training levels: "
                     f"{[self.reference[c], *levels]}"))

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The design matrix: one float64 column per design column, written into one preallocated
        row-major (rows x columns) array without copies: the fast solver reads it by rows."""
        cols = self.columns
        arr = np.empty((len(frame), len(cols)))
        pos = {c: i for i, c in enumerate(cols)}
        for c in self.numeric:
            arr[:, pos[c]] = frame[c].astype(float).to_numpy()
        for c, levels in self.categorical.items():
            if isinstance(frame[c].dtype, pd.CategoricalDtype):  # by codes: no object array of a long frame
                cat = frame[c].array
                known = set(levels) | {self.reference[c]}
                ok_code = np.array([v in known for v in cat.categories] + [True])  # code -1 (missing) is fine
                codes = np.asarray(cat.codes)
                if not ok_code[codes].all():
                    self._check_levels(frame, c)
                pos_of = {v: i for i, v in enumerate(cat.categories)}
                for v in levels:
                    arr[:, pos[f"{c}[{v}]"]] = (codes == pos_of.get(v, -2)).astype(float)
                continue
            s = frame[c].astype("object")
            self._check_levels(frame, c, s)
            for v in levels:
                arr[:, pos[f"{c}[{v}]"]] = (s == v).to_numpy(dtype=float)
        return pd.DataFrame(arr, index=frame.index, columns=cols, copy=False)


class _DesignRows:
    """Rows of a :class:`_Design`'s matrix built on demand from the frame's columns.

    Holds references to the numeric columns (no copies for numpy dtypes) and the categorical
    columns' codes; :meth:`column` and :meth:`rows` write float64 values of a slice or of row
    positions, with the values of :meth:`_Design.transform` (ints and bools converted to float
    exactly, one-hot columns 1.0 / 0.0). The fast Cox solver visits the rows in chunks, so a long
    frame of tens of millions of customer-months never has its n x d float64 design in memory
    (9 columns: 72 bytes a row). Column statistics are computed column by column from the sources.
    """

    def __init__(self, design: _Design, frame: pd.DataFrame) -> None:
        self.columns = design.columns
        pos = {c: i for i, c in enumerate(self.columns)}
        self.shape = (len(frame), len(self.columns))
        sources = {}  # design position -> (values, None) or (categorical codes or values, the level's code)
        for c in design.numeric:
            s = frame[c]
            sources[pos[c]] = (s.to_numpy() if isinstance(s.dtype, np.dtype) else s.astype(float).to_numpy(), None)
        for c, levels in design.categorical.items():
            s = frame[c]
            if isinstance(s.dtype, pd.CategoricalDtype):
                cat = s.array
                known = set(levels) | {design.reference[c]}
                ok_code = np.array([v in known for v in cat.categories] + [True])
                codes = np.asarray(cat.codes)
                if not ok_code[codes].all():
                    design._check_levels(frame, c)
                pos_of = {v: i for i, v in enumerate(cat.categories)}
                sources.update({pos[f"{c}[{v}]"]: (codes, pos_of.get(v, -2)) for v in levels})
            else:  # object values: compared as transform does (s == v), as they are
                so = s.astype("object")
                design._check_levels(frame, c, so)
                sources.update({pos[f"{c}[{v}]"]: (so.to_numpy(), v) for v in levels})
        self._sources = [sources[j] for j in range(len(self.columns))]
        self._stats = None  # (means, minima, maxima) once computed
        self._table_key = None  # (center, scale, tables) of the last standardisation asked for

    def __len__(self) -> int:
        return self.shape[0]

    def column(self, j: int, sel: slice | np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Design column ``j`` on rows ``sel`` as float64 (written into ``out`` when given)."""
        a, level = self._sources[j]
        out = np.empty(len(range(*sel.indices(self.shape[0]))) if isinstance(sel, slice) else len(sel)) \
            if out is None else out
        if level is None:
            np.copyto(out, a[sel], casting="unsafe")  # ints and bools: exactly
        else:
            np.equal(a[sel], level, out=out, casting="unsafe")
        return out

    def block(self, sel: slice | np.ndarray, center: np.ndarray | None = None,
              scale: np.ndarray | None = None) -> np.ndarray:
        """The transposed design rows ``sel`` (a slice or row positions): a C-contiguous d x m array,
        one column a row; with ``center`` (and ``scale``), d-vectors, standardised: (x - center) /
        scale, the same values as computing them from the rows. Built with contiguous operations:
        numpy's broadcasting over rows of a few columns is several times slower."""
        m = len(range(*sel.indices(self.shape[0]))) if isinstance(sel, slice) else len(sel)
        cols = np.empty((self.shape[1], m))
        if center is None:
            for j in range(self.shape[1]):
                self.column(j, sel, out=cols[j])
            return cols
        tables = self._tables(center, scale)
        for j, (a, level) in enumerate(self._sources):
            if tables[j] is not None:  # one byte a value: its standardised value looked up
                np.take(tables[j], a[sel].view(np.uint8), out=cols[j], mode="clip")  # in range: no check
                continue
            if level is None:
                np.subtract(a[sel], center[j], out=cols[j])
            else:
                np.subtract(np.equal(a[sel], level, out=cols[j], casting="unsafe"), center[j], out=cols[j])
            if scale is not None:
                np.divide(cols[j], scale[j], out=cols[j])
        return cols

    def _tables(self, center: np.ndarray, scale: np.ndarray | None) -> list:
        """Per column whose values are single bytes (int8, uint8 and bool columns, categorical codes
        of fewer than 128 categories): the table of the standardised value of each of the 256 byte
        values, the same arithmetic as on the column ((float(v) - center) / scale); None for other
        columns. Kept for the last (center, scale) given (the solver asks with the same ones)."""
        if self._table_key is not None and self._table_key[0] is center and self._table_key[1] is scale:
            return self._table_key[2]
        byte = np.arange(256, dtype=np.uint8)
        tables = []
        for j, (a, level) in enumerate(self._sources):
            if not (isinstance(a, np.ndarray) and a.dtype.itemsize == 1 and a.dtype.kind in "biu"):
                tables.append(None)
                continue
            v = byte.view(a.dtype).astype(float) if level is None else (byte.view(a.dtype) == level).astype(float)
            t = v - center[j]
            tables.append(t if scale is None else t / scale[j])
        self._table_key = (center, scale, tables)
        return tables

    def rows(self, sel: slice | np.ndarray, center: np.ndarray | None = None,
             scale: np.ndarray | None = None) -> np.ndarray:
        """The float64 design rows ``sel``, C-contiguous (m x d): :meth:`block` transposed."""
        return np.ascontiguousarray(self.block(sel, center, scale).T)

    def chunks(self, step: int = 0):
        """(slice, rows) over all rows in order, ``step`` rows at a time (default CHUNK_ROWS)."""
        step = int(step or CHUNK_ROWS)
        for i in range(0, self.shape[0], step):
            sl = slice(i, min(i + step, self.shape[0]))
            yield sl, self.rows(sl)

    def _sums(self, cols: list[int], center: np.ndarray | None = None) -> np.ndarray:
        """Sums over the rows of the design columns ``cols`` (or of their squared deviations from
        ``center``, a d-vector), added as numpy sums a C-contiguous matrix over axis 0: row after row,
        in chunks of CHUNK_ROWS rows whose sums are added in order to totals starting at 0 (without
        ``center``, the totals are carried into each next chunk as its first row instead, as a
        running sum over all rows). The columns are summed side by side (a chunk of rows of those
        columns, one more zero column when there is only one: a single contiguous column would be
        summed pairwise)."""
        total = np.zeros(len(cols))
        if not cols:
            return total
        width = max(len(cols), 2)
        for i in range(0, self.shape[0], CHUNK_ROWS):
            sl = slice(i, min(i + CHUNK_ROWS, self.shape[0]))
            v = np.zeros((sl.stop - sl.start, width))
            for c, j in enumerate(cols):
                self.column(j, sl, out=v[:, c])
            if center is None:
                v[0, :len(cols)] += total
                total = v.sum(0)[:len(cols)]
            else:
                v[:, :len(cols)] -= center[cols]
                total += (v * v).sum(0)[:len(cols)]
        return total

    def _scan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Column means, minima and maxima, computed once (the fit's design check, the solver's
        standardisation and ``design_mean_`` all need them). The sums are added row after row as
        numpy's ``X.mean(0)`` of the C-contiguous matrix does: the same bits."""
        if self._stats is None:
            n, d = self.shape
            lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
            for j, (a, level) in enumerate(self._sources):
                if n:
                    v = a if level is None else (a == level)
                    lo[j], hi[j] = v.min(), v.max()
            # small integers (one-hot 0/1 included): every partial sum is an integer below 2**53, so the
            # float sum is exact whatever the order, and equals the integer sum
            small = [level is not None or (a.dtype.kind in "bui" and a.dtype.itemsize <= 2)
                     for a, level in self._sources]
            sums = np.array([float((a == level).sum() if level is not None else a.sum(dtype=np.int64))
                             if small[j] else 0.0 for j, (a, level) in enumerate(self._sources)])
            other = [j for j in range(d) if not small[j]]
            sums[other] = self._sums(other)
            self._stats = (sums / n if n else np.full(d, np.nan), lo, hi)
        return self._stats

    def mean(self) -> np.ndarray:
        """Column means, the same bits as ``X.mean(0)`` of the materialised matrix (see :meth:`_scan`)."""
        return self._scan()[0]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Column minima and maxima (+-inf for no rows)."""
        return self._scan()[1:]

    def square_sums(self, center: np.ndarray) -> np.ndarray:
        """Per column, the sum of squared deviations from ``center``: the same bits as summing
        ``((rows - center) ** 2).sum(0)`` over chunks of CHUNK_ROWS rows."""
        return self._sums(list(range(self.shape[1])), center)

    def risk_and_hazard(self, b: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X @ b`` and ``exp((X - mean) @ b)`` per row (a Cox model's linear risk and partial
        hazard), from one build of each chunk of rows."""
        n = self.shape[0]
        risk, ph = np.empty(n), np.empty(n)
        for sl, r in self.chunks(min(CHUNK_ROWS, SMALL_CHUNK_ROWS)):
            np.matmul(r, b, out=risk[sl])
            np.subtract(r, mean, out=r)
            ph[sl] = np.exp(r @ b)
        return risk, ph


def _check_frame(frame: pd.DataFrame, cols: list[str], duration_col: str, event_col: str,
                 entry_col: str | None, weights_col: str | None) -> None:
    need = cols + [duration_col, event_col] + [c for c in (entry_col, weights_col) if c]
    _require_columns(frame, need)
    for c in need:
        bad = frame[c].isna()
        if bad.any():
            raise DataError(rule_message(f"frame.{c}", "rule 'not missing (NaN)'", int(bad.sum()),
                                         [f"row {i}" for i in frame.index[bad][:5]],
                                         hint="impute or drop them explicitly before fitting"))
    d = frame[duration_col].to_numpy(dtype=float)  # float64 columns: no copy
    if (d <= 0).any():
        d = frame[duration_col].astype(float)
        bad = d <= 0
        raise DataError(rule_message(f"frame.{duration_col}", "rule 'duration > 0 days'", int(bad.sum()),
                                     [{"row": i, duration_col: v} for i, v in d[bad].head(5).items()]))
    if entry_col:
        e = frame[entry_col].to_numpy(dtype=float)
        bad = (e >= d) | (e < 0)
        if bad.any():
            e, d = frame[entry_col].astype(float), frame[duration_col].astype(float)
            raise DataError(rule_message(
                f"frame.{entry_col}", f"rule '0 <= entry < {duration_col}'", int(bad.sum()),
                [{"row": i, entry_col: e[i], duration_col: d[i]} for i in frame.index[bad][:5]]))
    ev = frame[event_col]
    if isinstance(ev.dtype, np.dtype) and ev.dtype.kind in "biuf":  # the same test as isin, by comparisons
        v = ev.to_numpy()
        bad = pd.Series(~((v == 0) | (v == 1)), index=frame.index)
    else:
        bad = ~ev.isin([0, 1, True, False])
    if bad.any():
        raise DataError(rule_message(f"frame.{event_col}", "rule 'event is 0 or 1'", int(bad.sum()),
                                     [{"row": i, event_col: v} for i, v in ev[bad].head(5).items()]))


def _require_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"frame: column(s) {missing} missing; the model needs {columns}; "
                        f"the frame has {list(frame.columns)}")


def _check_design(X: "pd.DataFrame | _DesignRows") -> None:
    cols = pd.Index(X.columns)
    if isinstance(X, _DesignRows):  # min and max by row chunks (with the means, one pass)
        lo, hi = X.bounds()
    else:
        a = X.to_numpy()  # the values are finite (checked before): constant <=> min == max (std 0); reductions
        lo, hi = (a.min(0), a.max(0)) if len(a) else (None, None)  # over rows, no copy
    const = cols.tolist() if len(X) < 2 else cols[lo == hi].tolist()
    if const:
        raise ChurnModelError(f"covariates {const} are constant in the training data; drop them. " + ADVICE)
    if isinstance(X, _DesignRows):
        sample = pd.DataFrame(X.rows(np.arange(0, len(X), max(1, len(X) // 50_000))), columns=cols)
    else:
        sample = X.iloc[:: max(1, len(X) // 50_000)]
    Z = ((sample - sample.mean()) / sample.std()).to_numpy()
    rank, kept, dup = 0, [], []
    for j, name in enumerate(X.columns):
        r = np.linalg.matrix_rank(Z[:, kept + [j]])
        if r > rank:
            rank, kept = r, kept + [j]
        else:
            dup.append(name)
    if dup:
        raise ChurnModelError(f"covariates {dup} are collinear with earlier covariates "
                              f"({[X.columns[k] for k in kept]}); drop them or add a penalizer. " + ADVICE)


def _time_index(times: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.searchsorted(times, x, side="right")``: the number of the sorted ``times`` at or before
    each value of ``x``. Whole numbers of days (tenures on a day, week or month grid) in a modest
    range are looked up in a table over the days, built by the same search: the same indexes,
    without a binary search per row."""
    x = np.asarray(x, float)
    days = x.astype(np.int64)
    if len(x) and days.min() >= 0 and days.max() < 1 << 20 and np.array_equal(days, x):
        return np.searchsorted(times, np.arange(days.max() + 1), side="right")[days]
    return np.searchsorted(times, x, side="right")


def breslow_baseline(stop: np.ndarray, event: np.ndarray, partial_hazard: np.ndarray,
                     start: np.ndarray | None = None, weights: np.ndarray | None = None) -> pd.Series:
    """Breslow cumulative baseline hazard with delayed entry and weights.

    Risk set at time t: rows with ``start < t <= stop``. Returns a Series indexed by the distinct
    event times (days) with the cumulative hazard at each, for ``partial_hazard`` = exp(x'b) as
    given (any centering, as long as predictions use the same). Each row adds its weighted hazard
    to the event times ``times[lo:hi]`` it is at risk for, as suffix sums of per-time totals
    accumulated over row chunks: O(n) time, and memory for one chunk besides the inputs.
    """
    stop = np.asarray(stop, float)
    event = np.asarray(event).astype(bool)
    ph = np.asarray(partial_hazard, float)
    w = None if weights is None else np.asarray(weights, float)
    times = np.unique(stop[event])
    k = len(times)
    by_hi, by_lo = np.zeros(k + 1), np.zeros(k + 1)
    for i in range(0, len(stop), CHUNK_ROWS):
        sl = slice(i, i + CHUNK_ROWS)
        wph = ph[sl] if w is None else w[sl] * ph[sl]
        hi = _time_index(times, stop[sl])       # at risk at times[j] for j < hi (t <= stop)
        lo = np.zeros(len(wph), np.intp) if start is None else _time_index(times, start[sl])  # and j >= lo (t > start)
        by_hi += np.bincount(hi, weights=wph, minlength=k + 1)
        by_lo += np.bincount(lo, weights=wph, minlength=k + 1)
    # suffix sums (rows still at risk after t), as the partial likelihood: no cancellation in the tail
    at_risk = np.cumsum(by_hi[::-1])[::-1][1:] - np.cumsum(by_lo[::-1])[::-1][1:]
    ew = None if w is None else w[event]
    deaths = np.bincount(np.searchsorted(times, stop[event]), weights=ew, minlength=k)
    return pd.Series(np.cumsum(deaths / at_risk), index=times, name="baseline cumulative hazard")


#: Rows per chunk of the fast Cox solver's passes over the data (bounds its working memory).
CHUNK_ROWS = 1 << 16
#: At most this many rows per chunk in the passes repeated per Newton step and the per-row scores
#: (temporaries reused by the allocator, no page faults per pass).
SMALL_CHUNK_ROWS = 1 << 14


def _group_index(size: int, *groupings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of each group under each of ``groupings`` (m-vectors of group numbers in
    0..size-1), as the structure of a sparse 0/1 matrix (len(groupings) * size x m) in CSR form:
    row i * size + g lists, in increasing order, the positions of group g of grouping i. From one
    stable sort of the keys (a radix sort when they fit int16). Returns (positions, int16 when m
    allows, and row pointers); :func:`_group_sums` takes them."""
    m, nk = len(groupings[0]), len(groupings) * size
    key_type = np.int16 if nk <= np.iinfo(np.int16).max else np.int64
    key = np.concatenate([np.add(g, i * size, dtype=key_type) for i, g in enumerate(groupings)])
    indptr = np.zeros(nk + 1, np.int64)
    np.cumsum(np.bincount(key, minlength=nk), out=indptr[1:])
    pos = np.argsort(key, kind="stable")
    if len(groupings) > 1:
        pos %= m
    small = np.int16 if m <= np.iinfo(np.int16).max else np.int32
    return pos.astype(small), indptr.astype(np.int32 if len(key) <= np.iinfo(np.int32).max else np.int64)


def _group_sums(values: np.ndarray, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Group sums of the rows of ``values`` (m x c) for a :func:`_group_index`: row i * size + g of
    the result is the sum of the rows of group g under grouping i, added in row order, so the same
    sums, bit for bit, as ``np.bincount(grouping, weights=values[:, j])`` for each column j. One
    sparse matrix product instead of c scattered bincount passes per grouping."""
    from scipy.sparse import csr_matrix

    pos, indptr = index
    groups = csr_matrix((np.ones(len(pos)), pos.astype(indptr.dtype), indptr),
                        shape=(len(indptr) - 1, len(values)))
    return groups @ values


def fit_cox_efron(X: "np.ndarray | _DesignRows", stop: np.ndarray, event: np.ndarray, start: np.ndarray | None = None,
                  weights: np.ndarray | None = None, penalizer: float = 0.0, max_steps: int = 50,
                  tol: float = 1e-9, chunk_rows: int | None = None, init: np.ndarray | None = None,
                  info: dict | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Efron partial likelihood Cox fit with delayed entry, vectorised over event times.

    Same likelihood, weights convention and L2 penalty (``0.5 * penalizer * n * |b|^2`` on
    standardised covariates) as lifelines' CoxPHFitter / CoxTimeVaryingFitter (l1_ratio = 0).
    Risk-set sums at each distinct event time t are obtained as sums over ``stop >= t`` minus
    sums over ``start >= t`` from reverse cumulative sums, so one Newton step costs O(n d^2).
    The rows are visited in small chunks (at most ``chunk_rows``, default :data:`CHUNK_ROWS`):
    besides ``X`` the working memory is a few arrays of one chunk and 16 bytes a row (the rows'
    event-time indexes, their per-chunk grouping, their phi), whatever n (tens of millions of
    start/stop rows). Per Newton step one pass sums phi and phi z per event-time group (a sparse
    product per chunk with the grouping built once per fit: the sums of one bincount per column);
    the Hessian's risk-set second moments enter only as sum_j alpha_j R2(t_j), which is one
    weighted Gram matrix of the rows (each row weighted by the alpha of the event times it is at
    risk for; a second pass, reusing the first pass's phi), so no per-time d x d sums are formed.
    ``X`` may also be a :class:`_DesignRows` (``ChurnModel.fit`` with ``solver="fast"`` passes one):
    the rows are then built from the frame's columns chunk by chunk, and no n x d array is held
    (same values, same estimates).
    ``init``: the starting coefficients (original scale; default zeros), e.g. those of a similar
    model: Newton's method converges to the same estimates (to ``tol``) in fewer steps. ``info``, a
    dict, receives ``n_steps`` (Newton steps taken).
    Returns (coefficients on the original scale, their covariance matrix, log partial likelihood).
    """
    lazy = isinstance(X, _DesignRows)
    if not lazy:
        X = np.asarray(X, float)
    n, d = X.shape
    mu = X.mean() if lazy else X.mean(0)

    def standardised(sel, scale):
        """Rows ``sel`` minus the means, divided by ``scale`` when given (a fresh array)."""
        if lazy:
            return X.rows(sel, mu, scale)
        return (X[sel] - mu) if scale is None else (X[sel] - mu) / scale

    if lazy:  # standard deviations without an n x d temporary
        ss = X.square_sums(mu)
    else:
        ss = np.zeros(d)
        for i in range(0, n, CHUNK_ROWS):
            ss += (standardised(slice(i, i + CHUNK_ROWS), None) ** 2).sum(0)
    sd = np.sqrt(ss / (n - 1))
    stop = np.asarray(stop, float)
    ev = np.asarray(event).astype(bool)
    w = None if weights is None else np.asarray(weights, float)
    times, inv_t = np.unique(stop[ev], return_inverse=True)
    k = len(times)
    # index of each row's stop/start among event times: rows enter sums of times <= stop, > start
    idx_type = np.int16 if k < np.iinfo(np.int16).max else np.int32
    stop_idx = np.empty(n, idx_type)   # row in risk set of times[:stop_idx]
    start_idx = np.zeros(n, idx_type)
    start = None if start is None else np.asarray(start, float)
    for i in range(0, n, CHUNK_ROWS):  # by chunks: no n-long int64 temporaries
        stop_idx[i:i + CHUNK_ROWS] = _time_index(times, stop[i:i + CHUNK_ROWS])
        if start is not None:
            start_idx[i:i + CHUNK_ROWS] = _time_index(times, start[i:i + CHUNK_ROWS])
    step = int(chunk_rows or CHUNK_ROWS)
    n_dead = np.bincount(inv_t, minlength=k).astype(float)
    wd = np.ones(int(ev.sum())) if w is None else w[ev]
    w_dead = np.bincount(inv_t, weights=wd, minlength=k)
    Zd = standardised(np.flatnonzero(ev) if lazy else ev, sd)
    zdead = np.stack([np.bincount(inv_t, weights=wd * Zd[:, j], minlength=k) for j in range(d)], axis=1)
    jj = np.repeat(np.arange(k), n_dead.astype(int))
    frac = (np.arange(len(jj)) - np.repeat(np.cumsum(n_dead) - n_dead, n_dead.astype(int))) / n_dead[jj]

    pairs = [(i, j) for i in range(d) for j in range(i, d)]

    def group_sums(phi: np.ndarray, Zg: np.ndarray, idx: np.ndarray, size: int, derivs: bool = True):
        """Per group g (rows with idx == g): sum phi, sum phi z, sum phi z z' (bincount, O(n) each)."""
        s0 = np.bincount(idx, weights=phi, minlength=size)
        if not derivs:
            return s0, None, None
        pz = phi[:, None] * Zg
        s1 = np.stack([np.bincount(idx, weights=pz[:, i], minlength=size) for i in range(d)], axis=1)
        s2 = np.empty((size, d, d))
        for i, j in pairs:
            s2[:, i, j] = s2[:, j, i] = np.bincount(idx, weights=pz[:, i] * Zg[:, j], minlength=size)
        return s0, s1, s2

    step2 = min(step, SMALL_CHUNK_ROWS)
    chunks = [slice(i, min(i + step2, n)) for i in range(0, n, step2)]
    # per chunk, the rows of each event-time group of the stop and of the start index, for every
    # Newton step: 4 bytes a row (as the two indexes), in one array (freed at once, no heap of pieces)
    positions = np.empty(2 * n, np.int16 if step2 <= np.iinfo(np.int16).max else np.int32)
    pointers = np.empty((len(chunks), 2 * (k + 1) + 1), np.int32)
    for c, sl in enumerate(chunks):
        pos, pointers[c] = _group_index(k + 1, stop_idx[sl], start_idx[sl])
        positions[2 * sl.start:2 * sl.stop] = pos
    groups = [(positions[2 * sl.start:2 * sl.stop], pointers[c]) for c, sl in enumerate(chunks)]

    def standardised_block(sl: slice) -> np.ndarray:
        """Rows ``sl``: standardised covariates z as a d x m block."""
        return X.block(sl, mu, sd) if lazy else ((X[sl] - mu) / sd).T

    # each row's (weighted) relative risk phi at the beta of the last first_moments: the Hessian's
    # pass at the same beta reads them (8 bytes a row) instead of building the rows again
    phi_rows = np.empty(n)

    def first_moments(beta, derivs: bool):
        """Per event-time group of the stop index (a) and of the start index (b): sums of phi and
        (with derivs) phi z over all rows, chunk by chunk (bincount for phi alone; with derivs one
        :func:`_group_sums` of the rows (phi, phi z) under both indexes)."""
        ab = np.zeros((2 * (k + 1), 1 + d if derivs else 1))  # a then b: [group, (phi, phi z)]
        for sl, index in zip(chunks, groups):
            B = standardised_block(sl)
            phi = np.exp(np.ascontiguousarray(B.T) @ beta)  # z'beta from rows (m x d), as before: the same bits
            phi = phi_rows[sl] = phi if w is None else w[sl] * phi
            if derivs:
                P = np.empty((1 + d, len(phi)))
                P[0] = phi
                np.multiply(B, phi, out=P[1:])
                ab += _group_sums(np.ascontiguousarray(P.T), index)
            else:
                ab[:k + 1, 0] += np.bincount(stop_idx[sl], weights=phi, minlength=k + 1)
                ab[k + 1:, 0] += np.bincount(start_idx[sl], weights=phi, minlength=k + 1)
        (a0, a1), (b0, b1) = ((s[:, 0], s[:, 1:] if derivs else None) for s in (ab[:k + 1], ab[k + 1:]))
        return a0, a1, b0, b1

    def weighted_gram(alpha):
        """sum_j alpha_j R2(t_j) with R2(t) = sum over rows at risk at t of phi z z' (phi: ``phi_rows``,
        of the first_moments just before, at the same beta): a row at risk at the event times j in
        [start_idx, stop_idx) enters once with weight phi * sum of alpha over them (prefix sums), so
        no per-time d x d sums are needed: one weighted Gram matrix (BLAS)."""
        C = np.concatenate([[0.0], np.cumsum(alpha)])
        M = np.zeros((d, d))
        for sl in chunks:
            B = standardised_block(sl)
            wt = phi_rows[sl] * (np.take(C, stop_idx[sl], mode="clip") - np.take(C, start_idx[sl], mode="clip"))
            M += (B * wt) @ B.T
        return M

    def above(s):
        """S[j] = sum over groups g > j, for j = 0..k-1 (groups 0..k)."""
        c = np.cumsum(s[::-1], axis=0)[::-1]
        return c[1:]

    def parts(beta, derivs: bool = True):
        a0, a1, b0, b1 = first_moments(beta, derivs)
        R0 = above(a0) - above(b0)
        phid = wd * np.exp(Zd @ beta)
        T0, T1, T2 = group_sums(phid, Zd, inv_t, k, derivs)
        if not derivs:
            den = R0[jj] - frac * T0[jj]
            a = w_dead / n_dead
            ll = float((zdead @ beta).sum()) - float((a * np.bincount(jj, weights=np.log(den), minlength=k)).sum())
            if penalizer:
                ll -= 0.5 * penalizer * n * float(beta @ beta)
            return ll, None, None
        R1 = above(a1) - above(b1)
        # Efron: the m-th of the n_j tied deaths at time j sees R - (m / n_j) T; sums over m per j
        den = R0[jj] - frac * T0[jj]
        c1 = np.bincount(jj, weights=1 / den, minlength=k)
        c2 = np.bincount(jj, weights=frac / den, minlength=k)
        q0 = np.bincount(jj, weights=1 / den**2, minlength=k)
        q1 = np.bincount(jj, weights=frac / den**2, minlength=k)
        q2 = np.bincount(jj, weights=frac**2 / den**2, minlength=k)
        a = w_dead / n_dead
        ll = float((zdead @ beta).sum()) - float((a * np.bincount(jj, weights=np.log(den), minlength=k)).sum())
        grad = zdead.sum(0) - ((a * c1)[:, None] * R1 - (a * c2)[:, None] * T1).sum(0)
        outer = (np.einsum("k,ki,kj->ij", a * q0, R1, R1) - np.einsum("k,ki,kj->ij", a * q1, R1, T1)
                 - np.einsum("k,ki,kj->ij", a * q1, T1, R1) + np.einsum("k,ki,kj->ij", a * q2, T1, T1))
        hess = -(weighted_gram(a * c1) - np.einsum("k,kij->ij", a * c2, T2) - outer)
        if penalizer:
            ll -= 0.5 * penalizer * n * float(beta @ beta)
            grad -= penalizer * n * beta
            hess -= penalizer * n * np.eye(d)
        return ll, grad, hess

    beta = np.zeros(d)
    if init is not None:
        init = np.asarray(init, float)
        if init.shape != (d,) or not np.all(np.isfinite(init)):
            raise ParameterError(f"init must be {d} finite coefficients, got {init!r}")
        beta = init * sd  # the standardised scale the steps are taken on
    ll_old = None
    at_beta = None  # parts(beta) when the line search computed them already (the full step, usually taken)
    for n_steps in range(1, max_steps + 1):
        ll, grad, hess = at_beta if at_beta is not None else parts(beta)
        if not np.all(np.isfinite(hess)) or not np.isfinite(ll):
            raise ChurnModelError("Cox fit diverged (non-finite likelihood). " + ADVICE)
        try:
            step = np.linalg.solve(-hess, grad)
        except np.linalg.LinAlgError as err:
            raise ChurnModelError(f"Cox fit failed: singular Hessian ({err}). " + ADVICE) from err
        # step halving keeps the likelihood increasing; the full step is evaluated with its derivatives
        # (the same likelihood value), which the next Newton step then reuses: one pass less per step
        t = 1.0
        while True:
            new = beta + t * step
            with np.errstate(all="ignore"):
                at_new = parts(new) if t == 1.0 else None
            ll_new = at_new[0] if at_new is not None else parts(new, derivs=False)[0]
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 or t < 1e-4:
                break
            t /= 2
        beta, at_beta = new, at_new
        if np.max(np.abs(t * step)) < tol or (ll_old is not None and abs(ll_new - ll) < tol * max(1, abs(ll))):
            ll = ll_new
            break
        ll_old = ll
    else:
        raise ChurnModelError(f"Cox fit did not converge in {max_steps} Newton steps. " + ADVICE)
    if info is not None:
        info["n_steps"] = n_steps
    ll, grad, hess = at_beta if at_beta is not None else parts(beta)
    cov_z = np.linalg.inv(-hess)
    return beta / sd, cov_z / np.outer(sd, sd), ll


class ChurnModel(BaseEstimator):
    """Churn model on lifelines: Cox proportional hazards or a parametric AFT model.

    A scikit-learn style estimator: the constructor only stores its arguments (checked in ``fit``),
    ``fit`` returns self and leaves them unchanged, :func:`sklearn.base.clone` works.

    Parameters
    ----------
    model : "cox", "weibull_aft", "lognormal_aft" or "loglogistic_aft".
    covariates : columns of the frame to use (None: every column that is not the duration, event,
        entry, weights, id or strata column; the columns used are ``covariates_``); categorical
        (object/category) ones are one-hot encoded against their most frequent level (``reference_levels_``).
    penalizer, l1_ratio : elastic-net penalty, as in lifelines.
    strata : column(s) to stratify the Cox baseline on (Cox only).
    alpha : 1 - level of the confidence intervals (0.05: 95%).
    solver : "lifelines" (default; CoxPHFitter, or CoxTimeVaryingFitter with an entry column) or
        "fast" (Cox only, no strata, l1_ratio = 0: :func:`fit_cox_efron`, same estimates).
    random_state : seed of the fixed subsample (200,000 customers) on which concordance is computed
        for larger frames.

    Learned attributes: ``covariates_`` (columns used), ``strata_`` (list or None), ``columns_``
    (design columns), ``params_`` (coefficients, a Series), ``summary_`` (``estimate``, ``se``,
    ``lower_95``, ``upper_95`` on the coefficient scale at ``alpha``, then lifelines' columns ``coef``,
    ``exp(coef)``, ``se(coef)``, intervals, ``z``, ``p``), ``variance_matrix_``, ``hazard_ratios_``
    (Series by covariate; Cox and Weibull AFT), ``concordance_`` (training), ``data_attrs_`` (the
    training frame's ``attrs``: a :func:`~rmanalytics.churn.frame.survival_frame` records its window,
    churn definition, time grid and lookback there, and its time-varying frames keep them),
    ``baseline_cumulative_hazard_`` and ``design_mean_`` (Cox), ``fitter_`` (the lifelines fitter,
    None for solver="fast"), ``n_iter_`` (Newton steps of the fast solver; None with lifelines),
    ``design_``, ``reference_levels_``.
    """

    def __init__(self, model: str = "cox", covariates: list[str] | None = None, penalizer: float = 0.0,
                 l1_ratio: float = 0.0, strata: str | list[str] | None = None, alpha: float = 0.05,
                 solver: str = "lifelines", random_state: int | None = 0) -> None:
        self.model = model
        self.covariates = covariates
        self.penalizer = penalizer
        self.l1_ratio = l1_ratio
        self.strata = strata
        self.alpha = alpha
        self.solver = solver
        self.random_state = random_state

    def _check_params(self) -> list[str] | None:
        """Check the constructor arguments; returns the strata as a list (or None)."""
        if self.model not in MODELS:
            raise ParameterError(f"ChurnModel: model must be one of {MODELS}, got {self.model!r}")
        if self.strata is not None and self.model != "cox":
            raise ParameterError("ChurnModel: strata are only supported for model='cox'")
        if self.solver not in SOLVERS:
            raise ParameterError(f"ChurnModel: solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.solver == "fast" and (self.model != "cox" or self.strata is not None or self.l1_ratio):
            raise ParameterError("ChurnModel: solver='fast' supports model='cox' without strata and with l1_ratio=0")
        if not (isinstance(self.penalizer, numbers.Real) and self.penalizer >= 0):
            raise ParameterError(f"ChurnModel: penalizer must be a number >= 0, got {self.penalizer!r}")
        if not (isinstance(self.l1_ratio, numbers.Real) and 0 <= self.l1_ratio <= 1):
            raise ParameterError(f"ChurnModel: l1_ratio must be in [0, 1], got {self.l1_ratio!r}")
        if isinstance(self.covariates, str):
            raise ParameterError(f"ChurnModel: covariates must be a list of column names, got {self.covariates!r}")
        check_alpha(self.alpha, "ChurnModel")
        return [self.strata] if isinstance(self.strata, str) else (list(self.strata) if self.strata else None)

    # ------------------------------------------------------------------ fitting
    def fit(self, frame: pd.DataFrame, duration_col: str = "duration", event_col: str = "event",
            entry_col: str | None = None, weights_col: str | None = None, id_col: str | None = None,
            initial_point: "pd.Series | np.ndarray | None" = None) -> "ChurnModel":
        """Fit on ``frame`` (durations in days). ``entry_col``: delayed entry (left truncation) or the
        start of start/stop rows of a time-varying frame. ``weights_col``: frequency weights (e.g. from
        :func:`~rmanalytics.churn.frame.compress_frame`). ``id_col``: customer id of a long frame, used
        to compute concordance on one row per customer.

        ``initial_point`` (Cox only, as lifelines' ``fit(initial_point=...)``): starting coefficients
        on the coefficient scale, e.g. ``params_`` of a similar model (a warm start: the same
        estimates, to the solver's tolerance, in fewer Newton steps; ``n_iter_`` says how many with
        the fast solver). A Series is matched to the design columns by name (columns it lacks start
        at 0); an array gives one value per design column. Default: zeros."""
        from lifelines import CoxPHFitter, CoxTimeVaryingFitter, LogLogisticAFTFitter, LogNormalAFTFitter, \
            WeibullAFTFitter
        from lifelines.exceptions import ConvergenceError as LifelinesConvergenceError
        from lifelines.exceptions import ConvergenceWarning

        strata = self._check_params()
        if self.covariates is None:
            skip = {duration_col, event_col, entry_col, weights_col, id_col, *(strata or [])}
            covs = [c for c in frame.columns if c not in skip]
        else:
            covs = list(self.covariates)
        _check_frame(frame, covs + list(strata or []), duration_col, event_col, entry_col, weights_col)
        self.covariates_, self.strata_ = covs, strata
        self.duration_col_, self.event_col_, self.entry_col_ = duration_col, event_col, entry_col
        self.weights_col_, self.id_col_ = weights_col, id_col
        self.data_attrs_ = dict(frame.attrs)  # what the frame was built from (survival_frame's window, grid, ...)
        self.design_ = _Design.fit(frame, covs)
        self.reference_levels_ = dict(self.design_.reference)
        fast = self.model == "cox" and self.solver == "fast"
        # the fast solver reads the design by row chunks built from the frame's columns: no n x d array
        X = self.design_.rows(frame) if fast else self.design_.transform(frame)
        _check_design(X)
        self.columns_ = list(X.columns)
        init = self._initial_point(initial_point)
        # float columns as they are (no copy of a long frame's tens of millions of rows; nothing writes to them)
        T = frame[duration_col].to_numpy(dtype=float)
        # events as int (lifelines' frame) or, for the fast solver, one byte a row (0/1 checked above)
        E = frame[event_col].to_numpy(dtype=np.int8) if fast else frame[event_col].astype(int).to_numpy()
        S = frame[entry_col].to_numpy(dtype=float) if entry_col else None
        W = frame[weights_col].to_numpy(dtype=float) if weights_col else None
        df = None
        if not fast:  # lifelines' fitters take one frame; the fast solver works on X as it is
            df = X.copy()
            df["__T"], df["__E"] = T, E
            if S is not None:
                df["__S"] = S
            if W is not None:
                df["__W"] = W
            for c in strata or []:
                df[c] = frame[c].to_numpy()

        self.fitter_ = None
        self.n_iter_ = None
        info: dict = {}
        # lifelines' fitters take the start on their standardised scale (each column over its sd)
        lifelines_init = None if init is None or fast else init * X.std(0).to_numpy()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if fast:
                    beta, cov, ll = fit_cox_efron(X, T, E, S, W, penalizer=self.penalizer, init=init, info=info)
                    self.n_iter_ = info["n_steps"]
                    self.params_ = pd.Series(beta, index=pd.Index(self.columns_, name="covariate"), name="coef")
                    self.variance_matrix_ = pd.DataFrame(cov, index=self.columns_, columns=self.columns_)
                    self.log_likelihood_ = ll
                elif self.model == "cox" and S is None:
                    f = CoxPHFitter(penalizer=self.penalizer, l1_ratio=self.l1_ratio, alpha=self.alpha,
                                    strata=strata)
                    f.fit(df, "__T", "__E", weights_col="__W" if W is not None else None, robust=False,
                          initial_point=lifelines_init)
                    self.fitter_ = f
                elif self.model == "cox":
                    f = CoxTimeVaryingFitter(penalizer=self.penalizer, l1_ratio=self.l1_ratio, alpha=self.alpha,
                                             strata=strata)
                    f.fit(df, event_col="__E", start_col="__S", stop_col="__T",
                          weights_col="__W" if W is not None else None, initial_point=lifelines_init)
                    self.fitter_ = f
                else:
                    cls = {"weibull_aft": WeibullAFTFitter, "lognormal_aft": LogNormalAFTFitter,
                           "loglogistic_aft": LogLogisticAFTFitter}[self.model]
                    f = cls(penalizer=self.penalizer, l1_ratio=self.l1_ratio, alpha=self.alpha)
                    f.fit(df, "__T", "__E", entry_col="__S" if S is not None else None,
                          weights_col="__W" if W is not None else None, robust=False)
                    self.fitter_ = f
            except (LifelinesConvergenceError, np.linalg.LinAlgError, ZeroDivisionError) as err:
                raise ChurnModelError(f"{self.model} fit did not converge: {str(err).splitlines()[0]} " + ADVICE) \
                    from err
        for w in caught:
            if issubclass(w.category, ConvergenceWarning) and "converge" in str(w.message).lower():
                raise ChurnModelError(f"{self.model} fit did not converge: {str(w.message).splitlines()[0]} "
                                      + ADVICE)
            if not issubclass(w.category, (ConvergenceWarning, RuntimeWarning, FutureWarning)):
                warnings.warn(w.message, w.category)

        f = self.fitter_
        if f is not None:
            if self.model == "cox":
                self.params_ = f.params_.copy()
                self.params_.index.name = "covariate"
                self.variance_matrix_ = pd.DataFrame(f.variance_matrix_.to_numpy(), index=self.columns_,
                                                     columns=self.columns_)
                self.log_likelihood_ = float(f.log_likelihood_)
            else:
                self.params_ = f.params_.copy()
                self.log_likelihood_ = float(f.log_likelihood_)
        if not np.all(np.isfinite(np.asarray(self.params_, float))):
            raise ChurnModelError(f"{self.model} fit returned non-finite coefficients. " + ADVICE)
        self._set_summary()
        risk = None
        if self.model == "cox":
            # = X.mean(0), without pandas' n x d missing-value mask (design rows: the same sums by chunks,
            # computed once for the solver already)
            self.design_mean_ = X.mean() if fast else X.to_numpy().mean(0)
            if fast:  # both from one pass over the rows
                risk, ph = X.risk_and_hazard(self.params_.to_numpy(), self.design_mean_)
            else:
                ph = self._partial_hazard(X)
            if strata:
                keys = frame[strata].astype(str).agg("|".join, axis=1).to_numpy()
                self.baseline_cumulative_hazard_ = {
                    k: breslow_baseline(T[keys == k], E[keys == k], ph[keys == k],
                                        None if S is None else S[keys == k], None if W is None else W[keys == k])
                    for k in np.unique(keys)}
            else:
                self.baseline_cumulative_hazard_ = breslow_baseline(T, E, ph, S, W)
        if risk is None:
            risk = self._linear_risk(X)
        del X, df  # the design matrix is freed before the concordance's per-customer pass
        self.concordance_ = self._concordance(frame, risk=risk)
        if fast:
            from rmanalytics.churn.frame import release_free_memory

            release_free_memory()  # the row chunks' temporaries
        return self

    def _initial_point(self, initial_point: "pd.Series | np.ndarray | None") -> np.ndarray | None:
        """``initial_point`` as one float per design column (``columns_``), checked; None stays None."""
        if initial_point is None:
            return None
        if self.model != "cox":
            raise ParameterError(f"initial_point is supported for model='cox' only, not {self.model!r}")
        if isinstance(initial_point, pd.Series):
            init = initial_point.reindex(self.columns_).fillna(0.0).to_numpy(dtype=float)
        else:
            init = np.asarray(initial_point, dtype=float)
        if init.shape != (len(self.columns_),) or not np.all(np.isfinite(init)):
            raise ParameterError(f"initial_point must hold {len(self.columns_)} finite coefficients (design "
                                 f"columns {self.columns_}), got {initial_point!r}")
        return init

    def _set_summary(self) -> None:
        from scipy import stats

        z = stats.norm.ppf(1 - self.alpha / 2)
        lower, upper = interval_columns(self.alpha)
        if self.model == "cox":
            se = np.sqrt(np.diag(self.variance_matrix_.to_numpy()))
            coef = self.params_.to_numpy()
            lo, hi = coef - z * se, coef + z * se
            zval = coef / se
            self.summary_ = pd.DataFrame({
                "estimate": coef, "se": se, lower: lo, upper: hi,
                "coef": coef, "exp(coef)": np.exp(coef), "se(coef)": se,
                f"coef lower {1 - self.alpha:.0%}": lo, f"coef upper {1 - self.alpha:.0%}": hi,
                f"exp(coef) lower {1 - self.alpha:.0%}": np.exp(lo), f"exp(coef) upper {1 - self.alpha:.0%}": np.exp(hi),
                "z": zval, "p": 2 * stats.norm.sf(np.abs(zval)),
            }, index=pd.Index(self.columns_, name="covariate"))
            self.hazard_ratios_ = pd.Series(np.exp(coef), index=self.summary_.index, name="hazard ratio")
        else:
            lf = self.fitter_.summary
            ci = [c for c in lf.columns if c.startswith("coef lower")] + [c for c in lf.columns if c.startswith("coef upper")]
            self.summary_ = pd.concat([pd.DataFrame({"estimate": lf["coef"], "se": lf["se(coef)"], lower: lf[ci[0]],
                                                     upper: lf[ci[1]]}, index=lf.index), lf], axis=1)
            self.hazard_ratios_ = None
            if self.model == "weibull_aft" and "rho_" in self.params_.index.get_level_values(0):
                rho_terms = self.params_.loc["rho_"]
                if list(rho_terms.index) == ["Intercept"]:
                    rho = float(np.exp(rho_terms["Intercept"]))
                    lam = self.params_.loc["lambda_"].drop("Intercept")
                    self.hazard_ratios_ = pd.Series(np.exp(-lam.to_numpy() * rho), index=pd.Index(
                        lam.index, name="covariate"), name="hazard ratio").reindex(self.columns_)

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        check_fitted(self, ("params_", "design_"))

    def design_matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The numeric design matrix (``columns_``) of ``frame``: numeric covariates as they are,
        categorical ones one-hot against the training reference level."""
        self._check_fitted()
        _require_columns(frame, self.covariates_)
        return self.design_.transform(frame[self.covariates_])

    def partial_hazard(self, frame: pd.DataFrame) -> pd.Series:
        """Cox only: exp((x - training mean) . coef) per row, the factor on the baseline hazard."""
        self._check_fitted()
        if self.model != "cox":
            raise ParameterError("partial_hazard needs model='cox'")
        return pd.Series(self._partial_hazard(self.design_matrix(frame)), index=frame.index, name="partial_hazard")

    def _partial_hazard(self, X: pd.DataFrame) -> np.ndarray:
        a = X.to_numpy()
        b = self.params_.to_numpy()
        out = np.empty(len(X))
        for i in range(0, len(X), CHUNK_ROWS):  # row chunks: no n x d temporary
            out[i:i + CHUNK_ROWS] = np.exp((a[i:i + CHUNK_ROWS] - self.design_mean_) @ b)
        return out

    def _linear_risk(self, X: pd.DataFrame) -> np.ndarray:
        """A score that increases with churn risk (for concordance). Design rows of the fast solver:
        :meth:`_DesignRows.risk_and_hazard`."""
        if self.model == "cox":
            return X.to_numpy() @ self.params_.to_numpy()
        lam = self.params_.loc[AFT_LOCATION[self.model]]
        cols = [c for c in lam.index if c != "Intercept"]
        return -(X[cols].to_numpy() @ lam[cols].to_numpy())

    def _concordance(self, frame: pd.DataFrame, X: pd.DataFrame | None = None, risk: np.ndarray | None = None) -> float:
        from rmanalytics.concordance import concordance_index
        from rmanalytics.keys import last_per_key

        if risk is None:
            risk = self._linear_risk(self.design_matrix(frame) if X is None else X)
        T = frame[self.duration_col_].to_numpy(float)
        E = frame[self.event_col_].to_numpy()
        if self.id_col_ and self.id_col_ in frame.columns:
            last = last_per_key(frame[self.id_col_].to_numpy())  # one row per customer: its last
            risk, T, E = risk[last], T[last], E[last]
        E = E.astype(int)  # after the selection: no int64 copy of a long frame's events
        if len(T) > 200_000:  # concordance on a fixed subsample for very large frames
            idx = np.random.default_rng(self.random_state).choice(len(T), 200_000, replace=False)
            risk, T, E = risk[idx], T[idx], E[idx]
        return float(concordance_index(T, -risk, E))

    def score(self, frame: pd.DataFrame, duration_col: str | None = None, event_col: str | None = None) -> float:
        """Harrell's concordance of the model's risk ranking on ``frame`` (e.g. a hold-out set)."""
        self._check_fitted()
        f = frame
        if duration_col or event_col:
            f = frame.rename(columns={duration_col or self.duration_col_: self.duration_col_,
                                      event_col or self.event_col_: self.event_col_})
        return self._concordance(f)

    def _cox_cum_hazard(self, frame: pd.DataFrame, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Cox cumulative hazard H(t | x) at ``times`` (shape (n,) per row, or (m, n) for a grid)."""
        ph = self._partial_hazard(X)
        if self.strata_:
            keys = frame[self.strata_].astype(str).agg("|".join, axis=1).to_numpy()
            out = np.empty(np.broadcast_shapes(np.shape(times), ph.shape))
            for k in np.unique(keys):
                if k not in self.baseline_cumulative_hazard_:
                    raise DataError(f"frame: stratum {k!r} of {self.strata_} not seen in training; "
                                    f"training strata: {list(self.baseline_cumulative_hazard_)[:10]}")
                m = keys == k
                tk = times[..., m] if np.ndim(times) and np.shape(times)[-1] == len(ph) else times
                out[..., m] = self._H0(self.baseline_cumulative_hazard_[k], tk) * ph[m]
            return out
        return self._H0(self.baseline_cumulative_hazard_, times) * ph

    def _cum_hazard_increase(self, frame: pd.DataFrame, tenure: np.ndarray | None, u: np.ndarray) -> np.ndarray:
        """H(t0 + u) - H(t0) per grid time ``u`` (rows) and row of ``frame`` (columns); t0 = 0 when
        ``tenure`` is None. AFT models go through lifelines' public ``predict_cumulative_hazard``."""
        X = self.design_matrix(frame)
        u = np.asarray(u, float)
        if self.model == "cox":
            if tenure is None:
                return self._cox_cum_hazard(frame, X, u[:, None])
            t0 = np.asarray(tenure, float)
            return self._cox_cum_hazard(frame, X, t0[None, :] + u[:, None]) - self._cox_cum_hazard(frame, X, t0)[None, :]
        if tenure is None:
            H = self.fitter_.predict_cumulative_hazard(X, times=np.maximum(u, 1e-12))
        else:
            H = self.fitter_.predict_cumulative_hazard(X, times=u, conditional_after=np.asarray(tenure, float))
        return np.asarray(H, float)

    @staticmethod
    def _H0(base: pd.Series, times) -> np.ndarray:
        idx = np.searchsorted(base.index.to_numpy(), np.asarray(times, float), side="right")
        vals = np.concatenate([[0.0], base.to_numpy()])
        return vals[idx]

    def conditional_survival(self, frame: pd.DataFrame, tenure: np.ndarray, u: np.ndarray,
                             chunk_rows: int = 2000) -> np.ndarray:
        """S(t0 + u) / S(t0): survival ``u`` days ahead given survival to the current tenure t0 (days).

        Returns an array of shape (len(u), len(frame)), like :meth:`KMBaseline.conditional_survival`.
        """
        self._check_fitted()
        t0 = np.asarray(tenure, float)
        u = np.atleast_1d(np.asarray(u, float))
        out = np.empty((len(u), len(frame)))
        for i0 in range(0, len(frame), chunk_rows):
            sl = slice(i0, i0 + chunk_rows)
            out[:, sl] = np.exp(-self._cum_hazard_increase(frame.iloc[sl], t0[sl], u))
        return out

    def predict_survival(self, frame: pd.DataFrame, times) -> pd.DataFrame:
        """Survival S(t | x) from tenure 0 at ``times`` (days): frame times x rows of ``frame``."""
        self._check_fitted()
        times = np.atleast_1d(np.asarray(times, float))
        H = self._cum_hazard_increase(frame, None, times)
        return pd.DataFrame(np.exp(-H), index=pd.Index(times, name="days"), columns=frame.index)

    def _tenure(self, frame: pd.DataFrame, tenure_col: str | None) -> np.ndarray:
        col = tenure_col or ("tenure" if "tenure" in frame.columns else self.duration_col_)
        _require_columns(frame, [col])
        return frame[col].to_numpy(float)

    def predict_churn_probability(self, frame: pd.DataFrame, horizon_days: float,
                                  tenure_col: str | None = None) -> pd.Series:
        """P(churn within ``horizon_days`` | active at its current tenure) = 1 - S(t + h) / S(t).

        Tenure t (days since open) comes from ``tenure_col``, else a ``tenure`` column, else the
        duration column (for active customers, the tenure at observation_end).
        Note: the Cox baseline is flat after the last observed event time, so horizons reaching
        beyond the observed tenures understate risk there.
        """
        self._check_fitted()
        t0 = self._tenure(frame, tenure_col)
        h = float(horizon_days)
        dH = self._cum_hazard_increase(frame, t0, np.array([h]))[0]
        return pd.Series(1 - np.exp(-np.maximum(dH, 0)), index=frame.index, name=f"p_churn_{int(h)}d")

    def expected_remaining_lifetime(self, frame: pd.DataFrame, horizon_days: float,
                                    tenure_col: str | None = None, step_days: float = 1.0) -> pd.Series:
        """Restricted mean remaining lifetime in days up to ``horizon_days``, given current tenure:
        integral_0^h S(t + u) / S(t) du (trapezoid on a ``step_days`` grid). At most ``horizon_days``."""
        self._check_fitted()
        t0 = self._tenure(frame, tenure_col)
        u = np.arange(0.0, float(horizon_days) + 1e-9, step_days)
        if u[-1] < horizon_days:
            u = np.append(u, float(horizon_days))
        S = self.conditional_survival(frame, t0, u)
        return pd.Series(np.trapezoid(S, u, axis=0), index=frame.index, name=f"rmst_{int(horizon_days)}d")

    def risk_contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per row and design column, the log-hazard contribution (x - mean) * coef (Cox only)."""
        self._check_fitted()
        if self.model != "cox":
            raise ParameterError("risk_contributions needs model='cox'")
        X = self.design_matrix(frame)
        return pd.DataFrame((X.to_numpy() - self.design_mean_) * self.params_.to_numpy(), index=frame.index,
                            columns=self.columns_)
