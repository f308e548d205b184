"""Small helpers for the notebooks' display cells (no analysis logic here).

``show(df, n)`` previews a table; ``params_table(P)`` shows a run's parameters (collapsed); ``figure(fig)``
displays a :class:`matplotlib.figure.Figure` built without pyplot (the package never calls
``plt.show()``) as an inline PNG, so it appears in JupyterLab, in the executed notebook and in
the HTML report.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def show(df: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """First ``n`` rows of ``df`` for display (``n=0``: all rows)."""
    return df if n <= 0 else df.head(n)


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
    model = type(params) if hasattr(params, "model_fields") else None
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
