"""Small helpers for the notebooks' display cells (no analysis logic here).

``show(df, n)`` previews a table; ``params_table(P)`` shows a run's parameters (collapsed); ``figure(fig)``
displays a :class:`matplotlib.figure.Figure` built without pyplot (the package never calls
``plt.show()``) as an inline PNG, so it appears in JupyterLab, in the executed notebook and in
the HTML report. Importing this module sets pandas' float display to :func:`readable_float`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def readable_float(x: float) -> str:
    """How the reports print a float that no :func:`show` ``kinds`` formats: thousands separators and
    no scientific notation (``4,926,264`` rather than ``4.926264e+06``; ``0.1431``; ``12.35``)."""
    if x != x:  # NaN
        return "NaN"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 1 or a == 0:
        return f"{x:,.2f}"
    return f"{x:.4f}" if a >= 1e-4 else f"{x:.2e}"


# Importing the display helpers (every notebook does) sets pandas' float display for the report.
pd.set_option("display.float_format", readable_float)


def show(df: pd.DataFrame, n: int = 10, *, lang: str | None = None, kinds: dict[str, str] | None = None,
         currency: str = "CNY") -> pd.DataFrame:
    """First ``n`` rows of ``df`` for display (``n=0``: all rows).

    ``kinds``: column -> money / count / percent / ratio / number, formatted with units
    (:func:`rmanalytics.fmt.format_table`, money in ``currency``); ``lang``: column headers from the
    ``col.*`` labels (:func:`rmanalytics.labels.columns`). Display only: the frame is a copy.
    """
    out = df if n <= 0 else df.head(n)
    if kinds:
        from rmanalytics.fmt import format_table

        out = format_table(out, kinds, lang=lang or "en", currency=currency)
    if lang:
        from rmanalytics.labels import columns

        out = columns(out, lang)
    return out


def _short(value: Any, width: int = 90) -> str:
    """A parameter value as compact text: scalars as they are, lists/dicts as one-line JSON, cut at ``width``."""
    import json

    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def params_html(params: Any, *, lang: str | None = None, open_: bool = False,
                skip: tuple[str, ...] = ("output_dir",)) -> str:
    """One compact, collapsed HTML table of a run's parameters (``<details>``).

    One row per parameter: name, value (long values cut, the full value in the tooltip) and what
    it means (the model's field description). Values that differ from the defaults are bold and
    counted in the summary line, so a reader sees at a glance what this run changed.
    """
    import html

    values = params.model_dump(mode="json", by_alias=True) if hasattr(params, "model_dump") else dict(params)
    model = type(params) if hasattr(type(params), "model_fields") else None
    lang = lang or values.get("lang") or "en"
    try:
        defaults = model().model_dump(mode="json", by_alias=True) if model is not None else {}
    except Exception:  # noqa: BLE001 - a model without a default for every field
        defaults = {}
    rows, changed = [], 0
    for name, value in values.items():
        if name in skip:
            continue
        field = model.model_fields.get(name) if model is not None else None
        help_text = (field.description or "") if field is not None else ""
        is_changed = name in defaults and value != defaults[name]
        changed += is_changed
        shown = html.escape(_short(value))
        if is_changed:
            shown = f"<b>{shown}</b>"
        full = html.escape(_short(value, 10_000), quote=True)
        rows.append(f'<tr><td><code>{html.escape(name)}</code></td><td title="{full}">{shown}</td>'
                    f"<td>{html.escape(help_text)}</td></tr>")
    if lang == "zh":
        summary = f"运行参数（{len(rows)} 项，其中 {changed} 项不同于默认值，加粗显示）"
        head = "<tr><th>参数</th><th>取值</th><th>含义</th></tr>"
    else:
        summary = f"Parameters of this run ({len(rows)}; {changed} differ from the defaults, in bold)"
        head = "<tr><th>parameter</th><th>value</th><th>meaning</th></tr>"
    return (f"<details{' open' if open_ else ''}><summary>{summary}</summary>\n"
            f'<table style="font-size:85%">{head}{"".join(rows)}</table>\n</details>')


def params_table(params: Any) -> Any:
    """The parameters of a run as one compact, collapsed table (:func:`params_html`) for display."""
    from IPython.display import HTML

    return HTML(params_html(params))


def figure(fig: Any) -> None:
    """Display a matplotlib Figure inline as PNG (works without pyplot or an inline backend)."""
    from IPython.display import Image, display

    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    display(Image(data=buf.getvalue(), format="png"))


#: Tag prefix of markdown cells whose text has a translation: ``label:section.01.rfm_table``.
LABEL_TAG = "label:"


def cell_label(cell: Any) -> str | None:
    """The label key of a cell tagged ``label:<key>``, else None."""
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag.startswith(LABEL_TAG):
            return tag[len(LABEL_TAG):]
    return None


def translate_cells(nb: Any, lang: str) -> int:
    """Replace the text of tagged markdown cells (:func:`cell_label`) by their label in ``lang``.

    The notebooks carry the English text; ``rmanalytics/locale/<lang>.yaml`` carries the
    translation of each section heading and summary under the same key, so a report of a
    ``lang: zh`` run reads in Chinese. English (and keys without a translation) leave the cell as
    it is. Returns the number of cells replaced.
    """
    from rmanalytics.labels import label

    if lang == "en":
        return 0
    n = 0
    for cell in nb.cells:
        key = cell_label(cell) if cell.get("cell_type") == "markdown" else None
        if key and label(key, lang) != key:
            cell.source = label(key, lang)
            n += 1
    return n


#: Key figures shown first in each report (metric name, kind for :func:`rmanalytics.fmt.format_table`).
HEADLINES: dict[str, list[tuple[str, str]]] = {
    "00_data_overview": [("n_customers_open", "count"), ("total_amount", "money"), ("n_refunds", "count"),
                         ("aum_total", "money"), ("n_findings", "count")],
    "01_segmentation": [("n_customers", "count"), ("total_monetary", "money"), ("migration_stay_share", "percent"),
                        ("n_warnings", "count"), ("n_warning_rms", "count"), ("value_at_stake_total", "money")],
    "02_churn_survival": [("n_customers", "count"), ("event_rate", "percent"), ("retention_12m", "percent"),
                          ("retention_24m", "percent"), ("hr_rm_left", "ratio"), ("mean_p_churn_horizon", "percent"),
                          ("value_at_stake_total", "money")],
    "03_loyalty_clv": [("n_customers_scored", "count"), ("mean_p_alive", "percent"), ("total_clv", "money"),
                       ("median_clv", "money"), ("clv_top_decile_share", "percent"),
                       ("holdout_total_rel_error", "percent")],
    "04_kpi_attribution": [("n_rms", "count"), ("fee_change_total", "money"), ("fee_change_volume", "money"),
                           ("fee_change_mix", "money"), ("fee_change_rate", "money"),
                           ("milestone_attainment", "percent"), ("n_needs_improvement_latest", "count")],
}


def headline_html(notebook: str, metrics: dict[str, Any], *, lang: str = "en", currency: str = "CNY") -> str:
    """HTML table of a run's key figures (:data:`HEADLINES`), formatted with units and labelled
    (``metric.<name>`` labels) in ``lang``; empty when the notebook has none or none were recorded."""
    import html

    from rmanalytics import fmt
    from rmanalytics.labels import label

    rows = []
    for name, kind in HEADLINES.get(notebook, []):
        if metrics.get(name) is None:
            continue
        value = fmt.format_table(pd.DataFrame({"v": [metrics[name]]}), {"v": kind}, lang=lang,
                                 currency=currency)["v"].iloc[0]
        rows.append(f"<tr><td>{html.escape(label(f'metric.{name}', lang))}</td>"
                    f'<td style="text-align:right"><b>{html.escape(str(value))}</b></td></tr>')
    if not rows:
        return ""
    head = "关键数字" if lang == "zh" else "Key figures"
    return f"<h3>{head}</h3>\n<table>{''.join(rows)}</table>"

