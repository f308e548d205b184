"""Chinese fonts are found where they are installed, even when matplotlib's cache predates them.

The rendering tests need a Chinese font file somewhere on the machine (any the search finds, or
one named by RMANALYTICS_TEST_FONT); without one they are skipped, and the no-font path is
tested instead by hiding every font from the search.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import pytest

from rmanalytics import fonts

ROOT = Path(__file__).resolve().parents[2]


def _any_cjk_font() -> Path | None:
    env = os.environ.get("RMANALYTICS_TEST_FONT")
    if env:
        found = fonts.find_cjk_font(env)
        return Path(found.path) if found else None
    found = fonts.find_cjk_font()
    return Path(found.path) if found else None


CJK_FILE = _any_cjk_font()
needs_font = pytest.mark.skipif(CJK_FILE is None, reason="no Chinese font on this machine "
                                "(install fonts-wqy-microhei or set RMANALYTICS_TEST_FONT)")


@pytest.fixture
def no_system_fonts(monkeypatch, tmp_path):
    """Hide every font source: no env var, no fontconfig, no font folders, empty matplotlib list."""
    from matplotlib import font_manager

    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    monkeypatch.setattr(fonts, "_fontconfig_files", lambda: [])
    monkeypatch.setattr(fonts, "font_dirs", lambda: [])
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [f for f in font_manager.fontManager.ttflist if f.name not in fonts.CJK_FAMILIES])
    before = list(matplotlib.rcParams["font.sans-serif"])
    yield
    matplotlib.rcParams["font.sans-serif"] = before


def test_no_font_found_gives_none_and_plain_install_advice(no_system_fonts, tmp_path):
    (tmp_path / "not_a_font.ttf").write_bytes(b"junk")
    assert fonts.find_cjk_font(tmp_path) is None  # a bad file is skipped, not an error
    assert fonts.use_cjk_font() is None
    en, zh = fonts.install_hint("en"), fonts.install_hint("zh")
    assert "Chinese font" in en and fonts.FONT_ENV in en and "install" in en
    assert "中文字体" in zh and fonts.FONT_ENV in zh
    assert fonts.describe(None) == {"family": None, "path": None, "source": None}


def test_labels_use_cjk_fonts_warns_once_with_the_hint(no_system_fonts):
    import warnings

    from rmanalytics import labels

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert labels.use_cjk_fonts() is None
    assert any("Chinese font" in str(w.message) for w in caught)


def test_a_file_without_chinese_glyphs_is_not_taken(no_system_fonts, tmp_path):
    dejavu = Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"
    shutil.copy(dejavu, tmp_path)
    assert fonts.find_cjk_font(tmp_path) is None


@needs_font
def test_font_in_a_named_folder_is_found_and_registered(no_system_fonts, tmp_path, monkeypatch):
    folder = tmp_path / "my fonts" / "sub"
    folder.mkdir(parents=True)
    shutil.copy(CJK_FILE, folder)
    monkeypatch.setenv(fonts.FONT_ENV, str(tmp_path / "my fonts"))
    info = fonts.use_cjk_font()
    assert info is not None and info.source == "env" and Path(info.path).parent == folder
    assert matplotlib.rcParams["font.sans-serif"][0] == info.family
    # a parameter wins over the environment variable
    other = tmp_path / "param"
    other.mkdir()
    shutil.copy(CJK_FILE, other / ("x" + CJK_FILE.suffix))
    assert fonts.find_cjk_font(other).source == "parameter"


RENDER = textwrap.dedent("""
    import json, sys, warnings
    from matplotlib import font_manager
    from matplotlib.figure import Figure
    from rmanalytics import labels
    family = labels.use_cjk_fonts()
    fig = Figure()
    fig.subplots().set_title("客户价值分群")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(sys.argv[1])
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    print(json.dumps({"family": family, "missing": missing}))
""")


def _run(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@needs_font
def test_font_added_after_the_matplotlib_cache_was_built_renders_chinese(tmp_path):
    """The issue's order of events: matplotlib builds its cache, then the font is installed."""
    env = {k: v for k, v in os.environ.items() if k != fonts.FONT_ENV}
    env.update(MPLCONFIGDIR=str(tmp_path / "mplconfig"), MPLBACKEND="Agg",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    # 1. first run: matplotlib builds its font cache; the font is not there yet
    res = _run("from matplotlib import font_manager; print(len(font_manager.fontManager.ttflist))", env)
    assert res.returncode == 0, res.stderr
    assert list((tmp_path / "mplconfig").glob("fontlist-*.json"))
    # 2. the font is "installed" in a folder the cache has never seen
    fontdir = tmp_path / "fonts-installed-later"
    fontdir.mkdir()
    shutil.copy(CJK_FILE, fontdir)
    env[fonts.FONT_ENV] = str(fontdir)
    # 3. a zh run renders Chinese glyphs without a missing-glyph warning
    res = _run(RENDER, env, str(tmp_path / "fig.png"))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["family"] is not None and out["missing"] == [], out
    assert "Chinese font" not in res.stderr
    cache = json.loads(next((tmp_path / "mplconfig").glob("fontlist-*.json")).read_text())
    assert not any(f["fname"].startswith(str(fontdir)) for f in cache["ttflist"])  # not from the cache


@needs_font
def test_fontconfig_finds_a_font_matplotlib_has_not_cached(tmp_path):
    if shutil.which("fc-list") is None:
        pytest.skip("fontconfig (fc-list) not installed")
    fontdir = tmp_path / "fc-fonts"
    fontdir.mkdir()
    shutil.copy(CJK_FILE, fontdir)
    conf = tmp_path / "fonts.conf"
    conf.write_text(f'<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                    f"<dir>{fontdir}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>")
    env = {k: v for k, v in os.environ.items() if k != fonts.FONT_ENV}
    env.update(FONTCONFIG_FILE=str(conf), MPLCONFIGDIR=str(tmp_path / "mplconfig"), MPLBACKEND="Agg",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    code = ("from rmanalytics import fonts\n"
            "fonts.font_dirs = lambda: []\n"  # only fontconfig may find it
            "from matplotlib import font_manager\n"
            "font_manager.fontManager.ttflist = [f for f in font_manager.fontManager.ttflist "
            "if f.name not in fonts.CJK_FAMILIES]\n"
            "i = fonts.find_cjk_font(); print(i.source if i else None, i.path if i else '')")
    res = _run(code, env)
    assert res.returncode == 0, res.stderr
    source, path = res.stdout.split()
    assert source == "fontconfig" and Path(path).parent == fontdir


def test_runner_records_the_font_and_tells_how_to_install_one(monkeypatch):
    from rmanalytics import runner
    from rmanalytics.params import validate

    en = validate("01_segmentation", {})
    assert runner._font_check(en) == (None, None)
    zh = validate("01_segmentation", {"lang": "zh"})
    monkeypatch.setattr(fonts, "find_cjk_font", lambda font=None: None)
    entry, notice = runner._font_check(zh)
    assert entry == {"family": None, "path": None, "source": None}
    assert "未找到中文字体" in notice and fonts.FONT_ENV in notice
    header = runner._report_header("01_segmentation", "ok", zh, None, notice, {"n_customers": 2289})
    assert header.index("未找到中文字体") < header.index("关键数字")  # at the top, before the key figures
    assert "2,289" in header and "<details" not in header  # parameters: shown once, by the notebook
    failed = runner._report_header("01_segmentation", "failed", zh, "ValueError: x", None, {})
    assert "失败" in failed and "<details open>" in failed
    info = fonts.FontInfo(family="X Sans", path="/f/x.ttf", source="env")
    monkeypatch.setattr(fonts, "find_cjk_font", lambda font=None: info)
    assert runner._font_check(zh) == ({"family": "X Sans", "path": "/f/x.ttf", "source": "env"}, None)
