"""One exception family for the package, and one way to say "rule broken by N rows, e.g. ...".

Every error a user can cause (bad data, bad parameters, a model that does not converge, a model
used before it is fitted) derives from :class:`RmAnalyticsError`, so the CLI and the runner can
print it as one message instead of a traceback. The kinds subclass the matching built-in (or
scikit-learn) exception too, so ``except ValueError`` code keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

N_EXAMPLES = 5


class RmAnalyticsError(Exception):
    """Base of every error a user can cause; printed as one message, never as a traceback."""


class DataError(RmAnalyticsError, ValueError):
    """Input data breaks a rule: names the table or file, column, row count and examples."""


class ParameterError(RmAnalyticsError, ValueError):
    """A parameter has the wrong type, an unknown name or an impossible value."""


class ConvergenceError(RmAnalyticsError, RuntimeError):
    """A model fit did not converge; the message says what to try."""


def __getattr__(name: str) -> Any:
    """``NotFittedError`` is created on first use: it subclasses scikit-learn's, and importing
    scikit-learn (with SciPy) would make every light import of the package (parameter models, CLI)
    take seconds."""
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError as sk_not_fitted

        cls = type("NotFittedError", (RmAnalyticsError, sk_not_fitted), {
            "__doc__": "A model was used before ``fit``; also a :class:`sklearn.exceptions.NotFittedError`.",
            "__module__": __name__,
        })
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _plain(v: Any) -> Any:
    """A value as a plain Python scalar: numpy scalars unwrapped, timestamps as ISO dates/times."""
    import pandas as pd

    if isinstance(v, pd.Timestamp):
        return str(v.date()) if v == v.normalize() else str(v)
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return v.item()
        except (TypeError, ValueError):
            return v
    return v


def examples(values: Iterable[Any], n: int = N_EXAMPLES, distinct: bool = True) -> list[Any]:
    """The first ``n`` (distinct, unless ``distinct=False``) values, as plain Python scalars (for
    messages and JSON); timestamps become ISO dates (or date-times when not at midnight)."""
    out: list[Any] = []
    seen: set[Any] = set()
    for v in values:
        v = _plain(v)
        key = repr(v)
        if distinct and key in seen:
            continue
        seen.add(key)
        out.append(v)
        if len(out) >= n:
            break
    return out


def row_examples(values: Iterable[Any], n: int = N_EXAMPLES) -> list[Any]:
    """The first ``n`` values in row order, repeats kept (each stands for an offending row)."""
    return examples(values, n, distinct=False)


def rule_message(where: str, rule: str, n_rows: int, example_rows: Sequence[Mapping[str, Any]] | Sequence[Any] = (),
                 hint: str | None = None) -> str:
    """``"<where>: <rule>, broken by N rows, e.g. [...]. <hint>"``: the package's one message shape.

    ``where`` names the table/file and column (``"transactions.amount"``); ``example_rows`` are
    row keys with the offending value (``{"customer_id": "C1", "date": "2024-01-02", "amount": -5}``),
    so the rows can be found.
    """
    noun = "row" if n_rows == 1 else "rows"
    msg = f"{where}: {rule}, broken by {n_rows:,} {noun}"
    ex = list(example_rows)[:N_EXAMPLES]
    if ex:
        msg += f", e.g. {ex}"
    if hint:
        msg += f". {hint}"
    return msg
