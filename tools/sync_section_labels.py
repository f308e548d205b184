"""Copy the English text of tagged report sections from the notebooks into rmanalytics/locale/en.yaml.

Markdown cells tagged ``label:<key>`` carry the English of a report section; ``en.yaml`` keeps the
same text under ``<key>`` and ``zh.yaml`` its translation (tests/unit/test_labels.py checks that the
notebook and en.yaml agree). After editing a section's English in a notebook, run

    python tools/sync_section_labels.py

It rewrites the changed entries of en.yaml and lists their keys: review the Chinese of those keys in
zh.yaml. Exit status 1 when a tagged key is missing from en.yaml (add it to both files by hand).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EN = ROOT / "rmanalytics" / "locale" / "en.yaml"


def _block(key: str, text: str) -> str:
    body = "\n".join(("  " + ln) if ln else "" for ln in text.split("\n"))
    return f'"{key}": |-\n{body}\n'


def main() -> int:
    import yaml

    src = EN.read_text(encoding="utf-8")
    current = yaml.safe_load(src)
    changed, missing = [], []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            keys = [t[len("label:"):] for t in cell.get("metadata", {}).get("tags", []) if t.startswith("label:")]
            if not keys:
                continue
            key, text = keys[0], "".join(cell["source"]).rstrip("\n")
            if key not in current:
                missing.append(f"{path.name}: {key}")
                continue
            if current[key] == text:
                continue
            # the entry: its key line and the indented (or empty) lines under it
            pattern = re.compile(rf'^"{re.escape(key)}": [^\n]*\n(?:(?:  [^\n]*|)\n)*?(?=^"|^#|\Z)', re.M)
            src, n = pattern.subn(lambda m: _block(key, text) + ("\n" if m.group(0).endswith("\n\n") else ""),
                                  src, count=1)
            if n != 1:
                missing.append(f"{path.name}: {key} (could not rewrite)")
                continue
            changed.append(key)
    EN.write_text(src, encoding="utf-8")
    assert all(yaml.safe_load(src)[k] for k in changed)
    for k in changed:
        print(f"updated en.yaml: {k}  -> review its Chinese in zh.yaml")
    for m in missing:
        print(f"missing: {m}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
