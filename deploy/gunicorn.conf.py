"""gunicorn settings for the example app, behind nginx or in a Kubernetes pod.

    gunicorn -c deploy/gunicorn.conf.py example_app.wsgi:app

gunicorn reads this file at start and on ``SIGHUP`` (``systemctl reload``). Options on
the command line win over it (the tests pass ``-b`` and ``--workers``). What differs
per host comes from the environment (unset or empty means the default):

- ``GUNICORN_BIND``: where to listen (default ``127.0.0.1:8000``, behind nginx on the
  same host; ``unix:/run/example-app/gunicorn.sock`` for a socket; ``0.0.0.0:8000`` in a
  Kubernetes pod, where the Service reaches the pod on its own address).
- ``WEB_CONCURRENCY``: the worker count (default: 2 x CPUs + 1).
- ``FORWARDED_ALLOW_IPS``: the proxies whose ``X-Forwarded-Proto`` gunicorn applies
  (gunicorn's own variable; default the local nginx, ``127.0.0.1,::1``).

``flask --app example_app readiness --gunicorn-config deploy/gunicorn.conf.py`` judges
these settings with the ``server.*`` checks before a release.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: cgroup v2's CPU quota of this process's container or systemd slice.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity, lowered to the cgroup v2 quota.

    ``os.cpu_count()`` counts the whole machine: a container limited to 2 CPUs on a
    64-CPU node would start 129 workers, which then fight over 2 CPUs and hold 129 sets
    of database connections. A quota of 1.5 CPUs counts as 2.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2, or no quota: the affinity stands
    return max(cpus, 1)


# --- where to listen -----------------------------------------------------------------
# Loopback by default: only nginx, on the same host, can reach gunicorn, so nobody
# bypasses its TLS, limits and headers, or sends an X-Forwarded-For of their own
# (server.bind_public, proxy.too_many_hops). gunicorn's own default would switch to
# 0.0.0.0 when a PORT variable is set; this file ignores PORT on purpose.
bind = [os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000"]
# A unix socket is created with this umask: the app's user and group (put nginx's user
# in that group) may connect, nobody else. Files the app creates get it too.
umask = 0o007

# --- workers ---------------------------------------------------------------------------
# Sync workers: one request at a time each, which suits an app that waits on its
# database; gunicorn's advice of 2 x CPUs + 1 keeps every CPU busy (server.workers).
worker_class = "sync"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * usable_cpus() + 1)
# A request running longer than this is killed with its worker: a hung database call
# cannot hold a worker forever (server.timeout). Long jobs belong in a task queue.
timeout = 30
# On SIGTERM or SIGHUP, workers finish the requests they are serving for up to this
# long. systemd's TimeoutStopSec and Kubernetes' terminationGracePeriodSeconds are longer.
graceful_timeout = 30
# Recycle each worker after about 1000 requests, so a slow leak cannot grow without
# bound; the jitter spreads the restarts so workers do not all restart at once
# (server.max_requests_jitter).
max_requests = 1000
max_requests_jitter = 100
# Not preloaded: each worker imports the app itself, so SIGHUP (systemctl reload) brings
# new code without dropping connections, and no database connection is shared by fork.
preload_app = False

# --- behind the proxy ------------------------------------------------------------------
# gunicorn applies X-Forwarded-Proto only from these addresses (the app's ProxyFix
# applies X-Forwarded-For and -Proto in any case, one hop). Never "*" on a public bind.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"

# --- logs --------------------------------------------------------------------------------
# Both to the process's stdout/stderr: systemd's journal, `kubectl logs` or the
# container runtime keep them, and rotation is their job.
accesslog = "-"
errorlog = "-"
loglevel = "info"
# The client's address as nginx saw it, and the time taken in milliseconds.
access_log_format = '%({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# --- runtime control ---------------------------------------------------------------------
# gunicorn 25+ opens a control socket under $HOME/.gunicorn by default; the service's
# user has no writable home (systemd's ProtectHome, a read-only container). Signals do
# the same job: HUP reloads, TTIN/TTOU add or remove a worker. Older gunicorn ignores it.
control_socket_disable = True
proc_name = "example-app"
