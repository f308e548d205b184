"""Runs under a scheduler (issue 12): pid/host in manifests, dead runs marked abandoned, clean-up
and retention, the line that raised, skipped notebooks, and real kill -9 / Ctrl-C of run-all."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import nbformat
import pytest

import rmanalytics.params as params_mod
from rmanalytics import cli, runner
from rmanalytics.runs import clean, is_alive, mark_abandoned, parse_age
from test_runner import TinyParams, fake_pm, tiny, write_notebook  # noqa: F401 - fixtures

LINUX = sys.platform.startswith("linux")


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _run_folder(out: Path, nb: str, name: str, status: str, *, pid: int | None = None, host: str | None = None,
                started: dt.datetime | None = None) -> Path:
    folder = out / nb / name
    folder.mkdir(parents=True)
    started = started or dt.datetime.now(dt.timezone.utc)
    (folder / "manifest.json").write_text(json.dumps({
        "notebook": nb, "status": status, "started_utc": started.isoformat(),
        "pid": pid if pid is not None else os.getpid(), "host": host or socket.gethostname()}))
    if status == "ok":
        (folder / "report.html").write_text("<html/>")
    return folder


def _status(folder: Path) -> str:
    return json.loads((folder / "manifest.json").read_text())["status"]


# ----------------------------------------------------------------------------- manifests, abandoned
def test_manifest_records_pid_and_host(tiny, fake_pm):
    res = runner.run_notebook("00_tiny", params_mod.resolve("00_tiny", data_dir="data"), out_dir="runs",
                              notebooks_dir="notebooks", progress_bar=False)
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["pid"] == os.getpid() and m["host"] == socket.gethostname() and m["parent_pid"] == os.getppid()
    assert is_alive(m) is True


def test_dead_partial_runs_are_marked_abandoned(tmp_path):
    out = tmp_path / "runs"
    dead = _run_folder(out, "01_segmentation", "20260101T000000Z.partial", "running", pid=_dead_pid())
    alive = _run_folder(out, "01_segmentation", "20260102T000000Z.partial", "running")
    elsewhere = _run_folder(out, "03_loyalty_clv", "20260101T000000Z.partial", "running", pid=_dead_pid(),
                            host="another-host")
    assert mark_abandoned(out) == [dead]
    assert (_status(dead), _status(alive), _status(elsewhere)) == ("abandoned", "running", "running")
    m = json.loads((dead / "manifest.json").read_text())
    assert "is gone" in m["abandoned"]["reason"] and m["abandoned"]["noticed_by"]["pid"] == os.getpid()


def test_run_marks_dead_runs_abandoned_first(tiny, fake_pm, capsys):
    dead = _run_folder(tiny / "runs", "00_tiny", "20260101T000000Z.partial", "running", pid=_dead_pid())
    assert cli.main(["run", "00_tiny", "--notebooks-dir", "notebooks", "--data", "data", "--no-progress"]) == 0
    assert _status(dead) == "abandoned"


# ----------------------------------------------------------------------------- clean
def test_clean_removes_dead_runs_and_keeps_newest_successful(tmp_path):
    out = tmp_path / "runs"
    now = dt.datetime.now(dt.timezone.utc)
    ok = [_run_folder(out, "01_segmentation", f"2026010{i}T000000Z", "ok", started=now - dt.timedelta(days=10 - i))
          for i in range(1, 6)]
    failed = _run_folder(out, "01_segmentation", "20251201T000000Z.failed", "failed", started=now - dt.timedelta(days=30))
    fresh_failed = _run_folder(out, "01_segmentation", "20260110T000000Z.failed", "failed", started=now)
    killed = _run_folder(out, "03_loyalty_clv", "20251201T000000Z.partial", "running", pid=_dead_pid(),
                         started=now - dt.timedelta(days=30))
    running = _run_folder(out, "03_loyalty_clv", "20260110T000000Z.partial", "running",
                          started=now - dt.timedelta(days=30))
    (out / "01_segmentation" / "latest").symlink_to(ok[0].name)  # 'latest' is never removed

    would = clean(out, older_than=parse_age("7d"), keep=2, dry_run=True)
    assert {p for p, _ in would} == {failed, killed, ok[1], ok[2]}
    assert all(p.exists() for p, _ in would)
    removed = dict(clean(out, older_than=parse_age("7d"), keep=2))
    assert removed[killed] == "abandoned" and removed[failed] == "failed"
    assert not failed.exists() and not killed.exists() and not ok[1].exists() and not ok[2].exists()
    assert fresh_failed.exists() and running.exists() and ok[0].exists() and ok[3].exists() and ok[4].exists()
    assert {p for p, _ in clean(out)} == {fresh_failed}  # no age filter, no retention rule


def test_clean_command(tmp_path, capsys):
    out = tmp_path / "runs"
    _run_folder(out, "00_data_overview", "20260101T000000Z.partial", "running", pid=_dead_pid())
    assert cli.main(["clean", "--out", str(out), "--keep", "3"]) == 0
    text = capsys.readouterr().out
    assert "abandoned (its process is gone)" in text and "removed 1 run folder(s)" in text
    assert cli.main(["clean", "--out", str(out), "--older-than", "soon"]) == 2


@pytest.mark.parametrize("text, seconds", [("7d", 604800), ("12h", 43200), ("30m", 1800), ("2w", 1209600),
                                           ("1.5d", 129600)])
def test_parse_age(text, seconds):
    assert parse_age(text).total_seconds() == seconds


# ----------------------------------------------------------------------------- failing line, skipped
def test_raising_line_comes_from_the_traceback():
    tb = ["\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
          "\x1b[0;31mDataError\x1b[0m                                 Traceback (most recent call last)",
          "Cell \x1b[0;32mIn[4], line 3\x1b[0m\n\x1b[1;32m      1\x1b[0m x = 1\n\x1b[0;32m----> 3\x1b[0m tables = f()",
          "File \x1b[0;32m/work/x/rmanalytics/io.py:321\x1b[0m, in \x1b[0;36mload_tables\x1b[0;34m(data_dir)\x1b[0m",
          "\x1b[0;31mDataError\x1b[0m: transactions.csv: the file is empty (0 bytes)"]
    src = "import pandas as pd\nx = 1\ntables = load_notebook_tables(P)\n"
    assert runner._raising_line(tb, src) == (3, "tables = load_notebook_tables(P)", "rmanalytics/io.py:321 in load_tables")


class NeedsTx(TinyParams):
    tables_required: ClassVar[tuple[str, ...]] = ("transactions",)


def test_run_all_skips_notebooks_the_data_cannot_support(tiny, fake_pm, monkeypatch, capsys):
    monkeypatch.setitem(params_mod.REGISTRY, "00_tiny", NeedsTx)
    lines = []
    results = runner.run_all(data_dir="data", out_dir="runs", notebooks_dir="notebooks", progress_bar=False,
                             echo=lines.append)
    assert [(r.notebook, r.status) for r in results] == [("00_tiny", "skipped"), ("01_down", "ok")]
    assert "lack transactions" in results[0].error and any(ln.startswith("skip 00_tiny") for ln in lines)
    assert [c["parameters"]["output_dir"].split("/")[-2] for c in fake_pm.calls] == ["01_down"]
    assert cli.main(["run-all", "--data", "data", "--notebooks-dir", "notebooks", "--no-progress", "--jobs", "1"]) == 0
    assert cli.main(["run", "00_tiny", "--notebooks-dir", "notebooks", "--data", "data"]) == 2
    assert "cannot run: the data in" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real processes
def _descendants(pid: int) -> dict[int, str]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                data = open(f"/proc/{d}/stat", "rb").read()
                kids.setdefault(int(data[data.rindex(b")") + 2:].split()[1]), []).append(int(d))
            except (OSError, ValueError):
                pass
    out, stack = {}, [pid]
    while stack:
        for c in kids.get(stack.pop(), []):
            try:
                out[c] = open(f"/proc/{c}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            stack.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat", "rb").read()
    except OSError:
        return False
    return state[state.rindex(b")") + 2:].split()[0] != b"Z"


@pytest.fixture
def sleepy(tmp_path, monkeypatch):
    """Two real, independent notebooks (the real 00 and 01 names) whose last cell sleeps."""
    from rmanalytics.params import OverviewParams, SegmentationParams

    for name, model in (("00_data_overview", OverviewParams), ("01_segmentation", SegmentationParams)):
        p = write_notebook(tmp_path / "notebooks" / f"{name}.ipynb", name, model)
        nb = nbformat.read(p, as_version=4)
        nb.cells[4].source = "import time\ntime.sleep(120)"
        nbformat.write(nb, p)
    (tmp_path / "params").mkdir()
    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    return tmp_path, sample


def _start_run_all(folder: Path, sample: Path, jobs: int) -> tuple[subprocess.Popen, Path]:
    err = folder / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rmanalytics", "run-all", "--params-dir", "params", "--notebooks-dir", "notebooks",
         "--out", "runs", "--jobs", str(jobs), "--no-progress", "--only", "00", "01", "--data", str(sample)],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=err.open("w"), start_new_session=True)
    want = 2 if jobs > 1 else 1
    deadline = time.time() + 150
    while time.time() < deadline:
        kernels = [c for c in _descendants(proc.pid).values() if "ipykernel" in c]
        if len(kernels) >= want:
            break
        assert proc.poll() is None, err.read_text()
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("kernels did not start")
    time.sleep(3)  # the notebooks are in their sleeping cell
    return proc, err


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_kill_9_of_run_all_leaves_no_process_behind(sleepy):
    folder, sample = sleepy
    proc, _ = _start_run_all(folder, sample, jobs=2)
    tree = _descendants(proc.pid)
    assert sum("spawn_main" in c for c in tree.values()) == 2 and sum("ipykernel" in c for c in tree.values()) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in tree):
        time.sleep(0.25)
    survivors = {p: c for p, c in tree.items() if _alive(p)}
    for p in survivors:  # do not leave them running if the test fails
        os.kill(p, signal.SIGKILL)
    assert survivors == {}
    partial = sorted((folder / "runs").glob("*/*.partial"))
    assert len(partial) == 2 and all(_status(p) == "running" for p in partial)
    assert cli.main(["clean", "--out", str(folder / "runs"), "--dry-run"]) == 0  # notices they are dead
    assert all(_status(p) == "abandoned" for p in partial)


@pytest.mark.skipif(not LINUX, reason="reads /proc")
@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_prints_one_summary(sleepy, jobs):
    folder, sample = sleepy
    proc, err = _start_run_all(folder, sample, jobs=jobs)
    tree = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole foreground group
    assert proc.wait(timeout=60) == 130
    text = err.read_text()
    assert "Traceback" not in text and "ZMQError" not in text and "DeadKernel" not in text, text
    assert text.count("interrupted:") == 1
    partial = sorted((folder / "runs").glob("*/*.partial"))
    assert len(partial) == jobs and all(_status(p) == "interrupted" for p in partial)
    for p in partial:
        assert str(p) in text
    if jobs == 1:
        assert "not started  01_segmentation" in text
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in tree):
        time.sleep(0.25)
    survivors = [p for p in tree if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert survivors == []
