"""The RM book: current book, unassigned list, health score, priority list, packs (hand-made cases
with known answers, and the issue's done-when checks on the bundled sample)."""

from __future__ import annotations

from pathlib import Path

import os
import numpy as np
import pandas as pd
import pytest

from rmanalytics import book as B
from rmanalytics.churn import current_state
from rmanalytics.churn.worklist import retention_worklist

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
D = pd.Timestamp


def _small():
    customers = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3", "C4", "C5"],
        "open_date": [D("2020-01-01")] * 4 + [D("2025-02-01")],
        "close_date": [pd.NaT, pd.NaT, pd.NaT, D("2024-06-01"), pd.NaT],
        "branch_id": ["O1", "O1", "O2", "O2", "O1"],
        "risk_level": [2, 3, 4, 2, 1],
    })
    rms = pd.DataFrame({
        "rm_id": ["R1", "R2", "R3", "R4"], "outlet": ["O1", "O1", "O2", "O2"],
        "sub_branch": ["S1", "S1", "S2", "S2"], "tier2_branch": ["T"] * 4, "tier1_branch": ["T1"] * 4,
        "exit_date": [pd.NaT, D("2024-03-01"), D("2024-09-01"), pd.NaT],
    })
    assignments = pd.DataFrame({
        # C1: shared R1/R4; C2: R2 left, successor R1; C3: R3 left, no successor (assignment not closed)
        "customer_id": ["C1", "C1", "C2", "C2", "C3", "C4", "C5"],
        "rm_id": ["R1", "R4", "R2", "R1", "R3", "R4", "R1"],
        "start_date": [D("2020-01-01")] * 3 + [D("2024-03-01"), D("2020-01-01"), D("2020-01-01"), D("2025-02-01")],
        "end_date": [pd.NaT, pd.NaT, D("2024-03-01"), pd.NaT, pd.NaT, D("2024-06-01"), pd.NaT],
        "share": [0.6, 0.4, 1.0, 1.0, 1.0, 1.0, 1.0],
    })
    return customers, assignments, rms


def test_current_book_shares_successor_and_unassigned():
    c, a, r = _small()
    book = B.current_book(c, a, r, "2024-12-31")
    got = sorted(zip(book["customer_id"], book["rm_id"], book["share"]))
    assert got == [("C1", "R1", 0.6), ("C1", "R4", 0.4), ("C2", "R1", 1.0)]  # C4 closed, C5 not yet open
    prim = book[book["is_primary"]].set_index("customer_id")["rm_id"]
    assert prim.to_dict() == {"C1": "R1", "C2": "R1"}
    assert set(book["rm_id"]).isdisjoint(B.departed_rms(r, "2024-12-31"))
    un = B.unassigned_customers(c, a, r, "2024-12-31")
    assert un["customer_id"].tolist() == ["C3"]
    row = un.iloc[0]
    assert row["last_rm_id"] == "R3" and row["branch"] == "S2"
    assert row["unassigned_since"] == D("2024-09-01") and row["days_unassigned"] == 121
    lost = B.rm_lost(["C1", "C2", "C3"], a, r, "2024-12-31")
    assert lost.to_dict() == {"C1": 0, "C2": 1, "C3": 1}


def _rm_lost_reference(customer_ids, a, rms, as_of, min_share):
    """The rule in pandas, as rm_lost computed it before it became one SQL statement."""
    as_of = pd.Timestamp(as_of)
    exit_ = a["rm_id"].map(rms.set_index("rm_id")["exit_date"])
    lost = (exit_.notna() & (exit_ <= as_of) & (exit_ >= a["start_date"]) & (a["share"] >= min_share)
            & (a["end_date"].isna() | (a["end_date"] >= exit_)))
    ids = pd.Index(pd.unique(pd.Series(customer_ids)), name="customer_id")
    return pd.Series(ids.isin(set(a.loc[lost, "customer_id"])).astype(int), index=ids, name="rm_left")


def test_rm_lost_from_a_parquet_table_equals_the_frame(tmp_path):
    """Notebook 02 leaves assignments to DuckDB (a Parquet path): the same answer as for a frame,
    and as the rule written in pandas."""
    _, a, r = _small()
    a.to_parquet(tmp_path / "assignments.parquet")
    ids = ["C1", "C2", "C3", "C4", "C5", "C9"]
    for day in ("2024-01-01", "2024-06-01", "2024-12-31"):
        for share in (0.5, 0.9):
            ref = _rm_lost_reference(ids, a, r, day, share)
            pd.testing.assert_series_equal(B.rm_lost(ids, str(tmp_path / "assignments.parquet"), r, day, min_share=share),
                                           ref)
            pd.testing.assert_series_equal(B.rm_lost(ids, a, r, day, min_share=share), ref)


def test_health_drops_missing_components_and_reweights():
    cfg = B.HealthConfig()
    f = pd.DataFrame({"aum": [100.0, 300.0, 200.0], "n_products": [5, 0, 2], "recency_days": [0.0, 90.0, 180.0],
                      "activity_ratio": [np.nan, 1.0, 4.0], "n_tx_recent": [0, 3, 8], "n_tx_baseline": [0, 12, 8],
                      "nps_mean": [np.nan, 10.0, 0.0]})
    h = B.health_score(f, cfg)
    assert h["hc_aum"].tolist() == [0.0, 100.0, 50.0]
    assert h["hc_penetration"].tolist() == [100.0, 0.0, 40.0]
    assert h["hc_recency"].tolist() == pytest.approx([100.0, 50.0, 25.0])
    assert np.isnan(h.loc[0, "hc_activity_trend"]) and h.loc[1, "hc_activity_trend"] == 50.0
    assert h["hc_clv"].isna().all() and h["hc_complaints"].isna().all()
    # customer 0: value (aum 0, penetration 100; weights .5/.25 -> 33.3), behaviour = recency only (100)
    w_v, w_b = 0.4, 0.35
    v0 = (0.5 * 0 + 0.25 * 100) / 0.75
    assert h.loc[0, "health_value"] == pytest.approx(v0)
    assert h.loc[0, "health_behaviour"] == pytest.approx(100.0)
    assert np.isnan(h.loc[0, "health_satisfaction"])
    assert h.loc[0, "health"] == pytest.approx((w_v * 0.75 * v0 + w_b * 0.3 * 100) / (w_v * 0.75 + w_b * 0.3))
    assert h.loc[1, "health_satisfaction"] == 100.0 and h.loc[2, "health_satisfaction"] == 0.0
    assert ((h["health"] >= 0) & (h["health"] <= 100)).all()
    # not zero-filled: a missing NPS must not pull the score down like an NPS of 0 would
    f2 = f.assign(nps_mean=[0.0, 10.0, 0.0])
    assert B.health_score(f2, cfg).loc[0, "health"] < h.loc[0, "health"]


def test_health_config_is_strict():
    with pytest.raises(ValueError, match="unknown health components"):
        B.HealthConfig(component_weights={"aum": 1.0, "wallet": 1.0})


def test_priority_rank_rule_overdue_first_then_value_at_stake():
    book = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "rm_id": ["R1"] * 3 + ["R2"], "share": 1.0,
                         "start_date": D("2020-01-01")})
    cust = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "p_churn": [0.1, 0.5, 0.05, 0.2],
                         "clv_income": [1000.0, 100.0, 10.0, 5.0], "lifecycle_stage": ["mature"] * 4,
                         "last_contact": [D("2024-12-20"), D("2024-12-20"), D("2024-06-01"), pd.NaT],
                         "health": [80.0, 30.0, 60.0, 50.0]})
    p = B.priority_list(book, cust, "2024-12-31")
    r1 = p[p["rm_id"] == "R1"]
    assert r1["customer_id"].tolist() == ["C", "A", "B"]  # C overdue (contact due every 90 days); A 100 > B 50
    assert r1["rank"].tolist() == [1, 2, 3] and bool(r1.iloc[0]["overdue"])
    assert "last contact 213 days ago (due every 90 days)" in r1.iloc[0]["reasons"]
    warned = B.priority_list(book, cust.assign(lifecycle_stage="decline_warning"), "2024-12-31")
    assert "last contact 11 days ago (due at once in this stage)" in warned.set_index("customer_id").loc["A", "reasons"]
    assert "churn risk 50%" in p.set_index("customer_id").loc["B", "reasons"]
    assert "health 30/100" in p.set_index("customer_id").loc["B", "reasons"]
    assert (p["reasons"].str.len() > 0).all()
    assert p.set_index("customer_id").loc["A", "value_at_stake"] == pytest.approx(100.0)


def test_next_actions_seed_rules():
    as_of = D("2024-12-31")
    cust = pd.DataFrame({"lifecycle_stage": ["new", "mature", "growth", "mature"],
                         "last_contact": [D("2024-12-30"), D("2024-12-01"), pd.NaT, D("2024-12-01")],
                         "next_maturity": [pd.NaT, pd.NaT, D("2025-01-20"), pd.NaT],
                         "suitability_breach": [False, False, False, True], "p_churn": 0.01})
    a = B.next_actions(cust, as_of)
    assert a.loc[0, "due_date"] == D("2025-01-02") and a.loc[0, "next_action"] == "scheduled contact"  # 72 h
    assert a.loc[1, "due_date"] == D("2025-03-01")  # quarterly
    assert a.loc[2, "next_action"] == "renewal contact before maturity" and a.loc[2, "due_date"] == D("2024-12-21")
    assert bool(a.loc[2, "overdue"])
    assert a.loc[3, "next_action"] == "review suitability of holdings" and a.loc[3, "due_date"] == as_of


def test_next_actions_reasons_in_rule_order_joined_or_the_value_at_stake():
    """Every reason of a customer, in the rules' order and joined by "; "; an empty warning text adds
    nothing; a customer with no reason is listed for its value at stake."""
    as_of = D("2024-12-31")
    cust = pd.DataFrame({
        "lifecycle_stage": ["mature", "decline_warning", "mature", "mature"],
        "warning_detail": ["no purchase for 3 months", None, "", None],
        "suitability_breach": [True, False, False, False], "rm_left": [1, 0, 0, 0],
        "p_churn": [0.9, 0.1, 0.1, 0.1], "risk_drivers": ["aum_change", "", "", ""],
        "last_contact": [as_of] * 4, "value_at_stake": [10.0, 20.0, 1234.5, 0.0]})
    r = B.next_actions(cust, as_of, horizon_days=180)["reasons"].tolist()
    assert r[0] == ("holds a product above their risk tolerance (suitability); no purchase for 3 months; "
                    "lost their RM (the previous RM left the bank); churn risk 90% within 180 days (raised by aum_change)")
    assert r[1] == "in the decline-warning stage"
    assert r[2] == "value at stake 1,234 CNY"  # the empty warning text is no reason
    assert r[3] == "value at stake 0 CNY"
    assert all(type(x) is str for x in r)


def test_worklist_uses_current_rm_and_value():
    class _M:  # a fitted model stand-in: constant risk, no drivers
        def predict_churn_probability(self, df, h, tenure_col=None):
            return pd.Series(0.5, index=df.index)

        def risk_contributions(self, df):
            return pd.DataFrame({"x": np.zeros(len(df))}, index=df.index)

    active = pd.DataFrame({"customer_id": ["A", "B"], "rm_id": ["R_old", "R_old"], "aum": [1.0, 2.0]})
    current = pd.DataFrame({"customer_id": ["A", "B"], "rm_id": ["R_new", None], "aum": [100.0, 50.0]})
    w = retention_worklist(_M(), active, 90, current=current)
    assert dict(zip(w["customer_id"], w["rm_id"])) == {"A": "R_new", "B": "unassigned"}
    assert dict(zip(w["customer_id"], w["value"])) == {"A": 100.0, "B": 50.0}


# ----------------------------------------------------------------------------- the sample (done-when)
@pytest.fixture(scope="module")
def sample_book(tmp_path_factory):
    from rmanalytics.io import load_tables

    t = load_tables(SAMPLE)
    end = t["transactions"]["date"].max().normalize()
    risk = B.churn_risk_now(t, end)
    clv = B.clv_income(t, end)
    res = B.build_book(t, end, risk=risk, clv=clv, current=current_state(t, end))
    out = tmp_path_factory.mktemp("packs")
    B.write_rm_packs(res["priority"], None, out)
    return t, end, res, out


def test_sample_priority_list_equals_the_merge_it_replaced(sample_book):
    """priority_list adds columns to the book's rows and takes them once (10M customers: every copy
    is GBs); the same frame as the merge / concat / sort / reorder it replaced (kept here)."""
    from rmanalytics.book.priority import next_actions

    _, end, res, _ = sample_book
    book, customers, as_of = res["book"], res["customers"], pd.Timestamp(end).normalize()
    cust = customers.drop_duplicates("customer_id").copy()
    cust["value_at_stake"] = cust["p_churn"].astype(float) * cust["clv_income"].astype(float).fillna(0.0)
    b = book[["customer_id", "rm_id", "share", "start_date"]].rename(columns={"start_date": "assignment_start"})
    rows = b.merge(cust, on="customer_id", how="left").reset_index(drop=True)
    rows = pd.concat([rows, next_actions(rows, as_of)], axis=1)
    rows = rows.sort_values(["rm_id", "overdue", "value_at_stake", "p_churn", "customer_id"],
                            ascending=[True, False, False, False, True], kind="mergesort")
    rows.insert(1, "rank", rows.groupby("rm_id").cumcount() + 1)
    rows = rows.reset_index(drop=True)
    first = ["rm_id", "rank", "customer_id", "share"]
    ref = rows[first + [c for c in rows.columns if c not in first]]
    pd.testing.assert_frame_equal(res["priority"], ref, check_exact=True)
    pd.testing.assert_frame_equal(B.priority_list(book, pd.concat([customers, customers.head(3)]), end), ref,
                                  check_exact=True)  # repeated customers: the first row of each


def test_sample_build_book_from_a_customer_frame_made_first(sample_book):
    """Notebook 05 makes the customer frame first and frees its inputs: the same book."""
    t, end, res, _ = sample_book
    again = B.build_book(t, end, customers=res["customers"].copy())
    for k in ("book", "unassigned", "customers", "priority"):
        pd.testing.assert_frame_equal(again[k], res[k], check_exact=True)
    with pytest.raises(ValueError, match="risk"):
        B.build_book(t, end)


def test_sample_book_from_parquet_customers_and_assignments_equals_frames(sample_book):
    """Notebook 05 leaves customers and assignments to the engine (issue 16): the same book and CLV."""
    t, end, res, _ = sample_book
    lazy = dict(t)
    for k in ("customers", "assignments", "transactions", "balances"):
        lazy[k] = str(SAMPLE / f"{k}.parquet")
    again = B.build_book(lazy, end, customers=res["customers"].copy())
    for k in ("book", "unassigned", "customers", "priority"):
        pd.testing.assert_frame_equal(again[k], res[k], check_exact=True)
    pd.testing.assert_frame_equal(B.clv_income(lazy, end), B.clv_income(t, end), check_exact=True)


def test_current_state_written_by_02_is_reused_only_when_measured_alike(sample_book, tmp_path):
    """02 records today's state (restricted Parquet); 05 reads it back with its settings (attrs)
    and reuses it only for the same day and windows."""
    from rmanalytics.churn import state_fits
    from rmanalytics.report import Recorder

    t, end, _, _ = sample_book
    state = current_state(t, end, recent_days=60)
    Recorder(tmp_path, mask_ids=True).table("current_state", state, csv=False)
    back = pd.read_parquet(tmp_path / "restricted" / "tables" / "current_state.parquet")
    pd.testing.assert_frame_equal(back, state, check_exact=True)
    assert not (tmp_path / "tables" / "current_state.csv").exists()
    assert state_fits(back, end, recent_days=60)
    assert not state_fits(back, end, recent_days=90)
    assert not state_fits(back, end - pd.Timedelta(days=1), recent_days=60)
    assert not state_fits(back, end, recent_days=60, change_days=30)
    assert not state_fits(None, end)
    bare = state.copy()
    bare.attrs = {}
    assert state_fits(bare, end, recent_days=60)  # settings not recorded count as matching


def test_book_inputs_read_from_parquet_give_the_frames_book(tmp_path):
    """book_inputs reads only open customers and started assignments; every day of the hand-made
    case (before, between and after its changes) gives the frames' book and unassigned list."""
    customers, assignments, rms = _small()
    customers.to_parquet(tmp_path / "customers.parquet")
    assignments.to_parquet(tmp_path / "assignments.parquet")
    frames = {"customers": customers, "assignments": assignments, "rms": rms}
    lazy = {"customers": str(tmp_path / "customers.parquet"), "assignments": str(tmp_path / "assignments.parquet"),
            "rms": rms}
    c0, a0 = B.book_inputs(frames, D("2025-01-01"))
    assert c0 is customers and a0 is assignments  # frames: as they are, not copied
    for day in ("2019-12-31", "2020-01-01", "2024-03-01", "2024-06-01", "2024-09-01", "2025-01-31", "2025-02-01"):
        c, a = B.book_inputs(lazy, D(day))
        assert set(c.columns) == {"customer_id", "open_date", "close_date", "branch_id"}
        assert (c["open_date"] <= D(day)).all() and (a["start_date"] <= D(day)).all()
        want = B.current_book(customers, assignments, rms, D(day))
        got = B.current_book(c, a, rms, D(day))
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        pd.testing.assert_frame_equal(B.unassigned_customers(c, a, rms, D(day), book=got),
                                      B.unassigned_customers(customers, assignments, rms, D(day)), check_exact=True)


def test_sample_every_employed_rm_gets_a_pack_with_exactly_its_current_customers(sample_book):
    t, end, res, out = sample_book
    a, rms = t["assignments"], t["rms"]
    running = a[(a["start_date"] <= end) & (a["end_date"].isna() | (a["end_date"] > end))]
    cust = t["customers"]
    open_ids = set(cust.loc[cust["close_date"].isna() | (cust["close_date"] > end), "customer_id"])
    employed = set(rms.loc[rms["exit_date"].isna() | (rms["exit_date"] > end), "rm_id"])
    running = running[running["customer_id"].isin(open_ids) & running["rm_id"].isin(employed)]
    expected = running.groupby("rm_id")["customer_id"].apply(set).to_dict()
    packs = {p.name for p in (out / "by_rm").iterdir()}
    assert packs == set(expected)
    departed = set(B.departed_rms(rms, end))
    assert departed and packs.isdisjoint(departed)
    for rm, ids in expected.items():
        csv = pd.read_csv(out / "by_rm" / rm / "book.csv")
        assert set(csv["Customer"]) == ids and len(csv) == len(ids)
        assert csv["Rank"].tolist() == list(range(1, len(ids) + 1))
        assert csv["Health score (0-100)"].between(0, 100).all()
        assert (csv.loc[csv["Rank"] <= 10, "Reasons"].fillna("").str.len() > 0).all()
        assert (out / "by_rm" / rm / "book.xlsx").stat().st_size > 0 and (out / "by_rm" / rm / "book.html").is_file()


def test_sample_customers_of_departed_rms_are_under_a_successor_or_unassigned(sample_book):
    t, end, res, _ = sample_book
    a, rms = t["assignments"], t["rms"]
    departed = set(B.departed_rms(rms, end))
    cust = t["customers"]
    open_ids = set(cust.loc[cust["close_date"].isna() | (cust["close_date"] > end), "customer_id"])
    served = set(a.loc[a["rm_id"].isin(departed), "customer_id"]) & open_ids
    assert served
    in_book = set(res["book"]["customer_id"])
    assert served <= in_book | set(res["unassigned"]["customer_id"])
    assert not res["book"]["rm_id"].isin(departed).any()


def test_sample_book_carries_the_health_coverage(sample_book):
    """Notebook 05 shows the coverage from build_book's customer frame instead of scoring again."""
    t, end, res, _ = sample_book
    clv = B.clv_income(t, end)
    direct = B.health_score(B.health_features(t, end, current=current_state(t, end), clv=clv)).attrs["coverage"]
    assert res["customers"].attrs["coverage"] == direct


def test_sample_health_validation_table(sample_book):
    t, end, _, _ = sample_book
    v = B.validate_health(t, end - pd.Timedelta(days=180), end)
    assert {"health", "aum_rank (baseline)", "recency (baseline)"} <= set(v["ranking_rule"])
    ok = v.dropna(subset=["churn_auc"])
    assert ok["churn_auc"].between(0, 1).all() and ok["value_concordance"].between(0, 1).all()


def test_packs_least_privilege_language_and_masking(tmp_path):
    pri = pd.DataFrame({"rm_id": ["R1", "R1", "R2"], "rank": [1, 2, 1], "customer_id": ["A", "B", "C"],
                        "share": 1.0, "p_churn": [0.2, 0.1, 0.3], "health": [50.0, 60.0, 70.0],
                        "value_at_stake": [2.0, 1.0, 3.0], "reasons": ["x", "y", "z"], "next_action": "call",
                        "due_date": D("2025-01-01"), "overdue": [True, False, False]})
    sc = pd.DataFrame({"rm_id": ["R1", "R2"], "kpi": ["fee_income"] * 2, "actual": [1.0, 2.0], "target": [2.0, 2.0]})
    B.write_rm_packs(pri, sc, tmp_path, lang="zh")
    r1 = pd.read_csv(tmp_path / "by_rm" / "R1" / "book.csv")
    assert "客户编号" in r1.columns and "排名" in r1.columns and "健康度（0-100）" in r1.columns
    assert set(r1["客户编号"]) == {"A", "B"}
    html = (tmp_path / "by_rm" / "R1" / "book.html").read_text(encoding="utf-8")
    assert ">C<" not in html and "R2" not in html  # nothing of another RM's book
    review = {"team": pd.DataFrame({"rm_id": ["R1", "R2"], "branch": ["S1", "S1"], "total_score": [90.0, 80.0]}),
              "targets": pd.DataFrame(columns=["branch", "kpi", "actual", "target"]),
              "peers": pd.DataFrame({"branch": ["S1"], "rms": [2]})}
    un = pd.DataFrame({"customer_id": ["Z9"], "branch": ["S1"], "last_rm_id": ["R9"]})
    B.write_branch_packs(review, un, tmp_path, mask=lambda df: df.assign(customer_id="masked"))
    text = (tmp_path / "by_branch" / "S1" / "book.html").read_text(encoding="utf-8")
    assert "masked" in text and "Z9" not in text
    assert (tmp_path / "by_branch" / "S1" / "book.xlsx").stat().st_size > 0


def test_rm_pack_top_n_sizes_xlsx_and_html_and_keeps_every_customer_in_the_csv(tmp_path):
    pri = pd.DataFrame({"rm_id": ["R1"] * 3 + ["R2"], "rank": [2, 1, 3, 1], "customer_id": ["B", "A", "C", "D"],
                        "value_at_stake": [2.0, 3.0, 1.0, 1.0], "reasons": ["x", "y", "z", "w"]})
    B.write_rm_packs(pri, None, tmp_path / "all")
    B.write_rm_packs(pri, None, tmp_path / "top", top_n=2)
    r1 = tmp_path / "top" / "by_rm" / "R1"
    assert pd.read_csv(r1 / "book.csv")["Customer"].tolist() == ["A", "B", "C"]  # every customer
    assert (r1 / "book.csv").read_bytes() == (tmp_path / "all" / "by_rm" / "R1" / "book.csv").read_bytes()
    html = (r1 / "book.html").read_text(encoding="utf-8")
    assert "<td>A</td>" in html and "<td>B</td>" in html and "<td>C</td>" not in html
    assert "The first 2 of 3 customers by priority; book.csv lists every customer." in html
    import zipfile
    with zipfile.ZipFile(r1 / "book.xlsx") as z:
        wb = z.read("xl/workbook.xml").decode()
        strings = z.read("xl/sharedStrings.xml").decode()
    assert 'name="priority top 2"' in wb and ">A<" in strings and ">C<" not in strings
    r2 = tmp_path / "top" / "by_rm" / "R2"  # within top_n: the same pack as without it
    for f in ("book.csv", "book.html", "book.xlsx"):
        a, b = (r2 / f).read_bytes(), (tmp_path / "all" / "by_rm" / "R2" / f).read_bytes()
        assert a == b or f == "book.xlsx"  # xlsx: zip timestamps may differ
    with zipfile.ZipFile(r2 / "book.xlsx") as z:
        assert 'name="priority"' in z.read("xl/workbook.xml").decode()


def test_nine_grid_cell_defaults_agree_between_params_and_rfm():
    from rmanalytics.params.segmentation import default_cells as p_cells
    from rmanalytics.rfm.ninegrid import GridCell, default_cells

    assert [GridCell.of(c) for c in p_cells()] == default_cells()
    df = pd.DataFrame({"aum": [100.0, 1e6, 1e7, 100.0], "industry": [None, None, None, "tech"],
                       "risk_level": [1, 5, 2, 3]})
    from rmanalytics.params.segmentation import NineGridParams
    g = NineGridParams()
    from rmanalytics.rfm import grid_cells
    cells = grid_cells(df, asset=g.asset, industry=g.industry, risk=g.risk, cells=g.cells, default=g.default_cell)
    assert cells["cell"].tolist() == ["basic", "wealth_active", "core", "potential"]


def test_pack_workers_default_follows_cpus_and_book_size(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert B.pack_workers(49) == 1  # a small book: one process
    assert B.pack_workers(500) == 2
    assert B.pack_workers(500, jobs=3) == 3  # explicit
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert B.pack_workers(5000) == 4


def test_packs_in_worker_processes_equal_one_process(sample_book, tmp_path):
    _, _, res, out = sample_book
    pri = res["priority"]
    some = sorted(pri["rm_id"].unique())[:12]  # 12 one-RM tasks, at most 4 in flight: the window refills
    assert len(some) == 12
    got = B.write_rm_packs(pri, None, tmp_path, rm_ids=some, jobs=2)
    assert got == [tmp_path / "by_rm" / rm for rm in some]
    for rm in some:
        assert (tmp_path / "by_rm" / rm / "book.csv").read_bytes() == (out / "by_rm" / rm / "book.csv").read_bytes()


def test_pack_csv_reads_back_as_the_localized_frame(tmp_path):
    """book.csv (Arrow's writer): BOM for Excel, text with commas, quotes and newlines quoted,
    numbers exact, missing values empty, booleans and dates readable; mixed columns via pandas."""
    from rmanalytics.book.packs import _csv, _localize

    df = pd.DataFrame({
        "rank": [1, 2, 3],
        "customer_id": ["C1", "C,2", 'C"3'],
        "aum": [1.0, 1234567.891, np.nan],
        "p_churn": [0.1, 1e-7, 0.3333333333333333],
        "reasons": ["活跃下降 47%; 联系", "line\nbreak", None],
        "due_date": pd.to_datetime(["2024-10-06", None, "2024-12-31"]),
        "overdue": [True, False, True],
    })
    path = tmp_path / "book.csv"
    _csv(path, df, "zh")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    want = _localize(df, "zh")
    assert list(back.columns) == list(want.columns)
    pd.testing.assert_series_equal(back.iloc[:, 0], want.iloc[:, 0])
    assert back.iloc[:, 1].tolist() == ["C1", "C,2", 'C"3']
    np.testing.assert_array_equal(back.iloc[:, 2].to_numpy(), df["aum"].to_numpy())  # exact, NaN empty
    np.testing.assert_array_equal(back.iloc[:, 3].to_numpy(), df["p_churn"].to_numpy())
    assert back.iloc[:2, 4].tolist() == ["活跃下降 47%; 联系", "line\nbreak"] and pd.isna(back.iloc[2, 4])
    assert back.iloc[[0, 2], 5].tolist() == ["2024-10-06", "2024-12-31"] and pd.isna(back.iloc[1, 5])
    assert back.iloc[:, 6].tolist() == [True, False, True]
    mixed = pd.DataFrame({"rating": ["A", 3, None]})  # Arrow cannot type it: pandas writes it
    _csv(path, mixed, "en")
    assert pd.read_csv(path, encoding="utf-8-sig").iloc[:, 0].tolist()[:2] == ["A", "3"]
