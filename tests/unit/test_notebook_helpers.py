"""Display helpers of the reports: collapsed parameter table, key figures, formatted tables."""

import pandas as pd

from rmanalytics.notebook import HEADLINES, headline_html, params_html, show
from rmanalytics.params import REGISTRY, validate


def test_params_html_is_one_collapsed_table_with_changed_values_in_bold():
    p = validate("01_segmentation", {"lang": "zh", "migration_days": 30})
    html = params_html(p)
    assert html.startswith("<details>") and html.count("<table") == 1
    assert "2 项不同于默认值" in html
    assert "<b>30</b>" in html and "<b>zh</b>" in html
    assert "output_dir" not in html
    assert "Days between the two snapshots" in html  # what a parameter means, from the model
    en = params_html(validate("01_segmentation", {}))
    assert "0 differ from the defaults" in en


def test_headlines_name_recorded_metrics_with_labels_in_both_languages():
    from rmanalytics.labels import load_file

    en, zh = load_file("en"), load_file("zh")
    for notebook, rows in HEADLINES.items():
        assert notebook in REGISTRY
        for name, _kind in rows:
            assert f"metric.{name}" in en and f"metric.{name}" in zh
    html = headline_html("01_segmentation", {"n_customers": 2289, "value_at_stake_total": 387466678.05}, lang="zh")
    assert "2,289" in html and "3.87亿元" in html and "风险价值合计" in html
    assert headline_html("01_segmentation", {}, lang="en") == ""


def test_show_formats_numbers_and_headers_without_changing_the_frame():
    df = pd.DataFrame({"customers": [12345], "value_at_stake": [36796130.0], "other": [1.23456]})
    out = show(df, lang="zh", kinds={"customers": "count", "value_at_stake": "money"})
    assert list(out.columns) == ["客户数", "风险价值", "other"]
    assert out.iloc[0].tolist() == ["12,345", "3,679.6万元", 1.23456]
    assert list(df.columns) == ["customers", "value_at_stake", "other"]
    assert show(df, lang=None) is not None and list(show(df).columns) == list(df.columns)


def test_readable_float_has_no_scientific_notation_for_money_sized_numbers():
    from rmanalytics.notebook import readable_float

    assert readable_float(4.926264e06) == "4,926,264"
    assert readable_float(-3.679613e07) == "-36,796,130"
    assert readable_float(1215.047526) == "1,215"
    assert readable_float(2.589932) == "2.59"
    assert readable_float(0.143090) == "0.1431"
    assert readable_float(float("nan")) == "NaN"
    assert "4,926,264" in pd.DataFrame({"x": [4.926264e06]}).to_string()
