"""Recording a notebook's outputs into its run folder: tables, key metrics, figures.

A notebook creates one :class:`Recorder` from its validated parameters and hands it every table,
metric and figure worth keeping. With ``output_dir=None`` (interactive exploration) nothing is
written and the objects are simply returned for display.

Layout of ``output_dir``::

    tables/<name>.csv                   every table of at most ``csv_max_rows`` rows, customer ids
                                        masked (safe to share; bigger tables are for machines: Parquet only)
    tables/<name>.parquet               tables without customer ids
    restricted/tables/<name>.parquet    tables with raw customer ids (folder 0700, files 0600)
    figures/<name>.png
    metrics.json        (flat mapping name -> number or string, rewritten atomically on each call)

Privacy boundary (:mod:`rmanalytics.privacy`): analysis functions return raw ids; the Recorder
is where a table leaves for people. The Parquet copy with raw ids goes to the owner-only
``restricted/`` folder, which later notebooks of a chain read; the CSV copy and the frame returned
for display (which ends up in the notebook, the HTML report and the run log) have customer ids
masked with the keyed pseudonym (:func:`rmanalytics.privacy.mask_frame`), including ids inside
nested example rows, unless ``mask_ids=False`` (a run for the data team only: nothing masked).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.privacy import (ID_COLUMNS, RESTRICTED_DIR, MaskKey, has_ids, load_key, mask_frame,
                                 write_restricted_parquet)

#: Default largest table (rows) that also gets a CSV copy for people; ``$RMANALYTICS_CSV_MAX_ROWS`` overrides it.
CSV_MAX_ROWS = 100_000
CSV_MAX_ROWS_ENV = "RMANALYTICS_CSV_MAX_ROWS"


def default_csv_max_rows() -> int:
    """``$RMANALYTICS_CSV_MAX_ROWS`` when set (an integer; 0 or less: no limit), else :data:`CSV_MAX_ROWS`."""
    env = os.environ.get(CSV_MAX_ROWS_ENV)
    if env:
        try:
            return int(env)
        except ValueError:
            raise ValueError(f"{CSV_MAX_ROWS_ENV}={env!r} is not an integer number of rows") from None
    return CSV_MAX_ROWS


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) else v
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return value


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    flat = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame
    flat = flat.copy(deep=False)  # new column labels, the same columns (10M rows: no copy of GBs)
    flat.columns = [str(c) for c in flat.columns]
    return flat


class Recorder:
    """Write tables, metrics and figures of one notebook run.

    Parameters
    ----------
    output_dir : folder of the run (created if missing), or None to write nothing.
    mask_ids : mask customer identifiers in exported tables (default True).
    lang : language of the CSV column headers (``col.*`` labels, :func:`rmanalytics.labels.columns`);
        None keeps the names. Parquet tables always keep the English machine names.
    key : the pseudonymisation key (:class:`~rmanalytics.privacy.MaskKey`), or the path of a key
        file, or None for :func:`rmanalytics.privacy.load_key` (environment / config; loaded on
        first use, and generated there if none exists yet, with a printed notice).
    csv_max_rows : tables with more rows get no CSV copy (a million-row CSV is for no one; the
        Parquet copy is complete), and the skip is printed once per table. None:
        :func:`default_csv_max_rows`; 0 or less: no limit.
    """

    def __init__(self, output_dir: str | os.PathLike | None, *, mask_ids: bool = True,
                 lang: str | None = None, key: MaskKey | str | os.PathLike | None = None,
                 csv_max_rows: int | None = None) -> None:
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.csv_max_rows = default_csv_max_rows() if csv_max_rows is None else int(csv_max_rows)
        self.csv_skipped_: dict[str, int] = {}
        self.mask_ids = mask_ids
        self.lang = lang
        self._key = key
        self.metrics_: dict[str, Any] = {}
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)

    @property
    def key_(self) -> MaskKey:
        """The pseudonymisation key (loaded on first use)."""
        if not isinstance(self._key, MaskKey):
            self._key = load_key(self._key)
            if self._key.created:
                print(self._key.describe())
        return self._key

    def table(self, name: str, df: pd.DataFrame, *, id_columns: tuple[str, ...] = ID_COLUMNS,
              csv: bool = True, display_rows: int = 0) -> pd.DataFrame:
        """Write ``df`` as Parquet (raw ids: under ``restricted/tables/``, else ``tables/``) and as
        ``tables/<name>.csv`` with ids masked (only up to ``csv_max_rows`` rows; ``csv=False``: never).

        Returns the frame to display: masked when ``mask_ids`` is on, so notebook output and the
        HTML report never show raw customer identifiers. ``display_rows > 0``: only its first
        ``display_rows`` rows (then only those are masked when no CSV copy needs the whole table).
        """
        raw = has_ids(df, id_columns)
        whole = display_rows <= 0 or (self.output_dir is not None and csv and not 0 < self.csv_max_rows < len(df))
        part = df if whole else df.head(display_rows)
        shown = mask_frame(part, self.key_, id_columns) if (self.mask_ids and raw) else part
        if self.output_dir is not None:
            folder = self.output_dir / "tables"
            folder.mkdir(exist_ok=True)
            pq = (self.output_dir / RESTRICTED_DIR / "tables" if raw else folder) / f"{name}.parquet"
            if raw and (folder / f"{name}.parquet").exists():  # never leave a raw copy outside restricted/
                (folder / f"{name}.parquet").unlink()
            parquet = _flat(df)
            if raw:
                write_restricted_parquet(parquet, pq, index=False)
            else:
                parquet.to_parquet(str(pq), index=False)
            if csv and 0 < self.csv_max_rows < len(df):
                self.csv_skipped_[name] = len(df)
                stale = folder / f"{name}.csv"
                if stale.exists():
                    stale.unlink()
                print(f"table {name}: {len(df):,} rows > csv_max_rows {self.csv_max_rows:,}: no CSV copy; "
                      f"the full table is {pq.relative_to(self.output_dir)}")
            elif csv:
                flat = _flat(shown)
                if self.lang:
                    from rmanalytics.labels import columns

                    flat = columns(flat, self.lang)
                flat.to_csv(folder / f"{name}.csv", index=False, encoding="utf-8-sig" if self.lang == "zh" else "utf-8")
        return shown if display_rows <= 0 else shown.head(display_rows)

    def metric(self, name: str, value: Any) -> Any:
        """Record one key figure in ``metrics.json``; return the value."""
        self.metrics_[name] = _jsonable(value)
        self._write_metrics()
        return value

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        """Record several key figures at once."""
        for k, v in values.items():
            self.metrics_[k] = _jsonable(v)
        self._write_metrics()
        return values

    def figure(self, name: str, fig: Any, *, dpi: int = 110) -> Any:
        """Save a matplotlib figure as ``figures/<name>.png``; return the figure."""
        if self.output_dir is not None:
            folder = self.output_dir / "figures"
            folder.mkdir(exist_ok=True)
            fig.savefig(folder / f"{name}.png", dpi=dpi, bbox_inches="tight")
        return fig

    def _write_metrics(self) -> None:
        if self.output_dir is None:
            return
        path = self.output_dir / "metrics.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.metrics_, indent=2, sort_keys=True, ensure_ascii=False))
        tmp.replace(path)
