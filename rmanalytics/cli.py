"""The ``rmanalytics`` command.

::

    rmanalytics run NOTEBOOK [--params FILE] [-p KEY VALUE ...] [--data DIR] [--out DIR] [--mask-key-file F]
    rmanalytics run-all [--params-dir DIR] [--variant ci] [--data DIR] [--out DIR] [--jobs N] [--mask-key-file F]
                        [--only NB ...] [--no-reuse]
    rmanalytics params NOTEBOOK [--yaml]
    rmanalytics validate DATA_DIR
    rmanalytics clean [--out DIR] [--older-than 7d] [--keep N] [--dry-run]
    rmanalytics synth [--customers N] [--out DIR] [--seed S]
    rmanalytics kernel [--user]

Exit codes: 0 success; 1 a notebook failed or the data is invalid; 2 bad usage or an invalid
parameter (reported before any kernel starts). Heavy imports (papermill, pandas) happen inside
the subcommands so that parameter errors come back in well under a second.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence


def _err(msg: str) -> None:
    print(f"rmanalytics: error: {msg}", file=sys.stderr)


def _use_key_file(args: argparse.Namespace) -> str | None:
    """``--mask-key-file``: the key file wins over the environment for this command and its kernels.
    Returns an error message when the key cannot be used (checked before any kernel starts)."""
    from rmanalytics import privacy
    from rmanalytics.errors import RmAnalyticsError

    if getattr(args, "mask_key_file", None):
        os.environ[privacy.KEY_FILE_ENV] = str(Path(args.mask_key_file).expanduser().resolve())
        os.environ.pop(privacy.KEY_ENV, None)
        try:
            privacy.load_key()
        except RmAnalyticsError as exc:
            return str(exc)
    return None


def _cmd_run(args: argparse.Namespace) -> int:
    from rmanalytics.params import ParameterError, notebook_name, resolve

    try:
        name = notebook_name(args.notebook)
        extra = {"data_dir": args.data} if args.data else {}
        params = resolve(name, args.params, [tuple(p) for p in args.p or []], **extra)
    except ParameterError as exc:
        _err(str(exc))
        return 2
    from rmanalytics.runner import notebook_path, run_notebook

    try:
        nb = notebook_path(args.notebook, args.notebooks_dir)
    except FileNotFoundError as exc:
        _err(str(exc))
        return 2
    from rmanalytics.errors import DataError, RmAnalyticsError
    from rmanalytics.io import precheck
    from rmanalytics.runner import KernelNotFound, _partial_of, _support_problem, absolutize_paths
    from rmanalytics.runs import mark_abandoned

    if (msg := _use_key_file(args)) is not None:
        _err(msg)
        return 2
    params = absolutize_paths(params)
    problem = _support_problem(name, params)
    if problem:
        _err(f"notebook {name} cannot run: {problem}")
        return 2
    try:
        if os.path.exists(params.data_dir):
            precheck(params.data_dir)
    except DataError as exc:
        _err(str(exc))
        return 1
    mark_abandoned(args.out)
    source = {"params_file": args.params, "overrides": [list(p) for p in args.p or []], **extra}
    try:
        res = run_notebook(nb, params, out_dir=args.out, name=name, progress_bar=not args.no_progress,
                           params_source=source, execution_timeout=args.timeout)
    except (KernelNotFound, RmAnalyticsError) as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        folder = _partial_of(args.out, name, {os.getpid()})
        _err(f"interrupted: {name} did not finish; incomplete run folder: {folder or '(none yet)'}")
        return 130
    if res.ok:
        print(f"{name}: ok in {res.duration_s:.1f} s")
        print(f"run folder: {res.run_dir}")
        return 0
    _err(res.describe_failure())
    return 1


def _cmd_run_all(args: argparse.Namespace) -> int:
    from rmanalytics.errors import DataError, RmAnalyticsError
    from rmanalytics.params import ParameterError
    from rmanalytics.runner import KernelNotFound, RunInterrupted, run_all, summary_table

    if (msg := _use_key_file(args)) is not None:
        _err(msg)
        return 2
    try:
        results = run_all(params_dir=args.params_dir, data_dir=args.data, out_dir=args.out, variant=args.variant,
                          notebooks=args.only, notebooks_dir=args.notebooks_dir, jobs=args.jobs,
                          progress_bar=not args.no_progress, memory_limit=args.memory_limit,
                          reuse=not args.no_reuse)
    except DataError as exc:  # found by the fast pre-check of the data folder, before any kernel
        _err(str(exc))
        return 1
    except (ParameterError, KernelNotFound, RmAnalyticsError) as exc:
        _err(str(exc))
        return 2
    except RunInterrupted as exc:
        logging.disable(logging.CRITICAL)  # late kernel/ZMQ noise of the stopped runs
        print(exc.summary(), file=sys.stderr)
        return 130
    print()
    print(summary_table(results))
    failed = [r for r in results if r.status not in ("ok", "skipped")]
    for r in failed:
        _err(r.describe_failure())
    if not results:
        _err("no notebook was run")
        return 1
    if not any(r.ok for r in results):
        _err("no notebook ran: " + "; ".join(r.error or r.status for r in results))
        return 1
    return 1 if failed else 0


def _cmd_params(args: argparse.Namespace) -> int:
    from rmanalytics.params import ParameterError, get_model, notebook_name

    try:
        model = get_model(args.notebook)
    except ParameterError as exc:
        _err(str(exc))
        return 2
    if args.yaml:
        import yaml

        from rmanalytics.params.base import json_default

        defaults = {k: json_default(f.get_default(call_default_factory=True)) for k, f in model.model_fields.items()}
        print(f"# parameters of {notebook_name(args.notebook)} (defaults)")
        print(yaml.safe_dump(defaults, sort_keys=False, allow_unicode=True), end="")
        return 0
    rows = model.describe()
    print(f"{notebook_name(args.notebook)}: {model.__name__}" + (f" - {model.__doc__.strip().splitlines()[0]}"
                                                                  if model.__doc__ else ""))
    cols = ("name", "type", "default")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols) + "  help")
    print("  ".join("-" * widths[c] for c in cols) + "  ----")
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in cols) + "  " + r["help"])
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from rmanalytics.errors import RmAnalyticsError
    from rmanalytics.io import table_columns, validate_data_dir
    from rmanalytics.params import notebook_support
    from rmanalytics.schema import DataContractError

    try:
        columns = table_columns(args.data_dir)
    except FileNotFoundError as exc:
        _err(str(exc))
        return 2
    if not columns:
        _err(f"{args.data_dir}: no contract table found (expected <table>.parquet or <table>.csv files, e.g. "
             f"transactions.csv); see data/README.md")
        return 1
    try:
        tables, findings = validate_data_dir(args.data_dir, observation_end=args.observation_end, lazy=True)
    except DataContractError as exc:
        _err(f"invalid data in {args.data_dir}:\n{exc}")
        return 1
    except (RmAnalyticsError, ValueError) as exc:
        _err(str(exc))
        return 1
    print(f"{args.data_dir}: data contract OK for the {len(tables)} table(s) present")
    width = max((len(n) for n in tables), default=5)
    from rmanalytics.overview import table_summary

    for row in table_summary(tables).itertuples():  # Parquet row counts from the file footers
        print(f"  {row.table.ljust(width)}  {row.rows:>10,d} rows")
    from rmanalytics.contract import TABLES

    absent = [t for t in TABLES if t not in tables]
    if absent:
        print(f"  absent: {', '.join(absent)}")
    support = notebook_support(columns)
    print("notebooks this data supports:")
    for s in support:
        if s["supported"]:
            print(f"  {s['notebook']}: yes")
            for t, what in s["left_out"].items():
                print(f"      no {t} table, left out: {what}")
        else:
            print(f"  {s['notebook']}: no, needs {', '.join(s['missing'])} "
                  f"(required: {', '.join(s['required'])})")
    n = 0 if findings is None else len(findings)
    print(f"data-quality findings: {n}")
    if n:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 80):
            print(findings.to_string(index=False))
    if not any(s["supported"] for s in support):
        _err(f"{args.data_dir}: no notebook can run on these tables (every notebook needs a transactions table)")
        return 1
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from rmanalytics.runs import clean, mark_abandoned, parse_age

    try:
        age = parse_age(args.older_than) if args.older_than else None
    except ValueError as exc:
        _err(f"--older-than: {exc}")
        return 2
    if args.keep is not None and args.keep < 0:
        _err("--keep must be >= 0")
        return 2
    for p in mark_abandoned(args.out):
        print(f"abandoned (its process is gone): {p}")
    removed = clean(args.out, older_than=age, keep=args.keep, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, why in removed:
        print(f"{verb} {path} ({why})")
    print(f"{verb} {len(removed)} run folder(s) under {args.out}")
    return 0


def _cmd_synth(args: argparse.Namespace, rest: list[str]) -> int:
    from rmanalytics import synth

    rc = synth.main(rest)
    return int(rc or 0)


def _cmd_kernel(args: argparse.Namespace) -> int:
    from rmanalytics.runner import install_kernel

    where = install_kernel(args.name, user=args.user, display_name=args.display_name)
    print(f"kernel {args.name!r} registered for {sys.executable} in {where}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from rmanalytics.resources import init_project

    try:
        dest = init_project(args.folder, force=args.force)
    except FileExistsError as exc:
        _err(str(exc))
        return 2
    print(f"project folder ready: {dest}")
    print("  params/     parameters to edit (one YAML per notebook, scorecards/)")
    print("  notebooks/  notebooks to run or extend")
    print("  data/sample the bundled synthetic bank")
    print(f"next: cd {args.folder} && rmanalytics run-all   (reports in runs/<notebook>/latest/report.html)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmanalytics", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="execute one notebook into a new run folder")
    p.add_argument("notebook", help="notebook name (01_segmentation), unique prefix (01) or .ipynb path")
    p.add_argument("--params", metavar="FILE", help="YAML file of parameters (e.g. params/01_segmentation.ci.yaml)")
    p.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="set one parameter; VALUE is read as YAML (180 is an int, 1e2 a string, null None)")
    p.add_argument("--data", metavar="DIR", help="data folder (overrides data_dir)")
    p.add_argument("--out", default="runs", metavar="DIR", help="root of the run folders (default: runs)")
    p.add_argument("--notebooks-dir", metavar="DIR", help="folder of the notebooks (default: the project's notebooks/, then the packaged ones)")
    p.add_argument("--timeout", type=int, default=None, metavar="S", help="per-cell timeout in seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--mask-key-file", metavar="FILE",
                   help="file holding the secret key of the customer-id pseudonyms (default: $RMANALYTICS_MASK_KEY, "
                        "$RMANALYTICS_MASK_KEY_FILE, else ~/.config/rmanalytics/mask.key, generated once)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("run-all", help="run the notebook chain 00 -> 04 in dependency order")
    p.add_argument("--params-dir", metavar="DIR", help="folder of <notebook>[.<variant>].yaml (default: the project's params/, then the packaged ones)")
    p.add_argument("--variant", metavar="NAME", help="use <notebook>.<NAME>.yaml where present (e.g. ci)")
    p.add_argument("--data", metavar="DIR", help="data folder for every notebook (default: each file's data_dir, "
                                                 "i.e. the bundled sample)")
    p.add_argument("--out", default="runs", metavar="DIR", help="root of the run folders (default: runs)")
    p.add_argument("--only", nargs="+", metavar="NOTEBOOK",
                   help="run only these notebooks (chain order kept); an upstream left out is read from its last "
                        "successful run in --out when that run had the same data, parameters, notebook and code, else "
                        "recomputed (the summary says which)")
    p.add_argument("--no-reuse", action="store_true",
                   help="with --only: never read a left-out upstream's earlier run, always recompute")
    p.add_argument("--notebooks-dir", metavar="DIR", help="folder of the notebooks (default: the project's notebooks/, then the packaged ones)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="notebooks run in parallel when independent (default: as many as the CPUs and the memory "
                        "budget allow, at most 2)")
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="DuckDB memory limit per notebook, e.g. 4GB; above it queries spill to disk (default: "
                        "$RMANALYTICS_MEMORY_LIMIT, else a quarter of the RAM divided by the jobs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--mask-key-file", metavar="FILE",
                   help="file holding the secret key of the customer-id pseudonyms (default: $RMANALYTICS_MASK_KEY, "
                        "$RMANALYTICS_MASK_KEY_FILE, else ~/.config/rmanalytics/mask.key, generated once)")
    p.set_defaults(func=_cmd_run_all)

    p = sub.add_parser("params", help="print a notebook's parameters: name, type, default, help")
    p.add_argument("notebook")
    p.add_argument("--yaml", action="store_true", help="print the defaults as a YAML parameters file")
    p.set_defaults(func=_cmd_params)

    p = sub.add_parser("validate", help="check a data folder against the data contract; list quality findings")
    p.add_argument("data_dir")
    p.add_argument("--observation-end", metavar="DATE", help="ISO date for the quality rules (default: last date)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("clean", help="remove failed/interrupted/abandoned run folders; keep the newest N "
                                     "successful runs per notebook")
    p.add_argument("--out", default="runs", metavar="DIR", help="root of the run folders (default: runs)")
    p.add_argument("--older-than", metavar="AGE", help="only runs started longer ago than AGE (e.g. 7d, 12h, 2w)")
    p.add_argument("--keep", type=int, metavar="N", help="keep the newest N successful runs per notebook "
                                                         "(default: keep all successful runs)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    p.set_defaults(func=_cmd_clean)

    p = sub.add_parser("synth", help="generate synthetic data (see: rmanalytics synth --help)", add_help=False)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("kernel", help="register the 'rmanalytics' Jupyter kernel for this interpreter (venv or conda)")
    p.add_argument("--user", action="store_true", help="install for the user instead of into sys.prefix")
    p.add_argument("--name", default="rmanalytics", help="kernel name (default: rmanalytics, the one the notebooks use)")
    p.add_argument("--display-name", default=None, help="name shown in JupyterLab (default: 'rmanalytics (<env>)')")
    p.set_defaults(func=_cmd_kernel)

    p = sub.add_parser("init", help="make a project folder: params/ and notebooks/ to edit, the sample data, a README")
    p.add_argument("folder")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder (overwrites copied files)")
    p.set_defaults(func=_cmd_init)
    return parser


def _setup_logging(verbose: bool) -> None:
    # A handler with its own level: papermill logs every cell's output at INFO into run.log and
    # those records must not reach the console unless --verbose.
    root = logging.getLogger()
    if not any(getattr(h, "_rmanalytics", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._rmanalytics = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for h in root.handlers:
        if getattr(h, "_rmanalytics", False):
            h.setLevel(logging.INFO if verbose else logging.WARNING)


def _sigterm_as_interrupt() -> None:
    """A scheduler's SIGTERM stops a run like Ctrl-C: the run folder stays ``.partial``, status
    ``interrupted``."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rmanalytics`` command; returns the exit code."""
    from rmanalytics.errors import RmAnalyticsError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command != "synth" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    _setup_logging(args.verbose)
    _sigterm_as_interrupt()
    try:
        if args.command == "synth":
            return _cmd_synth(args, rest)
        return int(args.func(args))
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except RmAnalyticsError as exc:  # a user's mistake (data, parameters, ...): one message, no traceback
        _err(str(exc))
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
