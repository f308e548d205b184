"""rfm_scores and rfm_segments: hand-computed cases, ties, order independence, rule engine."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from rmanalytics.labels import label
from rmanalytics.params.segmentation import SegmentParams
from rmanalytics.rfm import BinsCollapsedWarning, SEGMENTS, apply_rules, localize, rfm_scores, rfm_segments, rule
from rmanalytics.rules import Rule


def frame(recency, frequency, monetary):
    n = len(recency)
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "recency_days": recency,
                         "frequency": frequency, "monetary": monetary})


def test_quantile_scores_hand_computed():
    # 10 distinct values: quintile edges of 1..10 are 2.8, 4.6, 6.4, 8.2
    df = frame(recency=list(range(10, 0, -1)), frequency=list(range(1, 11)), monetary=[float(v) for v in range(1, 11)])
    s = rfm_scores(df)
    assert s["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert s["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # recency 10 (oldest) -> R 1; recency 1 (most recent) -> R 5
    assert s["r_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert s.attrs["edges"]["frequency"] == pytest.approx([2.8, 4.6, 6.4, 8.2])
    assert s["fm_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert s["rfm_cell"].iloc[-1] == 555


def test_value_on_edge_goes_to_lower_bin():
    # values 1..5 with bins=4: edges at quantiles .25/.5/.75 = 2, 3, 4 exactly
    df = frame(recency=[1] * 5, frequency=[1, 2, 3, 4, 5], monetary=[1.0] * 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinsCollapsedWarning)
        s = rfm_scores(df, bins=4)
    assert s["f_score"].tolist() == [1, 1, 2, 3, 4]


def test_all_tied_frequencies_share_score_and_warn():
    df = frame(recency=[5, 10, 20, 40, 80, 160], frequency=[1] * 6, monetary=[10.0, 20, 30, 40, 50, 60])
    with pytest.warns(BinsCollapsedWarning, match=r"F score: ties in frequency make 3 of the 4 quantile edges coincide"):
        s = rfm_scores(df)
    assert s["f_score"].tolist() == [1] * 6
    assert s["r_score"].is_monotonic_decreasing


def test_heavy_ties_typical_bank():
    # 70% have 1 transaction, 20% 2, 10% 3: edges (quantiles .2,.4,.6,.8) = 1,1,1,2
    freq = [1] * 7 + [2] * 2 + [3]
    df = frame(recency=list(range(10)), frequency=freq, monetary=[1.0] * 10)
    with pytest.warns(BinsCollapsedWarning):
        s = rfm_scores(df)
    assert s["f_score"].tolist() == [1] * 7 + [4] * 2 + [5]


def test_scores_do_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    df = frame(recency=rng.integers(0, 30, 200), frequency=rng.integers(1, 4, 200), monetary=rng.integers(1, 5, 200) * 10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinsCollapsedWarning)
        a = rfm_scores(df).set_index("customer_id")
        shuffled = df.sample(frac=1.0, random_state=1)
        b = rfm_scores(shuffled).set_index("customer_id").loc[a.index]
    pd.testing.assert_frame_equal(a, b)
    # equal values -> equal scores
    merged = df.set_index("customer_id").join(a)
    assert (merged.groupby("frequency")["f_score"].nunique() == 1).all()
    assert (merged.groupby("recency_days")["r_score"].nunique() == 1).all()


def test_fixed_edges():
    df = frame(recency=[0, 30, 31, 90, 200, 400], frequency=[1, 2, 3, 5, 10, 50], monetary=[0, 100, 1000, 5000, 1e4, 1e6])
    edges = {"recency_days": [30, 90, 180, 365], "frequency": [1, 2, 5, 10], "monetary": [100, 1000, 1e4, 1e5]}
    s = rfm_scores(df, method="fixed", edges=edges)
    assert s["r_score"].tolist() == [5, 4, 4, 3, 2, 1]  # recency equal to an edge -> lower score
    assert s["f_score"].tolist() == [1, 2, 3, 3, 4, 5]
    assert s["m_score"].tolist() == [1, 1, 2, 3, 3, 5]
    with pytest.raises(ValueError, match="must be 4 ascending values"):
        rfm_scores(df, method="fixed", edges={**edges, "frequency": [1, 2]})
    with pytest.raises(ValueError, match="needs edges"):
        rfm_scores(df, method="fixed")


def test_scores_bad_input():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['monetary'\]"):
        rfm_scores(frame([1], [1], [1.0]).drop(columns="monetary"))
    with pytest.raises(ValueError, match="NaN value"):
        rfm_scores(frame([1, 2], [1, np.nan], [1.0, 2.0]))
    with pytest.raises(ValueError, match="bins"):
        rfm_scores(frame([1], [1], [1.0]), bins=1)


def test_fm_score_rounds_half_up():
    df = pd.DataFrame({"customer_id": ["a", "b"], "recency_days": [1, 2], "frequency": [1, 2], "monetary": [2.0, 1.0]})
    s = rfm_scores(df, bins=2)
    # a: F1 M2 -> 1.5 -> 2; b: F2 M1 -> 2
    assert s["fm_score"].tolist() == [2, 2]


GRID = {  # (R, FM) -> segment, the documented standard scheme
    5: ["new_customers", "potential_loyalist", "potential_loyalist", "champions", "champions"],
    4: ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
    3: ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
    2: ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
    1: ["lost", "hibernating", "at_risk", "at_risk", "cant_lose"],
}


def test_standard_segments_cover_the_grid():
    r, fm = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    scores = pd.DataFrame({"customer_id": range(25), "r_score": r.ravel(), "fm_score": fm.ravel(),
                           "f_score": fm.ravel(), "m_score": fm.ravel()})
    seg = rfm_segments(scores, SegmentParams().rules)
    got = {(a, b): s for a, b, s in zip(seg["r_score"], seg["fm_score"], seg["segment"])}
    for rr, row in GRID.items():
        for j, name in enumerate(row, start=1):
            assert got[(rr, j)] == name, (rr, j)
    assert set(seg["segment"]) == set(SEGMENTS)


def test_unmatched_is_explicit_other_and_labels():
    scores = pd.DataFrame({"customer_id": ["a", "b"], "r_score": [7, 5], "fm_score": [7, 5], "f_score": [7, 5],
                           "m_score": [7, 5]})
    seg = rfm_segments(scores, SegmentParams().rules, lang="zh")
    assert seg["segment"].tolist() == ["other", "champions"]
    assert seg["segment_label"].tolist() == ["其他", "冠军客户"]
    assert localize(pd.Series(["cant_lose", "lost"]), "segment", "en").tolist() == ["Can't lose them", "Lost"]
    assert localize(pd.Series(["growth"]), "stage", "zh").tolist() == ["成长爆发期"]
    assert localize(pd.Series(["growth"]), "tier", "zh").tolist() == ["成长级"]
    assert label("segment:champions", "zh") == "冠军客户"
    for s in SEGMENTS:
        assert label(f"segment:{s}", "zh") != f"segment:{s}"


def test_rule_engine_first_match_and_conditions():
    df = pd.DataFrame({"x": [1, 5, 10, np.nan], "tag": ["a", "b", "c", "a"]})
    rules = [rule("low", x=[None, 2]), rule("tagged", tag={"in": ["b", "a"]}), rule("high", x=[5, None]),
             {"label": "never", "when": {"tag": {"not_in": ["a", "b", "c"]}}}]
    out = apply_rules(df, rules, default="other")
    assert out.tolist() == ["low", "tagged", "high", "tagged"]  # NaN never satisfies a range
    assert apply_rules(df, [], default="z").tolist() == ["z"] * 4
    with pytest.raises(ValueError, match=r"column\(s\) \['nope'\]"):
        apply_rules(df, [rule("a", nope=[1, 2])])
    with pytest.raises(ValueError, match="empty"):
        rule("bad", x=[3, 1])
    with pytest.raises(ValueError):
        Rule.model_validate({"label": "bad", "when": {"x": [1, 2, 3]}})
