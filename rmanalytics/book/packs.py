"""Packs: ``by_rm/<rm_id>/`` and ``by_branch/<branch>/``, each ``book.xlsx``, ``book.csv``, ``book.html``.

Rendered from one computation of the whole book: the frames are grouped once and each group is
written (no kernel per RM). Excel is written with XlsxWriter (formatted numbers with units in the
header, frozen header row, autofilter, column widths).

Privacy (docs/domain.md §4, least privilege): an RM pack holds the raw ids of that RM's current
customers only, and nothing naming another RM's customers (its scorecard sheet has no customer
ids); notebook 05 writes the RM packs under the run's owner-only ``restricted/by_rm/`` (raw ids
never sit in the shareable part of a run folder), to be handed to each RM alone. Branch packs go
through ``mask`` (default :func:`rmanalytics.privacy.mask_frame` with the run's key) at this
output boundary and sit in the shareable ``by_branch/``.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from rmanalytics.labels import label

# column -> Excel number format (None = text). Headers are the ``col.<column>`` labels of
# rmanalytics/locale/<lang>.yaml, with the unit appended for money and 0-100 scores.
FORMATS: dict[str, str | None] = {
    'rm_id': None,
    'rank': '0',
    'customer_id': None,
    'share': '0%',
    'segment': None,
    'lifecycle_stage': None,
    'tier': None,
    'cell': None,
    'service_plan': None,
    'aum': '#,##0',
    'aum_change_3m': '0.0%',
    'p_churn': '0.0%',
    'p_alive': '0.0%',
    'clv_income': '#,##0',
    'health': '0',
    'health_value': '0',
    'health_behaviour': '0',
    'health_satisfaction': '0',
    'value_at_stake': '#,##0',
    'reasons': None,
    'next_action': None,
    'due_date': 'yyyy-mm-dd',
    'overdue': None,
    'period': None,
    'dimension': None,
    'kpi': None,
    'actual': '#,##0.00',
    'target': '#,##0.00',
    'points': '0.0',
    'gap': '#,##0.00',
    'weight': '0%',
    'total_score': '0.0',
    'rating': None,
    'veto_reason': None,
    'two_consecutive_excellent': None,
    'mandatory_training': None,
    'milestone_month': None,
    'milestone_gap': '#,##0',
    'branch': None,
    'customers': '#,##0',
    'value_at_risk': '#,##0',
    'overdue_actions': '0',
    'contact_coverage': '0%',
    'contact_coverage_source': None,
    'attainment': '0%',
    'target_source': None,
    'rms': '0',
    'mean_score': '0.0',
    'share_excellent': '0%',
    'unassigned': '0',
    'last_rm_id': None,
    'last_rm_exit_date': 'yyyy-mm-dd',
    'unassigned_since': 'yyyy-mm-dd',
    'days_unassigned': '0',
    'rm_left': '0',
    'risk_drivers': None,
    'fee_income': '#,##0',
    'aum_growth': '0.0%',
    'new_customers': '0.0',
    'churn_rate': '0.0%',
    'nps': '0',
    'visit_coverage': '0%'}
#: Units appended to headers: currency columns and 0-100 scores.
UNITS: dict[str, tuple[str, str]] = {**{c: (" (CNY)", "（元）") for c in ('aum', 'clv_income', 'value_at_stake', 'milestone_gap', 'value_at_risk', 'fee_income')},
                                     "health": (" (0-100)", "（0-100）")}

#: Columns of the priority list in the packs (those present are written, in this order).
PRIORITY_COLUMNS = ("rank", "customer_id", "share", "segment", "lifecycle_stage", "tier", "cell", "aum",
                    "aum_change_3m", "p_churn", "p_alive", "clv_income", "health", "health_value",
                    "health_behaviour", "health_satisfaction", "value_at_stake", "reasons", "next_action",
                    "due_date", "overdue")


def column_label(col: str, lang: str = "en") -> str:
    """People-facing column name (English, or Chinese with ``lang="zh"``); score columns keep their key."""
    text = label(f"col.{col}", lang)
    if text != f"col.{col}":
        return text + UNITS.get(col, ("", ""))[1 if lang == "zh" else 0]
    if col.startswith("score_"):
        return ("得分 " if lang == "zh" else "Score ") + col[len("score_"):]
    if col.startswith("hc_"):
        return ("健康度分项 " if lang == "zh" else "Health: ") + col[3:].replace("_", " ")
    return col


def _fmt_for(col: str) -> str | None:
    if col in FORMATS:
        return FORMATS[col]
    if col.startswith("score_") or col.startswith("hc_"):
        return "0.0"
    return None


#: Coded columns shown by their label: column -> label-key prefix.
CODED = {"segment": "segment:", "lifecycle_stage": "stage:", "tier": "tier:", "cell": "", "rating": ""}


def _localize_code(v, prefix: str, lang: str):
    """The label of one code (``prefix`` + code), or the code itself when it has no label."""
    text = label(f"{prefix}{v}", lang)
    return v if prefix and text.startswith(prefix) else text


def localize_codes(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Copy of ``df`` with coded values (segment, stage, tier, nine-grid cell, rating) as labels in
    ``lang``; codes without a label stay as they are (each distinct code is looked up once)."""
    out = df.copy()
    for c, prefix in CODED.items():
        if c in out.columns:
            s = out[c]
            labels = {v: _localize_code(v, prefix, lang) for v in pd.unique(s.to_numpy(dtype=object)) if isinstance(v, str)}
            if labels:
                out[c] = s.map(labels).where(s.isin(list(labels)), s)
    return out


def _sheet(wb, name: str, df: pd.DataFrame, lang: str, formats: dict) -> None:
    """One formatted sheet, written a column at a time through XlsxWriter's cell calls (values as
    plain Python objects, one format object per number format and workbook)."""
    ws = wb.add_worksheet(name[:31])
    cols = list(df.columns)
    ws.write_row(0, 0, [column_label(c, lang) for c in cols], formats["header"])
    yes = "是" if lang == "zh" else "yes"
    write_number, write_string = ws.write_number, ws.write_string
    for j, c in enumerate(cols):
        fmt = _fmt_for(c)
        if fmt and fmt not in formats:
            formats[fmt] = wb.add_format({"num_format": fmt})
        f = formats[fmt] if fmt else None
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            for i, v in enumerate(s):
                if not pd.isna(v):
                    ws.write_datetime(i + 1, j, v.to_pydatetime(), f)
        elif pd.api.types.is_bool_dtype(s):
            for i in np.flatnonzero(s.to_numpy(dtype=bool)).tolist():
                write_string(i + 1, j, yes)
        elif pd.api.types.is_numeric_dtype(s):
            a = s.to_numpy(dtype=float, na_value=np.nan)
            ok = np.isfinite(a)
            vals = a.tolist()
            for i in (range(len(vals)) if ok.all() else np.flatnonzero(ok).tolist()):
                write_number(i + 1, j, vals[i], f)
        else:
            for i, v in enumerate(s.to_numpy(dtype=object).tolist()):
                if v is not None and not (isinstance(v, float) and v != v):
                    write_string(i + 1, j, v if type(v) is str else str(v))
        width = max(len(column_label(c, lang)) + 2, 10)
        if fmt is None and len(s):
            lens = s.astype(str).str.len().to_numpy()  # 90th percentile as Series.quantile(0.9), without its overhead
            width = min(max(width, int(np.percentile(lens, 0.9 * 100.0)) + 2), 80)
        ws.set_column(j, j, width)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(df), 1), max(len(cols) - 1, 0))


def write_xlsx(path: str | os.PathLike, sheets: dict[str, pd.DataFrame], lang: str = "en") -> Path:
    """One workbook, one formatted sheet per frame (units in headers, frozen header, autofilter)."""
    import xlsxwriter

    path = Path(path)
    wb = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True, "default_date_format": "yyyy-mm-dd",
                                         "in_memory": True})
    formats = {"header": wb.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True, "valign": "top"})}
    for name, df in sheets.items():
        _sheet(wb, name, df, lang, formats)
    wb.close()
    return path


def _localize(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    out.columns = [column_label(c, lang) for c in out.columns]
    return out


def _cells(s: pd.Series, col: str, lang: str) -> list[str]:
    """Escaped display strings of one column (vectorised; numbers by the column's format)."""
    fmt = _fmt_for(col)
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.strftime("%Y-%m-%d").fillna("").tolist()
    if pd.api.types.is_bool_dtype(s):
        yes = "是" if lang == "zh" else "yes"
        return [yes if v else "" for v in s.to_numpy().tolist()]
    if pd.api.types.is_numeric_dtype(s):
        a = s.to_numpy(dtype=float, na_value=np.nan)
        if fmt and fmt.endswith("%"):
            spec = "{:.0%}" if fmt == "0%" else "{:.1%}"
        elif fmt in ("0", "#,##0"):
            spec = "{:,.0f}"
        else:
            spec = "{:,.2f}"
        fmt_one = spec.format
        return [fmt_one(v) if f else "" for v, f in zip(a.tolist(), np.isfinite(a).tolist())]
    esc = html.escape
    return [esc(v if type(v) is str else str(v)) if v is not None and not (isinstance(v, float) and v != v) else ""
            for v in s.to_numpy(dtype=object).tolist()]


def _html_table(df: pd.DataFrame, lang: str) -> str:
    head = "".join(f"<th>{html.escape(column_label(c, lang))}</th>" for c in df.columns)
    n = len(df)
    cols = [["<tr><td>"] * n]  # one string per row: <tr><td>a</td><td>b</td>...</tr>
    for j, c in enumerate(df.columns):
        cols.append(_cells(df[c], c, lang))
        cols.append(["</td></tr>" if j == len(df.columns) - 1 else "</td><td>"] * n)
    body = "".join(map("".join, zip(*cols))) if len(df.columns) else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(path: str | os.PathLike, title: str, sections: dict[str, pd.DataFrame], lang: str = "en",
               note: str = "") -> Path:
    """One readable page: a title, a note and one table per section (numbers formatted by column)."""
    parts = [f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:12px}"
             "th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}th{background:#DDEBF7;position:sticky;"
             "top:0}td{max-width:40em}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    for name, df in sections.items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(_html_table(df, lang))
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _csv(path: Path, df: pd.DataFrame, lang: str) -> None:
    """``df`` (localized) as UTF-8 CSV with a byte-order mark (Excel then reads Chinese text right).

    Written by Arrow's CSV writer (compiled; about six times faster than ``DataFrame.to_csv``, which
    took 250 CPU seconds for the 10M-customer bank's packs): text values are quoted, numbers are
    written in their shortest exact form (``1`` for 1.0), booleans as ``true``/``false``, missing
    values as empty fields. A frame Arrow cannot type (an object column of mixed types) is written
    by pandas instead: the same values, text quoted only where needed.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    out = _localize(df, lang)
    try:
        table = pa.Table.from_pandas(out, preserve_index=False)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        out.to_csv(path, index=False, encoding="utf-8-sig")
        return
    with open(path, "wb") as fh:
        fh.write("\ufeff".encode("utf-8"))
        pacsv.write_csv(table, fh)


def pack_workers(n_rms: int, jobs: int = 0) -> int:
    """Worker processes for ``n_rms`` RM packs: ``jobs`` when given (> 0), else one per CPU (at most
    4), and one for fewer than 50 RMs (starting a process costs more than it saves)."""
    if jobs > 0:
        return jobs
    return 1 if n_rms < 50 else max(1, min(os.cpu_count() or 1, 4))


#: Tasks per worker process of :func:`write_rm_packs` (each a few RMs' rows: bounds their memory).
PACK_TASKS_PER_WORKER = 8


def write_rm_packs(priority: pd.DataFrame, scorecard: pd.DataFrame | None, out_dir: str | os.PathLike, *,
                   lang: str = "en", rm_ids: list[str] | None = None, as_of: str = "", jobs: int = 0,
                   top_n: int = 0) -> list[Path]:
    """``<out_dir>/by_rm/<rm_id>/book.{xlsx,csv,html}`` for every RM in ``priority`` (or ``rm_ids``).

    book.csv = the RM's priority list (raw ids of the RM's own current customers, every one of
    them); book.xlsx has sheets "priority" and "scorecard"; book.html shows both. ``top_n > 0``
    sizes the two documents people read for a person: book.xlsx and book.html then show the
    first ``top_n`` rows of the priority list (by rank) of an RM with more customers, the sheet is
    named "priority top <top_n>" and the page says how many customers there are and that book.csv
    lists every one; ``top_n=0`` (default) shows every row. ``jobs > 1`` splits the RMs over that
    many worker processes, in tasks of a few RMs' rows each (a worker holds one task's rows);
    ``jobs=0`` (default) uses one per CPU, at most 4, and one process for fewer than 50 RMs. The files do not depend on ``jobs``. Returns the
    pack folders.
    """
    cols = [c for c in PRIORITY_COLUMNS if c in priority.columns]
    priority = priority[["rm_id", *cols]]  # only what the packs show (less to hand to the workers)
    jobs = pack_workers(priority["rm_id"].nunique() if rm_ids is None else len(rm_ids), jobs)
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from concurrent.futures import FIRST_COMPLETED, wait

        rows = priority.groupby("rm_id", sort=False).indices  # rm -> row positions
        rms = sorted(rows if rm_ids is None else set(rm_ids) & set(rows))
        # small tasks (about 8 per worker), at most two per worker in flight: the parent holds a few
        # slices of the list at a time and each worker one, instead of every worker half the list
        size = max(1, -(-len(rms) // (jobs * PACK_TASKS_PER_WORKER)))
        chunks = [rms[i:i + size] for i in range(0, len(rms), size)]
        out: list[Path] = []
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=mp.get_context("spawn")) as pool:
            running: set = set()
            for c in chunks:
                if len(running) >= 2 * jobs:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    out += [p for f in done for p in f.result()]
                part = priority.take(np.concatenate([rows[r] for r in c]))
                running.add(pool.submit(write_rm_packs, part,
                                        None if scorecard is None else scorecard[scorecard["rm_id"].isin(c)],
                                        out_dir, lang=lang, rm_ids=c, as_of=as_of, top_n=top_n))
                del part
            out += [p for f in running for p in f.result()]
        return sorted(out)
    base = Path(out_dir) / "by_rm"
    sc_groups = dict(tuple(scorecard.groupby("rm_id"))) if scorecard is not None and len(scorecard) else {}
    sc_cols = [c for c in (scorecard.columns if scorecard is not None else []) if c != "rm_id"]
    out = []
    for rm, g in priority.groupby("rm_id", sort=True):
        if rm_ids is not None and rm not in rm_ids:
            continue
        folder = base / str(rm)
        folder.mkdir(parents=True, exist_ok=True)
        book = localize_codes(g[cols].sort_values("rank"), lang)
        sc = localize_codes(sc_groups.get(rm, pd.DataFrame(columns=sc_cols))[sc_cols], lang)
        _csv(folder / "book.csv", book, lang)
        shown, sheet, note = book, "priority", ""
        if 0 < top_n < len(book):
            shown, sheet = book.iloc[:top_n], f"priority top {top_n}"
            note = (f"按优先级排在前 {top_n} 位的客户（共 {len(book):,} 位）；全部客户见 book.csv。" if lang == "zh" else
                    f"The first {top_n} of {len(book):,} customers by priority; book.csv lists every customer.")
        write_xlsx(folder / "book.xlsx", {sheet: shown, "scorecard": sc}, lang)
        title = (f"客户经理 {rm} 客户服务优先清单 {as_of}" if lang == "zh" else f"RM {rm}: service-priority list {as_of}")
        write_html(folder / "book.html", title, {"priority" if lang != "zh" else "服务优先清单": shown,
                                                  "scorecard" if lang != "zh" else "我的考核": sc}, lang, note=note)
        out.append(folder)
    return out


def write_branch_packs(review: dict[str, pd.DataFrame], unassigned: pd.DataFrame | None, out_dir: str | os.PathLike,
                       *, lang: str = "en", mask: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                       as_of: str = "") -> list[Path]:
    """``<out_dir>/by_branch/<branch>/book.{xlsx,csv,html}`` for every branch of the review.

    book.csv = the team table; book.xlsx sheets "team", "unassigned", "targets", "peers"; customer
    ids pseudonymised with ``mask`` (default :func:`rmanalytics.privacy.mask_frame` with the key of
    :func:`rmanalytics.privacy.load_key`).
    """
    if mask is None:
        from rmanalytics.privacy import load_key, mask_frame

        key = load_key()
        mask = lambda df: mask_frame(df, key)  # noqa: E731
    base = Path(out_dir) / "by_branch"
    team, tgt, peers = review["team"], review["targets"], review["peers"]
    un = mask(unassigned) if unassigned is not None else pd.DataFrame(columns=["customer_id", "branch"])
    un_g = dict(tuple(un.groupby("branch"))) if len(un) else {}
    tg_g = dict(tuple(tgt.groupby("branch"))) if len(tgt) else {}
    out = []
    for b, g in team.groupby("branch", sort=True):
        folder = base / str(b)
        folder.mkdir(parents=True, exist_ok=True)
        t = localize_codes(g.drop(columns="branch"), lang)
        u = un_g.get(b, un.iloc[0:0]).drop(columns="branch", errors="ignore")
        tg = tg_g.get(b, tgt.iloc[0:0]).drop(columns="branch", errors="ignore")
        sheets = {"team": t, "unassigned": u, "targets": tg, "peers": peers}
        _csv(folder / "book.csv", t, lang)
        write_xlsx(folder / "book.xlsx", sheets, lang)
        title = f"{b} 机构经营回顾 {as_of}" if lang == "zh" else f"Branch review {b} {as_of}"
        write_html(folder / "book.html", title, sheets, lang)
        out.append(folder)
    return out
