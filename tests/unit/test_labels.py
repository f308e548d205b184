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


def test_every_label_key_exists_in_both_language_files():
    en, zh = labels.load_file("en"), labels.load_file("zh")
    assert set(en) == set(zh), {"only in en.yaml": sorted(set(en) - set(zh)),
                                "only in zh.yaml": sorted(set(zh) - set(en))}
    empty = [k for k in en if not en[k].strip() or not zh[k].strip()]
    assert not empty, empty
    # the Chinese file really is Chinese where the English has letters (codes like "R" may stay)
    untranslated = [k for k in en if en[k] == zh[k] and any(c.isalpha() for c in en[k]) and len(en[k]) > 3]
    assert not untranslated, untranslated


def test_labels_are_data_not_dicts_in_modules():
    """No analysis module registers its own labels: translations live in rmanalytics/locale/*.yaml."""
    from pathlib import Path

    pkg = Path(labels.__file__).parent
    offenders = [str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                 if p.name != "labels.py" and "labels import register" in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


def test_file_labels_are_loaded_and_column_headers_translate():
    assert labels.label("segment:champions", "zh") == "冠军客户"
    assert labels.label("stage:new", "zh") == "新客培育期"
    df = pd.DataFrame({"customers": [1], "unlabelled_column": [2]})
    out = labels.columns(df, "zh")
    assert list(out.columns) == [labels.label("col.customers", "zh"), "unlabelled_column"]
    assert list(df.columns) == ["customers", "unlabelled_column"]  # the input is not changed


def test_tagged_report_sections_match_their_english_label_and_translate():
    """Markdown cells tagged label:<key> hold the English text of <key>; zh reports show zh.yaml's."""
    import json
    from pathlib import Path

    import nbformat

    from rmanalytics.notebook import cell_label, translate_cells

    en = labels.load_file("en")
    root = Path(__file__).resolve().parents[2] / "notebooks"
    tagged = 0
    for path in sorted(root.glob("*.ipynb")):
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        for cell in nb.cells:
            key = cell_label(cell)
            if key is None:
                continue
            tagged += 1
            assert key in en, f"{path.name}: {key} not in en.yaml"
            assert cell.source.rstrip("\n") == en[key], (
                f"{path.name}: the cell tagged {key} differs from en.yaml: run python tools/sync_section_labels.py "
                "and review the key in zh.yaml")
        headings = [c for c in nb.cells if c.cell_type == "markdown" and c.source.lstrip().startswith("#")]
        assert all(cell_label(c) for c in headings), f"{path.name}: a section heading has no label tag"
        n = translate_cells(nb, "zh")
        assert n >= len(headings)
        assert all(not c.source.lstrip().startswith("## ") or any("\u4e00" <= ch <= "\u9fff" for ch in c.source)
                   for c in headings)
    assert tagged >= 40
    assert json  # keep import used


def test_recorder_csv_headers_in_chinese_parquet_stays_english(tmp_path):
    from rmanalytics.report import Recorder

    rec = Recorder(tmp_path, mask_ids=False, lang="zh")
    df = pd.DataFrame({"customer_id": ["C1"], "segment": ["loyal"], "value_at_stake": [1.5]})
    rec.table("t", df)
    assert list(pd.read_parquet(tmp_path / "restricted/tables/t.parquet").columns) == list(df.columns)  # raw ids: restricted/
    header = (tmp_path / "tables/t.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header == "客户编号,客户分群,风险价值"
