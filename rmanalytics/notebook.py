"""Small helpers for the notebooks' display cells (no analysis logic here).

``show(df, n)`` previews a table; ``params_table(P)`` shows a run's parameters; ``figure(fig)``
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


def params_table(params: Any) -> pd.DataFrame:
    """The parameters of a run as a two-column table (``parameter``, ``value``)."""
    values = params.model_dump(mode="json", by_alias=True) if hasattr(params, "model_dump") else dict(params)
    return pd.DataFrame({"parameter": list(values), "value": [repr(v) for v in values.values()]})


def figure(fig: Any) -> None:
    """Display a matplotlib Figure inline as PNG (works without pyplot or an inline backend)."""
    from IPython.display import Image, display

    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    display(Image(data=buf.getvalue(), format="png"))
