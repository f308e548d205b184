"""The rmanalytics command: params, run (bad parameters rejected before any kernel), run-all,
validate, synth forwarding and kernel registration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
import time
import types

import pytest

from rmanalytics import cli
from test_runner import fake_pm, tiny  # noqa: F401 - fixtures (tests/unit is on sys.path: no __init__.py)


def test_params_table(capsys):
    assert cli.main(["params", "00_data_overview"]) == 0
    out = capsys.readouterr().out
    assert "amount_bins" in out and "int" in out and "50" in out and "histogram" in out


def test_params_yaml_round_trips(capsys, tmp_path):
    from rmanalytics.params import OverviewParams, resolve

    assert cli.main(["params", "00", "--yaml"]) == 0
    f = tmp_path / "d.yaml"
    f.write_text(capsys.readouterr().out)
    assert resolve("00", f) == OverviewParams()


def test_params_unknown_notebook(capsys):
    assert cli.main(["params", "09_nothing"]) == 2
    assert "unknown notebook" in capsys.readouterr().err


@pytest.mark.parametrize("args, named", [
    (["-p", "amount_bins", "1e2"], "amount_bins"),
    (["-p", "amount_bns", "10"], "amount_bns"),
    (["-p", "observation_end", "31/12/2024"], "observation_end"),
])
def test_run_rejects_bad_parameter_before_kernel(args, named, capsys, monkeypatch):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("kernel started"))
    assert cli.main(["run", "00_data_overview", *args]) == 2
    assert f"'{named}'" in capsys.readouterr().err


def test_bad_parameter_rejected_fast_in_a_fresh_process(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rmanalytics", "run", "00_data_overview", "-p", "amount_bins",
                           "1e2", "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2
    assert "'amount_bins': expected int, got '1e2'" in proc.stderr
    assert elapsed < 15
    assert not any(tmp_path.iterdir())  # nothing was started


def test_run_ok_and_failure_exit_codes(tiny, fake_pm, capsys):  # noqa: F811
    assert cli.main(["run", "00_tiny", "--notebooks-dir", "notebooks", "--data", "data", "--no-progress"]) == 0
    assert "run folder:" in capsys.readouterr().out
    assert cli.main(["run", "00_tiny", "--notebooks-dir", "notebooks", "-p", "fail", "true", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "cell index 4" in err and "executed notebook:" in err and ".failed/00_tiny.ipynb" in err


def test_run_all_summary_and_exit_code(tiny, fake_pm, capsys):  # noqa: F811
    assert cli.main(["run-all", "--notebooks-dir", "notebooks", "--params-dir", "params", "--jobs", "1",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "notebook" in out and "00_tiny" in out and "01_down" in out
    (tiny / "params" / "01_down.yaml").write_text("lang: zh\nmask_ids: true\n")
    (tiny / "params" / "00_tiny.yaml").write_text("fail: true\n")
    assert cli.main(["run-all", "--notebooks-dir", "notebooks", "--params-dir", "params", "--jobs", "1",
                     "--no-progress"]) == 1


def test_run_all_bad_yaml_exit_2(tiny, fake_pm, capsys):  # noqa: F811
    (tiny / "params" / "00_tiny.yaml").write_text("n: many\n")
    assert cli.main(["run-all", "--notebooks-dir", "notebooks", "--params-dir", "params"]) == 2
    assert "'n'" in capsys.readouterr().err and fake_pm.calls == []


def test_validate_ok_and_invalid(tiny_bank, tmp_path, capsys):
    from rmanalytics.io import write_tables

    write_tables(tiny_bank, tmp_path)
    assert cli.main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "customers" in out and "5 rows" in out and "findings:" in out
    assert "04_kpi_attribution: yes" in out
    tiny_bank["customers"].loc[0, "risk_level"] = 9
    write_tables({"customers": tiny_bank["customers"]}, tmp_path)
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert "risk_level" in capsys.readouterr().err


def test_validate_missing_optional_table_lists_supported_notebooks(tiny_bank, tmp_path, capsys):
    from rmanalytics.io import write_tables

    write_tables({k: v for k, v in tiny_bank.items() if k != "kpi_targets"}, tmp_path)
    assert cli.main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "absent: kpi_targets" in out
    assert "01_segmentation: yes" in out and "03_loyalty_clv: yes" in out
    assert "04_kpi_attribution: no, needs kpi_targets" in out


def test_synth_forwards_arguments(monkeypatch):
    seen = {}
    monkeypatch.setitem(sys.modules, "rmanalytics.synth",
                        types.SimpleNamespace(main=lambda argv: seen.setdefault("argv", argv) and 0))
    import rmanalytics

    monkeypatch.setattr(rmanalytics, "synth", sys.modules["rmanalytics.synth"], raising=False)
    assert cli.main(["synth", "--customers", "50", "--out", "x", "--seed", "3"]) == 0
    assert seen["argv"] == ["--customers", "50", "--out", "x", "--seed", "3"]


def test_kernel_command(monkeypatch, tmp_path):
    import rmanalytics.runner as runner

    seen = {}

    def fake_install(kernel_name, *, user=False, display_name=None):
        seen.update(name=kernel_name, user=user, display_name=display_name)
        return tmp_path

    monkeypatch.setattr(runner, "install_kernel", fake_install)
    assert cli.main(["kernel"]) == 0
    assert seen == {"name": "rmanalytics", "user": False, "display_name": None}


def test_kernel_display_name_names_the_project_and_environment():
    import rmanalytics.runner as runner

    assert runner.kernel_display_name() == f"rmanalytics ({Path(sys.prefix).name})"


def test_init_scaffolds_a_project_and_refuses_a_non_empty_folder(tmp_path, capsys):
    dest = tmp_path / "proj"
    assert cli.main(["init", str(dest)]) == 0
    assert (dest / "README.md").is_file()
    assert sorted(p.name for p in (dest / "notebooks").glob("*.ipynb"))[:2] == ["00_data_overview.ipynb",
                                                                             "01_segmentation.ipynb"]
    assert (dest / "params" / "01_segmentation.yaml").is_file()
    assert (dest / "params" / "scorecards" / "default.yaml").is_file()
    assert (dest / "data" / "sample" / "transactions.parquet").is_file() or \
        (dest / "data" / "sample" / "transactions.csv").is_file()
    assert cli.main(["init", str(dest)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert cli.main(["init", str(dest), "--force"]) == 0


def test_mask_key_file_option(tiny, fake_pm, capsys, monkeypatch, tmp_path):  # noqa: F811
    import json

    from rmanalytics import privacy

    # the CLI sets/pops these in os.environ; monkeypatch restores the suite's values afterwards
    monkeypatch.setenv(privacy.KEY_ENV, "environment-secret-key-0123456789")
    monkeypatch.setenv(privacy.KEY_FILE_ENV, "")
    bad = tmp_path / "short.key"
    bad.write_text("short")
    assert cli.main(["run", "00_tiny", "--notebooks-dir", "notebooks", "--mask-key-file", str(bad),
                     "--no-progress"]) == 2
    assert "fewer than 16" in capsys.readouterr().err and fake_pm.calls == []
    good = tmp_path / "good.key"
    good.write_text("file-secret-key-0123456789abcdef\n")
    good.chmod(0o600)
    monkeypatch.setenv(privacy.KEY_ENV, "environment-secret-key-0123456789")
    assert cli.main(["run", "00_tiny", "--notebooks-dir", "notebooks", "--mask-key-file", str(good),
                     "--no-progress"]) == 0
    run_dir = next(p for p in (tiny / "runs" / "00_tiny").iterdir() if p.name != "latest")
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["privacy"]["key_source"] == "env-file"
    assert m["privacy"]["key_fingerprint"] == privacy.MaskKey.from_secret("file-secret-key-0123456789abcdef").fingerprint


def test_package_errors_print_one_line(monkeypatch, capsys):
    """Any RmAnalyticsError (a user's mistake) ends the command with one message and exit code 2."""
    import rmanalytics.cli as cli
    from rmanalytics.errors import DataError

    def boom(args):
        raise DataError("transactions.amount: rule 'finite', broken by 2 rows, e.g. [...]")

    monkeypatch.setattr(cli, "_cmd_params", boom)
    assert cli.main(["params", "00"]) == 2
    err = capsys.readouterr().err
    assert "broken by 2 rows" in err and "Traceback" not in err


def test_run_all_only_reuses_upstream_unless_no_reuse(tiny, fake_pm, capsys):  # noqa: F811
    base = ["run-all", "--notebooks-dir", "notebooks", "--params-dir", "params", "--data", "data", "--jobs", "1",
            "--no-progress", "--only"]
    assert cli.main([*base, "00_tiny"]) == 0
    assert cli.main([*base, "01_down"]) == 0
    assert "segments_path: reused 00_tiny run" in capsys.readouterr().out
    assert fake_pm.calls[-1]["parameters"]["segments_path"] is not None
    assert cli.main([*base, "01_down", "--no-reuse"]) == 0
    out = capsys.readouterr().out
    assert "reused" not in out and "turned off (--no-reuse)" in out
    assert fake_pm.calls[-1]["parameters"]["segments_path"] is None
