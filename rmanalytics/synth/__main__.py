"""``python -m rmanalytics.synth --customers N --out DIR [--seed S]``."""

from rmanalytics.synth.bank import main

if __name__ == "__main__":
    raise SystemExit(main())
