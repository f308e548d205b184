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


CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")


def use_cjk_fonts() -> str | None:
    """Put the first installed Chinese font in front of matplotlib's sans-serif list.

    Chinese labels in figures need a CJK font; matplotlib's default (DejaVu Sans) shows empty
    boxes. Returns the font used, or None (with a warning) when none of :data:`CJK_FONTS` is
    installed: tables still show Chinese, figures then need such a font installed.
    """
    import warnings

    import matplotlib
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            current = [f for f in matplotlib.rcParams["font.sans-serif"] if f != name]
            matplotlib.rcParams["font.sans-serif"] = [name, *current]
            matplotlib.rcParams["font.family"] = "sans-serif"
            matplotlib.rcParams["axes.unicode_minus"] = False
            return name
    warnings.warn("no Chinese font found for figures (install e.g. Noto Sans CJK SC); "
                  "Chinese labels in figures will show as boxes", stacklevel=2)
    return None


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
