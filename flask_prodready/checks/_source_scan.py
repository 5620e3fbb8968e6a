"""Find files of the app's project that hold a secret's literal value.

Used by ``config.secret_key_in_source``. "Source" is what ships with the code: files
git tracks (or would add: untracked and not ignored), or, without a git checkout, the
``.py`` files of the project. A file git ignores (Flask's ``instance/config.py``
pattern) is a secrets file, judged by who can read it. The scan is bounded in files,
bytes and time, skips virtualenvs and ``.git``, and never returns the value itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 20_000
#: Folders never scanned: they hold installed code, caches or history, not the app's source.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        "site-packages",
        "dist",
        "build",
        ".eggs",
    }
)
#: Files that can hold a secret outside ``.py`` source (judged as secrets files).
CONFIG_SUFFIXES = frozenset(
    {".py", ".cfg", ".ini", ".toml", ".json", ".yaml", ".yml", ".conf", ".env", ".txt", ".sh"}
)
#: A scan's result is reused this long: the code of a running process does not change
#: (permission bits of the files found are read again on every use).
RESULT_TTL = 300.0


@dataclass(frozen=True)
class Hit:
    """A file holding the secret: where, whether it is source, and its permission bits."""

    path: str  # relative to the project folder when inside it
    source: bool
    why: str
    mode: int
    absolute: str


@dataclass(frozen=True)
class ScanResult:
    hits: tuple[Hit, ...]
    complete: bool
    scanned: int
    root: str
    git: bool


def _is_venv(folder: Path) -> bool:
    return (folder / "pyvenv.cfg").exists()


def _walk(root: Path, suffixes: Iterable[str] | None, limit: int = MAX_FILES) -> Iterator[Path]:
    """Up to ``limit`` files under ``root``, skipping virtualenvs and caches."""
    wanted = None if suffixes is None else frozenset(suffixes)
    for folder, dirs, files in os.walk(root):
        if limit <= 0:
            return
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not _is_venv(here / d))
        for name in sorted(files):
            path = here / name
            if wanted is None or path.suffix in wanted or name.startswith(".env"):
                limit -= 1
                yield path


def _outside_skipped(root: Path, paths: list[Path]) -> list[Path]:
    """Drop paths inside virtualenvs and skipped folders (an untracked ``.venv``)."""
    verdicts: dict[Path, bool] = {}

    def skipped(folder: Path) -> bool:
        if folder == root or root not in folder.parents:
            return False
        if folder not in verdicts:
            verdicts[folder] = (
                folder.name in SKIP_DIRS or _is_venv(folder) or skipped(folder.parent)
            )
        return verdicts[folder]

    return [p for p in paths if not skipped(p.parent)]


def _git_names(root: Path, *args: str) -> list[str] | None:
    """``git ls-files`` names under ``root`` (folders end in ``/``); ``None`` without git."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(root), "ls-files", "-z", *args],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [n for n in done.stdout.decode("utf-8", "surrogateescape").split("\0") if n]


def _in_git_checkout(root: Path) -> bool:
    """Whether ``root`` lies in a git work tree (the project may be a subfolder of it)."""
    return any((folder / ".git").exists() for folder in [root, *root.parents])


def _is_config_file(path: Path) -> bool:
    return path.suffix in CONFIG_SUFFIXES or path.name.startswith(".env")


def _candidates(root: Path, instance: Path) -> tuple[list[tuple[Path, bool, str]], bool]:
    """(file, is source, why) to scan, and whether git classified them."""
    found: list[tuple[Path, bool, str]] = []
    tracked = _git_names(root, "--cached") if _in_git_checkout(root) else None
    git = tracked is not None
    if tracked is not None:
        found += [(root / n, True, "tracked by git") for n in tracked]
        untracked = _outside_skipped(
            root, [root / n for n in _git_names(root, "--others", "--exclude-standard") or []]
        )
        found += [
            (p, True, "not ignored by git, so the next `git add` commits it") for p in untracked
        ]
        ignored = _git_names(root, "--others", "--ignored", "--exclude-standard", "--directory")
        for name in ignored or []:
            path = root / name
            if not name.endswith("/"):
                if _is_config_file(path):
                    found.append((path, False, "ignored by git"))
            elif path.name not in SKIP_DIRS and not _is_venv(path) and path != instance:
                # A whole folder git ignores (secrets/, config/local/): its config files.
                found += [
                    (p, False, "ignored by git")
                    for p in _walk(path, CONFIG_SUFFIXES, limit=MAX_FILES - len(found) + 1)
                ]
    else:
        for path in _walk(root, CONFIG_SUFFIXES):
            if path.suffix == ".py":
                found.append((path, True, "a .py file of the app"))
            else:
                found.append((path, False, "a configuration file"))
    seen = {p for p, _, _ in found}
    if instance.is_dir():
        found += [
            (p, False, "in the instance folder") for p in _walk(instance, None) if p not in seen
        ]
    return found, git


def _needles(secret: str | bytes) -> list[bytes]:
    if isinstance(secret, bytes):
        return [secret, repr(secret)[2:-1].encode("ascii", "backslashreplace")]
    return [secret.encode("utf-8")]


def _scan(secret: str | bytes, root: Path, instance: Path, deadline: float) -> ScanResult:
    candidates, git = _candidates(root, instance)
    needles = _needles(secret)
    hits: list[Hit] = []
    scanned = 0
    complete = True
    for path, source, why in candidates[:MAX_FILES]:
        if time.monotonic() > deadline:
            complete = False
            break
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        scanned += 1
        if b"\0" in data[:8192]:
            continue  # binary
        if any(needle in data for needle in needles):
            try:
                shown = str(path.relative_to(root))
            except ValueError:
                shown = str(path)
            hits.append(Hit(shown, source, why, stat.S_IMODE(info.st_mode), str(path)))
    if len(candidates) > MAX_FILES:
        complete = False
    return ScanResult(tuple(hits), complete, scanned, str(root), git)


_cache: dict[tuple[str, str, str], tuple[float, ScanResult]] = {}
_cache_lock = threading.Lock()


def find_secret_in_files(
    secret: str | bytes, root: Path, instance: Path, deadline: float
) -> ScanResult:
    """Scan once per process and secret (keyed by a digest, never the value)."""
    raw = secret if isinstance(secret, bytes) else secret.encode("utf-8", "surrogateescape")
    key = (str(root), str(instance), hashlib.sha256(raw).hexdigest())
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] > now:
        return _refreshed(cached[1])
    result = _scan(secret, root, instance, deadline)
    if result.complete:
        with _cache_lock:
            _cache[key] = (time.monotonic() + RESULT_TTL, result)
    return result


def _refreshed(result: ScanResult) -> ScanResult:
    """A cached result with permission bits read again (a chmod shows at once)."""
    hits = []
    for hit in result.hits:
        try:
            mode = stat.S_IMODE(os.stat(hit.absolute).st_mode)
        except OSError:
            continue  # the file is gone
        hits.append(replace(hit, mode=mode))
    return replace(result, hits=tuple(hits))


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
