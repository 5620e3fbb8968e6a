"""``system.*``: the machine the process runs on: disk, memory, open-file limit, and the
services on it that listen beyond loopback.

Disk and memory are read with psutil (imported inside the checks; without it they are
skipped, saying what to install). Memory also honours the cgroup the process runs in, as
a container limit is what the kernel enforces, not the host's memory. The open-file
limit needs only the standard library. Listening sockets are psutil's too.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.context import CheckContext
from ..engine.evidence import Evidence
from ..engine.findings import Finding, Level
from ..engine.registry import LIVE, check
from .proxy import proxy_peer
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


#: Services that must not face the network, by the port they listen on by default.
SERVICE_PORTS: dict[int, str] = {
    5432: "PostgreSQL",
    3306: "MySQL/MariaDB",
    6379: "Redis",
    11211: "Memcached",
    27017: "MongoDB",
    9200: "Elasticsearch/OpenSearch",
    9300: "Elasticsearch/OpenSearch",
}
#: The same services by the name of their process, whatever port they were given.
SERVICE_PROCESSES: dict[str, str] = {
    "postgres": "PostgreSQL",
    "postmaster": "PostgreSQL",
    "mysqld": "MySQL/MariaDB",
    "mariadbd": "MySQL/MariaDB",
    "redis-server": "Redis",
    "valkey-server": "Redis",
    "memcached": "Memcached",
    "mongod": "MongoDB",
    "mongos": "MongoDB",
}
#: How each service is told to listen on loopback only.
SERVICE_FIXES: dict[str, str] = {
    "PostgreSQL": "listen_addresses = 'localhost' in postgresql.conf",
    "MySQL/MariaDB": "bind-address = 127.0.0.1 under [mysqld] in my.cnf",
    "Redis": "bind 127.0.0.1 -::1 in redis.conf (and keep protected-mode yes)",
    "Memcached": "-l 127.0.0.1 -U 0 in its options (/etc/memcached.conf)",
    "MongoDB": "net.bindIp: 127.0.0.1 in mongod.conf",
    "Elasticsearch/OpenSearch": "network.host: 127.0.0.1 in its configuration file",
}
#: Who the app server is in a finding (its listening sockets are the ones this process holds).
APP_SERVER = "the app's server"
#: Listening sockets judged, at most: a host with more is judged on these.
MAX_LISTENERS = 2000


def is_exposed(address: str) -> bool:
    """Whether a listening address can be reached from other hosts: every address but
    loopback (127.0.0.0/8, ``::1``, and IPv4-mapped loopback). The wildcard ``0.0.0.0`` or
    ``::`` (and an empty address) means every interface; an address that does not parse
    says nothing and is not reported."""
    if address in ("", "*"):
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_loopback


def _every_interface(address: str) -> bool:
    try:
        return address in ("", "*") or ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def _show(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class Exposure:
    """A database, cache or proxied app server that listens beyond loopback."""

    service: str
    address: str
    port: int
    udp: bool = False
    process: str | None = None
    pid: int | None = None

    @property
    def where(self) -> str:
        """``0.0.0.0:6379`` (or ``... (UDP)``)."""
        return _show(self.address, self.port) + (" (UDP)" if self.udp else "")

    @property
    def owner(self) -> str:
        """``redis-server, pid 812``, as far as it is known."""
        parts = [self.process] if self.process else []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        return ", ".join(parts)


def _is_listening(sock: Any) -> bool:
    """A TCP socket in LISTEN, or a UDP socket bound with no peer (it takes datagrams)."""
    if getattr(sock, "status", None) == "LISTEN":
        return True
    return bool(getattr(sock, "type", None) == socket.SOCK_DGRAM and not sock.raddr)


def exposed_listeners(
    sockets: Iterable[Any],
    *,
    process_names: Mapping[int, str] | None = None,
    app_addresses: Iterable[tuple[str, int]] = (),
    proxy_on_host: bool = False,
) -> list[Exposure]:
    """The listening sockets (``psutil.net_connections()`` rows) that expose a database or
    cache, and the app's own server when a proxy on this host stands in front of it.

    A service is known by its port (a container runtime publishing 5432 counts too) or by
    the name of its process (``process_names``: pid -> name, where the system says it).
    ``app_addresses`` are the ``(ip, port)`` the app's server listens on: beyond loopback
    they matter only when ``proxy_on_host`` (every proxy reaches the server from this
    host), since a proxy on another host needs them.
    """
    names = process_names or {}
    own = set(app_addresses)
    found: dict[tuple[str, str, int, bool], Exposure] = {}
    for sock in list(sockets)[:MAX_LISTENERS]:
        laddr = getattr(sock, "laddr", None)
        if not laddr or not _is_listening(sock) or not is_exposed(laddr.ip):
            continue
        udp = getattr(sock, "type", None) == socket.SOCK_DGRAM
        process = names.get(sock.pid) if sock.pid is not None else None
        if (laddr.ip, laddr.port) in own and not udp:
            if not proxy_on_host:
                continue
            service = APP_SERVER
        else:
            service = SERVICE_PROCESSES.get(process or "") or SERVICE_PORTS.get(laddr.port, "")
            if not service:
                continue
        key = (service, laddr.ip, laddr.port, udp)
        found.setdefault(key, Exposure(service, laddr.ip, laddr.port, udp, process, sock.pid))
    return sorted(found.values(), key=lambda e: (e.service == APP_SERVER, e.port, e.address))


def exposure_message(exposure: Exposure) -> str:
    """What a finding says of one exposure."""
    by = f" ({exposure.owner})" if exposure.owner else ""
    if _every_interface(exposure.address):
        reach = f"listens on every interface ({exposure.where})"
    else:
        reach = f"listens on {exposure.where}, a non-loopback address"
    if exposure.service == APP_SERVER:
        return (
            f"The app's server{by} {reach}, although its proxy reaches it from this host: "
            "clients can bypass the proxy and its TLS, limits and forwarded headers."
        )
    return (
        f"{exposure.service}{by} {reach} on this host: other machines that reach this one "
        "can connect to it directly."
    )


def exposure_hint(exposure: Exposure) -> str:
    """How to bring one exposure back to loopback."""
    if exposure.service == APP_SERVER:
        return (
            "Bind the server to 127.0.0.1:PORT or a unix socket (gunicorn --bind "
            "127.0.0.1:8000 or unix:/run/APP.sock) so that only the proxy reaches it."
        )
    return (
        f"Make {exposure.service} listen on loopback ({SERVICE_FIXES[exposure.service]}), "
        "or on the private address the app's hosts use with a firewall in front; a port "
        "published by a container runtime should bind 127.0.0.1 (-p 127.0.0.1:PORT:PORT)."
    )


def proxy_on_host(traffic: Evidence | None) -> bool:
    """Whether the live evidence says a proxy carries the server's traffic, from this host
    only (loopback peers, or a unix socket without an IP address)."""
    if traffic is None or proxy_peer(traffic) is None:
        return False
    for peer in traffic.proxy_peers():
        try:
            if not ipaddress.ip_address(peer.address).is_loopback:
                return False
        except ValueError:
            continue  # a unix socket peer: the proxy runs on this host
    return True


def _own_listeners(psutil: Any) -> set[tuple[str, int]]:
    """The TCP ``(ip, port)`` this process listens on (gunicorn's workers hold the
    master's listening sockets too)."""
    process = psutil.Process()
    listing = getattr(process, "net_connections", None) or process.connections
    try:
        rows = listing(kind="inet")
    except psutil.Error:
        return set()
    return {(row.laddr.ip, row.laddr.port) for row in rows if row.status == "LISTEN"}


#: Seconds a snapshot of the host's listening sockets is reused: listing them maps every
#: socket of every process (hundreds of milliseconds on a busy host), and what listens
#: changes with a deploy, not from one report to the next.
LISTENERS_TTL = 60.0
_listeners: tuple[float, list[Any], dict[int, str]] | None = None
_listeners_lock = threading.Lock()


def _host_listeners(psutil: Any) -> tuple[list[Any], dict[int, str]]:
    """The host's listening sockets (at most ``MAX_LISTENERS``) and their processes' names,
    from a snapshot at most ``LISTENERS_TTL`` seconds old."""
    global _listeners
    with _listeners_lock:
        if _listeners is not None and time.monotonic() - _listeners[0] < LISTENERS_TTL:
            return _listeners[1], _listeners[2]
    sockets = psutil.net_connections(kind="inet")
    listening = [sock for sock in sockets if _is_listening(sock)][:MAX_LISTENERS]
    names = _process_names(psutil, (sock.pid for sock in listening))
    with _listeners_lock:
        _listeners = (time.monotonic(), listening, names)
    return listening, names


def clear_listeners() -> None:
    """Forget the snapshot of the host's listening sockets (tests)."""
    global _listeners
    with _listeners_lock:
        _listeners = None


def _process_names(psutil: Any, pids: Iterable[int | None]) -> dict[int, str]:
    names: dict[int, str] = {}
    for pid in {pid for pid in pids if pid is not None}:
        try:
            names[pid] = psutil.Process(pid).name()
        except psutil.Error:
            continue  # gone, or another user's process where the system hides names
    return names


@check(
    "system.exposed_services",
    level=Level.WARNING,
    tags=["security"],
    title="Databases, caches and the proxied app server listen on loopback only",
    hint="Make the service listen on 127.0.0.1 (or a private address behind a firewall); "
    "bind the app's server to loopback or a unix socket when its proxy runs on this host.",
    blocking=True,
)
def check_exposed_services(ctx: CheckContext) -> Iterator[Finding]:
    psutil = _psutil(ctx)
    try:
        listening, names = _host_listeners(psutil)
    except psutil.AccessDenied:
        ctx.skip("this system lets only root list the host's sockets (psutil.AccessDenied)")
    # The app's own server matters only live: from the CLI no proxy is known.
    proxied = proxy_on_host(ctx.observation if ctx.mode == LIVE else None)
    exposures = exposed_listeners(
        listening,
        process_names=names,
        app_addresses=_own_listeners(psutil) if proxied else (),
        proxy_on_host=proxied,
    )
    for exposure in exposures:
        yield ctx.finding(
            exposure_message(exposure),
            hint=exposure_hint(exposure),
            observed={
                "service": exposure.service,
                "address": exposure.where,
                "process": exposure.process,
                "pid": exposure.pid,
            },
        )
