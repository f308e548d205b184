#!/usr/bin/env python
"""Print a run folder's metrics.json as a tests/notebooks/expected/<notebook>.yaml skeleton.

Usage::

    rmanalytics run-all --variant ci --out /tmp/ci-runs
    python tools/expected_metrics.py /tmp/ci-runs/03_loyalty_clv/latest --rel 1e-4 > tests/notebooks/expected/03_loyalty_clv.yaml

Integers, strings and booleans are written exactly; floats as ``{value: x, rel: R}``. Review the
file before committing: expected values must be checked independently, not just copied.
The notebook tests run the chain with ``run-all --variant ci``, so take the values from such a run
(chained inputs, e.g. 01's segments feeding 02 and 03, change downstream figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rel", type=float, default=1e-6, help="relative tolerance for floats (default 1e-6)")
    args = parser.parse_args(argv)
    manifest = json.loads((args.run_dir / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("status") != "ok":
        print(f"{args.run_dir}: run status is {manifest.get('status')!r}, not ok", file=sys.stderr)
        return 1
    metrics = json.loads((args.run_dir / "metrics.json").read_text(encoding="utf-8"))
    out = {k: ({"value": v, "rel": args.rel} if isinstance(v, float) else v) for k, v in sorted(metrics.items())}
    print(f"# Metrics of {manifest['notebook']} ({manifest['run_id']}), parameters: "
          f"{manifest.get('parameters_source', {}).get('params_file')}")
    print(yaml.safe_dump(out, sort_keys=False, allow_unicode=True, default_flow_style=None), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
