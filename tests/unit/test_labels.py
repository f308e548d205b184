import warnings

import matplotlib
import pandas as pd
import pytest

from rmanalytics import labels


def test_register_and_lookup_in_both_languages():
    labels.register({"__test_key": {"en": "Test", "zh": "测试"}})
    assert labels.label("__test_key", "en") == "Test"
    assert labels.label("__test_key", "zh") == "测试"
    assert labels.label("__unregistered", "zh") == "__unregistered"
    s = labels.relabel(pd.Series(["__test_key", None]), "zh")
    assert s.iloc[0] == "测试" and s.iloc[1] is None


def test_register_requires_every_language_and_lang_is_checked():
    with pytest.raises(ValueError, match="lacks languages"):
        labels.register({"x": {"en": "X"}})
    with pytest.raises(ValueError, match="lang must be one of"):
        labels.label("customers", "fr")


def test_use_cjk_fonts_puts_an_installed_font_first_or_warns():
    before = list(matplotlib.rcParams["font.sans-serif"])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            name = labels.use_cjk_fonts()
        if name is None:
            assert any("Chinese font" in str(w.message) for w in caught)
        else:
            assert matplotlib.rcParams["font.sans-serif"][0] == name
    finally:
        matplotlib.rcParams["font.sans-serif"] = before
