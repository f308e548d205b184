"""``python -m rmanalytics`` is the same as the ``rmanalytics`` command."""

from rmanalytics.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
