"""``system.*``: the machine the process runs on: disk, memory, open-file limit.

Disk and memory are read with psutil (imported inside the checks; without it they are
skipped, saying what to install). Memory also honours the cgroup the process runs in, as
a container limit is what the kernel enforces, not the host's memory. The open-file
limit needs only the standard library.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.registry import check
from .static import as_folder, upload_folder

#: The extra that installs psutil, named in skip reasons.
PSUTIL_INSTALL = "pip install 'flask-prodready[system]'"

#: A filesystem with less free space than this share of its size is reported.
MIN_FREE_DISK_RATIO = 0.10
#: Less available memory than this share of the limit the process can use is reported.
MIN_AVAILABLE_MEMORY_RATIO = 0.10

#: Where cgroups are mounted, and where this process's cgroup is named.
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
#: cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages); anything above
#: this is no limit.
CGROUP_V1_UNLIMITED = 2**60

#: File descriptors one connection in flight may hold: the client socket, plus one
#: outgoing connection (database, cache, an HTTP API) while the request is served.
FDS_PER_CONNECTION = 2
#: Descriptors a worker holds besides its connections: listening sockets, log files,
#: the database pool, pipes, files the libraries open.
SPARE_FDS = 128
#: The open-file limit a web process should have when its server's settings are unknown:
#: Linux's usual default soft limit; lower values come from a restrictive unit or container.
MIN_OPEN_FILES = 1024


def _psutil(ctx: CheckContext) -> Any:
    try:
        import psutil
    except ImportError:
        ctx.skip(f"psutil is not installed ({PSUTIL_INSTALL})")
    return psutil


def _size(count: float) -> str:
    """Bytes for people: ``512 MiB``, ``31.0 GiB``."""
    value, units = float(count), ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
    index = 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{value:.1f} {units[index]}" if index >= 3 else f"{value:.0f} {units[index]}"


def _existing(path: Path) -> Path:
    """``path``, or its nearest existing parent (the disk a missing folder would be on)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(os.sep)


def _join(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


@check(
    "system.disk",
    level=Level.WARNING,
    title="Free disk space under the app, uploads and temp >= 10%",
    hint="Free space (old logs, releases, caches, temp files) or grow the disk; a full disk "
    "fails uploads, sessions on disk, logs and database writes.",
    blocking=True,
)
def check_disk(ctx: CheckContext) -> Iterator[Finding]:
    psutil = _psutil(ctx)
    folders: list[tuple[str, Path]] = [("the app folder", Path(ctx.app.root_path))]
    found = upload_folder(ctx)
    uploads = None if found is None else as_folder(found[1])
    if uploads is not None:
        folders.append(("the upload folder", uploads))
    folders.append(("the temp folder", Path(tempfile.gettempdir())))

    # One judgement per filesystem, naming every folder on it.
    disks: dict[int, tuple[Path, list[str], list[str]]] = {}
    for label, folder in folders:
        where = _existing(folder.resolve())
        try:
            device = os.stat(where).st_dev
        except OSError:
            continue
        _, labels, paths = disks.setdefault(device, (where, [], []))
        labels.append(label)
        paths.append(str(folder))
    if not disks:
        ctx.skip("none of the app, upload and temp folders could be read")
    for where, labels, paths in disks.values():
        usage = psutil.disk_usage(str(where))
        if not usage.total:
            continue  # a pseudo filesystem without a size
        ratio = usage.free / usage.total
        if ratio < MIN_FREE_DISK_RATIO:
            yield ctx.finding(
                f"Only {ratio:.1%} of the disk holding {_join(labels)} is free: "
                f"{_size(usage.free)} of {_size(usage.total)} ({', '.join(paths)}); "
                f"the minimum is {MIN_FREE_DISK_RATIO:.0%}.",
                observed={
                    "folders": paths,
                    "free_bytes": usage.free,
                    "total_bytes": usage.total,
                },
            )


@dataclass(frozen=True)
class MemoryLimit:
    """A memory limit and what is still available under it."""

    limit: int
    available: int
    source: str


def _read_int(path: Path) -> int | None:
    """The number in a cgroup file, or ``None`` for ``max``, a missing file or junk."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stat_value(path: Path, *keys: str) -> int:
    """The first of ``keys`` found in a ``memory.stat`` file, else 0."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    values = dict(line.split(None, 1) for line in lines if " " in line)
    for key in keys:
        if values.get(key, "").strip().isdigit():
            return int(values[key])
    return 0


def _cgroup_v2_folders() -> list[Path]:
    """This process's cgroup v2 folder and its ancestors (a parent's limit binds too)."""
    relative = ""
    try:
        for line in PROC_SELF_CGROUP.read_text().splitlines():
            if line.startswith("0::"):
                relative = line[3:].strip().lstrip("/")
    except OSError:
        pass
    own = CGROUP_ROOT / relative
    if not own.is_dir():  # a cgroup namespace shows the process's own group at the root
        own = CGROUP_ROOT
    folders = [own]
    while folders[-1] != CGROUP_ROOT and CGROUP_ROOT in folders[-1].parents:
        folders.append(folders[-1].parent)
    return folders


def cgroup_memory_limit() -> MemoryLimit | None:
    """The tightest cgroup memory limit of this process, or ``None`` when there is none.

    Usage counts the page cache, which the kernel reclaims before it runs out of memory;
    the inactive file cache is therefore not counted as used (what the kubelet calls the
    working set).
    """
    tightest: MemoryLimit | None = None
    for folder in _cgroup_v2_folders():
        limit = _read_int(folder / "memory.max")
        current = _read_int(folder / "memory.current")
        if limit is None or current is None:
            continue
        used = max(0, current - _stat_value(folder / "memory.stat", "inactive_file"))
        candidate = MemoryLimit(
            limit, max(0, limit - used), f"the cgroup limit {folder / 'memory.max'}"
        )
        if tightest is None or candidate.available < tightest.available:
            tightest = candidate
    if tightest is not None:
        return tightest
    v1 = CGROUP_ROOT / "memory"
    limit = _read_int(v1 / "memory.limit_in_bytes")
    current = _read_int(v1 / "memory.usage_in_bytes")
    if limit is None or current is None or limit >= CGROUP_V1_UNLIMITED:
        return None
    used = max(0, current - _stat_value(v1 / "memory.stat", "total_inactive_file"))
    source = f"the cgroup limit {v1 / 'memory.limit_in_bytes'}"
    return MemoryLimit(limit, max(0, limit - used), source)


@check(
    "system.memory",
    level=Level.WARNING,
    title="Available memory >= 10% of the process's limit",
    hint="Find what holds the memory (worker count, a leak: set gunicorn's max_requests), "
    "lower the number of workers, or raise the memory limit.",
)
def check_memory(ctx: CheckContext) -> Iterator[Finding]:
    psutil = _psutil(ctx)
    memory = psutil.virtual_memory()
    judged = MemoryLimit(int(memory.total), int(memory.available), "the host's memory")
    cgroup = cgroup_memory_limit()
    if cgroup is not None and cgroup.limit < judged.limit:
        judged = MemoryLimit(cgroup.limit, min(cgroup.available, judged.available), cgroup.source)
    if judged.limit <= 0:
        ctx.skip("the memory size could not be read")
    ratio = judged.available / judged.limit
    if ratio < MIN_AVAILABLE_MEMORY_RATIO:
        yield ctx.finding(
            f"Only {ratio:.1%} of the memory this process may use is available: "
            f"{_size(judged.available)} of {_size(judged.limit)} ({judged.source}); "
            f"the minimum is {MIN_AVAILABLE_MEMORY_RATIO:.0%}.",
            observed={
                "available_bytes": judged.available,
                "limit_bytes": judged.limit,
                "source": judged.source,
            },
        )


def _open_descriptors() -> int | None:
    """How many files this process has open (Linux, macOS), or ``None`` when unknown."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return max(0, len(os.listdir(folder)) - 1)  # minus the listing's own descriptor
        except OSError:
            continue
    return None


@check(
    "system.fd_limit",
    level=Level.WARNING,
    title="The open-file limit fits the server's connections",
    hint="Raise the soft open-file limit of the server: LimitNOFILE= in its systemd unit, "
    "`ulimit -n` before gunicorn starts, or `--ulimit nofile=N:N` for Docker.",
)
def check_fd_limit(ctx: CheckContext) -> Iterator[Finding]:
    try:
        import resource
    except ImportError:
        ctx.skip("this platform has no open-file limit (RLIMIT_NOFILE) to read")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return
    needs: list[tuple[int, str]] = []
    server = ctx.gunicorn
    if server is not None:
        if server.worker_class == "sync":
            unit = "connection (sync worker)"
        elif server.worker_class == "gthread":
            unit = "threads"
        else:
            unit = "worker_connections"
        needs.append(
            (
                server.concurrency * FDS_PER_CONNECTION + SPARE_FDS,
                f"{server.concurrency} {unit} x {FDS_PER_CONNECTION} descriptors + "
                f"{SPARE_FDS} spare, per gunicorn worker (from {server.source})",
            )
        )
    else:
        needs.append(
            (
                MIN_OPEN_FILES,
                f"the usual minimum of {MIN_OPEN_FILES} for a web process (the server's "
                "connection settings are not known here)",
            )
        )
    opened = _open_descriptors()
    if opened is not None:
        needs.append((opened + SPARE_FDS, f"{opened} already open + {SPARE_FDS} spare"))
    required, why = max(needs)
    if soft < required:
        if hard == resource.RLIM_INFINITY or hard >= required:
            shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
            room = f" The hard limit is {shown}, so no privilege is needed to raise it."
        else:
            room = f" The hard limit is {hard}: raise it too."
        yield ctx.finding(
            f"The soft open-file limit (RLIMIT_NOFILE) is {soft}, below the {required} this "
            f"process may need: {why}.",
            hint=f"Raise the soft limit to at least {required}: LimitNOFILE={required} in the "
            f"systemd unit, `ulimit -n {required}` before gunicorn starts, or "
            f"`--ulimit nofile={required}:{required}` for Docker.{room}",
            observed={"soft": soft, "hard": hard, "required": required, "open": opened},
        )
