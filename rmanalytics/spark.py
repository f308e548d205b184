"""Spark sessions for rmanalytics: a local session for tests and examples, and the active one.

rmanalytics never needs more than a ``SparkSession``: :func:`rmanalytics.engine.run_sql` with
``engine="spark"`` uses the session you pass, else the active one (a notebook on a cluster, a
``spark-submit`` job), else it fails with a message explaining how to create one.

:func:`local_session` builds a small local session with the settings the parity tests and the
examples rely on:

- ``spark.sql.session.timeZone=UTC``: pandas' naive timestamps go in and come out unchanged (Spark
  would otherwise read them in the JVM's local time zone and shift them);
- Arrow for ``createDataFrame(pandas)`` and ``toPandas()`` (columnar, no per-row Python);
- few shuffle partitions (the default 200 only costs scheduling overhead on small local data);
- no Spark UI, no event log, a quiet log level.

PySpark is an optional dependency (extra ``spark``); importing this module does not import it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

SPARK_MISSING = (
    "engine='spark' needs PySpark: install the optional extra (pip install 'rmanalytics[spark]') "
    "and a Java runtime (JDK 17 or 21)"
)


def require_pyspark() -> Any:
    """Import and return ``pyspark``; raise ImportError with install instructions otherwise."""
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(SPARK_MISSING) from exc
    return pyspark


def java_available() -> bool:
    """True when a Java runtime can be found (``JAVA_HOME`` or ``java`` on the PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return True
    return shutil.which("java") is not None


def local_session(
    cores: int = 2,
    memory: str = "2g",
    *,
    app_name: str = "rmanalytics",
    shuffle_partitions: int | None = None,
    conf: dict[str, str] | None = None,
    log_level: str = "ERROR",
) -> Any:
    """A local ``SparkSession`` (``local[cores]``) for tests, examples and benchmarks.

    Parameters
    ----------
    cores : worker threads (``local[cores]``).
    memory : driver memory (in local mode the driver runs the executors too), e.g. ``"2g"``.
    app_name : Spark application name.
    shuffle_partitions : ``spark.sql.shuffle.partitions``; default ``2 * cores``.
    conf : extra Spark settings, applied last.
    log_level : Spark's log level (``"OFF"`` silences the error logs of failed queries too; the
        errors are still raised as Python exceptions).

    Returns
    -------
    pyspark.sql.SparkSession (``getOrCreate``: an already running session is reused; settings
    that only apply at JVM start, such as driver memory, then keep their first value).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    settings = {
        "spark.driver.memory": memory,
        # never a spark-warehouse/ (or Derby metastore) folder in the caller's working directory
        "spark.sql.warehouse.dir": str(Path(tempfile.gettempdir()) / f"rmanalytics-spark-warehouse-{os.getuid()}"),
        "spark.driver.extraJavaOptions": f"-Dlog4j2.level=error -Dderby.system.home={tempfile.gettempdir()}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "true",
        "spark.sql.shuffle.partitions": str(shuffle_partitions or 2 * cores),
        "spark.default.parallelism": str(2 * cores),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.eventLog.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
    }
    settings.update(conf or {})
    builder = SparkSession.builder.master(f"local[{int(cores)}]").appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    # getOrCreate may return a running session: make the SQL settings hold for it too.
    for key in ("spark.sql.session.timeZone", "spark.sql.execution.arrow.pyspark.enabled",
                "spark.sql.shuffle.partitions"):
        spark.conf.set(key, settings[key])
    return spark


def active_session() -> Any:
    """The active ``SparkSession``; raise a RuntimeError explaining how to create one if none."""
    require_pyspark()
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RuntimeError(
            "engine='spark' needs a SparkSession and none is active. Pass one (run_sql(..., "
            "spark=spark)), run inside spark-submit / a Spark notebook, or create a local one: "
            "from rmanalytics.spark import local_session; spark = local_session(cores=2)"
        )
    return spark


def ensure_session(cores: int = 2, memory: str = "2g") -> Any:
    """The active ``SparkSession``, or a new :func:`local_session` when none is active.

    For notebooks run with ``engine="spark"``: inside spark-submit, Databricks or a Spark kernel
    the existing (cluster) session is used; on a laptop or in CI a local one is started.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or local_session(cores=cores, memory=memory)
