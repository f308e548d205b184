"""Labels for segments, stages, tiers and report headings, in English and Chinese.

Each analysis module registers its own labels at import time with :func:`register`; notebooks and
reports look them up with :func:`label` (or :func:`relabel` for a whole column), so a run with
``lang: zh`` shows Chinese names without any module knowing about the others.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

LANGS = ("en", "zh")

_LABELS: dict[str, dict[str, str]] = {}


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


register(
    {
        "customers": {"en": "Customers", "zh": "客户数"},
        "share": {"en": "Share", "zh": "占比"},
        "value": {"en": "Value", "zh": "价值"},
        "other": {"en": "Other", "zh": "其他"},
    }
)
