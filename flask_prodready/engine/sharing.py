"""Evidence shared between the worker processes of one server, through a private folder.

Each worker of a multi-process server (gunicorn's workers, uWSGI's processes) writes the
buckets of its :class:`~.observation.TrafficRecord` to ``<pid>.json`` in a folder of the
server's own, at most once every :data:`PUBLISH_SECONDS` and never on the request path
(a daemon thread does it); a report answered by any worker reads its siblings' files
and merges them with its own record, so every worker gives the same verdict. This is
prometheus_client's multiprocess pattern.

The folder is private to the server, because what it holds decides findings:

- it lives under ``$XDG_RUNTIME_DIR`` when set (a per-user folder), else the system's
  temporary folder, as ``prodready-<uid>/server-<master pid>-<master start time>``;
- both levels are created with mode 0700 and, before every use, must be real folders
  (not symlinks) owned by this process's user with no access for group or others: a
  folder another user planted is refused, and the report then says that its evidence is
  this worker's alone;
- a file is read only when it is a regular file (opened without following symlinks)
  owned by this user, small, and well-formed; anything else is ignored;
- files are written to a new temporary name (exclusive, mode 0600) and renamed into
  place, so a reader never sees half a file;
- the file of a worker that is gone (its pid no longer runs) is removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .observation import TrafficRecord, valid_bucket

logger = logging.getLogger("flask_prodready")

#: Seconds between two writes of a worker's buckets (only when something was counted).
PUBLISH_SECONDS = 1.0
#: Largest summary file read; a window of buckets is a few tens of kilobytes.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Most sibling files read for one report (a server with more workers is unusual).
MAX_WORKERS = 256
_PRIVATE = 0o700


class SharingRefused(Exception):
    """The server's folder cannot be used safely; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('' when unknown): with
    the pid, it names one process even after the pid is reused."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return text.rpartition(")")[2].split()[19]


def server_folder_name(master_pid: int) -> str:
    started = _start_time(master_pid)
    return f"server-{master_pid}-{started}" if started else f"server-{master_pid}"


def _private_folder(path: Path) -> Path:
    """``path``, created with mode 0700 if missing; ``SharingRefused`` unless it is a real
    folder owned by this user that no one else can enter."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, _PRIVATE)
    try:
        found = os.lstat(path)
    except OSError as exc:
        raise SharingRefused(f"{path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISDIR(found.st_mode):
        raise SharingRefused(f"{path} is not a folder (a symlink or a file is refused)")
    if found.st_uid != os.geteuid():
        raise SharingRefused(f"{path} belongs to another user (uid {found.st_uid})")
    if stat.S_IMODE(found.st_mode) & 0o077:
        raise SharingRefused(
            f"{path} is open to group or others (mode {stat.S_IMODE(found.st_mode):o})"
        )
    return path


def default_base() -> Path:
    """Where the servers' folders live: the user's runtime folder, else the temp folder."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) if runtime and os.path.isabs(runtime) else Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as someone else: not one of ours
        return False
    return True


class SharedEvidence:
    """One worker's side of the server's folder: publish its buckets, read its siblings'."""

    def __init__(self, record: TrafficRecord, master_pid: int, base: Path | None = None) -> None:
        self.record = record
        self.base = default_base() if base is None else base
        self.folder = self.base / f"prodready-{os.geteuid()}" / server_folder_name(master_pid)
        self.pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ready(self) -> Path:
        """The server's folder, checked (``SharingRefused`` when it cannot be trusted)."""
        _private_folder(self.folder.parent)
        return _private_folder(self.folder)

    def start(self) -> None:
        """Start the thread that removes the folders of servers that are gone, publishes,
        then publishes again every :data:`PUBLISH_SECONDS` while something changed."""
        self._thread = threading.Thread(target=self._run, name="prodready:evidence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        with contextlib.suppress(OSError, SharingRefused):
            _sweep_gone_servers(self.ready().parent)
        self.publish()
        while not self._stop.wait(PUBLISH_SECONDS):
            if self.record.changed:
                self.publish()

    def publish(self) -> None:
        """Write this worker's buckets (errors are logged once per reason, never raised)."""
        self.record.changed = False
        try:
            folder = self.ready()
            data = json.dumps(
                {"pid": self.pid, "buckets": self.record.buckets()}, separators=(",", ":")
            ).encode()
            temporary = folder / f".{self.pid}.{os.urandom(6).hex()}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            descriptor = os.open(temporary, flags, 0o600)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                os.replace(temporary, folder / f"{self.pid}.json")
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except (OSError, SharingRefused) as exc:
            _log_once(f"flask-prodready cannot share live evidence between workers: {exc}")

    def siblings(self) -> tuple[list[dict[str, Any]], int, str | None]:
        """(the buckets of the other live workers, how many workers that makes with this
        one, why only this worker's evidence counts if so)."""
        try:
            folder = self.ready()
            names = sorted(os.listdir(folder))[: MAX_WORKERS + 1]
        except (OSError, SharingRefused) as exc:
            reason = exc.reason if isinstance(exc, SharingRefused) else str(exc)
            return [], 1, f"the evidence of this worker only: {reason}"
        buckets: list[dict[str, Any]] = []
        workers = 1
        for name in names:
            stem, dot, suffix = name.partition(".")
            if suffix != "json" or not dot or not stem.isdigit() or int(stem) == self.pid:
                continue
            pid = int(stem)
            path = folder / name
            if not _alive(pid):
                _remove_own_file(path)
                continue
            found = _read_summary(path, pid)
            if found is not None:
                buckets.extend(found)
                workers += 1
        return buckets, workers, None


def _sweep_gone_servers(parent: Path) -> None:
    """Remove the folders of servers whose master no longer runs (a restart leaves one),
    with the files in them that this user wrote; anything else is left alone."""
    for entry in os.scandir(parent):
        if not entry.name.startswith("server-") or entry.is_symlink() or not entry.is_dir():
            continue
        master, _, started = entry.name.removeprefix("server-").partition("-")
        if not master.isdigit():
            continue
        if _alive(int(master)) and (not started or _start_time(int(master)) == started):
            continue
        folder = Path(entry.path)
        with contextlib.suppress(OSError):
            if os.lstat(folder).st_uid != os.geteuid():
                continue
            for name in os.listdir(folder):
                _remove_own_file(folder / name)
            os.rmdir(folder)


def _remove_own_file(path: Path) -> None:
    with contextlib.suppress(OSError):
        found = os.lstat(path)
        if stat.S_ISREG(found.st_mode) and found.st_uid == os.geteuid():
            os.unlink(path)


def _read_summary(path: Path, pid: int) -> list[dict[str, Any]] | None:
    """The buckets in a sibling's file, or ``None`` when it is not a file to trust."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        found = os.fstat(descriptor)
        if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid():
            return None
        if found.st_size > MAX_FILE_BYTES:
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = json.loads(handle.read(MAX_FILE_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(descriptor)
    if not isinstance(data, dict) or data.get("pid") != pid:
        return None
    buckets = data.get("buckets")
    if not isinstance(buckets, list) or not all(valid_bucket(b) for b in buckets):
        return None
    return buckets


_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged and len(_logged) < 32:
        _logged.add(message)
        logger.warning(message)


def sharing_for(record: TrafficRecord, environ: Any) -> SharedEvidence | None:
    """The sharing of a worker of a multi-process server (started), else ``None``.

    Multi-process is what the server says (``wsgi.multiprocess``); the server is this
    worker's parent, the master that forked it.
    """
    if not environ.get("wsgi.multiprocess"):
        return None
    shared = SharedEvidence(record, os.getppid())
    shared.start()
    return shared


def read_window(
    record: TrafficRecord, shared: SharedEvidence | None
) -> tuple[list[dict[str, Any]], int, str | None]:
    """(the buckets of the last window of every live worker, workers, note)."""
    now = time.time()
    own = record.buckets(now)
    if shared is None or shared.pid != os.getpid():
        return own, 1, None
    others, workers, note = shared.siblings()
    since = now - record.window
    recent = [b for b in others if b["start"] + record.bucket_seconds > since]
    return own + recent, workers, note
