"""The HTTP service: FastAPI app factory, routes per resource, auth and error mapping.

``create_app(ServiceSettings(...))`` builds the app; ``load_settings`` reads defaults, a TOML
file and ``LIVEREC_*`` variables; ``liverec serve`` runs it under uvicorn.
"""

import os

# Requests run in worker threads, and OpenMP's thread count is per thread: the
# ``faiss.omp_set_num_threads(1)`` in models/content.py holds only for the thread that imported
# faiss, so every worker got a 2-thread OpenMP team whose helper spins after each search —
# twice the CPU per recommendation (measured: 9.0 → 4.9 ms in a worker thread). libgomp reads
# this variable once, when faiss loads it, which is after this package is imported by
# ``liverec serve``. An operator's own setting wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from liverec.service.app import create_app  # noqa: E402  (after the OpenMP setting above)
from liverec.service.settings import ServiceSettings, load_settings  # noqa: E402

__all__ = ["ServiceSettings", "create_app", "load_settings"]
