"""Labels for segments, stages, tiers, figures, tables and report headings, in English and Chinese.

The labels are data: one YAML file per language in ``rmanalytics/locale/`` (``en.yaml``,
``zh.yaml``, the same keys in both; a test checks). Notebooks, plots and reports look them up with
:func:`label` (or :func:`relabel` for a whole column, :func:`columns` for table headers), so a run
with ``lang: zh`` shows Chinese without any module holding its own translations.
:func:`register` adds or overrides labels at run time (for extensions and tests).

Key conventions: plain names (``customers``), ``kind:value`` for coded values
(``segment:champions``, ``stage:new``, ``tier:growth``), ``col.<column>`` for column headers of
people-facing tables, ``section.<notebook>.<part>`` for report headings and their summaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib import resources

import pandas as pd

LANGS = ("en", "zh")

_LABELS: dict[str, dict[str, str]] = {}


@lru_cache(maxsize=None)
def load_file(lang: str) -> dict[str, str]:
    """The labels of one language file (``rmanalytics/locale/<lang>.yaml``) as a flat mapping."""
    import yaml

    text = resources.files("rmanalytics").joinpath("locale", f"{lang}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"rmanalytics/locale/{lang}.yaml must map label keys to texts")
    return data


def _load() -> None:
    files = {lang: load_file(lang) for lang in LANGS}
    for key in files["en"]:
        _LABELS[key] = {lang: files[lang].get(key, files["en"][key]) for lang in LANGS}


def register(labels: Mapping[str, Mapping[str, str]]) -> None:
    """Register labels: ``{key: {"en": "...", "zh": "..."}}``. Later registrations win."""
    for key, names in labels.items():
        missing = [lang for lang in LANGS if lang not in names]
        if missing:
            raise ValueError(f"label {key!r} lacks languages {missing}")
        _LABELS[key] = dict(names)


def label(key: str, lang: str = "en") -> str:
    """The label of ``key`` in ``lang`` ('en' or 'zh'); the key itself when none is registered."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    names = _LABELS.get(key)
    return names[lang] if names else key


def relabel(values: pd.Series | pd.Index, lang: str = "en") -> pd.Series | pd.Index:
    """Map every key in ``values`` to its label in ``lang``."""
    return values.map(lambda k: label(k, lang) if isinstance(k, str) else k)


def columns(df: pd.DataFrame, lang: str = "en", *, prefix: str = "col.") -> pd.DataFrame:
    """Copy of ``df`` with people-facing column headers: ``col.<name>`` labels in ``lang``.

    Columns without a ``col.`` label keep their name. For tables people read (HTML report, CSV);
    machine-facing Parquet tables keep the English snake_case names.
    """
    def one(c):
        if isinstance(c, str) and f"{prefix}{c}" in _LABELS:
            return label(f"{prefix}{c}", lang)
        return c
    out = df.rename(columns=one)
    if isinstance(out.index.name, str):
        out.index.name = one(out.index.name)
    if isinstance(out.columns.name, str):
        out.columns.name = one(out.columns.name)
    return out


def text(key: str, lang: str = "en", **values: object) -> str:
    """The label of ``key`` with ``{name}`` placeholders filled from ``values`` (report summaries)."""
    return label(key, lang).format(**values)


def keys() -> list[str]:
    """Every label key (files and run-time registrations)."""
    return sorted(_LABELS)


def use_cjk_fonts(font: str | None = None) -> str | None:
    """Register a Chinese font with matplotlib for figures (:func:`rmanalytics.fonts.use_cjk_font`).

    Chinese labels in figures need a CJK font; matplotlib's default (DejaVu Sans) shows empty
    boxes. ``font`` names a font file or folder (else ``RMANALYTICS_FONT``, then the system's
    fonts). Returns the family used, or None with a warning that says how to install a font:
    tables and text still show Chinese.
    """
    import warnings

    from rmanalytics import fonts

    info = fonts.use_cjk_font(font)
    if info is None:
        warnings.warn(fonts.install_hint(), stacklevel=2)
        # Said once, in plain words: not again for every missing glyph of every figure.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        return None
    return info.family


def all_labels() -> dict[str, dict[str, str]]:
    """A copy of every registered label."""
    return {k: dict(v) for k, v in _LABELS.items()}


_load()
