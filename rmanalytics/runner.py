"""Run notebooks with papermill into run folders that are never overwritten.

One run of one notebook writes one folder::

    <out>/<notebook>/<UTC timestamp>[_<git sha>]/
        parameters.yaml       resolved, validated parameters of the run
        <notebook>.ipynb      the executed notebook (kept when the run fails)
        report.html           HTML report without code cells (nbconvert ``exclude_input=True``)
        tables/*.csv          tables recorded by the notebook (:class:`rmanalytics.report.Recorder`),
                              customer ids masked; tables/*.parquet for tables without customer ids
        restricted/tables/*.parquet  tables with RAW customer ids (folder 0700, files 0600); the chain
                              reads these. Everything outside restricted/ is safe to share.
        figures/*.png         plots
        metrics.json          key figures
        run.log               papermill log and the cells' output
        manifest.json         package/Python/library versions, parameters, input fingerprints,
                              start/end time (UTC), status and, on failure, the failing cell

Completion is atomic: the run writes into ``<folder>.partial`` (manifest status ``running``) and the
folder is renamed to its final name only at the end; a failed run is renamed to ``<folder>.failed``.
A folder without a suffix therefore always holds a finished, successful run; an interrupted run
(Ctrl-C, SIGTERM) leaves a ``.partial`` folder whose manifest says ``interrupted``; a killed run
(``kill -9``) one that says ``running`` until the next ``run``/``run-all``/``clean`` notices its
process (``pid`` and ``host`` in the manifest) is gone and marks it ``abandoned``
(:mod:`rmanalytics.runs`, which also explains how every process a run starts dies with it).
``<out>/<notebook>/latest`` points to the newest successful run.

Privacy (:mod:`rmanalytics.privacy`): the pseudonymisation key is resolved before the kernel
starts (``RMANALYTICS_MASK_KEY``, a key file, or a key generated once in the user's config folder,
which the log then says); the manifest records only its fingerprint. After the kernel ends, the
people-facing text files of the run (executed notebook, report.html, run.log, CSV, JSON, ...)
are scanned and any raw customer id still quoted in them (error messages, warnings, printed
examples) is replaced by its pseudonym; ids are recognised by asking the run's data
(:func:`rmanalytics.io.known_customer_ids`). With ``mask_ids: false`` nothing is masked and the
whole run folder is made owner-only.

Parameters are validated (:func:`rmanalytics.params.resolve`) before any kernel starts. The kernel
is the ``rmanalytics`` kernelspec (registered on first use); jupyter_client starts it with the interpreter running the runner, so
runs use the same environment (venv or conda) as the ``rmanalytics`` command. The kernel's working
folder is the ``notebooks/`` folder (as in JupyterLab); ``data_dir`` and existing relative
``*_path`` parameters are made absolute before the run, so relative paths behave the same in both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from rmanalytics import engine, privacy
from rmanalytics.errors import RmAnalyticsError
from rmanalytics.resources import bundled_root, find_project, locate
from rmanalytics.params import (
    CHAIN_INPUTS,
    NOTEBOOKS,
    REGISTRY,
    NotebookParams,
    ParameterError,
    notebook_name,
    resolve,
    validate,
)

from rmanalytics.runs import die_with_parent, mark_abandoned, process_identity

log = logging.getLogger(__name__)

#: The Jupyter kernel the notebooks name in their metadata; registered for the interpreter that
#: runs rmanalytics (``rmanalytics kernel``, or automatically by the first run).
KERNEL_NAME = "rmanalytics"
#: Packages whose versions go into every manifest.
KEY_PACKAGES = (
    "rmanalytics", "pandas", "numpy", "scipy", "scikit-learn", "lifelines", "matplotlib", "duckdb", "pyarrow",
    "pydantic", "sqlglot", "papermill", "nbconvert", "nbclient", "ipykernel", "pyspark",
)
#: Files above this size are fingerprinted by size, mtime and the hash of their first and last MiB.
FULL_HASH_LIMIT = 256 * 2**20


@dataclass
class RunResult:
    """Outcome of one notebook run."""

    notebook: str
    status: str  # "ok" | "failed" | "interrupted"
    run_dir: Path
    executed_notebook: Path
    params: dict[str, Any] = field(default_factory=dict)
    started_utc: str = ""
    ended_utc: str = ""
    duration_s: float = 0.0
    error: str | None = None
    failed_cell: int | None = None
    failed_exec_count: int | None = None
    failed_source: str | None = None
    failed_line: int | None = None
    raised_at: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe_failure(self) -> str:
        """One paragraph for the CLI: the line that raised, its error, where the executed notebook is."""
        if self.status == "skipped":
            return f"notebook {self.notebook} skipped: {self.error}"
        where = ""
        if self.failed_cell is not None:
            where = f" at cell index {self.failed_cell}" + (
                f" (In [{self.failed_exec_count}])" if self.failed_exec_count is not None else "")
            if self.failed_line is not None:
                where += f", line {self.failed_line}"
            if self.failed_source:
                where += f" `{self.failed_source}`"
            if self.raised_at:
                where += f" (raised in {self.raised_at})"
        return (f"notebook {self.notebook} {self.status}{where}: {self.error}\n"
                f"  executed notebook: {self.executed_notebook}\n"
                f"  log: {self.run_dir / 'run.log'}")


# ----------------------------------------------------------------------------- locations
def notebook_path(notebook: str | os.PathLike, notebooks_dir: str | os.PathLike | None = None) -> Path:
    """Path of a notebook given as a path, a registry name or a unique prefix.

    Looked up in ``notebooks_dir`` when given, else in the project folder's ``notebooks/``, then
    among the notebooks shipped with the package (:mod:`rmanalytics.resources`).
    """
    p = Path(notebook)
    if p.suffix == ".ipynb" and p.is_file():
        return p.resolve()
    rel = Path("notebooks") / f"{notebook_name(notebook)}.ipynb"
    if notebooks_dir is not None:
        path = Path(notebooks_dir) / rel.name
        if not path.is_file():
            raise FileNotFoundError(f"notebook not found: {path}")
        return path.resolve()
    path = locate(rel)
    if path is None:
        raise FileNotFoundError(f"notebook not found: {rel} (neither in the project folder nor in the package)")
    return path


def git_info(folder: Path) -> dict[str, Any]:
    """Short commit sha and dirty flag of the git work tree holding ``folder`` (empty if none)."""
    try:
        sha = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return {}
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


class KernelNotFound(RmAnalyticsError, RuntimeError):
    """The Jupyter kernel the notebooks use is not registered."""


def kernel_display_name() -> str:
    """``rmanalytics (<environment folder>)``, e.g. ``rmanalytics (.venv)``."""
    return f"rmanalytics ({Path(sys.prefix).name})"


def install_kernel(kernel_name: str = KERNEL_NAME, *, user: bool = False,
                   display_name: str | None = None) -> Path:
    """Register ``kernel_name`` for this interpreter (into ``sys.prefix``, or the user's Jupyter
    folder with ``user=True`` or when ``sys.prefix`` is not writable); return the kernelspec folder."""
    from ipykernel.kernelspec import install

    display_name = display_name or kernel_display_name()
    if not user:
        try:
            return Path(install(kernel_name=kernel_name, display_name=display_name, prefix=sys.prefix))
        except PermissionError:
            pass
    return Path(install(kernel_name=kernel_name, display_name=display_name, user=True))


def check_kernel(kernel_name: str = KERNEL_NAME) -> None:
    """Make sure ``kernel_name`` is registered before creating a run folder.

    The project's own kernel is registered for this interpreter when missing (and the log says
    so), so a fresh ``pip install`` runs notebooks without a manual step; another name that is
    not registered raises :class:`KernelNotFound`.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
        return
    except NoSuchKernel:
        if kernel_name != KERNEL_NAME:
            raise KernelNotFound(
                f"Jupyter kernel {kernel_name!r} not found; register it for this interpreter "
                f"({sys.executable}) with: rmanalytics kernel --name {kernel_name}"
            ) from None
    where = install_kernel(kernel_name)
    log.warning("registered the Jupyter kernel %r for %s in %s", kernel_name, sys.executable, where)


# ----------------------------------------------------------------------------- fingerprints
def file_fingerprint(path: Path) -> dict[str, Any]:
    """sha256 and size of a file (large files: first and last MiB plus size, flagged ``partial``)."""
    st = path.stat()
    h = hashlib.sha256()
    partial = st.st_size > FULL_HASH_LIMIT
    with path.open("rb") as fh:
        if partial:
            h.update(fh.read(2**20))
            fh.seek(max(st.st_size - 2**20, 0))
            h.update(fh.read(2**20))
        else:
            for chunk in iter(lambda: fh.read(2**20), b""):
                h.update(chunk)
    out = {"sha256": h.hexdigest(), "bytes": st.st_size}
    if partial:
        out["partial"] = True
        out["mtime"] = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).isoformat()
    return out


def _input_paths(params: NotebookParams) -> list[str]:
    """What a run fingerprints: ``data_dir`` and the ``*_path`` parameters that are set."""
    out = [params.data_dir] if getattr(params, "data_dir", None) else []
    return out + [getattr(params, k) for k in type(params).model_fields
                  if k.endswith("_path") and isinstance(getattr(params, k), str)]


def input_fingerprints(paths: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """Fingerprints of every file under the given files/folders, keyed by absolute path."""
    out: dict[str, Any] = {}
    for p in paths:
        p = Path(p)
        if p.is_file():
            out[str(p)] = file_fingerprint(p)
        elif p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")):
                out[str(f)] = file_fingerprint(f)
        else:
            out[str(p)] = {"missing": True}
    return out


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


# ----------------------------------------------------------------------------- helpers
def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_run_dir(base: Path, stamp: str) -> tuple[Path, Path]:
    """Create ``<base>/<stamp>[-n].partial`` atomically; return (partial, final)."""
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        name = stamp if n == 1 else f"{stamp}-{n}"
        final = base / name
        partial = base / f"{name}.partial"
        if not (final.exists() or (base / f"{name}.failed").exists()):
            try:
                partial.mkdir()
                return partial, final
            except FileExistsError:
                pass
        n += 1


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)


def absolutize_paths(params: NotebookParams, base: Path | None = None) -> NotebookParams:
    """Copy of ``params`` with ``data_dir`` and relative ``*_path`` parameters made absolute.

    Relative to ``base`` (default: the current folder); a path that does not exist there is looked
    up in the project folder, then among the packaged copies (:func:`rmanalytics.resources.locate`),
    so the defaults (``data/sample``, ``params/...``) work from any folder and from a plain install.
    """
    base = base or Path.cwd()
    fixes = {}
    for key in type(params).model_fields:
        if key not in ("data_dir", "font") and not key.endswith("_path"):
            continue
        value = getattr(params, key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            path = (base / value).resolve()
            if not path.exists():
                path = locate(value, base) or path
            fixes[key] = str(path)
    return params.model_copy(update=fixes) if fixes else params


_ADDED_TAGS = {"papermill-error-cell-tag", "injected-parameters"}


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"^(?:Cell In ?\[\d*\]|Input In ?\[\d*\]), line (\d+)")
_FILE_FRAME = re.compile(r"^File (.+?):(\d+)(?:, in (\S+?)(?:\(|$))?")


def _raising_line(traceback: list[str], source: str) -> tuple[int | None, str | None, str | None]:
    """(line number in the cell, its text, deepest file frame) from an error output's traceback.

    IPython tracebacks name the cell frame ``Cell In[4], line 3`` and library frames
    ``File /path/module.py:123, in func(...)``; the cell line is the one the notebook author
    wrote that led to the error, the last file frame is where the error was raised.
    """
    line_no, raised = None, None
    for chunk in traceback:
        for ln in _ANSI.sub("", chunk).splitlines():
            ln = ln.strip()
            m = _CELL_FRAME.match(ln)
            if m and line_no is None:
                line_no = int(m.group(1))
                continue
            m = _FILE_FRAME.match(ln)
            if m:
                path = m.group(1)
                parts = Path(path).parts
                short = "/".join(parts[parts.index("rmanalytics"):]) if "rmanalytics" in parts[:-1] else \
                    "/".join(parts[-2:])
                raised = f"{short}:{m.group(2)}" + (f" in {m.group(3)}" if m.group(3) else "")
    lines = source.splitlines()
    text = lines[line_no - 1].strip() if line_no is not None and 0 < line_no <= len(lines) else None
    return line_no, text, raised


def _failing_cell(nb_path: Path) -> tuple[int | None, int | None, str | None, int | None, str | None]:
    """(index, execution count, source line that raised, its line number, deepest frame) of the
    first cell with an error output.

    The index is 0-based and counts the cells of the *source* notebook (cells papermill adds,
    the injected parameters and its error markers, are not counted). The line is the cell line
    named by the traceback (the first non-blank line when the traceback names none).
    """
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:  # noqa: BLE001 - the notebook may not have been written
        return None, None, None, None, None
    index = -1
    for cell in nb.cells:
        if _ADDED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        index += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                line_no, text, raised = _raising_line(list(out.get("traceback", [])), cell.source)
                if text is None:
                    text = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                return index, cell.get("execution_count"), text, line_no, raised
    return None, None, None, None, None


class _DropValidatedWarnings(logging.Filter):
    """Drop papermill's "Passed unknown parameter" warnings: the model validated every name
    already, and papermill's inspection cannot parse annotations such as ``str | None``."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Passed unknown parameter") or msg.startswith("Unable to parse line"))


def export_html(nb_path: Path, html_path: Path, *, title: str | None = None,
                header_markdown: str | None = None, lang: str = "en") -> Path:
    """Write an HTML report of an executed notebook without code cells (nbconvert, ``exclude_input``).

    ``header_markdown`` is shown first (the runner puts the run's status and parameters there).
    Cells tagged ``parameters``/``injected-parameters``/``remove_cell`` are left out.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(nb_path, as_version=4)
    from rmanalytics.notebook import translate_cells

    translate_cells(nb, lang)  # section headings and summaries in the run's language
    if header_markdown:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(header_markdown))
    if title:
        nb.metadata["title"] = title
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={"parameters", "injected-parameters", "remove_cell"}, enabled=True),
        enabled=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def _font_check(params: NotebookParams) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest entry, report notice) for the Chinese font of a ``lang: zh`` run; (None, None) for en.

    The runner looks for the font as the kernel will (:func:`rmanalytics.fonts.find_cjk_font`: same
    environment, same ``font`` parameter), so the manifest names the font the figures use.
    """
    if getattr(params, "lang", "en") != "zh":
        return None, None
    from rmanalytics import fonts

    info = fonts.find_cjk_font(getattr(params, "font", None))
    if info is not None:
        return fonts.describe(info), None
    return fonts.describe(None), f"**未找到中文字体 / No Chinese font found.** {fonts.install_hint('zh')}\n\n" \
                                 f"{fonts.install_hint('en')}"


def _report_header(name: str, status: str, params: Any, error: str | None,
                   notice: str | None = None, metrics: Mapping[str, Any] | None = None) -> str:
    """Top of the HTML report: run status, an optional notice (e.g. how to install a Chinese font), the
    key figures of the run (:func:`rmanalytics.notebook.headline_html`) and, for a failed run, the
    collapsed parameter table (a successful run shows it from the notebook)."""
    from rmanalytics.notebook import headline_html, params_html

    zh = (params.get("lang") if isinstance(params, Mapping) else getattr(params, "lang", "en")) == "zh"
    word = {"ok": "完成" if zh else "ok", "failed": "失败" if zh else "failed"}.get(status, status)
    out = (f"**运行 `{name}`** — 状态：**{word}**" if zh else f"**Run of `{name}`** — status: **{word}**")
    if error:
        out += f"\n\n**Error:** `{error}`"
    if notice:
        out += f"\n\n> {notice}"
    if metrics:
        lang = "zh" if zh else "en"
        out += "\n\n" + headline_html(name, dict(metrics), lang=lang, currency=getattr(params, "currency", "CNY"))
    if status != "ok":
        out += "\n\n" + params_html(params, open_=True)
    return out + "\n"


def _read_metrics(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _kernel_manager_class(stderr_path: Path) -> type:
    """An AsyncKernelManager whose kernel writes its own stderr (start-up warnings, and the ZMQ
    tracebacks of a kernel stopped mid-cell by Ctrl-C) to ``run.log`` instead of the console."""
    from jupyter_client import AsyncKernelManager

    class _RunKernelManager(AsyncKernelManager):
        async def _async_start_kernel(self, **kw: Any) -> None:
            if "stderr" not in kw:
                kw["stderr"] = self._run_log = open(stderr_path, "ab")  # noqa: SIM115 - lives with the kernel
            await super()._async_start_kernel(**kw)

        start_kernel = _async_start_kernel

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            fh = getattr(self, "_run_log", None)
            if fh is not None and not restart:
                fh.close()

        cleanup_resources = _async_cleanup_resources

    return _RunKernelManager


class _LogToFile:
    """Attach a file handler for ``run.log`` to the papermill and rmanalytics loggers."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.loggers = [logging.getLogger("papermill"), logging.getLogger("rmanalytics")]
        self.levels: list[int] = []
        self.filter = _DropValidatedWarnings()
        self.filtered = [logging.getLogger("papermill"), logging.getLogger("papermill.translators")]

    def __enter__(self) -> "_LogToFile":
        for lg in self.loggers:
            self.levels.append(lg.level)
            if lg.level == logging.NOTSET or lg.level > logging.INFO:
                lg.setLevel(logging.INFO)
            lg.addHandler(self.handler)
        for lg in self.filtered:
            lg.addFilter(self.filter)
        return self

    def __exit__(self, *exc: Any) -> None:
        for lg, level in zip(self.loggers, self.levels):
            lg.removeHandler(self.handler)
            lg.setLevel(level)
        for lg in self.filtered:
            lg.removeFilter(self.filter)
        self.handler.close()


# ----------------------------------------------------------------------------- one run
def run_notebook(
    notebook: str | os.PathLike,
    params: NotebookParams,
    *,
    out_dir: str | os.PathLike = "runs",
    notebooks_dir: str | os.PathLike | None = None,
    name: str | None = None,
    progress_bar: bool = True,
    kernel_name: str = KERNEL_NAME,
    start_timeout: int = 60,
    execution_timeout: int | None = None,
    params_source: Mapping[str, Any] | None = None,
    extra_inputs: Iterable[str | os.PathLike] = (),
    mask_key: privacy.MaskKey | None = None,
) -> RunResult:
    """Execute one notebook with papermill into a new run folder and return the outcome.

    Parameters
    ----------
    notebook : registry name (``"01_segmentation"``), unique prefix or path of the ``.ipynb``.
    params : validated parameters (from :func:`rmanalytics.params.resolve`); ``output_dir`` is
        replaced by the run folder, ``data_dir`` and relative ``*_path`` values are made absolute.
    out_dir : root of the run folders (``<out_dir>/<notebook>/<UTC timestamp>[_<git sha>]``).
    progress_bar : papermill's progress bar over cells (stderr).
    params_source : recorded in the manifest (YAML file, ``-p`` overrides).
    extra_inputs : more files/folders to fingerprint besides ``data_dir`` and ``*_path`` parameters.
    mask_key : the pseudonymisation key already loaded by the caller (``run_all``); None:
        :func:`rmanalytics.privacy.load_key`. Only its fingerprint and source are recorded.

    Returns a :class:`RunResult`; a failing cell gives ``status="failed"`` (no exception). A
    ``KeyboardInterrupt`` leaves the ``.partial`` folder with status ``interrupted`` and is re-raised.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    nb_in = notebook_path(notebook, notebooks_dir)
    name = name or nb_in.stem
    check_kernel(kernel_name)
    params = absolutize_paths(params)
    masked = bool(getattr(params, "mask_ids", True))
    key = (mask_key or privacy.load_key()) if masked else None  # a bad key fails before the run folder exists
    started = _utcnow()
    t0 = time.perf_counter()
    git = git_info(nb_in.parent)
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + (f"_{git['sha']}" if git.get("sha") else "")
    partial, final = _new_run_dir(Path(out_dir).resolve() / name, stamp)

    run_params = params.model_copy(update={"output_dir": str(partial)})
    injected = run_params.model_dump(mode="json", by_alias=True)
    recorded = {**injected, "output_dir": str(final)}
    import yaml

    (partial / "parameters.yaml").write_text(
        yaml.safe_dump(recorded, sort_keys=False, allow_unicode=True), encoding="utf-8")

    font_entry, font_notice = _font_check(params)
    fp_paths = _input_paths(params) + [str(p) for p in extra_inputs]
    manifest: dict[str, Any] = {
        "notebook": name,
        "notebook_path": str(nb_in),
        "notebook_sha256": file_fingerprint(nb_in)["sha256"],
        "run_id": final.name,
        "run_dir": str(final),
        "status": "running",
        "started_utc": started.isoformat(),
        "ended_utc": None,
        "duration_s": None,
        "parameters": recorded,
        "parameters_source": dict(params_source or {}),
        "inputs": input_fingerprints(fp_paths),
        "package_version": package_versions(["rmanalytics"])["rmanalytics"],
        "git": git,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "kernel_name": kernel_name,
        "packages": package_versions(),
        "command": sys.argv,
        "font": font_entry,
        "privacy": {"mask_ids": masked, "key_fingerprint": key.fingerprint if key else None,
                    "key_source": key.source if key else None, "restricted_dir": privacy.RESTRICTED_DIR,
                    "shareable": "everything outside restricted/" if masked else "nothing (mask_ids: false)"},
        **process_identity(),  # pid, host, pid_start: a dead owner means the run was abandoned
        "parent_pid": os.getppid(),
    }
    _write_json(partial / "manifest.json", manifest)

    executed = partial / nb_in.name
    status, error, cell_idx, exec_count = "ok", None, None, None
    with _LogToFile(partial / "run.log"):
        log.info("run %s -> %s", name, partial)
        log.info("parameters: %s", json.dumps(injected, ensure_ascii=False))
        os.environ["RMANALYTICS_NOTEBOOK"] = name  # inherited by the kernel: tells monitors whose it is
        if key is not None:
            log.info(key.describe())
            for note in key.notes:
                log.warning(note)
        else:
            log.warning("mask_ids is false: customer ids are NOT masked in this run; its folder is owner-only")
        try:
            pm.execute_notebook(
                str(nb_in), str(executed), parameters=injected, kernel_name=kernel_name,
                progress_bar=progress_bar, log_output=True, cwd=str(nb_in.parent),
                start_timeout=start_timeout, execution_timeout=execution_timeout,
                kernel_manager_class=_kernel_manager_class(partial / "run.log"),
            )
        except PapermillExecutionError as exc:
            status, error = "failed", f"{exc.ename}: {exc.evalue}"
            cell_idx, exec_count = exc.cell_index, exc.exec_count
            log.info("In [%s] raised %s", exc.exec_count, error)
        except KeyboardInterrupt:
            manifest.update(status="interrupted", ended_utc=_utcnow().isoformat(),
                            duration_s=round(time.perf_counter() - t0, 3))
            _write_json(partial / "manifest.json", manifest)
            log.info("interrupted; incomplete run left in %s", partial)
            raise
        except Exception as exc:  # kernel died, kernel not found, bad notebook ...
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("run failed")

        first = line_no = raised = None
        if status == "failed" and executed.is_file():
            idx, count, first, line_no, raised = _failing_cell(executed)
            if idx is not None:
                cell_idx, exec_count = idx, count

        if executed.is_file():
            try:
                export_html(executed, partial / "report.html", title=f"{name} ({final.name})",
                            header_markdown=_report_header(name, status, run_params, error, font_notice,
                                                           _read_metrics(partial)),
                            lang=getattr(params, "lang", "en"))
            except Exception as exc:  # noqa: BLE001 - a report problem must not hide the run's result
                log.exception("HTML export failed")
                if status == "ok":
                    status, error = "failed", f"HTML export failed: {type(exc).__name__}: {exc}"

    if key is not None:
        error, first = _mask_run_texts(partial, key, getattr(params, "data_dir", None), manifest, error, first)
    else:
        privacy.lock_down(partial)
    privacy.lock_down(partial / privacy.RESTRICTED_DIR)

    ended = _utcnow()
    duration = round(time.perf_counter() - t0, 3)
    target = final if status == "ok" else final.with_name(final.name + ".failed")
    manifest.update(
        status=status, ended_utc=ended.isoformat(), duration_s=duration, run_dir=str(target),
        outputs=sorted(str(p.relative_to(partial)) for p in partial.rglob("*") if p.is_file()),
    )
    if status != "ok":
        manifest["error"] = {"message": error, "cell_index": cell_idx, "execution_count": exec_count,
                             "line": line_no, "source_line": first, "raised_at": raised,
                             "executed_notebook": str(target / executed.name)}
    _write_json(partial / "manifest.json", manifest)
    partial.rename(target)
    if status == "ok":
        _update_latest(target)
    return RunResult(
        notebook=name, status=status, run_dir=target, executed_notebook=target / executed.name,
        params=recorded, started_utc=started.isoformat(), ended_utc=ended.isoformat(), duration_s=duration,
        error=error, failed_cell=cell_idx, failed_exec_count=exec_count, failed_source=first,
        failed_line=line_no, raised_at=raised,
    )


class _IdLookup:
    """Which tokens are customer ids of ``data_dir`` (asks the data once per new token)."""

    def __init__(self, data_dir: str | None) -> None:
        self.data_dir, self.ids, self.seen = data_dir, set(), set()

    def __call__(self, tokens: set[str]) -> set[str]:
        new = set(tokens) - self.seen
        if new and self.data_dir:
            from rmanalytics.io import known_customer_ids

            self.ids |= known_customer_ids(self.data_dir, new)
        self.seen |= new
        return set(tokens) & self.ids


def _mask_run_texts(run_dir: Path, key: privacy.MaskKey, data_dir: str | None, manifest: dict[str, Any],
                    error: str | None, first: str | None) -> tuple[str | None, str | None]:
    """Mask raw customer ids quoted in the people-facing files of ``run_dir`` and in the error
    texts that go into the manifest; note what was done in the manifest and the run log."""
    lookup = _IdLookup(data_dir)
    files = [p for p in privacy.people_facing_files(run_dir) if p.name != "manifest.json"]
    try:
        counts = privacy.scrub_files(files, key, lookup)
        error = privacy.mask_text(error, key, lookup) if error else error
        first = privacy.mask_text(first, key, lookup) if first else first
        note = {"raw_ids_masked_in_text": sum(counts.values()),
                "files_masked": sorted(str(Path(p).relative_to(run_dir)) for p in counts)}
    except Exception as exc:  # noqa: BLE001 - the data may be unreadable (that can be why the run failed)
        note = {"text_masking_failed": f"{type(exc).__name__}: {exc}"}
    manifest["privacy"].update(note)
    with (run_dir / "run.log").open("a", encoding="utf-8") as fh:
        fh.write(f"privacy: {json.dumps(note, ensure_ascii=False)}\n")
    return error, first


def _update_latest(run_dir: Path) -> None:
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(run_dir.name)
        os.replace(tmp, link)
    except OSError:  # e.g. no symlinks on this filesystem: 'latest' is a convenience only
        pass


def is_complete(run_dir: str | os.PathLike) -> bool:
    """True when ``run_dir`` holds a finished successful run (final name, manifest status ok, report)."""
    run_dir = Path(run_dir)
    if run_dir.suffix in (".partial", ".failed"):
        return False
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("status") == "ok" and (run_dir / "report.html").is_file()


# ----------------------------------------------------------------------------- the chain
def params_file(params_dir: Path | None, notebook: str, variant: str | None = None) -> Path | None:
    """``<params_dir>/<nb>.<variant>.yaml`` if given and present, else ``<nb>.yaml`` if present.

    ``params_dir=None``: the project folder's ``params/`` first, then the packaged parameters.
    """
    dirs = [Path(params_dir)] if params_dir is not None else [
        d / "params" for d in dict.fromkeys(r for r in (find_project(), bundled_root()) if r is not None)]
    names = ([f"{notebook}.{variant}.yaml"] if variant else []) + [f"{notebook}.yaml"]
    for name in names:  # the variant wins over the plain file wherever it is found
        for d in dirs:
            if (d / name).is_file():
                return d / name
    return None


def dependencies(notebook: str) -> dict[str, tuple[str, str]]:
    """Chain inputs of ``notebook`` that its model actually has (parameter -> (upstream, file))."""
    model = REGISTRY[notebook]
    return {k: v for k, v in CHAIN_INPUTS.get(notebook, {}).items() if k in model.model_fields}


#: Parameters that only say where a run writes, not what it computes: not compared by :func:`reusable_run`.
WHERE_PARAMS = frozenset({"output_dir"})


def _last_successful_run(base: Path) -> Path | None:
    """``<base>/latest`` when it exists, else the newest complete run folder of ``base`` (run ids
    start with the UTC time), else None."""
    latest = base / "latest"
    if latest.exists():
        return latest.resolve()
    runs = [p for p in base.iterdir() if p.is_dir() and p.name != "latest" and is_complete(p)] if base.is_dir() else []
    return max(runs, key=lambda p: p.name, default=None)


def _within(path: str, roots: Iterable[str]) -> bool:
    p = Path(path)
    return any(p == Path(r) or Path(r) in p.parents for r in roots)


def _code_change(manifest: dict[str, Any], notebook: Path) -> str | None:
    """Why the package code that would run now may differ from the one a run recorded, or None:
    another rmanalytics version, another commit of the project's git work tree, or uncommitted
    changes in it (then or now: the code that ran cannot be confirmed)."""
    version = package_versions(["rmanalytics"])["rmanalytics"]
    if manifest.get("package_version") != version:
        return f"rmanalytics {manifest.get('package_version')} → {version}"
    then, now = manifest.get("git") or {}, git_info(notebook.parent)
    if then.get("sha") != now.get("sha"):
        return f"project commit {then.get('sha') or '(none)'} → {now.get('sha') or '(none)'}"
    if then.get("dirty") or now.get("dirty"):
        return "uncommitted changes in the project (the code that ran cannot be confirmed)"
    return None


def reusable_run(out_dir: str | os.PathLike, up: str, rel: str, fresh_params: NotebookParams,
                 notebooks_dir: str | os.PathLike | None = None, *,
                 fingerprints: dict[str, dict[str, Any]] | None = None) -> tuple[Path | None, str]:
    """``(file, why)``: the file ``rel`` of ``up``'s last successful run under ``out_dir`` when that run
    is what running ``up`` now would give, else ``(None, why not)``; ``why`` is said in run-all's notes.

    The same means: the run (``latest``, or the newest complete folder) is complete and holds
    ``rel``; its recorded parameters equal ``fresh_params`` (those run-all would give ``up`` now),
    except :data:`WHERE_PARAMS` and ``up``'s own chain inputs that are None in ``fresh_params``
    (run-all set them from a run of their upstream); the notebook that would run now has the
    sha256 of the one that ran, and the package the same version and project commit, with no
    uncommitted changes then or now (:func:`_code_change`); the files under ``data_dir`` and the ``*_path`` inputs now have the
    fingerprints it recorded (none added or removed). ``fingerprints`` caches
    :func:`input_fingerprints` per path across calls.
    """
    run = _last_successful_run(Path(out_dir).resolve() / up)
    if run is None:
        return None, f"no successful run of {up} in {out_dir}"
    if not is_complete(run):
        return None, f"last run {run.name} is not complete"
    if not (run / rel).exists():
        return None, f"last run {run.name} has no {rel}"
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    then, now = manifest.get("parameters") or {}, fresh_params.model_dump(mode="json", by_alias=True)
    skip = WHERE_PARAMS | {k for k in CHAIN_INPUTS.get(up, {}) if now.get(k) is None}
    unset = object()
    diffs = [f"{k} {then.get(k, '(unset)')} → {now.get(k, '(unset)')}"
             for k in sorted((then.keys() | now.keys()) - skip) if then.get(k, unset) != now.get(k, unset)]
    if diffs:
        return None, f"last run {run.name} had other parameters: {', '.join(diffs)}"
    try:
        nb = notebook_path(up, notebooks_dir)
    except FileNotFoundError as exc:
        return None, str(exc)
    if file_fingerprint(nb)["sha256"] != manifest.get("notebook_sha256"):
        return None, f"notebook {nb.name} changed since last run {run.name}"
    code = _code_change(manifest, nb)
    if code:
        return None, f"{code} since last run {run.name}"
    paths = _input_paths(fresh_params)
    cache = {} if fingerprints is None else fingerprints
    current: dict[str, Any] = {}
    for path in paths:
        if path not in cache:
            cache[path] = input_fingerprints([path])
        current.update(cache[path])
    recorded = {k: v for k, v in (manifest.get("inputs") or {}).items() if _within(k, paths)}
    if recorded != current:
        changed = [f"{Path(k).name} {'added' if k not in recorded else 'removed' if k not in current else 'changed'}"
                   for k in sorted(recorded.keys() | current.keys()) if recorded.get(k) != current.get(k)]
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return None, f"data changed since last run {run.name}: {', '.join(changed[:3])}{more}"
    return run / rel, f"reused {up} run {run.name} (same data, parameters and notebook)"


def _run_one(kwargs: dict[str, Any]) -> RunResult:  # top level: picklable for worker processes
    params = validate(kwargs.pop("notebook_name"), kwargs.pop("values"))
    return run_notebook(params=params, **kwargs)


def _worker_init(parent_pid: int) -> None:
    """Pool worker start-up: die with run-all (see :mod:`rmanalytics.runs`), leave Ctrl-C to it."""
    die_with_parent(parent_pid, ignore_sigint=True)


class RunInterrupted(KeyboardInterrupt):
    """run-all was interrupted (Ctrl-C, SIGTERM): what finished, what was cut off, what never started.

    ``results``: RunResults of finished notebooks; ``interrupted``: notebook -> its ``.partial``
    folder (or None if it had not created one); ``not_started``: notebooks never started.
    """

    def __init__(self, results: list[RunResult], interrupted: dict[str, Path | None], not_started: list[str]):
        super().__init__("interrupted")
        self.results, self.interrupted, self.not_started = results, interrupted, not_started

    def summary(self) -> str:
        lines = ["interrupted: " + (f"{len(self.results)} notebook(s) finished, " if self.results else "")
                 + f"{len(self.interrupted)} cut off, {len(self.not_started)} not started"]
        for r in self.results:
            lines.append(f"  finished     {_one_line(r)}")
        for nb, folder in self.interrupted.items():
            lines.append(f"  interrupted  {nb} -> {folder or '(no run folder yet)'}")
        for nb in self.not_started:
            lines.append(f"  not started  {nb}")
        return "\n".join(lines)


def _partial_of(out_dir: str | os.PathLike, notebook: str, pids: set[int]) -> Path | None:
    """The newest ``.partial`` folder of ``notebook`` run by one of ``pids``."""
    base = Path(out_dir).resolve() / notebook
    found = []
    for p in base.glob("*.partial") if base.is_dir() else []:
        try:
            m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if m.get("pid") in pids:
            found.append(p)
    return max(found, default=None)


def _mark_interrupted(folder: Path | None) -> None:
    if folder is None:
        return
    try:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if m.get("status") == "running":
        m.update(status="interrupted", ended_utc=_utcnow().isoformat())
        _write_json(folder / "manifest.json", m)


def _support_problem(nb: str, params: NotebookParams) -> str | None:
    """Why the data of ``params`` cannot support notebook ``nb`` (None when it can, or unknown)."""
    from rmanalytics.io import table_columns
    from rmanalytics.params import notebook_support

    data = getattr(params, "data_dir", None)
    if nb not in REGISTRY or not data:
        return None
    if not Path(data).exists():
        return None  # the notebook's loader names the missing folder
    try:
        columns = table_columns(data)
    except (FileNotFoundError, OSError):
        return None  # the notebook reports it itself
    s = notebook_support(columns, [nb])[0]
    if s["supported"]:
        return None
    return (f"the data in {data} lack {', '.join(s['missing'])} (it needs: {', '.join(s['required'])}; "
            f"see: rmanalytics validate {data})")


def run_all(
    *,
    params_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "runs",
    variant: str | None = None,
    notebooks: Iterable[str] | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    jobs: int | None = 1,
    progress_bar: bool = True,
    echo: Callable[[str], None] = print,
    memory_limit: str | None = None,
    reuse: bool = True,
) -> list[RunResult]:
    """Run the notebooks of the chain in dependency order; return one result per notebook.

    Every notebook's parameters are resolved and validated first (``<params_dir>/<nb>[.<variant>].yaml``,
    ``data_dir`` overriding the files), so a bad file fails before any kernel starts. Then the
    notebooks run in :data:`~rmanalytics.params.NOTEBOOKS` order; a notebook with chain inputs
    (:data:`~rmanalytics.params.CHAIN_INPUTS`) waits for its upstream run and reads its output
    when that run succeeded and the parameter is not set explicitly (otherwise it recomputes, and
    the result notes it). An upstream that is not part of this run (``notebooks``) is read from its
    last successful run under ``out_dir`` when that run is what running it now would give (same
    data, parameters and notebook, :func:`reusable_run`; ``reuse=False``: never); the notes say
    which run was reused, or why none was. With ``jobs > 1`` independent notebooks run in parallel
    worker processes; ``jobs=None`` picks :func:`auto_jobs`. Notebooks missing from ``notebooks_dir`` are skipped with a note.

    The data are validated once, before any kernel, in a separate process (:func:`prevalidate`), so
    the notebooks find the validation on record and skip it. Every kernel's DuckDB connections
    get ``memory_limit`` (default :func:`rmanalytics.engine.default_memory_limit` for ``jobs``),
    and with ``jobs > 1`` each kernel's BLAS gets ``cpus // jobs`` threads (:func:`blas_threads_env`).
    """
    wanted = [notebook_name(n) for n in notebooks] if notebooks else list(NOTEBOOKS)
    order = [n for n in NOTEBOOKS if n in wanted] + [n for n in wanted if n not in NOTEBOOKS]

    plan: dict[str, tuple[NotebookParams, dict[str, Any]]] = {}
    nb_paths: dict[str, Path] = {}
    extra = {"data_dir": str(data_dir)} if data_dir is not None else {}
    for nb in order:
        try:
            nb_paths[nb] = notebook_path(nb, notebooks_dir)
        except FileNotFoundError as exc:
            echo(f"skip {nb}: {exc}")
            continue
        pfile = params_file(None if params_dir is None else Path(params_dir), nb, variant)
        params = resolve(nb, pfile, **extra)  # raises ParameterError before any kernel starts
        plan[nb] = (absolutize_paths(params), {"params_file": str(pfile) if pfile else None, **extra})

    upstream: dict[str, NotebookParams | str] | None = None  # upstreams not run -> their parameters now
    if reuse:
        upstream = {}
        for nb, (params, _) in plan.items():
            for key, (up, _rel) in dependencies(nb).items():
                if up in plan or up in upstream or getattr(params, key) is not None:
                    continue
                try:
                    pfile = params_file(None if params_dir is None else Path(params_dir), up, variant)
                    upstream[up] = absolutize_paths(resolve(up, pfile, **extra))
                except ParameterError as exc:
                    upstream[up] = f"its parameters do not resolve now: {str(exc).splitlines()[0]}"

    mask_key = None
    if plan:
        check_kernel()
        if any(getattr(p, "mask_ids", True) for p, _ in plan.values()):
            mask_key = privacy.load_key()  # a bad key fails before any kernel; a new one is made once, here
            if mask_key.created:
                echo(mask_key.describe())  # and every run log of this chain says so
    mark_abandoned(out_dir)
    from rmanalytics.io import precheck

    data_dirs = sorted({str(p.data_dir) for p, _ in plan.values() if getattr(p, "data_dir", None)})
    for data in data_dirs:
        if Path(data).exists():
            precheck(data)  # a 0-byte / undecodable / empty file fails in seconds, before any kernel
    if jobs is None:
        jobs = auto_jobs([d for d in data_dirs if Path(d).exists()])
    budget = engine.default_memory_limit(jobs) if memory_limit is None else memory_limit
    if budget and not memory_limit and os.environ.get(engine.MEMORY_LIMIT_ENV):
        budget = None  # the user's own limit in the environment stays as it is
    with _environ({engine.MEMORY_LIMIT_ENV: budget, **blas_threads_env(jobs)}):  # inherited by workers and kernels
        if len(plan) > 1:
            for data in data_dirs:
                if Path(data).is_dir():
                    prevalidate(data, echo)
        return _run_all_planned(plan, nb_paths, out_dir, jobs, progress_bar, echo, mask_key, upstream,
                                notebooks_dir)


#: Environment variables that set the thread count of numpy's BLAS (OpenBLAS, MKL, OpenMP builds).
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def blas_threads_env(jobs: int, cpus: int | None = None) -> dict[str, str | None]:
    """BLAS threads per kernel when ``jobs`` notebooks share the machine: ``cpus // jobs`` (at least 1).

    With two kernels on two cores, each kernel's BLAS threads spin waiting for a core the other
    kernel holds: small products (fixed-effects designs, the Cox solver's chunks) then ran ten times
    slower. Nothing is set for one job, or when the user set any of :data:`BLAS_THREAD_VARS`.
    Results do not depend on it beyond rounding.
    """
    if jobs <= 1 or any(os.environ.get(v) for v in BLAS_THREAD_VARS):
        return {}
    n = str(max(1, (cpus or os.cpu_count() or 1) // jobs))
    return {v: n for v in BLAS_THREAD_VARS}


@contextlib.contextmanager
def _environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set the environment variables of ``values`` that are not None; restore them afterwards."""
    saved = {k: os.environ.get(k) for k, v in values.items() if v}
    os.environ.update({k: v for k, v in values.items() if v})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: Peak memory of the heaviest notebook kernel per byte of input table files (Parquet; CSV counts a
#: third), with a floor for small data. Measured 2026-11-30 at 1M customers (0.92 GB of tables): the
#: kernels peaked at 0.8-6.1 GB (02 the largest), so 6.5 (see README, Performance).
KERNEL_BYTES_PER_INPUT_BYTE = 6.5
KERNEL_MIN_BYTES = 1 * 2**30


def auto_jobs(data_dirs: Iterable[str | os.PathLike] = (), max_jobs: int = 2) -> int:
    """Parallel notebooks for run-all: at most ``max_jobs`` and the CPU count, and no more than the
    memory budget (:data:`rmanalytics.engine.MEMORY_SHARE` of the RAM) holds kernels of the
    estimated size (:data:`KERNEL_BYTES_PER_INPUT_BYTE` times the input files)."""
    from rmanalytics.io import _find_files

    cpus = min(max_jobs, os.cpu_count() or 1)
    size = 0
    for d in data_dirs:
        p = Path(d)
        files = [p] if p.is_file() else list(_find_files(p).values())
        size += sum(f.stat().st_size / (3 if f.suffix == ".csv" else 1) for f in files)
    per_kernel = max(KERNEL_BYTES_PER_INPUT_BYTE * size, KERNEL_MIN_BYTES)
    ram = engine.total_memory()
    by_memory = int(ram * engine.MEMORY_SHARE // per_kernel) if ram else cpus
    return max(1, min(cpus, by_memory))


def _prevalidate_child(data: str) -> None:
    from rmanalytics.io import ensure_validated

    ensure_validated(data)


def prevalidate(data_dir: str | os.PathLike, echo: Callable[[str], None] = print) -> bool:
    """Validate ``data_dir`` once for the whole chain, in a child process (its memory is returned
    when it ends), unless this data fingerprint is on record already. A failure records nothing:
    each notebook then reports it as before. Returns True when the data are on record as valid."""
    import multiprocessing as mp

    from rmanalytics.io import available_tables, is_validated

    try:
        if is_validated(data_dir, available_tables(data_dir)):
            return True
    except (OSError, RmAnalyticsError):
        return False
    echo(f"validate {data_dir} ...")
    t0 = time.perf_counter()
    proc = mp.get_context("spawn").Process(target=_prevalidate_child, args=(str(data_dir),))
    proc.start()
    proc.join()
    ok = is_validated(data_dir, available_tables(data_dir))
    echo(f"validated {data_dir} in {time.perf_counter() - t0:.0f} s" if ok
         else f"{data_dir}: validation failed; each notebook reports it")
    return ok


def _run_all_planned(plan, nb_paths, out_dir, jobs, progress_bar, echo, mask_key, upstream=None,
                     notebooks_dir=None) -> list[RunResult]:
    """The notebooks of a resolved plan, run in dependency order (the body of :func:`run_all`).

    ``upstream``: upstream notebook not in the plan -> its parameters now (or why they do not
    resolve), for :func:`reusable_run`; None: no reuse.
    """
    results: dict[str, RunResult] = {}
    for nb in list(plan):  # notebooks the data cannot support are skipped with the reason
        problem = _support_problem(nb, plan[nb][0])
        if problem:
            folder = Path(out_dir).resolve() / nb
            results[nb] = RunResult(notebook=nb, status="skipped", run_dir=folder, executed_notebook=folder,
                                    error=problem)
            echo(f"skip {nb}: {problem}")

    fingerprints: dict[str, dict[str, Any]] = {}  # of the data, shared by the upstreams reused

    def reuse_of(up: str, rel: str) -> tuple[Path | None, str]:
        fresh = None if upstream is None else upstream.get(up)
        if not isinstance(fresh, NotebookParams):
            return None, fresh or "reuse of earlier runs turned off (--no-reuse)"
        return reusable_run(out_dir, up, rel, fresh, notebooks_dir, fingerprints=fingerprints)

    def job_for(nb: str) -> tuple[dict[str, Any], list[str]]:
        params, source = plan[nb]
        values = params.model_dump(mode="json", by_alias=True)
        notes = []
        for key, (up, rel) in dependencies(nb).items():
            if values.get(key) is not None:
                continue
            res = results.get(up)
            if res is not None and res.ok and (res.run_dir / rel).exists():
                values[key] = str(res.run_dir / rel)
            elif up in plan:
                notes.append(f"{key}: upstream {up} did not succeed; recomputed")
            else:  # e.g. run-all --only 05: its upstream is not run; reuse its last run if a run now gives the same
                found, why = reuse_of(up, rel)
                if found is not None:
                    values[key] = str(found)
                    notes.append(f"{key}: {why}")
                else:  # the notebook recomputes (at 10M, minutes)
                    notes.append(f"{key}: {up} is not part of this run-all; recomputed ({why}; run it too, or set "
                                 f"{key} in the notebook's parameters file)")
        return ({"notebook_name": nb, "values": values, "notebook": str(nb_paths[nb]),
                 "out_dir": str(out_dir), "name": nb, "params_source": source,
                 "progress_bar": progress_bar and jobs <= 1, "mask_key": mask_key}, notes)

    def deps_of(nb: str) -> set[str]:
        return {up for up, _ in dependencies(nb).values() if up in plan}

    pending = [nb for nb in plan if nb not in results]
    if jobs > 1:  # the longest chain first, so the critical path starts at once
        pending = critical_path_order(pending, deps_of, last_durations(out_dir, pending))
    current: set[str] = set()  # notebooks running now
    pids: set[int] = {os.getpid()}  # processes executing them (this one, pool workers)
    try:
        if jobs <= 1:
            for nb in list(pending):
                kwargs, notes = job_for(nb)
                echo(f"run {nb} ...")
                pending.remove(nb)
                current.add(nb)
                res = _run_one(kwargs)
                current.discard(nb)
                res.notes.extend(notes)
                results[nb] = res
                echo(_one_line(res))
        else:
            _run_pool(pending, jobs, job_for, deps_of, results, current, pids, echo)
    except KeyboardInterrupt:
        cut = {nb: _partial_of(out_dir, nb, pids) for nb in plan if nb in current}
        for folder in cut.values():
            _mark_interrupted(folder)
        raise RunInterrupted([results[nb] for nb in plan if nb in results], cut, list(pending)) from None
    return [results[nb] for nb in plan]


def last_durations(out_dir: str | os.PathLike, notebooks: Iterable[str]) -> dict[str, float]:
    """Seconds each notebook's last successful run took under ``out_dir`` (``<nb>/latest``), when on record."""
    out: dict[str, float] = {}
    for nb in notebooks:
        try:
            m = json.loads((Path(out_dir) / nb / "latest" / "manifest.json").read_text())
            start, end = (dt.datetime.fromisoformat(m[k]) for k in ("started_utc", "ended_utc"))
        except (OSError, TypeError, KeyError, ValueError):
            continue
        out[nb] = max((end - start).total_seconds(), 0.0)
    return out


#: Typical share of each notebook in a run-all (seconds of a 1M-customer run with 2 jobs, 2026-12-01, README
#: Performance): the weights of :func:`critical_path_order` for notebooks with no run on record.
TYPICAL_SECONDS = {"00_data_overview": 21.0, "01_segmentation": 37.0, "02_churn_survival": 117.0,
                   "03_loyalty_clv": 28.0, "04_kpi_attribution": 64.0, "05_rm_book": 64.0, "06_rm_review": 8.0}


def critical_path_order(notebooks: list[str], deps_of: Callable[[str], set[str]],
                        durations: Mapping[str, float] | None = None) -> list[str]:
    """``notebooks`` ordered for a pool of workers: longest remaining chain first.

    A notebook's weight is its own duration plus the heaviest chain of notebooks that wait for it.
    Its duration is that of its last run (``durations``, seconds); without one, its
    :data:`TYPICAL_SECONDS` scaled by the median ratio of recorded to typical seconds of the
    notebooks that have both (1 for a notebook unknown there). A pool that starts the ready
    notebook with the largest weight starts the critical path (e.g. 02 -> 05) first instead of in
    file order, and when 02 ends picks 05 before the lighter 03. Ties keep the given order; the
    order among notebooks is a preference only, dependencies still decide when a notebook may start.
    """
    recorded = dict(durations or {})
    ratios = sorted(recorded[nb] / TYPICAL_SECONDS[nb] for nb in recorded if TYPICAL_SECONDS.get(nb))
    scale = ratios[len(ratios) // 2] if ratios else 1.0
    durations = {nb: recorded[nb] if nb in recorded else TYPICAL_SECONDS[nb] * scale if nb in TYPICAL_SECONDS else 1.0
                 for nb in notebooks}
    waiting = {nb: [d for d in notebooks if nb in deps_of(d)] for nb in notebooks}
    weight: dict[str, float] = {}

    def chain(nb: str) -> float:  # dependencies form a DAG (CHAIN_INPUTS)
        if nb not in weight:
            weight[nb] = durations[nb] + max((chain(d) for d in waiting[nb]), default=0.0)
        return weight[nb]

    pos = {nb: i for i, nb in enumerate(notebooks)}
    return sorted(notebooks, key=lambda nb: (-chain(nb), pos[nb]))


def _run_pool(pending: list[str], jobs: int, job_for: Callable, deps_of: Callable, results: dict[str, RunResult],
              current: set[str], pids: set[int], echo: Callable[[str], None]) -> None:
    """Run ``pending`` notebooks in ``jobs`` worker processes that die with this one.

    Keeps ``current`` (notebooks running) and ``pids`` (worker pids) up to date for the caller's
    Ctrl-C summary; on any interruption the workers are killed (their kernels follow them).
    """
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    running: dict[Any, tuple[str, list[str]]] = {}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                               initializer=_worker_init, initargs=(os.getpid(),))
    try:
        while pending or running:
            for nb in list(pending):
                if len(running) >= jobs:
                    break
                if deps_of(nb) <= set(results):
                    kwargs, notes = job_for(nb)
                    echo(f"run {nb} ...")
                    fut = pool.submit(_run_one, kwargs)
                    running[fut] = (nb, notes)
                    current.add(nb)
                    pids.update(getattr(pool, "_processes", {}) or {})
                    pending.remove(nb)
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                nb, notes = running.pop(fut)
                current.discard(nb)
                res = fut.result()
                res.notes.extend(notes)
                results[nb] = res
                echo(_one_line(res))
    except BaseException:
        # Ctrl-C / SIGTERM: stop the workers now (their kernels follow their parent), no tracebacks
        procs = dict(getattr(pool, "_processes", {}) or {})
        pids.update(procs)
        for p in procs.values():
            try:
                p.kill()
            except Exception:  # noqa: BLE001
                pass
        for p in procs.values():
            try:
                p.join(5)
            except Exception:  # noqa: BLE001
                pass
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _one_line(res: RunResult) -> str:
    return f"{res.notebook}: {res.status} in {res.duration_s:.1f} s -> {res.run_dir}"


def summary_table(results: Iterable[RunResult]) -> str:
    """Plain-text table: notebook, status, seconds, run folder, error/notes."""
    rows = [("notebook", "status", "seconds", "run folder", "details")]
    for r in results:
        details = "; ".join(filter(None, [r.describe_failure().splitlines()[0] if not r.ok else "", *r.notes]))
        rows.append((r.notebook, r.status, f"{r.duration_s:.1f}", "-" if r.status == "skipped" else str(r.run_dir),
                     details))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for j, row in enumerate(rows):
        lines.append(("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4]).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = [
    "KERNEL_NAME", "KernelNotFound", "ParameterError", "check_kernel", "RunResult", "absolutize_paths", "dependencies", "export_html", "input_fingerprints",
    "is_complete", "notebook_path", "params_file", "reusable_run", "run_all", "run_notebook", "summary_table",
]
