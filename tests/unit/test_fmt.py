import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from rmanalytics import fmt


@pytest.mark.parametrize("x, lang, currency, expected", [
    (36_796_130, "en", "CNY", "CNY 36.8M"),
    (36_796_130, "zh", "CNY", "3,679.6万元"),
    (123_456_789, "zh", "CNY", "1.23亿元"),
    (2_500_000_000, "zh", "CNY", "25.0亿元"),
    (1215.047526, "en", "CNY", "CNY 1,215"),
    (1215.047526, "zh", "CNY", "1,215元"),
    (-45_000, "en", "USD", "USD -45.0k"),
    (-45_000, "zh", "USD", "-4.50万美元"),
    (9_999, "zh", "CNY", "9,999元"),
    (np.nan, "en", "CNY", "—"),
])
def test_money(x, lang, currency, expected):
    assert fmt.money(x, lang, currency) == expected


def test_counts_percent_and_scale():
    assert fmt.count(1234567) == "1,234,567"
    assert fmt.count(None) == "—"
    assert fmt.percent(0.1234) == "12.3%"
    assert fmt.scale(3.679613e7, "zh") == (1e4, "万")
    assert fmt.scale(3.679613e8, "zh") == (1e8, "亿")
    assert fmt.scale(3.679613e7, "en") == (1e6, "M")
    assert fmt.currency_unit("CNY", "zh") == "元" and fmt.currency_unit("CNY", "en") == "CNY"


def test_money_axis_has_units_and_no_offset():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure()
    ax = fig.subplots()
    values = [1.2e8, 3.5e8, 2.0e8]
    ax.bar(range(3), values)
    assert fmt.money_axis(ax, values, lang="zh", label="中间业务收入") == (1e8, "亿元")
    assert ax.get_ylabel() == "中间业务收入（亿元）"
    assert fmt.money_axis(ax, values, lang="en", label="Fee income") == (1e6, "CNY M")
    assert ax.get_ylabel() == "Fee income (CNY M)"
    FigureCanvasAgg(fig).draw()
    assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e8" in the corner
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "300" in ticks, ticks


def test_format_table_and_bar_labels():
    df = pd.DataFrame({"customers": [1234, 5], "share": [0.5, 0.25], "aum": [3.6e7, 1200.0], "x": [1, 2]})
    out = fmt.format_table(df, {"customers": "count", "share": "percent", "aum": "money"}, lang="zh")
    assert out.iloc[0].tolist() == ["1,234", "50.0%", "3,600.0万元", 1]
    assert df["customers"].dtype.kind == "i"  # the input is not changed
    with pytest.raises(ValueError, match="unknown kind"):
        fmt.format_table(df, {"x": "money!"})
    fig = Figure()
    ax = fig.subplots()
    ax.bar([0, 1], [1000, 2500])
    fmt.bar_labels(ax)
    assert [t.get_text() for t in ax.texts] == ["1,000", "2,500"]
