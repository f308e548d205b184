"""Pseudonymisation of customer identifiers with a secret key, and the restricted area for raw ids.

Privacy model (数据脱敏 and least privilege; see the README section "Privacy")
---------------------------------------------------------------------------
- Analysis functions (rfm, churn, loyalty, kpi, ...) work on RAW customer ids and never mask.
- Masking happens once, at the boundary where a table or text leaves for people: the CSV copy and
  the displayed frame of :meth:`rmanalytics.report.Recorder.table`, and the runner's pass over the
  people-facing files of a run folder (executed notebook, ``report.html``, ``run.log``, CSV,
  JSON, Markdown), which replaces any raw id still quoted in text (error and quality messages).
- Parquet tables holding raw ids go to the run's ``restricted/`` folder (owner-only: 0700 folder,
  0600 files; :func:`write_restricted_parquet`). Everything else in a run folder is safe to share.

Pseudonyms
----------
``mask_id(id, key)`` = ``"C#"`` + the first :data:`PSEUDONYM_HEX` hex digits of
HMAC-SHA256(key, id) (RFC 2104; ENISA, *Pseudonymisation techniques and best practices*, 2019,
§5.2: a keyed hash is a pseudonym only while the key is secret). Customer ids can be enumerated
(``C`` + 7 digits), so an unkeyed or public-key hash is reversible by brute force; with a secret
256-bit key it is not. The same key gives the same pseudonym in every table and run, so masked
tables join; another key gives unrelated pseudonyms.

Length: the pseudonym keeps ``b = 4 * PSEUDONYM_HEX = 80`` bits. By the birthday bound the
probability that any two of ``n`` customers share a pseudonym is at most
``n (n - 1) / 2 / 2**b``; for ``n = 10**8`` customers and ``b = 80`` that is
``4.95e15 / 1.21e24 = 4.1e-9`` (:func:`collision_bound`; the unit tests assert it and check that
truncated HMACs collide at the birthday rate, i.e. behave like uniform random values).

The key
-------
:func:`load_key` takes the first of

1. ``key_path`` given by the caller (a file whose content, stripped, is the secret);
2. the environment variable ``RMANALYTICS_MASK_KEY`` (the secret itself, at least 16 characters);
3. the environment variable ``RMANALYTICS_MASK_KEY_FILE`` (path of a key file: the config route);
4. ``<config dir>/mask.key``; when missing it is generated once (32 random bytes from
   :mod:`secrets`, hex) with 0600 permissions and the caller says so in its log.

The config dir is ``$RMANALYTICS_CONFIG_DIR`` (tests set it), else ``$XDG_CONFIG_HOME/rmanalytics``,
else ``~/.config/rmanalytics``. The key is never a constant in the code and never written to a run
folder or manifest; manifests record :attr:`MaskKey.fingerprint` (8 hex digits of
HMAC(key, fixed text)) so runs with the same key can be recognised.

Standard library only (:mod:`hmac`, :mod:`hashlib`, :mod:`secrets`): the job is a few lines and no
maintained library does exactly "keyed HMAC pseudonyms over pandas columns and text".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rmanalytics.errors import ParameterError

__all__ = [
    "ID_COLUMNS", "KEY_ENV", "KEY_FILE_ENV", "CONFIG_DIR_ENV", "PSEUDONYM_HEX", "RESTRICTED_DIR", "MaskKey",
    "collision_bound", "config_dir", "load_key", "mask_id", "mask_frame", "mask_text", "mask_json", "has_ids",
    "restricted_dir", "open_restricted", "write_restricted_parquet", "lock_down", "people_facing_files", "scrub_files",
]

#: Columns (and index names, and keys of nested example rows) that hold customer identifiers.
ID_COLUMNS: tuple[str, ...] = ("customer_id",)
KEY_ENV = "RMANALYTICS_MASK_KEY"
KEY_FILE_ENV = "RMANALYTICS_MASK_KEY_FILE"
CONFIG_DIR_ENV = "RMANALYTICS_CONFIG_DIR"
KEY_FILE_NAME = "mask.key"
#: Hex digits kept from the HMAC: 20 hex = 80 bits (collision bound 4.1e-9 at 1e8 customers).
PSEUDONYM_HEX = 20
PREFIX = "C#"
MIN_KEY_CHARS = 16
#: Folder of a run holding tables with raw identifiers (owner-only permissions).
RESTRICTED_DIR = "restricted"
_FINGERPRINT_TEXT = b"rmanalytics mask key fingerprint v1"


# ----------------------------------------------------------------------------- the key
@dataclass(frozen=True)
class MaskKey:
    """A pseudonymisation secret and where it came from (the secret is never shown in repr)."""

    secret: bytes = field(repr=False)
    source: str  # "parameter" | "env" | "env-file" | "config" | "generated"
    path: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """8 hex digits of HMAC-SHA256(key, fixed text): recognises a key without revealing it."""
        return hmac.new(self.secret, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:8]

    @property
    def created(self) -> bool:
        return self.source == "generated"

    def describe(self) -> str:
        """One line for a run log: where the key came from and its fingerprint (never the key)."""
        where = {
            "parameter": f"key file {self.path} (given by the caller)",
            "env": f"environment variable {KEY_ENV}",
            "env-file": f"key file {self.path} (from {KEY_FILE_ENV})",
            "config": f"key file {self.path}",
            "generated": (f"NEW random key generated and stored in {self.path} (permissions 0600); keep it "
                          "private and keep it: the same key gives the same pseudonyms in later runs"),
        }[self.source]
        return f"mask key: {where}; fingerprint {self.fingerprint}"

    @classmethod
    def from_secret(cls, secret: str | bytes, source: str = "env") -> "MaskKey":
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        return cls(raw, source)


def config_dir() -> Path:
    """``$RMANALYTICS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/rmanalytics``, else ``~/.config/rmanalytics``."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "rmanalytics"


def _check_secret(secret: bytes, where: str) -> bytes:
    if len(secret) < MIN_KEY_CHARS:
        raise ParameterError(f"{where}: the mask key has {len(secret)} characters, fewer than {MIN_KEY_CHARS}; "
                             "use a long random secret (e.g. python -c \"import secrets; print(secrets.token_hex(32))\")")
    return secret


def _read_key_file(path: Path, source: str) -> MaskKey:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ParameterError(f"mask key file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    notes = ()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        notes = (f"warning: key file {path} is readable by others (mode {mode:o}); chmod 600 it",)
    return MaskKey(_check_secret(secret, f"mask key file {path}"), source, str(path), notes)


def _generate_key_file(path: Path) -> MaskKey:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _read_key_file(path, "config")
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret + b"\n")
    os.chmod(path, 0o600)
    return MaskKey(secret, "generated", str(path))


def load_key(key_path: str | os.PathLike | None = None, *, create: bool = True) -> MaskKey:
    """The pseudonymisation key: ``key_path``, ``$RMANALYTICS_MASK_KEY``, ``$RMANALYTICS_MASK_KEY_FILE``,
    else ``<config dir>/mask.key`` (generated with 0600 permissions when missing and ``create``).

    Raises :class:`~rmanalytics.errors.ParameterError` for an unreadable or too short key (< 16
    characters). Check :attr:`MaskKey.created` to tell the user a new key was generated.
    """
    if key_path is not None:
        return _read_key_file(Path(key_path).expanduser(), "parameter")
    env = os.environ.get(KEY_ENV)
    if env:
        return MaskKey(_check_secret(env.encode("utf-8"), f"environment variable {KEY_ENV}"), "env")
    env_file = os.environ.get(KEY_FILE_ENV)
    if env_file:
        return _read_key_file(Path(env_file).expanduser(), "env-file")
    path = config_dir() / KEY_FILE_NAME
    if path.is_file():
        return _read_key_file(path, "config")
    if not create:
        raise ParameterError(f"no mask key: set {KEY_ENV} or {KEY_FILE_ENV}, or create {path}")
    return _generate_key_file(path)


def _secret(key: MaskKey | bytes | str) -> bytes:
    if isinstance(key, MaskKey):
        return key.secret
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    raise TypeError(f"key must be a MaskKey, bytes or str, not {type(key).__name__}")


def collision_bound(n: float, bits: int = 4 * PSEUDONYM_HEX) -> float:
    """Birthday bound: P(any two of ``n`` ids share a ``bits``-bit pseudonym) <= n(n-1)/2 / 2**bits."""
    return min(1.0, n * (n - 1) / 2 / 2.0 ** bits)


# ----------------------------------------------------------------------------- masking values and frames
def _isnull(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else str(value.item() if isinstance(value, np.generic) else value)


def mask_id(value: object, key: MaskKey | bytes | str, *, hex_digits: int = PSEUDONYM_HEX) -> object:
    """Pseudonym of one identifier: ``"C#"`` + ``hex_digits`` hex of HMAC-SHA256(key, str(id)); nulls stay null."""
    if _isnull(value):
        return value
    digest = hmac.new(_secret(key), _as_text(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:hex_digits]


def _hmac_sha256_hex(secret: bytes) -> Callable[[bytes], str]:
    """``msg -> hmac.new(secret, msg, sha256).hexdigest()`` with the key prepared once per table:
    each message continues a copy of one keyed HMAC object (``HMAC.copy``), which skips hashing the
    key's pads per message, about 30% cheaper when a table masks a million ids."""
    base = hmac.new(secret, digestmod=hashlib.sha256)

    def digest(msg: bytes) -> str:
        h = base.copy()
        h.update(msg)
        return h.hexdigest()

    return digest


def _mask_values(values: pd.Series | pd.Index, secret: bytes) -> np.ndarray:
    """Mask each distinct value once (ids repeat across rows); nulls stay as they are."""
    arr = np.asarray(values, dtype=object)
    codes, uniq = pd.factorize(arr, use_na_sentinel=True)
    hmac_of = _hmac_sha256_hex(secret)
    n = PSEUDONYM_HEX
    masks = np.array([PREFIX + hmac_of(_as_text(v).encode("utf-8"))[:n] for v in uniq] + [None], dtype=object)
    out = masks[codes]  # code -1 (null) picks the trailing None ...
    null = codes < 0
    out[null] = arr[null]  # ... and gets its own null back (None, NaN, pd.NA)
    return out


def _mask_nested(obj: Any, secret: bytes, columns: tuple[str, ...]) -> Any:
    if isinstance(obj, Mapping):
        return {k: (mask_id(v, secret) if k in columns and not isinstance(v, (list, dict)) else
                    _mask_nested(v, secret, columns)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_mask_nested(v, secret, columns) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return [_mask_nested(v, secret, columns) for v in obj]
    return obj


def _nested_columns(df: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """Object columns (not id columns) holding dicts/lists, e.g. quality-finding ``examples``."""
    out = []
    for col in df.columns:
        if col in columns or df[col].dtype != object:
            continue
        if df[col].map(lambda v: isinstance(v, (dict, list, tuple, np.ndarray))).any():
            out.append(col)
    return out


def has_ids(df: pd.DataFrame, columns: tuple[str, ...] = ID_COLUMNS) -> bool:
    """True when ``df`` holds identifiers: an id column, an id index level, or nested example rows with one."""
    if any(c in df.columns for c in columns) or any(n in columns for n in df.index.names):
        return True
    return any(df[col].map(lambda v: _nested_has_id(v, columns)).any() for col in _nested_columns(df, columns))


def _nested_has_id(obj: Any, columns: tuple[str, ...]) -> bool:
    if isinstance(obj, Mapping):
        return any(k in columns or _nested_has_id(v, columns) for k, v in obj.items())
    if isinstance(obj, (list, tuple, np.ndarray)):
        return any(_nested_has_id(v, columns) for v in obj)
    return False


def mask_frame(df: pd.DataFrame, key: MaskKey | bytes | str, columns: tuple[str, ...] = ID_COLUMNS) -> pd.DataFrame:
    """A copy of ``df`` with identifiers masked: the ``columns``, index levels of those names, and
    the values under those keys inside nested rows (lists of dicts such as quality ``examples``)."""
    secret = _secret(key)
    out = df.copy()
    for col in columns:
        if col in out.columns:
            out[col] = pd.Series(_mask_values(out[col], secret), index=out.index, dtype=object)  # noqa: PD011
    for col in _nested_columns(out, columns):
        out[col] = out[col].map(lambda v: _mask_nested(v, secret, columns))
    if isinstance(out.index, pd.MultiIndex):
        if any(n in columns for n in out.index.names):
            out.index = out.index.set_levels(
                [pd.Index(_mask_values(lvl, secret)) if name in columns else lvl
                 for lvl, name in zip(out.index.levels, out.index.names)], verify_integrity=False)
    elif out.index.name in columns:
        out.index = pd.Index(_mask_values(out.index, secret), name=out.index.name)
    return out


# ----------------------------------------------------------------------------- masking text
#: A token of text that could be an identifier: a maximal run of ASCII letters, digits, ``_`` and ``-``.
TOKEN = re.compile(r"[A-Za-z0-9_\-]+")

IdLookup = Callable[[set[str]], set[str]]


def _candidates(text: str) -> set[str]:
    # ids made only of digits cannot be told apart from numbers in free text: not searched there
    return {t for t in TOKEN.findall(text) if not t.isdigit() and len(t) >= 2}


def mask_text(text: str, key: MaskKey | bytes | str, ids: set[str] | IdLookup) -> str:
    """``text`` with every whole token that is a known identifier replaced by its pseudonym.

    ``ids``: the set of raw identifiers, or a function returning which of a set of candidate
    tokens are identifiers (so a runner can ask the data instead of holding every id in memory).
    """
    found = ids(_candidates(text)) if callable(ids) else (_candidates(text) & ids)
    if not found:
        return text
    secret = _secret(key)
    return TOKEN.sub(lambda m: mask_id(m.group(0), secret) if m.group(0) in found else m.group(0), text)


def _walk_strings(obj: Any, fn: Callable[[str], str], skip: Callable[[str], bool]) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, list):
        return [_walk_strings(v, fn, skip) for v in obj]
    if isinstance(obj, dict):
        return {k: (v if skip(k) else _walk_strings(v, fn, skip)) for k, v in obj.items()}
    return obj


def _binary_key(k: str) -> bool:  # base64 payloads in notebooks: image/png, application/pdf ...
    return k.startswith(("image/", "application/pdf"))


def mask_json(obj: Any, key: MaskKey | bytes | str, ids: set[str] | IdLookup) -> Any:
    """A copy of a JSON value with identifiers masked inside every string (binary payloads skipped)."""
    found: set[str] = set()
    _walk_strings(obj, lambda s: found.update(_candidates(s)) or s, _binary_key)
    hits = ids(found) if callable(ids) else (found & ids)
    if not hits:
        return obj
    return _walk_strings(obj, lambda s: mask_text(s, key, hits), _binary_key)


# ----------------------------------------------------------------------------- the restricted area
def restricted_dir(run_dir: str | os.PathLike) -> Path:
    """``<run_dir>/restricted`` created with owner-only permissions (0700)."""
    path = Path(run_dir) / RESTRICTED_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _make_private_dirs(folder: Path) -> None:
    missing = [d for d in (folder, *folder.parents) if not d.exists()]
    for d in reversed(missing):  # mkdir(parents=True) would give the parents default permissions
        d.mkdir(mode=0o700, exist_ok=True)
        os.chmod(d, 0o700)


def open_restricted(path: str | os.PathLike, mode: str = "wb", **kwargs: Any):
    """Open ``path`` for writing as an owner-only file (0600; missing folders created 0700), e.g.
    for an Excel pack holding raw ids: ``with open_restricted(p) as fh: workbook.save(fh)``."""
    if not any(m in mode for m in "wax"):
        raise ValueError(f"open_restricted is for writing; mode {mode!r}")
    path = Path(path)
    _make_private_dirs(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC) | (os.O_EXCL if "x" in mode else 0)
    fd = os.open(path, flags, 0o600)
    os.chmod(path, 0o600)
    return os.fdopen(fd, mode.replace("x", "w"), **kwargs)


#: Rows per row group (and per conversion to Arrow) of :func:`write_restricted_parquet`: pyarrow's
#: default row group size, so the file has the row groups ``DataFrame.to_parquet`` gives.
PARQUET_ROW_GROUP_ROWS = 1 << 20


def write_restricted_parquet(df: pd.DataFrame, path: str | os.PathLike, *, index: bool = False) -> Path:
    """Write ``df`` (raw ids) to ``path`` as Parquet readable by the owner only (0600; its folder
    and any folder created for it 0700). For tables that must keep raw identifiers.

    The rows are converted to Arrow and written one row group (:data:`PARQUET_ROW_GROUP_ROWS`) at a
    time under the schema of the whole frame, so the write holds one row group's Arrow copy rather
    than the whole table's (10M customers' priority list: GBs); ``pd.read_parquet`` gives back what
    it gives for ``df.to_parquet(path, index=index)``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    _make_private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(tmp, 0o600)
    step = PARQUET_ROW_GROUP_ROWS
    if index or len(df) <= step:
        df.to_parquet(str(tmp), index=index)
    else:
        schema = pa.Schema.from_pandas(df, preserve_index=index)
        with pq.ParquetWriter(str(tmp), schema) as writer:
            for i in range(0, len(df), step):
                writer.write_table(pa.Table.from_pandas(df.iloc[i:i + step], schema=schema, preserve_index=index),
                                   row_group_size=step)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def lock_down(folder: str | os.PathLike) -> None:
    """Owner-only permissions on ``folder`` and everything below it (folders 0700, files 0600)."""
    folder = Path(folder)
    if not folder.exists():
        return
    os.chmod(folder, 0o700)
    for p in folder.rglob("*"):
        if p.is_symlink():
            continue
        os.chmod(p, 0o700 if p.is_dir() else 0o600)


#: File types of a run folder that are read by people (text); Parquet and PNG are binary.
TEXT_SUFFIXES = (".csv", ".html", ".htm", ".log", ".json", ".md", ".txt", ".yaml", ".yml", ".ipynb", ".tsv")


def people_facing_files(run_dir: str | os.PathLike) -> list[Path]:
    """Text files of a run folder outside ``restricted/`` (what may be shared)."""
    run_dir = Path(run_dir)
    out = []
    for p in sorted(run_dir.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in TEXT_SUFFIXES:
            continue
        if RESTRICTED_DIR in p.relative_to(run_dir).parts[:-1]:
            continue
        out.append(p)
    return out


def scrub_files(paths: Iterable[str | os.PathLike], key: MaskKey | bytes | str, lookup: IdLookup) -> dict[str, int]:
    """Mask raw identifiers quoted in text files, in place; returns {file: tokens replaced}.

    ``.json`` and ``.ipynb`` files are parsed and only their strings are masked (numbers and
    base64 images stay intact); other files are masked as text. ``lookup`` is asked once, with
    the candidate tokens of all files together.
    """
    docs: dict[Path, Any] = {}
    cands: set[str] = set()
    for p in map(Path, paths):
        text = p.read_text(encoding="utf-8", errors="surrogateescape")
        if p.suffix.lower() in (".json", ".ipynb"):
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if obj is not None:
                _walk_strings(obj, lambda s: cands.update(_candidates(s)) or s, _binary_key)
                docs[p] = ("json", obj, text)
                continue
        cands.update(_candidates(text))
        docs[p] = ("text", text, text)
    hits = lookup(cands) if cands else set()
    counts: dict[str, int] = {}
    if not hits:
        return counts
    secret = _secret(key)
    for p, (kind, obj, text) in docs.items():
        n = sum(1 for t in TOKEN.findall(text) if t in hits)
        if not n:
            continue
        counts[str(p)] = n
        if kind == "json":
            new = json.dumps(mask_json(obj, secret, hits), indent=1 if p.suffix == ".ipynb" else 2,
                             ensure_ascii=False)
            p.write_text(new + ("\n" if text.endswith("\n") else ""), encoding="utf-8")
        else:
            p.write_text(mask_text(text, secret, hits), encoding="utf-8", errors="surrogateescape")
    return counts
