"""rfm_table / btyd_summary / calibration_holdout: CDNOW exactness, pandas reference, bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmanalytics.rfm import btyd_summary, calibration_holdout, rfm_table
from rmanalytics.rfm.summary import btyd_sql, holdout_sql, rfm_sql

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow"


# ----------------------------------------------------------------------------- helpers
def make_transactions(n_customers: int = 300, seed: int = 1, refunds: bool = True) -> pd.DataFrame:
    """Random transactions with same-day repeats, timestamps and (optionally) refunds."""
    rng = np.random.default_rng(seed)
    n_tx = rng.poisson(6, n_customers) + 1
    ids = np.repeat([f"C{i:05d}" for i in range(n_customers)], n_tx)
    start = pd.Timestamp("2023-01-01")
    first = rng.integers(0, 500, n_customers)
    offs = np.concatenate([f + rng.integers(0, 300, k) for f, k in zip(first, n_tx)])
    ts = start + pd.to_timedelta(offs, unit="D") + pd.to_timedelta(rng.integers(0, 86400, len(ids)), unit="s")
    amt = np.round(rng.gamma(2.0, 50.0, len(ids)), 2)
    if refunds:
        amt[rng.random(len(ids)) < 0.05] *= -1
    df = pd.DataFrame({"customer_id": ids, "date": ts, "amount": amt})
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def ref_rfm(df: pd.DataFrame, end: str) -> pd.DataFrame:
    d = df.assign(day=df["date"].dt.floor("D"))
    d = d[d["day"] <= pd.Timestamp(end)]
    g = d.groupby("customer_id")
    out = pd.DataFrame({
        "recency_days": (pd.Timestamp(end) - g["day"].max()).dt.days,
        "frequency": g.size(),
        "monetary": g["amount"].sum(),
        "first_date": g["day"].min(),
        "last_date": g["day"].max(),
        "tenure_days": (pd.Timestamp(end) - g["day"].min()).dt.days,
        "n_days": g["day"].nunique(),
    }).reset_index()
    out["monetary_mean"] = out["monetary"] / out["frequency"]
    return out


def ref_btyd(df: pd.DataFrame, end: str, unit: float) -> pd.DataFrame:
    d = df.assign(day=df["date"].dt.floor("D"))
    d = d[d["day"] <= pd.Timestamp(end)]
    days = d.groupby(["customer_id", "day"])["amount"].sum().reset_index()
    first = days.groupby("customer_id")["day"].transform("min")
    rep = days[days["day"] > first]
    g = days.groupby("customer_id")
    out = pd.DataFrame({
        "frequency": g.size() - 1,
        "recency": (g["day"].max() - g["day"].min()).dt.days / unit,
        "T": (pd.Timestamp(end) - g["day"].min()).dt.days / unit,
    })
    out["monetary_value"] = rep.groupby("customer_id")["amount"].mean().reindex(out.index).fillna(0.0)
    return out.reset_index()


# ----------------------------------------------------------------------------- CDNOW
def load_cdnow() -> pd.DataFrame:
    raw = pd.read_fwf(CDNOW / "CDNOW_sample.txt", header=None, names=["cid", "customer_id", "date", "cds", "amount"],
                      dtype={"date": str}, widths=[6, 5, 9, 4, 8])
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


def test_cdnow_reproduces_published_summary():
    tx = load_cdnow()
    s = btyd_summary(tx, observation_end="1997-09-30", time_unit_days=7)
    pub = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    pub2 = pd.read_csv(CDNOW / "cdnow_customers_summary.csv")
    assert len(s) == len(pub) == len(pub2) == 2357
    m = pub.merge(s, left_on="ID", right_on="customer_id", how="inner", validate="1:1").merge(
        pub2, on="ID", suffixes=("", "_pub2"))
    assert len(m) == 2357
    assert (m["x"] == m["frequency"]).all()
    assert (m["frequency_pub2"] == m["frequency"]).all()
    np.testing.assert_array_equal(m["t_x"].to_numpy(), m["recency"].round(2).to_numpy())
    np.testing.assert_array_equal(m["T_x"].to_numpy(), m["T_y"].round(2).to_numpy())
    np.testing.assert_array_equal(m["recency_pub2"].to_numpy(), m["recency"].round(2).to_numpy())
    # zbar is rounded half-up to cents
    half_up = np.floor(m["monetary_value"].to_numpy() * 100 + 0.5 + 1e-9) / 100
    np.testing.assert_allclose(half_up, m["zbar"].to_numpy(), atol=1e-9)
    # the 1959 transactions after the calibration end are reported, not hidden
    f = s.attrs["findings"]
    assert f[0]["rule"] == "after_observation_end" and f[0]["n_rows"] == len(tx[tx["date"] > "1997-09-30"])
    # T: a first purchase on 1997-01-01 gives 272 days = 38.857 weeks
    assert s.loc[s["customer_id"] == 1, "T"].item() == pytest.approx(272 / 7)


def test_cdnow_calibration_holdout_matches_pandas():
    tx = load_cdnow()
    ch = calibration_holdout(tx, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit_days=7)
    assert len(ch) == 2357
    hold = tx[tx["date"] > "1997-09-30"].groupby(["customer_id", "date"])["amount"].sum().reset_index()
    g = hold.groupby("customer_id")["amount"]
    exp = pd.DataFrame({"n": g.size(), "mv": g.mean()})
    m = ch.set_index("customer_id").join(exp)
    np.testing.assert_array_equal(m["frequency_holdout"].to_numpy(), m["n"].fillna(0).to_numpy())
    np.testing.assert_allclose(m["monetary_value_holdout"].to_numpy(), m["mv"].fillna(0).to_numpy(), rtol=1e-12)
    assert (ch["duration_holdout"] == (dt.date(1998, 6, 30) - dt.date(1997, 9, 30)).days / 7).all()
    assert ch["frequency_holdout"].sum() == len(hold)


# ----------------------------------------------------------------------------- pandas reference
@pytest.mark.parametrize("end", ["2023-12-31", "2024-06-30"])
def test_rfm_table_equals_pandas(end):
    tx = make_transactions()
    got = rfm_table(tx, observation_end=end)
    exp = ref_rfm(tx, end)
    assert list(got["customer_id"]) == sorted(exp["customer_id"])
    exp = exp.set_index("customer_id").loc[got["customer_id"]].reset_index()
    for c in ("recency_days", "frequency", "tenure_days"):
        np.testing.assert_array_equal(got[c].to_numpy(), exp[c].to_numpy())
    for c in ("first_date", "last_date"):
        assert (got[c].to_numpy() == exp[c].to_numpy()).all()
    for c in ("monetary", "monetary_mean"):
        np.testing.assert_allclose(got[c].to_numpy(), exp[c].to_numpy(), rtol=1e-12, atol=1e-9)
    days = rfm_table(tx, observation_end=end, frequency="days")
    np.testing.assert_array_equal(days["frequency"].to_numpy(), exp["n_days"].to_numpy())


@pytest.mark.parametrize("unit", [1.0, 7.0])
def test_btyd_summary_equals_pandas(unit):
    tx = make_transactions(seed=3)
    end = "2024-03-31"
    got = btyd_summary(tx, observation_end=end, time_unit_days=unit)
    exp = ref_btyd(tx, end, unit).set_index("customer_id").loc[got["customer_id"]].reset_index()
    np.testing.assert_array_equal(got["frequency"].to_numpy(), exp["frequency"].to_numpy())
    for c in ("recency", "T", "monetary_value"):
        np.testing.assert_allclose(got[c].to_numpy(), exp[c].to_numpy(), rtol=1e-12, atol=1e-9)


def test_file_inputs_equal_frame_inputs(tmp_path):
    tx = make_transactions(seed=5)
    pq = tmp_path / "tx.parquet"
    csv = tmp_path / "tx.csv"
    tx.to_parquet(pq)
    tx.assign(date=tx["date"].dt.strftime("%Y-%m-%d")).to_csv(csv, index=False)
    a = btyd_summary(tx, observation_end="2024-01-31")
    b = btyd_summary(pq, observation_end="2024-01-31")
    c = btyd_summary(str(csv), observation_end="2024-01-31")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(a, c, check_exact=False, rtol=1e-12)
    r1 = rfm_table(tx, observation_end="2024-01-31")
    r2 = rfm_table(pq, observation_end="2024-01-31")
    pd.testing.assert_frame_equal(r1, r2, check_exact=False, rtol=1e-12)


def test_refund_options():
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
                       "date": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-09", "2024-01-02"]),
                       "amount": [100.0, -30.0, 50.0, 10.0]})
    inc = rfm_table(tx, observation_end="2024-01-10")
    assert inc.loc[0, "monetary"] == 120.0 and inc.loc[0, "frequency"] == 3
    assert inc.attrs["findings"][0]["rule"] == "refunds_included"
    exc = rfm_table(tx, observation_end="2024-01-10", refunds="exclude")
    assert exc.loc[0, "monetary"] == 150.0 and exc.loc[0, "frequency"] == 2
    with pytest.raises(ValueError, match="1 refund row"):
        rfm_table(tx, observation_end="2024-01-10", refunds="error")
    b = btyd_summary(tx, observation_end="2024-01-10", refunds="exclude")
    assert b.loc[0, "frequency"] == 1 and b.loc[0, "monetary_value"] == 50.0 and b.loc[0, "recency"] == 8.0


def test_hand_computed_small_case():
    tx = pd.DataFrame({"customer_id": ["x", "x", "x", "y"],
                       "date": ["2024-01-01 09:00", "2024-01-01 17:00", "2024-01-15", "2024-02-01"],
                       "amount": [10.0, 5.0, 20.0, 7.0]})
    s = btyd_summary(tx, observation_end="2024-01-29", time_unit_days=7)
    # y's only transaction is after the end: left out and reported
    assert list(s["customer_id"]) == ["x"]
    assert s.loc[0, "frequency"] == 1 and s.loc[0, "recency"] == 2.0 and s.loc[0, "T"] == 4.0
    assert s.loc[0, "monetary_value"] == 20.0
    assert s.attrs["findings"] == [{"rule": "after_observation_end", "n_rows": 1,
                                    "detail": "transactions dated after observation_end 2024-01-29 (last 2024-02-01) left out"}]
    r = rfm_table(tx, observation_end="2024-01-29")
    assert r.loc[0, "recency_days"] == 14 and r.loc[0, "frequency"] == 3
    assert rfm_table(tx, observation_end="2024-01-29", frequency="days").loc[0, "frequency"] == 2
    assert r.loc[0, "monetary"] == 35.0 and r.loc[0, "tenure_days"] == 28
    # the last day is included
    r = rfm_table(tx, observation_end="2024-02-01")
    assert r.set_index("customer_id").loc["y", "recency_days"] == 0


def test_other_column_names_and_default_end():
    tx = pd.DataFrame({"cust": [1, 1, 2], "when": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"]),
                       "value": [1.0, 2.0, 3.0]})
    r = rfm_table(tx, customer_col="cust", date_col="when", amount_col="value")
    assert list(r.columns[:1]) == ["customer_id"] and list(r["recency_days"]) == [0, 1]


# ----------------------------------------------------------------------------- bad input
def base_tx():
    return pd.DataFrame({"customer_id": ["a", "b", "c"], "date": pd.to_datetime(["2024-01-01"] * 3),
                         "amount": [1.0, 2.0, 3.0]})


def test_missing_column():
    with pytest.raises(ValueError, match=r"missing column\(s\) \['amount'\]"):
        rfm_table(base_tx().drop(columns="amount"), observation_end="2024-02-01")


def test_unparseable_dates():
    tx = base_tx().assign(date=["2024-01-01", "not a date", "2024-13-45"])
    with pytest.raises(ValueError, match=r"transactions.date: 2 unparseable date\(s\)"):
        btyd_summary(tx, observation_end="2024-02-01")


def test_numeric_dates_rejected():
    with pytest.raises(ValueError, match="is not a date"):
        rfm_table(base_tx().assign(date=[20240101] * 3), observation_end="2024-02-01")


def test_nan_amounts():
    with pytest.raises(ValueError, match=r"transactions.amount: 1 null/NaN amount\(s\) \(customers \['b'\]\)"):
        rfm_table(base_tx().assign(amount=[1.0, np.nan, 3.0]), observation_end="2024-02-01")


def test_mixed_type_ids():
    tx = base_tx().assign(customer_id=pd.Series(["a", 2, "c"], dtype=object))
    with pytest.raises(ValueError, match="mixed-type customer ids"):
        rfm_table(tx, observation_end="2024-02-01")


def test_null_ids():
    tx = base_tx().assign(customer_id=["a", None, "c"])
    with pytest.raises(ValueError, match="null customer id"):
        btyd_summary(tx, observation_end="2024-02-01")


def test_observation_end_before_all_data():
    with pytest.raises(ValueError, match="observation_end 2023-01-01 is before all transactions"):
        btyd_summary(base_tx(), observation_end="2023-01-01")


def test_file_input_errors(tmp_path):
    p = tmp_path / "bad.parquet"
    base_tx().assign(amount=[1.0, None, 3.0]).to_parquet(p)
    with pytest.raises(ValueError, match=r"1 null/NaN amount"):
        rfm_table(p, observation_end="2024-02-01")
    p2 = tmp_path / "bad.csv"
    base_tx().assign(date=["2024-01-01", "2024-01-02", "garbage"]).to_csv(p2, index=False)
    with pytest.raises(ValueError, match="1 unparseable date"):
        rfm_table(p2, observation_end="2024-02-01")
    p3 = tmp_path / "nocol.parquet"
    base_tx().drop(columns="date").to_parquet(p3)
    with pytest.raises(ValueError, match="missing column"):
        btyd_summary(p3, observation_end="2024-02-01")


def test_sql_transpiles_to_spark():
    """Every aggregation's SQL translates to Spark SQL without constructs sqlglot flags as unsupported
    (results on Spark are compared in tests/unit/test_spark_parity.py)."""
    pytest.importorskip("sqlglot")
    from rmanalytics.engine import transpile
    from rmanalytics.rfm.lifecycle import activity_sql
    from rmanalytics.rfm.summary import _findings_sql
    from rmanalytics.rfm.value import latest_balances_sql
    from rmanalytics.rfm.warning import family_last_purchase_sql

    w = "SELECT customer_id, CAST(date AS DATE) AS date, amount FROM src"
    d = dt.date(2024, 1, 1)
    sqls = [rfm_sql(w, d), rfm_sql(w, d, distinct_days=True), btyd_sql(w, d, 7.0),
            holdout_sql(w, "SELECT customer_id FROM src GROUP BY customer_id"), activity_sql(w, d, d),
            family_last_purchase_sql(w, ["wealth"], "DATE '2024-01-01'"), latest_balances_sql("DATE '2024-01-01'"),
            _findings_sql(w, d)]
    for sql in sqls:
        out = transpile(sql, "spark")
        assert "7.0 AS DOUBLE" in out or "/ 7" not in out  # no DECIMAL division (engine rule 4)
    assert "MIN_BY" in transpile(btyd_sql(w, d, 7.0), "spark")
