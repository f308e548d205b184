"""CLV discounting, validation tables, RM tables, plots and the notebook parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from rmanalytics.loyalty import (
    BetaGeoModel,
    GammaGammaModel,
    by_segment,
    clv_deciles,
    customer_lifetime_value,
    holdout_by_frequency,
    holdout_errors,
    holdout_predictions,
    loyalty_scores,
    p_alive_calibration,
    p_alive_matrix,
    period_discount_rate,
    plot_clv_deciles,
    plot_holdout_by_frequency,
    plot_p_alive_matrix,
    plot_tracking,
    tracking,
)

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow"
BG = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
GG = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    df = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    df = df.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
    df["customer_id"] = df["customer_id"].astype(str)
    return df


def test_period_discount_rate():
    assert period_discount_rate(0.10, "year") == pytest.approx(1.1 ** (365.25 / 365) - 1)
    assert period_discount_rate(0.10, 365) == pytest.approx(0.10)
    assert (1 + period_discount_rate(0.10, "month")) ** 12 == pytest.approx(1.1 ** (365.25 / 365), rel=1e-12)
    assert period_discount_rate(0.10, "week") == pytest.approx(1.1 ** (7 / 365) - 1)
    with pytest.raises(ValueError, match="time_unit"):
        period_discount_rate(0.1, "fortnight")


def test_clv_hand_computed():
    one = pd.DataFrame({"customer_id": ["c1"], "frequency": [2], "recency": [30.43], "T": [38.86],
                        "monetary_value": [22.35]})
    # 2 periods of 4 weeks (28 days), 10% a year, model in weeks
    out = customer_lifetime_value(BG, GG, one, horizon=56, discount_rate=0.10, time_unit=28)
    e1 = BG.expected_purchases(4.0, 2, 30.43, 38.86)
    e2 = BG.expected_purchases(8.0, 2, 30.43, 38.86)
    m = 6.25 * (15.44 + 22.35 * 2) / (6.25 * 2 + 3.74 - 1)
    d = 1.1 ** (28 / 365) - 1
    hand = (e1 / (1 + d) + (e2 - e1) / (1 + d) ** 2) * m
    assert out["clv"].iloc[0] == pytest.approx(hand, rel=1e-12)
    assert out["expected_purchases"].iloc[0] == pytest.approx(e2, rel=1e-12)
    assert out["expected_value"].iloc[0] == pytest.approx(m, rel=1e-12)
    # no discounting: CLV = E[purchases over the horizon] x E[M]
    flat = customer_lifetime_value(BG, GG, one, horizon=56, discount_rate=0.0, time_unit="month")
    assert flat["clv"].iloc[0] == pytest.approx(e2 * m, rel=1e-12)
    # a partial last period is cut at the horizon
    part = customer_lifetime_value(BG, GG, one, horizon=40, discount_rate=0.10, time_unit=28)
    e40 = BG.expected_purchases(40 / 7, 2, 30.43, 38.86)
    hand = (e1 / (1 + d) + (e40 - e1) / 1.1 ** (40 / 365)) * m
    assert part["clv"].iloc[0] == pytest.approx(hand, rel=1e-12)


def test_clv_consistent_across_time_units(summary):
    tot = {u: customer_lifetime_value(BG, GG, summary, horizon=364, discount_rate=0.10, time_unit=u)["clv"].sum()
           for u in ("day", "week", "month", "quarter")}
    # coarser periods discount purchases to later period ends: values fall as the period grows,
    # and converge as it shrinks
    assert tot["day"] > tot["week"] > tot["month"] > tot["quarter"]
    assert abs(tot["day"] - tot["week"]) < abs(tot["day"] - tot["month"]) < abs(tot["day"] - tot["quarter"])
    assert tot["week"] == pytest.approx(tot["day"], rel=2e-3)
    assert tot["month"] == pytest.approx(tot["day"], rel=1e-2)
    # continuous-discounting limit by a fine grid
    fine = customer_lifetime_value(BG, GG, summary.head(50), horizon=364, discount_rate=0.10, time_unit=0.25)
    day = customer_lifetime_value(BG, GG, summary.head(50), horizon=364, discount_rate=0.10, time_unit="day")
    assert day["clv"].sum() == pytest.approx(fine["clv"].sum(), rel=5e-4)


def test_clv_rejects_bad_input(summary):
    with pytest.raises(ValueError, match="horizon"):
        customer_lifetime_value(BG, GG, summary, horizon=0, discount_rate=0.1)
    bad = summary.head(3).copy()
    bad.loc[0, "recency"] = 100.0
    with pytest.raises(ValueError, match="recency <= T"):
        customer_lifetime_value(BG, GG, bad, horizon=30, discount_rate=0.1)


@pytest.fixture(scope="module")
def cdnow_holdout():
    rfm = pytest.importorskip("rmanalytics.rfm")
    tx = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["customer_id", "sid", "date", "cds", "amount"])
    tx["customer_id"] = tx["customer_id"].astype(str)
    tx["date"] = pd.to_datetime(tx["date"].astype(str))
    tx = tx[["customer_id", "date", "amount"]]
    ch = rfm.calibration_holdout(tx, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit_days=7)
    return tx, ch


def test_holdout_validation_on_cdnow(cdnow_holdout):
    tx, ch = cdnow_holdout
    m = BetaGeoModel().fit(ch)
    # the raw transactions give exactly the published calibration fit
    assert round(m.params_["r"], 3) == 0.243 and round(m.log_likelihood_, 1) == -9582.4
    pred = holdout_predictions(m, ch)
    assert len(pred) == 2357
    np.testing.assert_allclose(pred["predicted_holdout"],
                               m.expected_purchases(39.0, ch["frequency"], ch["recency"], ch["T"]), rtol=1e-12)
    bf = holdout_by_frequency(pred, max_frequency=7)
    assert list(bf.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert bf["customers"].sum() == 2357
    assert bf.loc["0", "customers"] == 1411
    tr = tracking(m, ch, tx, calibration_end="1997-09-30", observation_end="1998-06-30")
    # actual cumulative repeat purchases at the end = calibration repeats + holdout purchase days
    assert tr["actual"].iloc[-1] == ch["frequency"].sum() + ch["frequency_holdout"].sum()
    cal_last = tr[tr["period"] == "calibration"].iloc[-1]
    assert cal_last["actual"] == ch["frequency"].sum()
    # the model's cumulative expectation at the calibration end is close to the actual (in-sample)
    assert cal_last["predicted"] == pytest.approx(cal_last["actual"], rel=0.03)
    err = holdout_errors(pred, bf, tr)
    assert err.loc["total_actual", "value"] == ch["frequency_holdout"].sum()
    assert err.loc["total_predicted", "value"] == pytest.approx(pred["predicted_holdout"].sum())
    assert abs(err.loc["total_rel_error", "value"]) < 0.2
    cal = p_alive_calibration(pred)
    assert cal["customers"].sum() == 2357
    # customers the model rates more likely to buy do buy more (top vs bottom decile)
    assert cal["actual_active"].iloc[-1] > cal["actual_active"].iloc[0]
    for fig in (plot_tracking(tr), plot_holdout_by_frequency(bf)):
        assert isinstance(fig, Figure)


def test_rm_tables(summary):
    mat = p_alive_matrix(BG, summary=summary, n_recency=10)
    assert mat.index.name == "frequency" and mat.columns.name == "recency"
    assert mat.loc[0, 0.0] == 1.0 and np.isnan(mat.iloc[0, 1])
    # P(alive) grows with recency at fixed frequency
    assert (np.diff(mat.loc[3].to_numpy()) > 0).all()
    assert isinstance(plot_p_alive_matrix(mat), Figure)
    ls = loyalty_scores(BG, summary, horizon=39)
    assert ls["loyalty_score"].between(0, 100).all()
    assert ls.loc[ls["expected_purchases"].idxmax(), "loyalty_score"] == 100
    clv = customer_lifetime_value(BG, GG, summary, horizon=365, discount_rate=0.1)
    dec = clv_deciles(clv)
    assert list(dec.index) == list(range(1, 11))
    assert dec["customers"].sum() == len(summary)
    assert dec["total_clv"].sum() == pytest.approx(clv["clv"].sum())
    assert dec["mean_clv"].is_monotonic_decreasing
    assert dec["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    assert isinstance(plot_clv_deciles(dec), Figure)
    values = clv.merge(ls[["customer_id", "loyalty_score"]], on="customer_id")
    seg = pd.DataFrame({"customer_id": summary["customer_id"].iloc[:-5],
                        "tier": np.where(summary["frequency"].iloc[:-5] > 2, "strategic", "basic")})
    bs = by_segment(values, seg, "tier")
    assert bs["customers"].sum() == len(summary)  # customers without a segment are kept
    assert bs.loc["(none)", "customers"] == 5
    assert bs["total_clv"].sum() == pytest.approx(clv["clv"].sum())
    assert bs.loc["strategic", "mean_clv"] > bs.loc["basic", "mean_clv"]


def test_params_model():
    from rmanalytics.params.loyalty import LoyaltyParams

    p = LoyaltyParams.from_mapping({})
    assert p.time_unit_days == 7 and p.calibration_end is None and p.segments_path is None
    p = LoyaltyParams.from_mapping({"calibration_end": "2024-06-30", "observation_end": "2024-12-31"})
    assert str(p.calibration_end) == "2024-06-30"
    with pytest.raises(ValueError, match="calibration_end"):
        LoyaltyParams.from_mapping({"calibration_end": "2025-01-30", "observation_end": "2024-12-31"})
    with pytest.raises(ValueError, match="time_unit_days"):
        LoyaltyParams.from_mapping({"time_unit_days": 0})
    with pytest.raises(ValueError, match="horizon"):
        LoyaltyParams.from_mapping({"horizon": 10})


def test_yaml_params_are_valid():
    import yaml

    from rmanalytics.params.loyalty import LoyaltyParams

    root = Path(__file__).resolve().parents[2] / "params"
    files = sorted(root.glob("03_loyalty_clv*.yaml"))
    assert {f.name for f in files} >= {"03_loyalty_clv.yaml", "03_loyalty_clv.ci.yaml", "03_loyalty_clv.zh.yaml",
                                        "03_loyalty_clv.monthly.yaml"}
    defaults = LoyaltyParams.from_mapping({})
    for f in files:
        values = yaml.safe_load(f.read_text()) or {}
        LoyaltyParams.from_mapping(values)
        if f.name == "03_loyalty_clv.yaml":
            assert LoyaltyParams.from_mapping(values) == defaults


def test_models_per_group(summary, cdnow_holdout):
    from rmanalytics.loyalty import (apply_by_group, calibration_split, fit_models, params_table, spend_model_check,
                                     tracking_by_group)

    tx, ch = cdnow_holdout
    ch = ch.assign(group=np.where(ch["customer_id"].astype(int) % 2 == 0, "even", "odd"))
    models = fit_models(ch, by="group")
    assert set(models) == {"even", "odd"}
    assert sum(m.n_customers for m in models.values()) == len(ch)
    # each group's model equals a fit on that group alone
    alone = BetaGeoModel().fit(ch[ch["group"] == "odd"])
    assert models["odd"].bgnbd.params_["r"] == pytest.approx(alone.params_["r"], rel=1e-8)
    tab = params_table(models, truth={"odd": {"r": 0.25}})
    assert len(tab) == 2 * (4 + 3) and tab["truth"].notna().sum() == 1
    pred = apply_by_group(models, ch, "group", lambda m, g: holdout_predictions(m.bgnbd, g))
    assert list(pred.index) == list(ch.index) and (pred["group"] == ch["group"]).all()
    tr = tracking_by_group(models, ch, tx, "group", calibration_end="1997-09-30", observation_end="1998-06-30")
    assert tr["actual"].iloc[-1] == ch["frequency"].sum() + ch["frequency_holdout"].sum()
    with pytest.raises(KeyError, match="group"):
        fit_models(ch, by="nope")
    split = calibration_split(ch, "group")
    assert split["customers"].sum() == len(ch) and split.loc["odd", "repeat_buyers"] == (
        ch.loc[ch["group"] == "odd", "frequency"] > 0).sum()
    assert split["holdout_purchases"].sum() == ch["frequency_holdout"].sum()
    assert calibration_split(ch, None).index.tolist() == ["all"]
    check = spend_model_check(models)
    assert list(check.index) == ["even", "odd"] and (check["nonpositive_spend_excluded"] == 0).all()
