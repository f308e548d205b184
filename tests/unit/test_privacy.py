"""Keyed pseudonyms (HMAC-SHA256), the key's sources, collision bound, masking of frames and text,
and the owner-only restricted area."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmanalytics import privacy
from rmanalytics.errors import ParameterError
from rmanalytics.privacy import MaskKey, collision_bound, load_key, mask_frame, mask_id, mask_text

KEY = MaskKey.from_secret("unit-test-secret-key-0123456789")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# ----------------------------------------------------------------------------- pseudonyms
def test_mask_id_is_hmac_sha256_rfc4231_vector():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert mask_id("what do ya want for nothing?", b"Jefe") == "C#" + want[:privacy.PSEUDONYM_HEX]
    assert mask_id("what do ya want for nothing?", b"Jefe", hex_digits=64) == "C#" + want


def test_same_key_same_pseudonym_other_key_other_pseudonym():
    other = MaskKey.from_secret("another-secret-key-9876543210")
    assert mask_id("C0002071", KEY) == mask_id("C0002071", MaskKey.from_secret("unit-test-secret-key-0123456789"))
    assert mask_id("C0002071", KEY) != mask_id("C0002071", other)
    assert mask_id(None, KEY) is None and math.isnan(mask_id(float("nan"), KEY))
    assert len(mask_id("C1", KEY)) == 2 + privacy.PSEUDONYM_HEX


def test_pseudonym_is_not_an_unkeyed_hash():
    """The old scheme (sha256 of 'rmanalytics:' + id, a public constant) could be rebuilt by
    enumerating ids; no unkeyed hash of the id may equal the pseudonym."""
    cid = "C0002071"
    p = mask_id(cid, KEY)[2:]
    unkeyed = [hashlib.new(a, s.encode()).hexdigest() for a in ("sha256", "sha1", "md5")
               for s in (cid, f"rmanalytics:{cid}")]
    unkeyed += [hmac.new(k, cid.encode(), hashlib.sha256).hexdigest() for k in (b"", b"rmanalytics")]
    assert all(not h.startswith(p) for h in unkeyed)


def test_collision_bound_at_100m_customers():
    # birthday bound n(n-1)/2 / 2^80 at n = 1e8
    b = collision_bound(1e8)
    assert b == pytest.approx(1e8 * (1e8 - 1) / 2 / 2**80) and b < 1e-8
    assert b == pytest.approx(4.1e-9, rel=0.01)
    assert collision_bound(1e8, bits=40) == 1.0  # 10 hex digits (the old length) would collide


def test_truncated_hmac_collides_at_the_birthday_rate():
    """With 32 bits kept, 200 000 ids must give about n^2 / 2^33 = 4.66 colliding pairs (Poisson):
    the HMAC behaves like a uniform random value, so the bound above applies to the 80-bit pseudonym."""
    n = 200_000
    ids = [f"C{i:07d}" for i in range(n)]
    secret = KEY.secret
    short = [hmac.new(secret, s.encode(), hashlib.sha256).digest()[:4] for s in ids]
    counts = pd.Series(short).value_counts()
    pairs = int((counts * (counts - 1) // 2).sum())
    expected = n * (n - 1) / 2 / 2**32
    assert expected == pytest.approx(4.66, abs=0.01)
    assert pairs <= 16  # P(Poisson(4.66) > 16) < 1e-4
    full = {mask_id(s, KEY) for s in ids}
    assert len(full) == n  # and no collision at full length


# ----------------------------------------------------------------------------- the key
def test_key_sources_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv(privacy.CONFIG_DIR_ENV, str(tmp_path / "cfg"))
    keyfile = tmp_path / "k.key"
    keyfile.write_text("file-secret-0123456789abcdef\n")
    keyfile.chmod(0o600)
    monkeypatch.setenv(privacy.KEY_ENV, "env-secret-0123456789abcdef")
    monkeypatch.setenv(privacy.KEY_FILE_ENV, str(keyfile))
    assert load_key(keyfile).source == "parameter" and load_key(keyfile).secret == b"file-secret-0123456789abcdef"
    assert load_key().source == "env" and load_key().secret == b"env-secret-0123456789abcdef"
    monkeypatch.delenv(privacy.KEY_ENV)
    assert load_key().source == "env-file" and load_key().secret == b"file-secret-0123456789abcdef"
    monkeypatch.delenv(privacy.KEY_FILE_ENV)
    assert not (tmp_path / "cfg").exists()


def test_key_generated_once_owner_only_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    monkeypatch.delenv(privacy.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(privacy.CONFIG_DIR_ENV, str(tmp_path / "cfg"))
    with pytest.raises(ParameterError, match="no mask key"):
        load_key(create=False)
    k1 = load_key()
    path = tmp_path / "cfg" / "mask.key"
    assert k1.created and k1.path == str(path) and _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert "generated" in k1.describe() and k1.fingerprint in k1.describe()
    assert k1.secret.decode() not in repr(k1) and k1.secret.decode() not in k1.describe()
    assert len(k1.secret) == 64  # 32 random bytes, hex
    k2 = load_key()
    assert k2.source == "config" and k2.secret == k1.secret and k2.fingerprint == k1.fingerprint
    # another user/config folder gets another random key
    monkeypatch.setenv(privacy.CONFIG_DIR_ENV, str(tmp_path / "cfg2"))
    assert load_key().secret != k1.secret


def test_config_dir_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv(privacy.CONFIG_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert privacy.config_dir() == tmp_path / "rmanalytics"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert privacy.config_dir() == Path.home() / ".config" / "rmanalytics"


def test_short_or_unreadable_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(privacy.KEY_ENV, "short")
    with pytest.raises(ParameterError, match="RMANALYTICS_MASK_KEY.*fewer than 16"):
        load_key()
    with pytest.raises(ParameterError, match="cannot be read"):
        load_key(tmp_path / "missing.key")


def test_readable_key_file_noted(tmp_path):
    f = tmp_path / "k"
    f.write_text("x" * 32)
    f.chmod(0o644)
    assert any("readable by others" in n for n in load_key(f).notes)


def test_fingerprint_recognises_key_without_revealing_it():
    assert KEY.fingerprint == hmac.new(KEY.secret, b"rmanalytics mask key fingerprint v1",
                                       hashlib.sha256).hexdigest()[:8]
    assert KEY.fingerprint != MaskKey.from_secret("another-secret-key-9876543210").fingerprint


def test_no_key_constant_in_code():
    src = Path(privacy.__file__).read_text()
    assert "DEFAULT_KEY" not in src
    with pytest.raises(TypeError):
        mask_id("C1")  # the key is required


# ----------------------------------------------------------------------------- frames and text
def test_mask_frame_columns_index_and_nested_examples():
    df = pd.DataFrame({"customer_id": ["C1", "C2", None, "C1"], "x": [1, 2, 3, 4],
                       "examples": [[{"customer_id": "C1", "date": "2024-01-01"}], [], None, ["R1"]]})
    out = mask_frame(df, KEY)
    assert out["customer_id"].tolist() == [mask_id("C1", KEY), mask_id("C2", KEY), None, mask_id("C1", KEY)]
    assert out["examples"].iloc[0] == [{"customer_id": mask_id("C1", KEY), "date": "2024-01-01"}]
    assert out["examples"].iloc[3] == ["R1"] and out["x"].tolist() == [1, 2, 3, 4]
    assert df["customer_id"].iloc[0] == "C1"  # the input is untouched
    idx = mask_frame(df.set_index("customer_id"), KEY)
    assert idx.index[1] == mask_id("C2", KEY)
    multi = mask_frame(df.dropna(subset=["customer_id"]).set_index(["customer_id", "x"]), KEY)
    assert multi.index.get_level_values("customer_id")[0] == mask_id("C1", KEY)
    assert privacy.has_ids(df) and privacy.has_ids(df[["examples"]]) and not privacy.has_ids(df[["x"]])


def test_mask_frame_matches_quality_findings(tiny_bank):
    from rmanalytics.quality import quality_report

    findings = quality_report(tiny_bank, observation_end="2023-12-31", include_zero=False)
    masked = mask_frame(findings, KEY)
    text = masked.to_csv() + masked.to_string()
    for cid in tiny_bank["customers"]["customer_id"]:
        assert cid not in text.replace(mask_id(cid, KEY), "")
    raw = json.dumps(findings["examples"].tolist(), default=str)
    assert "C001" in raw  # the analysis function itself keeps raw ids


def test_mask_text_whole_tokens_only():
    ids = {"C001", "0042", "C0002071"}
    text = "rows e.g. [{'customer_id': 'C001'}], C0010 C0002071. id=0042 and 42 and C001x"
    out = mask_text(text, KEY, ids)
    assert mask_id("C001", KEY) in out and mask_id("C0002071", KEY) in out
    assert "C0010" in out and "C001x" in out and " 42 " in out
    assert "0042" in out  # digit-only ids are not searched in free text (numbers)
    assert mask_text(text, KEY, lambda c: c & {"C001"}).count("C#") == 1


def test_scrub_files_json_ipynb_and_text(tmp_path):
    nb = {"cells": [{"outputs": [{"text": "DataError: C001 bad", "data": {"image/png": "iVBC001"}}]}],
          "n": 42}
    (tmp_path / "a.ipynb").write_text(json.dumps(nb, indent=1))
    (tmp_path / "m.json").write_text(json.dumps({"x": 1.5, "msg": "see C001"}))
    (tmp_path / "t.csv").write_text("customer_id,v\nC001,1\nC002,2\n")
    (tmp_path / "clean.log").write_text("nothing here\n")
    lookup = lambda cands: cands & {"C001", "C002"}  # noqa: E731
    counts = privacy.scrub_files(sorted(tmp_path.iterdir()), KEY, lookup)
    assert set(Path(p).name for p in counts) == {"a.ipynb", "m.json", "t.csv"}
    out = json.loads((tmp_path / "a.ipynb").read_text())
    assert out["cells"][0]["outputs"][0]["text"] == f"DataError: {mask_id('C001', KEY)} bad"
    assert out["cells"][0]["outputs"][0]["data"]["image/png"] == "iVBC001" and out["n"] == 42
    assert json.loads((tmp_path / "m.json").read_text())["x"] == 1.5
    assert "C002" not in (tmp_path / "t.csv").read_text()


# ----------------------------------------------------------------------------- restricted area
def test_restricted_parquet_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        p = privacy.write_restricted_parquet(pd.DataFrame({"customer_id": ["C1"]}), tmp_path / "run" /
                                             "restricted" / "tables" / "t.parquet", index=False)
    finally:
        os.umask(old)
    assert _mode(p) == 0o600
    assert _mode(tmp_path / "run" / "restricted") == 0o700 and _mode(p.parent) == 0o700
    assert pd.read_parquet(p)["customer_id"].tolist() == ["C1"]
    (p.parent / "other.txt").write_text("x")
    privacy.lock_down(tmp_path / "run" / "restricted")
    assert _mode(p.parent / "other.txt") == 0o600
    assert privacy.people_facing_files(tmp_path / "run") == []


def test_restricted_parquet_in_row_groups_reads_back_as_to_parquet(tmp_path, monkeypatch):
    """Written a row group at a time (a big table's Arrow copy is one group's): pd.read_parquet gives
    what it gives for DataFrame.to_parquet, dtypes and row groups included, across the columns a
    priority list has (ids, categories, dates with NaT, text that is all missing in a group, ints,
    floats with NaN, bools)."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(privacy, "PARQUET_ROW_GROUP_ROWS", 3)
    df = pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(8)],
        "segment": pd.Categorical(["a", "b", None, "a", "c", "b", "a", "a"], categories=["a", "b", "c", "z"]),
        "due_date": pd.to_datetime(["2024-01-02", None, "2024-03-04", "2024-01-01", None, None, "2024-05-06", "2024-07-08"]),
        "reasons": [None, None, None, "x", None, "y; z", None, "w"],
        "rank": np.arange(8, dtype=np.int64), "share": [1.0, np.nan, 0.5, 1, 1, 1, 0.25, 1],
        "overdue": [True, False] * 4,
    })
    got = privacy.write_restricted_parquet(df, tmp_path / "r" / "t.parquet")
    df.to_parquet(tmp_path / "want.parquet", index=False, row_group_size=3)
    pd.testing.assert_frame_equal(pd.read_parquet(got), pd.read_parquet(tmp_path / "want.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(got), df)
    assert pq.ParquetFile(got).num_row_groups == 3 and _mode(got) == 0o600


def test_recorder_restricted_layout_and_masked_outputs(tmp_path):
    from rmanalytics.report import Recorder

    rec = Recorder(tmp_path, key=KEY)
    df = pd.DataFrame({"customer_id": ["C1", "C2"], "x": [1.0, 2.0]})
    shown = rec.table("seg", df)
    assert shown["customer_id"].tolist() == [mask_id("C1", KEY), mask_id("C2", KEY)]
    assert not (tmp_path / "tables" / "seg.parquet").exists()
    raw = tmp_path / "restricted" / "tables" / "seg.parquet"
    assert pd.read_parquet(raw)["customer_id"].tolist() == ["C1", "C2"] and _mode(raw) == 0o600
    assert _mode(tmp_path / "restricted") == 0o700
    assert pd.read_csv(tmp_path / "tables" / "seg.csv")["customer_id"].tolist() == shown["customer_id"].tolist()
    rec.table("plain", pd.DataFrame({"segment": ["a"], "n": [3]}))
    assert (tmp_path / "tables" / "plain.parquet").is_file()
    assert not (tmp_path / "restricted" / "tables" / "plain.parquet").exists()
    # unmasked run (data team only): raw ids shown, Parquet still restricted
    raw_rec = Recorder(tmp_path / "r2", mask_ids=False)
    assert raw_rec.table("seg", df)["customer_id"].tolist() == ["C1", "C2"]
    assert (tmp_path / "r2" / "restricted" / "tables" / "seg.parquet").is_file()


def test_analysis_packages_never_mask():
    root = Path(privacy.__file__).parent
    for pkg in ("rfm", "churn", "loyalty", "kpi"):
        for f in (root / pkg).glob("*.py"):
            src = f.read_text()
            assert "rmanalytics.privacy" not in src and "mask_frame" not in src and "mask_id" not in src, f


def test_open_restricted_for_packs(tmp_path):
    p = tmp_path / "packs" / "R01" / "pack.txt"
    with privacy.open_restricted(p, "w", encoding="utf-8") as fh:
        fh.write("C001\n")
    assert p.read_text() == "C001\n" and _mode(p) == 0o600 and _mode(p.parent) == 0o700
    assert _mode(tmp_path / "packs") == 0o700
    with pytest.raises(ValueError):
        privacy.open_restricted(p, "r")


def test_mask_values_equal_hmac_new_for_any_key_length():
    """_mask_values hashes the HMAC pads once per key (issue #16): the same pseudonyms as hmac.new."""
    import hashlib
    import hmac

    import numpy as np
    import pandas as pd

    from rmanalytics.privacy import PREFIX, PSEUDONYM_HEX, _mask_values, mask_id

    values = pd.Series(["C0000001", "C0000001", "客户-7", None, 42, np.int64(7), float("nan"), "", "x" * 300],
                       dtype=object)
    for key in (b"", b"k", b"k" * 63, b"k" * 64, b"k" * 65, bytes(range(256)) * 2):
        got = _mask_values(values, key)
        for v, m in zip(values, got):
            if v is None or (isinstance(v, float) and v != v):
                assert m is v or (m != m)
                continue
            text = v if isinstance(v, str) else str(v.item() if isinstance(v, np.generic) else v)
            assert m == PREFIX + hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
            assert m == mask_id(v, key)
