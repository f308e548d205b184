"""Find a Chinese (CJK) font wherever it is installed and register it with matplotlib.

matplotlib only knows the fonts in its own cache, which it builds on its first import. A font
installed afterwards (the usual order for a new user: install the package, run it once, then
``apt-get install fonts-noto-cjk``) stays invisible to it, and Chinese labels render as empty
boxes. So this module does not rely on that cache: it looks for a font file

1. named by the caller (the ``font`` parameter of a notebook) or by the environment variable
   ``RMANALYTICS_FONT`` (a font file, or a folder searched recursively);
2. in matplotlib's cache, by family name (:data:`CJK_FAMILIES`, in order of preference);
3. through fontconfig (``fc-list :lang=zh``) where it exists (Linux, most BSDs, Homebrew);
4. in the usual font folders of Linux, macOS and Windows (:func:`font_dirs`), by file name;

and registers the file with :func:`matplotlib.font_manager.FontManager.addfont`, then puts its
family first in ``font.sans-serif``. A file counts as Chinese when its character map covers a few
common Chinese characters (:data:`PROBE`), checked with FreeType through matplotlib.

With no font found, :func:`use_cjk_font` returns None and :func:`install_hint` says, in plain
words, how to install one on the running system; the run still completes (tables and text are in
Chinese, figure labels show boxes).

Hand-written because no maintained library does this for matplotlib: ``matplotlib.font_manager``
searches system folders only when its cache is (re)built, and fontconfig is absent on Windows.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

#: Environment variable naming a CJK font file or a folder holding one.
FONT_ENV = "RMANALYTICS_FONT"

#: Family names of Simplified-Chinese sans-serif fonts, in order of preference.
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "Microsoft YaHei",
    "PingFang SC", "Heiti SC", "Hiragino Sans GB", "SimHei", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
    "Noto Sans CJK JP", "Source Han Sans", "Arial Unicode MS",
)

#: File-name fragments (lower case) of the fonts above, for the folder scan.
CJK_FILE_HINTS = (
    "notosanscjk", "notosanssc", "sourcehansans", "msyh", "pingfang", "stheiti", "hiragino sans gb", "simhei",
    "wqy-microhei", "wqy-zenhei", "arial unicode",
)

#: Characters a font must cover to count as Chinese (客户价值分群 = customer value segments).
PROBE = "客户价值分群元"

_FONT_SUFFIXES = {".ttf", ".otf", ".ttc", ".otc"}


@dataclass(frozen=True)
class FontInfo:
    """A Chinese font registered with matplotlib: family name, file and how it was found
    (``parameter``, ``env``, ``matplotlib``, ``fontconfig`` or ``folder``)."""

    family: str
    path: str
    source: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# ----------------------------------------------------------------------------- where fonts are
def font_dirs() -> list[Path]:
    """The usual font folders of this system (Linux, macOS, Windows), existing ones only."""
    home = Path.home()
    dirs = [
        Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".local/share/fonts", home / ".fonts",
        Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library/Fonts",
        Path("/System/Library/AssetsV2"),  # macOS downloadable fonts (PingFang on recent versions)
    ]
    windir = os.environ.get("WINDIR") or os.environ.get("SystemRoot")
    if windir:
        dirs.append(Path(windir) / "Fonts")
    local = os.environ.get("LOCALAPPDATA")
    if local:
        dirs.append(Path(local) / "Microsoft/Windows/Fonts")
    prefix = os.environ.get("CONDA_PREFIX")
    if prefix:  # conda-forge font packages (font-ttf-noto-cjk) install here
        dirs += [Path(prefix) / "fonts", Path(prefix) / "share/fonts", Path(prefix) / "Library/fonts"]
    return [d for d in dirs if d.is_dir()]


def _font_files(folder: Path, hints: tuple[str, ...] | None) -> list[Path]:
    """Font files under ``folder`` (recursively); with ``hints`` only names containing one."""
    out = []
    try:
        for root, _dirs, files in os.walk(folder, followlinks=False):
            for f in files:
                if Path(f).suffix.lower() in _FONT_SUFFIXES and (
                        hints is None or any(h in f.lower() for h in hints)):
                    out.append(Path(root) / f)
    except OSError:
        pass
    return sorted(out)


def _fontconfig_files() -> list[Path]:
    """Files of the fonts fontconfig lists for Chinese (``fc-list :lang=zh file``), if fc-list exists."""
    exe = shutil.which("fc-list")
    if not exe:
        return []
    try:
        res = subprocess.run([exe, ":lang=zh", "file"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    files = {line.strip().rstrip(":").strip() for line in res.stdout.splitlines() if line.strip()}
    return sorted(Path(f) for f in files if Path(f).suffix.lower() in _FONT_SUFFIXES and Path(f).is_file())


# ----------------------------------------------------------------------------- what a file holds
def _faces(path: Path) -> list[str]:
    """Family names of the faces in a font file that cover :data:`PROBE` (empty if none or unreadable)."""
    from matplotlib import ft2font

    try:
        first = ft2font.FT2Font(str(path))
    except Exception:  # noqa: BLE001 - unreadable or unsupported file: not a candidate
        return []
    faces = [first]
    for i in range(1, getattr(first, "num_faces", 1)):
        try:
            faces.append(ft2font.FT2Font(str(path), face_index=i))
        except Exception:  # noqa: BLE001 - matplotlib < 3.10 reads only the first face of a collection
            break
    names = []
    for face in faces:
        charmap = face.get_charmap()
        if all(ord(c) in charmap for c in PROBE):
            names.append(face.family_name)
    return names


def _rank(family: str) -> int:
    return CJK_FAMILIES.index(family) if family in CJK_FAMILIES else len(CJK_FAMILIES)


def _best(files: list[Path], source: str) -> FontInfo | None:
    """The preferred Chinese face among ``files`` (by :data:`CJK_FAMILIES`, then file order)."""
    best: tuple[int, int, FontInfo] | None = None
    for n, path in enumerate(files):
        for family in _faces(path):
            key = (_rank(family), n)
            if best is None or key < best[:2]:
                best = (*key, FontInfo(family=family, path=str(path), source=source))
    return best[2] if best else None


def _from_location(location: str | os.PathLike, source: str) -> FontInfo | None:
    p = Path(location).expanduser()
    if p.is_file():
        return _best([p], source)
    if p.is_dir():
        return _best(_font_files(p, None), source)
    return None


def find_cjk_font(font: str | os.PathLike | None = None) -> FontInfo | None:
    """Locate a Chinese font file without registering it (see the module docstring for the order).

    ``font``: a font file or folder named by the caller; it is searched before ``RMANALYTICS_FONT``
    and the system. A ``font`` or ``RMANALYTICS_FONT`` that names no usable font is skipped (the
    search goes on) rather than failing the run.
    """
    for location, source in ((font, "parameter"), (os.environ.get(FONT_ENV), "env")):
        if location:
            found = _from_location(location, source)
            if found:
                return found
    from matplotlib import font_manager

    known = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known and Path(known[family]).is_file():
            return FontInfo(family=family, path=str(known[family]), source="matplotlib")
    found = _best(_fontconfig_files(), "fontconfig")
    if found:
        return found
    files = [f for d in font_dirs() for f in _font_files(d, CJK_FILE_HINTS)]
    return _best(files, "folder")


def register_font(info: FontInfo) -> None:
    """Add the font file to matplotlib and put its family first in ``font.sans-serif``."""
    import matplotlib
    from matplotlib import font_manager

    if not any(f.fname == info.path for f in font_manager.fontManager.ttflist):
        font_manager.fontManager.addfont(info.path)
    current = [f for f in matplotlib.rcParams["font.sans-serif"] if f != info.family]
    matplotlib.rcParams["font.sans-serif"] = [info.family, *current]
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False


def use_cjk_font(font: str | os.PathLike | None = None) -> FontInfo | None:
    """Find a Chinese font (:func:`find_cjk_font`) and register it with matplotlib.

    Returns the font used, or None when there is none (then :func:`install_hint` says what to do).
    """
    info = find_cjk_font(font)
    if info is not None:
        register_font(info)
    return info


# ----------------------------------------------------------------------------- what to tell people
def install_hint(lang: str = "en") -> str:
    """How to install a Chinese font on this system, in plain words (``en`` or ``zh``)."""
    system = platform.system()
    conda = os.environ.get("CONDA_PREFIX")
    if system == "Linux" and Path("/etc/debian_version").exists():
        cmd = "sudo apt-get install fonts-noto-cjk"
    elif system == "Linux" and (Path("/etc/fedora-release").exists() or Path("/etc/redhat-release").exists()):
        cmd = "sudo dnf install google-noto-sans-cjk-fonts"
    elif system == "Linux" and Path("/etc/alpine-release").exists():
        cmd = "sudo apk add font-noto-cjk"
    elif system == "Linux" and Path("/etc/arch-release").exists():
        cmd = "sudo pacman -S noto-fonts-cjk"
    elif system == "Darwin":
        cmd = "brew install --cask font-noto-sans-cjk-sc"
    else:
        cmd = ""
    conda_cmd = "conda install -c conda-forge font-ttf-noto-cjk"
    if lang == "zh":
        parts = ["图表中的中文需要中文字体，本机未找到，因此图中的中文显示为方框（表格和文字不受影响）。"]
        if system == "Windows":
            parts.append("Windows 通常自带“微软雅黑”(Microsoft YaHei)；若已删除，请在“设置 → 字体”中重新安装。")
        elif cmd:
            parts.append(f"安装方法：在终端运行 `{cmd}`")
        if conda:
            parts.append(f"或在 conda 环境中运行 `{conda_cmd}`")
        parts.append(f"也可以把字体文件（.ttf/.otf/.ttc）所在的文件夹设为环境变量 `{FONT_ENV}`，"
                     "或作为参数 `font` 传入。安装后重新运行即可，无需清理 matplotlib 缓存。")
        return " ".join(parts)
    parts = ["Chinese text in the figures needs a Chinese font and none was found on this computer, so it shows "
             "as empty boxes in the figures (tables and text are not affected)."]
    if system == "Windows":
        parts.append("Windows normally includes Microsoft YaHei; if it was removed, reinstall it in "
                     "Settings → Fonts.")
    elif cmd:
        parts.append(f"To install one, run `{cmd}` in a terminal.")
    if conda:
        parts.append(f"In a conda environment, `{conda_cmd}` also works.")
    parts.append(f"Or point the environment variable `{FONT_ENV}` (or the parameter `font`) to a folder or file "
                 "holding a .ttf/.otf/.ttc Chinese font. Then run again; there is no matplotlib cache to clear.")
    return " ".join(parts)


def describe(info: FontInfo | None) -> dict[str, str | None]:
    """What goes into a run's manifest: family, path and source of the font, or None values."""
    if info is None:
        return {"family": None, "path": None, "source": None}
    return info.as_dict()


__all__ = ["CJK_FAMILIES", "FONT_ENV", "FontInfo", "describe", "find_cjk_font", "font_dirs", "install_hint",
           "register_font", "use_cjk_font"]

if __name__ == "__main__":  # python -m rmanalytics.fonts: which font a zh run would use
    found = find_cjk_font(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"{found.family}  {found.path}  (found via {found.source})" if found else install_hint())
    sys.exit(0 if found else 1)
