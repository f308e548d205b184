"""rmanalytics: customer and relationship-manager (RM) analytics for banks.

Four jobs: customer value segmentation (:mod:`rmanalytics.rfm`), survival-based churn
(:mod:`rmanalytics.churn`), loyalty and lifetime value (:mod:`rmanalytics.loyalty`) and RM KPIs
(:mod:`rmanalytics.kpi`). Tables follow the data contract in :mod:`rmanalytics.contract`.
"""

import os as _os
import sys as _sys
from importlib.metadata import PackageNotFoundError, version as _version

# pyarrow's jemalloc pool can abort the interpreter at exit ("terminate called without an active
# exception") when its worker threads are torn down during finalisation; seen here with pyarrow
# 25 and 26 in about 1 run in 10. The system allocator avoids it. Users can still override.
_os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
if "pyarrow" in _sys.modules:  # imported before us: switch the pool now
    import pyarrow as _pa

    if _os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system":
        _pa.set_memory_pool(_pa.system_memory_pool())

try:
    __version__ = _version("rmanalytics")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
