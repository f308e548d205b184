"""Base class for notebook parameters.

Every notebook has one pydantic model (a subclass of :class:`NotebookParams`). It rejects unknown
keys, wrong types (strictly: ``1e2`` is not an int, ``"3"`` is not an int) and impossible values
with an error that names the parameter, before any kernel starts (the runner validates) and again
in the notebook's first cells (so JupyterLab users get the same message).
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class NotebookParams(BaseModel):
    """Parameters every notebook shares."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True, frozen=True)

    # What the notebook reads (class attributes, not parameters): the tables it cannot run
    # without, the ones it uses when present with what is left out without them, and contract
    # columns it needs beyond the required ones. Read by ``rmanalytics validate`` and ``run-all``
    # (:func:`rmanalytics.params.notebook_support`) and by the notebook's loading cell.
    tables_required: ClassVar[tuple[str, ...]] = ()
    tables_optional: ClassVar[dict[str, str]] = {}
    columns_required: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Day-count parameters that must be shorter than the span of the data (first to last
    # transaction date), checked by :func:`rmanalytics.params.check_against_data` after loading.
    span_fields: ClassVar[tuple[str, ...]] = ()

    data_dir: str = Field("data/sample", description="Folder with the contract tables (Parquet, CSV or a DuckDB file).")
    observation_end: dt.date | None = Field(
        None, description="Last day of the observation window; default: the last transaction date in the data."
    )
    lang: Literal["en", "zh"] = Field("en", description="Language of segment and report labels.")
    mask_ids: bool = Field(True, description="Mask customer identifiers in exported reports.")
    engine: Literal["duckdb", "spark"] = Field("duckdb", description="Engine for the heavy aggregations.")
    output_dir: str | None = Field(
        None, description="Where tables, metrics and figures go; the runner sets the run folder. None: do not write."
    )
    currency: str = Field("CNY", min_length=1, max_length=12,
                          description="Currency of money amounts in reports (CNY is shown as 元 in Chinese).")
    font: str | None = Field(
        None, description="Chinese font file or folder for figures; default: RMANALYTICS_FONT, then the system's fonts."
    )

    @classmethod
    def from_mapping(cls, values: dict) -> "NotebookParams":
        """Validate a mapping of parameter values (from YAML, the CLI or a notebook's namespace).

        Validation goes through pydantic's strict JSON mode, so dates may be given as ISO strings
        (that is how papermill injects them) while ``1e2`` is still rejected for an int.
        """
        import json

        return cls.model_validate_json(json.dumps(dict(values), default=str))

    # ------------------------------------------------------------------ introspection helpers
    @classmethod
    def describe(cls) -> list[dict[str, str]]:
        """One row per parameter: ``name``, ``type``, ``default``, ``help`` (strings, for display).

        Used by ``rmanalytics params NOTEBOOK`` and by :func:`rmanalytics.notebook.params_table`.
        """
        rows = []
        for name, field in cls.model_fields.items():
            rows.append({
                "name": name,
                "type": type_name(field.annotation),
                "default": repr(json_default(field.get_default(call_default_factory=True))),
                "help": _help(field),
            })
        return rows

    @classmethod
    def parameters_cell(cls) -> str:
        """Source of the notebook's ``parameters`` cell: one typed, commented line per field.

        Dates are written as ISO strings (``observation_end: "Optional[str]" = None``) because that is
        what papermill injects; :func:`rmanalytics.params.load_params` turns them into dates.
        Notebook authors can paste this; a test checks the committed cell declares the same names
        and defaults.
        """
        lines = []
        for name, field in cls.model_fields.items():
            default = json_default(field.get_default(call_default_factory=True))
            ann = _papermill_annotation(type_name(field.annotation, notebook=True))
            comment = _comment_text(_help(field))
            lines.append(f"{name}: {ann} = {default!r}  # {comment}" if comment else f"{name}: {ann} = {default!r}")
        return "\n".join(lines)


class SeededParams(NotebookParams):
    """Parameters of a notebook that does something random (model subsamples, cross-validation)."""

    seed: int = Field(20261122, ge=0, description="Random seed for everything random in the run.")


def _papermill_annotation(ann: str) -> str:
    """Spell a union so papermill's ``--help-notebook`` reads it: its parser accepts
    ``Optional[str]`` but not ``str | None``. Quoted, so the cell needs no ``typing`` import."""
    parts = ann.split(" | ")
    if len(parts) == 1:
        return ann
    rest = [p for p in parts if p != "None"]
    inner = rest[0] if len(rest) == 1 else f"Union[{', '.join(rest)}]"
    return f'"Optional[{inner}]"' if len(rest) < len(parts) else f'"{inner}"'


def _comment_text(text: str) -> str:
    """Help text safe for a parameters-cell comment: papermill's inspection skips any line with
    two ``=``, so the comment must not contain one."""
    import re

    text = text.replace(">=", "≥").replace("<=", "≤").replace("!=", "≠").replace("==", "=")
    return re.sub(r"\s*=\s*", " is ", text).replace("\n", " ")


def _help(field: Any) -> str:
    text = (field.description or "").strip()
    bounds = []
    for meta in field.metadata:
        # no "=" in the text: papermill's parameter inspection skips lines with two "="
        for attr, sym in (("ge", "min"), ("gt", ">"), ("le", "max"), ("lt", "<")):
            v = getattr(meta, attr, None)
            if v is not None:
                bounds.append(f"{sym} {v}")
    if bounds:
        text = f"{text} ({', '.join(bounds)})" if text else ", ".join(bounds)
    return text


def json_default(value: Any) -> Any:
    """Default as it appears in YAML/notebooks: dates as ISO strings, tuples as lists, nested
    models as dicts."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, tuple):
        return [json_default(v) for v in value]
    if isinstance(value, list):
        return [json_default(v) for v in value]
    if isinstance(value, dict):
        return {k: json_default(v) for k, v in value.items()}
    return value


def type_name(annotation: Any, *, notebook: bool = False) -> str:
    """Readable name of a type annotation (``int``, ``str | None``, ``Literal['en', 'zh']``).

    With ``notebook=True`` dates are shown as ``str`` (ISO strings in the parameters cell) and
    ``Literal[...]`` as ``str``/``int`` so the cell stays plain Python without imports.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a, notebook=notebook) for a in args)
    if origin is Literal:
        if notebook:
            kinds = sorted({type(a).__name__ for a in args})
            return " | ".join(kinds)
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    if origin is typing.Annotated:
        return type_name(args[0], notebook=notebook)
    if origin is not None:
        base = getattr(origin, "__name__", str(origin))
        if notebook and base == "tuple":
            base = "list"
        inner = ", ".join(type_name(a, notebook=notebook) for a in args if a is not Ellipsis)
        return f"{base}[{inner}]" if inner else base
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "dict" if notebook else annotation.__name__
    if annotation in (dt.date, dt.datetime):
        return "str" if notebook else annotation.__name__
    return getattr(annotation, "__name__", str(annotation))
