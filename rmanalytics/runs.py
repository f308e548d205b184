"""Run folders under a scheduler: who owns a run, dead runs marked ``abandoned``, clean-up, and
child processes that die with the run.

Every run folder's ``manifest.json`` records the ``pid`` and ``host`` of the process executing
the notebook (and the process start time, so a recycled pid is not mistaken for the run). A run
that was killed (``kill -9``, the OOM killer, a scheduler timeout) cannot update its manifest:
its ``<run>.partial`` folder keeps ``status: running``. :func:`mark_abandoned`, called by the next
``rmanalytics run`` / ``run-all`` / ``clean``, finds such folders whose process is gone on this
host and sets ``status: abandoned``. :func:`clean` removes failed, interrupted and abandoned
folders and keeps the newest N successful runs per notebook.

Processes a run starts
----------------------
``run-all --jobs N`` runs notebooks in worker processes; each worker (and a single-job run itself)
starts a Jupyter kernel. On ``kill -9`` of run-all nothing in run-all can react, so each child must
notice by itself:

- workers call :func:`die_with_parent` first: on Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes
  the kernel kill the worker the moment its parent dies (no polling, works while the worker is
  blocked in C code); elsewhere a daemon thread polls ``os.getppid()`` every 0.5 s (watchdog).
- kernels are started by jupyter_client with ``JPY_PARENT_PID``; ipykernel's parent poller exits
  the kernel within about a second of its parent (the worker, or run-all) dying. We rely on it
  instead of re-implementing it (the kernel is also in its own session, so a signal to run-all's
  process group does not reach it).

Why not only a process group: a group lets a scheduler kill everything with one ``kill -- -PGID``,
but ``kill -9 PID`` of run-all alone (what timeouts and the OOM killer do) leaves the group's other
members running. The parent-death signal covers both.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["clean", "die_with_parent", "is_alive", "mark_abandoned", "parse_age", "process_identity",
           "run_folders"]

DEAD_STATUSES = ("failed", "interrupted", "abandoned")


# ----------------------------------------------------------------------------- process identity
def _start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux ``/proc``), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """``pid``, ``host`` and (Linux) ``pid_start`` of the current (or given) process, for manifests."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "host": socket.gethostname(), "pid_start": _start_ticks(pid)}


def is_alive(manifest: dict[str, Any]) -> bool | None:
    """Whether the process recorded in a manifest still runs: True/False, None when unknown
    (another host, or no pid recorded)."""
    pid, host = manifest.get("pid"), manifest.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    start = manifest.get("pid_start")
    now = _start_ticks(pid)
    if start is not None and now is not None and start != now:
        return False  # the pid was recycled by another process
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        if data[data.rindex(b")") + 2:].split()[0] == b"Z":
            return False
    except (OSError, ValueError):
        pass
    return True


# ----------------------------------------------------------------------------- parent death
def _prctl_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int, *, ignore_sigint: bool = True) -> str:
    """Make the current process die when ``parent_pid`` dies; returns the mechanism used.

    Linux: ``PR_SET_PDEATHSIG`` = SIGKILL ("pdeathsig"); elsewhere a watchdog thread ("watchdog").
    If the parent is already gone, exit at once. With ``ignore_sigint`` Ctrl-C in the terminal
    reaches only the parent, which stops the workers and prints one summary.
    """
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    how = "pdeathsig" if _prctl_pdeathsig(signal.SIGKILL) else "watchdog"
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if how == "watchdog":
        def watch() -> None:
            while True:
                if os.getppid() != parent_pid:
                    os._exit(1)
                time.sleep(0.5)

        threading.Thread(target=watch, name="rmanalytics-parent-watchdog", daemon=True).start()
    return how


# ----------------------------------------------------------------------------- run folders
def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path / "manifest.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path / "manifest.json")


def run_folders(out_dir: str | os.PathLike) -> list[tuple[Path, dict[str, Any] | None]]:
    """Every run folder ``<out_dir>/<notebook>/<run>`` with its manifest (None if unreadable)."""
    root = Path(out_dir)
    if not root.is_dir():
        return []
    out = []
    for nb in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for run in sorted(p for p in nb.iterdir() if p.is_dir() and not p.is_symlink()):
            if (run / "manifest.json").exists() or run.suffix in (".partial", ".failed"):
                out.append((run, _read(run)))
    return out


def mark_abandoned(out_dir: str | os.PathLike) -> list[Path]:
    """Set ``status: abandoned`` on ``.partial`` runs whose process is dead on this host.

    Returns the folders marked. Runs of other hosts, or whose process still runs, are left alone.
    """
    marked = []
    for run, m in run_folders(out_dir):
        if run.suffix != ".partial" or m is None or m.get("status") != "running":
            continue
        if is_alive(m) is False:
            m.update(status="abandoned",
                     abandoned={"noticed_utc": dt.datetime.now(dt.timezone.utc).isoformat(),
                                "noticed_by": process_identity(),
                                "reason": f"process {m.get('pid')} on {m.get('host')} is gone (killed?)"})
            _write(run, m)
            marked.append(run)
    return marked


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_age(text: str) -> dt.timedelta:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"2w"``, ``"90s"`` -> timedelta (ValueError otherwise)."""
    m = _AGE.match(text or "")
    if not m:
        raise ValueError(f"age {text!r}: expected a number and a unit s/m/h/d/w, e.g. 7d or 12h")
    n, unit = float(m.group(1)), m.group(2)
    return dt.timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit])


def _started(run: Path, m: dict[str, Any] | None) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(m["started_utc"]))  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return dt.datetime.fromtimestamp(run.stat().st_mtime, dt.timezone.utc)


def _status(run: Path, m: dict[str, Any] | None) -> str:
    if m is None:
        return "failed" if run.suffix == ".failed" else "unknown"
    return str(m.get("status") or "unknown")


def clean(out_dir: str | os.PathLike, *, older_than: dt.timedelta | None = None, keep: int | None = None,
          dry_run: bool = False) -> list[tuple[Path, str]]:
    """Remove failed, interrupted and abandoned run folders, and successful runs beyond the newest
    ``keep`` per notebook; return ``(folder, reason)`` of what was (or, with ``dry_run``, would be)
    removed.

    ``older_than``: only folders whose run started longer ago than this. A ``.partial`` run whose
    process is alive (or of another host) is never removed; neither is the run ``latest`` points to.
    """
    mark_abandoned(out_dir)
    now = dt.datetime.now(dt.timezone.utc)
    doomed: list[tuple[Path, str]] = []
    ok_by_nb: dict[Path, list[tuple[dt.datetime, Path]]] = {}
    for run, m in run_folders(out_dir):
        status = _status(run, m)
        old_enough = older_than is None or now - _started(run, m) > older_than
        if status in DEAD_STATUSES:
            if run.suffix == ".partial" and status == "interrupted" and m is not None and is_alive(m) is not False:
                continue  # still shutting down, or another host's run
            if old_enough:
                doomed.append((run, status))
        elif status == "ok" and run.suffix == "":
            ok_by_nb.setdefault(run.parent, []).append((_started(run, m), run))
    if keep is not None:
        for nb, runs in ok_by_nb.items():
            latest = (nb / "latest").resolve() if (nb / "latest").is_symlink() else None
            runs.sort(reverse=True)
            for _, run in runs[keep:]:
                old_enough = older_than is None or now - _started(run, _read(run)) > older_than
                if old_enough and run.resolve() != latest:
                    doomed.append((run, f"older than the newest {keep} successful run(s)"))
    if not dry_run:
        for run, _ in doomed:
            shutil.rmtree(run, ignore_errors=True)
    return doomed
