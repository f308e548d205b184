"""Recording a notebook's outputs into its run folder: tables, key metrics, figures.

A notebook creates one :class:`Recorder` from its validated parameters and hands it every table,
metric and figure worth keeping. With ``output_dir=None`` (interactive exploration) nothing is
written and the objects are simply returned for display.

Layout of ``output_dir``::

    tables/<name>.parquet and tables/<name>.csv
    figures/<name>.png
    metrics.json        (flat mapping name -> number or string, rewritten atomically on each call)

Privacy boundary: the run folder is the secure area. Parquet tables keep raw identifiers so later
notebooks of a chain can join on them; everything meant for people (the CSV copies, and the frame
returned for display, which ends up in the HTML report) has customer identifiers masked
(:func:`rmanalytics.privacy.mask_frame`) unless ``mask_ids=False``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.privacy import ID_COLUMNS, mask_frame


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


class Recorder:
    """Write tables, metrics and figures of one notebook run.

    Parameters
    ----------
    output_dir : folder of the run (created if missing), or None to write nothing.
    mask_ids : mask customer identifiers in exported tables (default True).
    lang : language of the CSV column headers (``col.*`` labels, :func:`rmanalytics.labels.columns`);
        None keeps the names. Parquet tables always keep the English machine names.
    """

    def __init__(self, output_dir: str | os.PathLike | None, *, mask_ids: bool = True,
                 lang: str | None = None) -> None:
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.mask_ids = mask_ids
        self.lang = lang
        self.metrics_: dict[str, Any] = {}
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)

    def table(self, name: str, df: pd.DataFrame, *, id_columns: tuple[str, ...] = ID_COLUMNS,
              csv: bool = True) -> pd.DataFrame:
        """Write ``df`` as ``tables/<name>.parquet`` (raw ids) and ``.csv`` (masked ids).

        Returns the frame to display: masked when ``mask_ids`` is on, so notebook output and the
        HTML report never show raw customer identifiers.
        """
        shown = mask_frame(df, id_columns) if self.mask_ids else df
        if self.output_dir is not None:
            folder = self.output_dir / "tables"
            folder.mkdir(exist_ok=True)
            for frame, path in ((df, folder / f"{name}.parquet"), (shown, folder / f"{name}.csv")):
                if path.suffix == ".csv" and not csv:
                    continue
                flat = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame
                flat = flat.copy()
                flat.columns = [str(c) for c in flat.columns]
                if path.suffix == ".csv":
                    if self.lang:
                        from rmanalytics.labels import columns

                        flat = columns(flat, self.lang)
                    flat.to_csv(path, index=False, encoding="utf-8-sig" if self.lang == "zh" else "utf-8")
                else:
                    flat.to_parquet(str(path), index=False)
        return shown

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
