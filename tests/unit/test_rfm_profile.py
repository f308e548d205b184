"""Segment profile, migration matrix, nine-grid, wallet share, plots, and the whole snapshot on
synthetic customers whose segment is known by construction."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

matplotlib.use("Agg")

from rmanalytics.params.segmentation import Band, NineGridParams, SegmentationParams  # noqa: E402
from rmanalytics.rfm import (  # noqa: E402
    band, migration_matrix, nine_grid, plot_migration_heatmap, plot_nine_grid, plot_rf_heatmap, plot_segment_bars,
    segment_profile, segment_snapshot, wallet_share_proxy,
)

END = pd.Timestamp("2024-12-31")


def designed_bank(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Five groups of 40 customers with behaviour that puts them in a known segment."""
    rng = np.random.default_rng(seed)
    groups = {  # name: (days since last tx range, n transactions, amount per tx, expected segment)
        "champ": ((0, 10), 30, 5000.0, "champions"),
        "cant": ((600, 700), 30, 5000.0, "cant_lose"),
        "lost": ((900, 1000), 1, 10.0, "lost"),
        "new": ((0, 10), 1, 10.0, "new_customers"),
        "mid": ((100, 170), 5, 300.0, "need_attention"),
    }
    rows, truth, customers = [], {}, []
    for g, ((lo, hi), n, amt, seg) in groups.items():
        for i in range(40):
            cid = f"{g}{i:02d}"
            truth[cid] = seg
            last = END - pd.Timedelta(days=int(rng.integers(lo, hi)))
            first = last - pd.Timedelta(days=(0 if n == 1 else 300))
            dates = [first] if n == 1 else list(pd.date_range(first, last, periods=n).normalize())
            rows += [(cid, d, amt * (1 + 0.01 * rng.random())) for d in dates]
            customers.append((cid, first - pd.Timedelta(days=30 if g != "new" else 0), "retail", int(rng.integers(1, 6))))
    tx = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    cust = pd.DataFrame(customers, columns=["customer_id", "open_date", "customer_type", "risk_level"])
    bal = pd.DataFrame({"customer_id": cust["customer_id"], "snapshot_date": END,
                        "aum": rng.gamma(1.0, 1e6, len(cust)), "n_products": rng.integers(1, 6, len(cust))})
    return tx, cust, bal, truth


DEFAULT_ARGS = SegmentationParams().snapshot_args()
FIXED = SegmentationParams.from_mapping({"scores": {"method": "fixed", "edges": {
    "recency_days": [30, 90, 180, 365], "frequency": [1, 2, 5, 10], "monetary": [100, 1000, 10_000, 100_000]}}})


def test_snapshot_recovers_designed_segments():
    tx, cust, bal, truth = designed_bank()
    seg = segment_snapshot(tx, observation_end=END, customers=cust, balances=bal, **FIXED.snapshot_args())
    got = dict(zip(seg["customer_id"], seg["segment"]))
    assert got == truth
    s = seg.set_index("customer_id")
    assert (s.loc[[c for c in truth if c.startswith("new")], "lifecycle_stage"] == "new").all()
    assert (s.loc[[c for c in truth if c.startswith("cant")], "tier"] == "attention").all()
    assert {"value", "value_pct", "wallet_share_proxy", "aum", "n_products", "relationship_days"} <= set(seg.columns)


def test_segment_profile_hand_computed():
    df = pd.DataFrame({"segment": ["a", "a", "b"], "recency_days": [1, 3, 10], "frequency": [2, 4, 1],
                       "monetary": [10.0, 30.0, 5.0], "r_score": [5, 4, 1], "f_score": [3, 5, 1],
                       "m_score": [4, 4, 1], "value": [100.0, 300.0, 600.0], "n_products": [1, 3, 2],
                       "wallet_share_proxy": [0.5, 1.0, 0.2]})
    p = segment_profile(df, order=["b", "a"])
    assert list(p.index) == ["b", "a"]
    assert p.loc["a", "customers"] == 2 and p.loc["a", "customer_share"] == pytest.approx(2 / 3)
    assert p.loc["a", "value"] == 400.0 and p.loc["a", "value_share"] == pytest.approx(0.4)
    assert p.loc["a", "mean_frequency"] == 3.0 and p.loc["a", "mean_r_score"] == 4.5
    assert p.loc["a", "product_penetration"] == 2.0 and p.loc["a", "wallet_share_proxy"] == 0.75


def test_migration_matrix_accounts_for_everyone():
    before = pd.DataFrame({"customer_id": ["x", "y", "z"], "segment": ["a", "a", "b"]})
    after = pd.DataFrame({"customer_id": ["x", "y", "w"], "segment": ["a", "b", "b"]})
    m = migration_matrix(before, after, order=["a", "b"])
    assert list(m.index) == ["a", "b", "(absent)"] and list(m.columns) == ["a", "b", "(absent)"]
    assert m.loc["a", "a"] == 1 and m.loc["a", "b"] == 1 and m.loc["b", "(absent)"] == 1 and m.loc["(absent)", "b"] == 1
    assert m.to_numpy().sum() == 4
    n = migration_matrix(before, after, order=["a", "b"], normalize=True)
    assert n.loc["a"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="duplicate"):
        migration_matrix(pd.concat([before, before]), after)


def test_band_and_nine_grid():
    assert band(pd.Series([0, 499_999, 500_000, 6e6, np.nan]), [500_000, 6e6], ["m", "a", "p"]).tolist() == \
        ["m", "m", "a", "p", "unknown"]
    df = pd.DataFrame({"aum": [1e5, 1e6, 1e7, 2e5], "risk_level": [1, 3, 5, 2]})
    d = NineGridParams()
    g = nine_grid(df, rows=d.rows, cols=d.cols)
    assert len(g) == 9 and g["customers"].sum() == 4
    cell = g.set_index(["row_band", "col_band"])
    assert cell.loc[("aum_mass", "risk_low"), "customers"] == 2
    assert cell.loc[("aum_mass", "risk_low"), "value"] == 3e5
    assert cell.loc[("aum_private", "risk_high"), "value_share"] == pytest.approx(1e7 / 11.3e6)
    other = nine_grid(df.assign(x=[1, 2, 3, 4]), rows=Band(column="x", edges=[3], labels=["lo", "hi"]),
                      cols={"column": "risk_level", "edges": [3], "labels": ["r1", "r2"]}, value="aum")
    assert other["customers"].tolist() == [1, 1, 1, 1] and other["row_band"].tolist() == ["lo", "lo", "hi", "hi"]
    with pytest.raises(ValueError, match="lacks"):
        nine_grid(df.drop(columns="risk_level"), rows=d.rows, cols=d.cols)
    # a categorical attribute (industry) against AUM
    cat = nine_grid(df.assign(industry=["tech", "trade", None, "tech"]), rows={"column": "industry"},
                    cols=Band(column="aum", edges=[5e5], labels=["small", "large"]))
    assert cat["row_band"].unique().tolist() == ["tech", "trade", "unknown"]
    assert cat.set_index(["row_band", "col_band"]).loc[("tech", "small"), "customers"] == 2


def test_wallet_share_proxy():
    df = pd.DataFrame({"aum": [10.0, 20.0, 30.0, 1000.0], "peer": ["a", "a", "a", "b"]})
    w = wallet_share_proxy(df, peer_columns=["peer"], quantile=1.0)
    assert w.tolist() == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0, 1.0]


def test_plots_return_figures():
    tx, cust, bal, _ = designed_bank(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = segment_snapshot(tx, observation_end=END, customers=cust, balances=bal, **DEFAULT_ARGS)
        before = segment_snapshot(tx, observation_end=END - pd.Timedelta(days=90), customers=cust, balances=bal,
                                  **DEFAULT_ARGS)
    prof = segment_profile(seg)
    figs = [plot_rf_heatmap(seg), plot_segment_bars(prof),
            plot_migration_heatmap(migration_matrix(before, seg, normalize=True)),
            plot_nine_grid(nine_grid(seg, rows=NineGridParams().rows, cols=NineGridParams().cols))]
    for f in figs:
        assert isinstance(f, Figure) and f.axes


def test_params_yaml_equals_model_defaults():
    import yaml
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "params" / "01_segmentation.yaml").read_text(encoding="utf-8"))
    assert SegmentationParams.from_mapping(data) == SegmentationParams()
