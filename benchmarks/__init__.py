"""flask-prodready's benchmark suite: ``python -m benchmarks`` (``make bench``).

One run measures, side by side and interleaved, what ProdReady costs and how it compares:

* :mod:`benchmarks.throughput`: wrk against gunicorn apps (``/healthz`` and ``/_readiness``
  from cache vs a bare route, an ordinary route with and without ProdReady, and the
  liveness endpoints of flask-healthz and py-healthcheck);
* :mod:`benchmarks.cold`: a cold report with a PostgreSQL behind the app vs its slowest
  single check;
* :mod:`benchmarks.cli_time`: ``flask readiness`` vs ``flask routes``, wall time;
* :mod:`benchmarks.memory`: a worker's RSS with and without ProdReady over 10,000 requests.

:mod:`benchmarks.run` ties them together and prints the tables and the ratios with targets.
"""
