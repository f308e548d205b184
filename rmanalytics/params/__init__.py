"""Notebook parameter models, one per notebook, and how parameters are resolved and validated.

Registry
--------
``NOTEBOOKS`` lists the analysis notebooks in chain order; ``REGISTRY`` maps each notebook name to
its pydantic model (a subclass of :class:`~rmanalytics.params.base.NotebookParams`);
``CHAIN_INPUTS`` says which output of an upstream run feeds which parameter of a downstream
notebook in ``rmanalytics run-all``.

Validation happens in three places, always through the model, so the message is the same:

- ``rmanalytics run`` / ``run-all`` call :func:`resolve` (YAML file + ``-p key value`` overrides)
  before any kernel starts;
- each notebook's third cell calls :func:`load_params` on its own namespace (JupyterLab and
  papermill runs alike).

``-p`` values are parsed like YAML scalars (:func:`yaml.safe_load`): ``-p horizon_days 180`` is the
int 180, ``-p horizon_days 1e2`` is the *string* ``"1e2"`` and is rejected for an int field (papermill
alone would inject the float 100.0), ``-p observation_end 2024-06-30`` is a date, ``-p lang zh`` a
string, ``-p output_dir null`` is None, ``-p weights "[1, 2]"`` a list.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, Iterable, Mapping

from pydantic import ValidationError

from rmanalytics.errors import ParameterError  # re-exported: a bad notebook parameter (the message names it)
from rmanalytics.params.base import NotebookParams, type_name

#: Analysis notebooks in chain (dependency) order.
NOTEBOOKS: tuple[str, ...] = (
    "00_data_overview",
    "01_segmentation",
    "02_churn_survival",
    "03_loyalty_clv",
    "04_kpi_attribution",
    "05_rm_book",
    "06_rm_review",
)


class _Registry(MutableMapping):
    """Notebook name -> model class, importing a model's module only when it is looked up, so
    checking one notebook's parameters does not import every analysis module."""

    def __init__(self, entries: Mapping[str, str | type[NotebookParams]]) -> None:
        self._entries: dict[str, str | type[NotebookParams]] = dict(entries)

    def __getitem__(self, name: str) -> type[NotebookParams]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, cls = entry.partition(":")
            entry = getattr(importlib.import_module(module), cls)
            self._entries[name] = entry
        return entry

    def __setitem__(self, name: str, model: type[NotebookParams]) -> None:
        self._entries[name] = model

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"REGISTRY({list(self._entries)})"


#: Notebook name -> parameter model (imported on first use).
REGISTRY: MutableMapping[str, type[NotebookParams]] = _Registry({
    "00_data_overview": "rmanalytics.params.overview:OverviewParams",
    "01_segmentation": "rmanalytics.params.segmentation:SegmentationParams",
    "02_churn_survival": "rmanalytics.params.churn:ChurnParams",
    "03_loyalty_clv": "rmanalytics.params.loyalty:LoyaltyParams",
    "04_kpi_attribution": "rmanalytics.params.kpi:KpiParams",
    "05_rm_book": "rmanalytics.params.book:BookParams",
    "06_rm_review": "rmanalytics.params.review:RmReviewParams",
})

_MODEL_MODULES = {
    "OverviewParams": ("rmanalytics.params.overview", "00_data_overview"),
    "SegmentationParams": ("rmanalytics.params.segmentation", "01_segmentation"),
    "ChurnParams": ("rmanalytics.params.churn", "02_churn_survival"),
    "LoyaltyParams": ("rmanalytics.params.loyalty", "03_loyalty_clv"),
    "KpiParams": ("rmanalytics.params.kpi", "04_kpi_attribution"),
    "BookParams": ("rmanalytics.params.book", "05_rm_book"),
    "RmReviewParams": ("rmanalytics.params.review", "06_rm_review"),
}


def __getattr__(name: str) -> Any:  # from rmanalytics.params import ChurnParams (lazy)
    if name in _MODEL_MODULES:
        return REGISTRY[_MODEL_MODULES[name][1]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: Downstream notebook -> {parameter: (upstream notebook, file inside the upstream run folder)}.
#: ``run-all`` applies an entry only when the downstream model has that field, the parameter was
#: not set explicitly (it is None) and the upstream run succeeded and wrote the file.
#: 02 is deliberately absent: 01's segments describe customers at the observation end, after the
#: churn outcomes (closed customers fall into "lost"), so feeding them to the churn notebook would
#: leak the outcome into its retention curves and its hold-out baseline.
CHAIN_INPUTS: dict[str, dict[str, tuple[str, str]]] = {
    "03_loyalty_clv": {"segments_path": ("01_segmentation", "restricted/tables/segments.parquet")},
    # 05 describes today's book, so 01's end-of-window segments are what it needs (no leakage issue:
    # it predicts forward from observation_end). Tables with customer ids live under restricted/.
    "05_rm_book": {"segmentation_tables_path": ("01_segmentation", "restricted/tables"),
                   "churn_tables_path": ("02_churn_survival", "restricted/tables"),
                   "kpi_tables_path": ("04_kpi_attribution", "tables"),
                   # 04's RM x month measures (kpi.monthly_measures checks that the rule settings match).
                   "monthly_measures_path": ("04_kpi_attribution", "tables/rm_month_measures.parquet")},
    # 06 reads 04's RM x month measures (kpi.monthly_measures checks that the rule settings match).
    "06_rm_review": {"monthly_measures_path": ("04_kpi_attribution", "tables/rm_month_measures.parquet")},
}




__all__ = [
    "CHAIN_INPUTS", "NOTEBOOKS", "REGISTRY", "NotebookParams", "ParameterError", "BookParams", "ChurnParams", "KpiParams",
    "LoyaltyParams", "OverviewParams", "RmReviewParams", "SegmentationParams", "get_model", "load_params",
    "load_yaml", "notebook_name", "parse_value", "resolve", "validate", "notebook_support", "left_out",
    "load_notebook_tables", "check_against_data",
]


def notebook_name(notebook: str | os.PathLike) -> str:
    """Registry name of a notebook given as a name, a path or a unique prefix (``"01"``).

    Raises :class:`ParameterError` listing the known notebooks otherwise.
    """
    stem = Path(str(notebook)).name
    if stem.endswith(".ipynb"):
        stem = stem[: -len(".ipynb")]
    if stem in REGISTRY:
        return stem
    matches = [n for n in REGISTRY if n.startswith(stem) or n.split("_", 1)[-1] == stem]
    if len(matches) == 1:
        return matches[0]
    raise ParameterError(f"unknown notebook {str(notebook)!r}; known notebooks: {', '.join(REGISTRY)}")


def get_model(notebook: str | os.PathLike) -> type[NotebookParams]:
    """Parameter model of a notebook (by name, path or unique prefix)."""
    return REGISTRY[notebook_name(notebook)]


def _format_error(exc: ValidationError, model: type[NotebookParams], notebook: str,
                  values: Mapping[str, Any], source: str | None = None) -> str:
    lines = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        name = str(loc[0]) if loc else "?"
        where = ".".join(str(p) for p in loc)
        field = model.model_fields.get(name)
        if field is None:
            lines.append(_unknown_message(name, model))
            continue
        if len(loc) > 1:  # inside a nested parameter (a dict of settings)
            if err.get("type") == "extra_forbidden":
                lines.append(f"parameter {name!r}: unknown key {where!r}")
            else:
                lines.append(f"parameter {where!r}: got {err.get('input')!r}: {err.get('msg')}")
            continue
        got = values.get(name, err.get("input"))
        lines.append(
            f"parameter {where!r}: expected {type_name(field.annotation)}, got {got!r} "
            f"({type(got).__name__}): {err.get('msg')}"
        )
    head = f"invalid parameters for notebook {notebook}" + (f" (from {source})" if source else "")
    return head + ":\n  " + "\n  ".join(lines)


def _unknown_message(name: str, model: type[NotebookParams]) -> str:
    close = difflib.get_close_matches(name, list(model.model_fields), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown parameter {name!r}{hint}"


def _known_line(model: type[NotebookParams]) -> str:
    return f"(parameters of this notebook: {', '.join(model.model_fields)}; see: rmanalytics params NOTEBOOK)"


def validate(notebook: str, values: Mapping[str, Any], *, source: str | None = None) -> NotebookParams:
    """Validate a mapping of parameter values against the notebook's model.

    Unknown keys, wrong types and impossible values raise :class:`ParameterError` naming the
    parameter, the expected type and the value received.
    """
    name = notebook_name(notebook)
    model = REGISTRY[name]
    head = f"invalid parameters for notebook {name}" + (f" (from {source})" if source else "")
    problems = [_unknown_message(str(k), model) for k in values if k not in model.model_fields]
    known = {k: v for k, v in values.items() if k in model.model_fields}
    try:
        params = model.from_mapping(known)
    except ValidationError as exc:
        problems += _format_error(exc, model, name, known, source).split("\n  ")[1:]
        params = None
    if problems:
        if any(p.startswith("unknown parameter") for p in problems):
            problems.append(_known_line(model))
        raise ParameterError(head + ":\n  " + "\n  ".join(problems))
    return params


def parse_value(text: str) -> Any:
    """Parse one ``-p key value`` value with YAML scalar semantics (see the module docstring)."""
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() != "" else ""
    except (yaml.YAMLError, ValueError):  # e.g. 2024-13-01: keep the text, the model names the problem
        return text


def load_yaml(path: str | os.PathLike, notebook: str) -> dict[str, Any]:
    """Read a parameters YAML file and check every key is a parameter of ``notebook``.

    Returns the raw mapping (not yet type-validated; :func:`resolve` does that after applying
    overrides). An empty file is an empty mapping.
    """
    data = _read_yaml(path)
    model = get_model(notebook)
    unknown = [k for k in data if k not in model.model_fields]
    if unknown:
        raise ParameterError(
            f"invalid parameters for notebook {notebook_name(notebook)} (from {path}):\n  "
            + "\n  ".join([*(_unknown_message(str(k), model) for k in unknown), _known_line(model)])
        )
    return data


def _read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"parameters file not found: {path}")
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParameterError(f"{path}: not valid YAML{where}: {problem}; fix the file (one 'name: value' per "
                             f"line, spaces not tabs, quote text with ':' or '#')") from None
    except UnicodeDecodeError as exc:
        raise ParameterError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of parameter: value, got {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def resolve(notebook: str, yaml_path: str | os.PathLike | None = None,
            overrides: Iterable[tuple[str, str]] = (), **values: Any) -> NotebookParams:
    """Resolved, validated parameters of one run: model defaults < YAML file < ``-p`` overrides < ``values``.

    ``overrides`` are ``(key, text)`` pairs from the command line, parsed by :func:`parse_value`;
    ``values`` are already-typed Python values (e.g. ``data_dir`` from ``--data``).
    Raises :class:`ParameterError` naming the offending parameter; never starts a kernel.
    """
    name = notebook_name(notebook)
    merged: dict[str, Any] = {}
    source = []
    if yaml_path is not None:
        merged.update(_read_yaml(yaml_path))  # unknown keys are reported with the type errors
        source.append(str(yaml_path))
    for key, text in overrides:
        merged[key] = parse_value(text)
    if overrides:
        source.append("-p")
    merged.update(values)
    return validate(name, merged, source=" + ".join(source) or None)


def _find_upwards(rel: str, start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / rel
        if candidate.exists():
            return candidate.resolve()
    return None


def load_params(notebook: str, namespace: Mapping[str, Any]) -> NotebookParams:
    """Validate a notebook's parameters from its namespace (``globals()``); used in cell 3.

    Collects the model's fields present in ``namespace`` (the ``parameters`` cell and papermill's
    injected cell), validates them and returns the model instance. A bad value raises
    :class:`ParameterError` naming the parameter, so it fails in the first cells in JupyterLab too.

    Relative paths (``data_dir`` and fields ending in ``_path``) that do not exist from the current
    folder are looked up in its parents, so the default ``data/sample`` works when JupyterLab runs
    the notebook from ``notebooks/``. The runner always passes absolute paths.
    """
    name = notebook_name(notebook)
    model = REGISTRY[name]
    values = {k: namespace[k] for k in model.model_fields if k in namespace}
    params = validate(name, values, source="notebook namespace")
    fixes = {}
    for key in model.model_fields:
        if key != "data_dir" and not key.endswith("_path"):
            continue
        value = getattr(params, key)
        if isinstance(value, str) and value and not os.path.isabs(value) and not os.path.exists(value):
            found = _find_upwards(value, Path.cwd())
            if found is not None:
                fixes[key] = str(found)
    if params.lang == "zh":
        from rmanalytics.labels import use_cjk_fonts

        use_cjk_fonts(params.font)
    if params.engine == "spark":  # the active SparkSession (cluster or notebook), else a local one
        from rmanalytics.spark import ensure_session

        ensure_session()
    return params.model_copy(update=fixes) if fixes else params


# ----------------------------------------------------------------------------- tables per notebook
def _needs(notebook: str | NotebookParams | type[NotebookParams]) -> type[NotebookParams]:
    if isinstance(notebook, NotebookParams):
        return type(notebook)
    if isinstance(notebook, type) and issubclass(notebook, NotebookParams):
        return notebook
    return get_model(notebook)


def notebook_support(columns: Mapping[str, Iterable[str] | None],
                     notebooks: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Which notebooks a data folder supports, from its tables and their columns.

    ``columns``: table -> column names present (``rmanalytics.io.table_columns``). Returns one
    dict per notebook: ``notebook``, ``supported`` (bool), ``missing`` (required tables or
    ``table.column`` absent), ``left_out`` (optional tables absent -> what the notebook leaves out).
    """
    out = []
    for name in notebooks or NOTEBOOKS:
        model = _needs(name)
        missing = [t for t in model.tables_required if t not in columns]
        for t, cols in model.columns_required.items():
            if columns.get(t) is not None:  # None: header unreadable, loading says why
                missing += [f"{t}.{c}" for c in cols if c not in set(columns[t])]
        gone = {t: what for t, what in model.tables_optional.items() if t not in columns and what}
        out.append({"notebook": name, "supported": not missing, "missing": missing, "left_out": gone,
                    "required": list(model.tables_required), "optional": list(model.tables_optional)})
    return out


def left_out(params: NotebookParams | str, tables: Mapping[str, Any]) -> list[str]:
    """One line per optional table absent from ``tables``: what the notebook leaves out without it."""
    model = _needs(params)
    return [f"no {t} table, left out: {what}" for t, what in model.tables_optional.items()
            if t not in tables and what]


def load_notebook_tables(params: NotebookParams, *, validate: bool = True, lazy: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load the tables a notebook declares (required and, when present, optional) from ``params.data_dir``.

    ``lazy``: tables handed over as Parquet paths for the engine rather than pandas frames
    (:func:`rmanalytics.io.load_tables`); validation is skipped when this data was validated before.
    A missing required table is a FileNotFoundError naming the notebook and the tables it needs; a
    missing required column (``columns_required``) is a DataError naming table, column and notebook.
    """
    from rmanalytics.engine import columns_of
    from rmanalytics.errors import DataError
    from rmanalytics.io import load_tables

    model = type(params)
    name = next((n for n in REGISTRY if REGISTRY[n] is model), model.__name__)
    tables = load_tables(params.data_dir, tables=model.tables_required, optional=list(model.tables_optional),
                         validate=validate, needed_by=name, lazy=lazy)
    for t, cols in model.columns_required.items():
        absent = [c for c in cols if t in tables and c not in columns_of(tables[t])]
        if absent:
            raise DataError(f"{params.data_dir}: table {t} lacks column(s) {absent}, which notebook {name} needs "
                            f"(it reads {', '.join(model.tables_required)}); add them or run a notebook that "
                            f"does without (see: rmanalytics validate {params.data_dir})")
    return tables


def check_against_data(params: NotebookParams, first_date: Any, last_date: Any) -> None:
    """Check parameters against the span of the data (first and last transaction date).

    ``observation_end`` (and ``calibration_end``/``window_start`` where the model has them) must
    fall inside the data; every day count in the model's ``span_fields`` must be shorter than the
    span from the first date to the observation end. Raises :class:`ParameterError` naming the
    parameter, its value and the span.
    """
    import datetime as dt

    import pandas as pd

    first = pd.Timestamp(first_date).normalize()
    last = pd.Timestamp(last_date).normalize()
    end = pd.Timestamp(params.observation_end) if params.observation_end is not None else last
    name = next((n for n in REGISTRY if REGISTRY[n] is type(params)), type(params).__name__)
    span = f"the data run from {first.date()} to {last.date()}"
    problems = []
    if end < first:
        problems.append(f"parameter 'observation_end' = {end.date()} is before the first transaction; {span}")
    for key in ("calibration_end", "window_start"):
        v = getattr(params, key, None)
        if isinstance(v, dt.date) and not (first <= pd.Timestamp(v) < end):
            problems.append(f"parameter {key!r} = {v} is outside the data before observation_end "
                            f"({first.date()} to {end.date()}); {span}")
    days = int((end - first).days)
    for key in type(params).span_fields:
        v = getattr(params, key)
        if isinstance(v, int) and v >= days:
            problems.append(f"parameter {key!r} = {v} days is not shorter than the data span "
                            f"({days} days: {first.date()} to observation end {end.date()}); use fewer days "
                            f"or data covering more time")
    if problems:
        raise ParameterError(f"invalid parameters for notebook {name} on {params.data_dir}:\n  "
                             + "\n  ".join(problems))
