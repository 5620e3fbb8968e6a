"""Find files of the app's project that hold a secret's literal value.

Used by ``config.secret_key_in_source``. "Source" is what ships with the code: files
git tracks (or would add: untracked and not ignored), or, without a usable git checkout,
the ``.py`` files of the project. A file git ignores (Flask's ``instance/config.py``
pattern, a key file the app wrote) is a secrets file, judged by who can read it. The scan
is bounded in files, bytes and time, skips virtualenvs and ``.git``, and never returns
the value itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 20_000
#: Files inside a folder git ignores whose name is no configuration file's (uploads,
#: caches, key files) are read only up to this many, and only when this small: a key
#: file holds a few bytes.
MAX_OTHER_FILES = 2_000
MAX_OTHER_FILE_BYTES = 64 * 1024
#: Longest wait for one ``git ls-files``, whatever time the check has left.
GIT_TIMEOUT = 5.0
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
#: Files where a key that reads as words counts only as a string literal or an
#: assignment: code and configuration, not prose (``.txt``, ``.md``, templates).
LITERAL_SUFFIXES = CONFIG_SUFFIXES - {".txt"}
LITERAL_NAMES = frozenset({"Dockerfile", "Containerfile", "Procfile", "Makefile"})
#: A scan's result is reused this long: the code of a running process does not change
#: (permission bits of the files found are read again on every use).
RESULT_TTL = 300.0

#: How files were classified, as the finding's ``observed["method"]`` says.
METHOD_GIT = "git"
METHOD_NO_GIT = "no git: .py files only"

#: A key reads as words when letters and word separators make up this share of it.
WORDS_SHARE = 0.9
_WORD_SEPARATORS = re.compile(r"[\s_\-.,;:!?'/]")
_LETTER_RUNS = re.compile(r"[A-Za-z]+")


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
    #: ``METHOD_GIT`` or ``METHOD_NO_GIT``.
    method: str
    #: Why git was not used although the project lies in a git checkout.
    git_problem: str | None = None

    def how(self) -> dict[str, str]:
        """How the files were classified, for a finding's ``observed``."""
        found = {"method": self.method}
        if self.git_problem is not None:
            found["git_problem"] = self.git_problem
        return found


def hit_findings(
    ctx: CheckContext, hits: Iterable[Hit], how: Mapping[str, str], *, written: str, kept: str
) -> Iterator[Finding]:
    """The findings for files holding a secret: source (tracked, or that git would add)
    gets the check's own hint, remove and rotate, never chmod; a secrets file others can
    read gets ``chmod 600`` at warning level. ``written`` and ``kept`` start the messages
    ("SECRET_KEY's value" is written in ..., "SECRET_KEY" is kept in ...)."""
    for hit in hits:
        if hit.source:
            yield ctx.finding(
                f"{written} is written in {hit.path} ({hit.why}).",
                observed={"file": hit.path, **how},
            )
        elif hit.mode & (stat.S_IRWXG | stat.S_IRWXO):
            yield ctx.finding(
                f"{kept} is kept in {hit.path} ({hit.why}), but its mode is {hit.mode:04o}: "
                "other users of the host can read it.",
                level=Level.WARNING,
                hint=f"Run: chmod 600 {hit.path}",
                observed={"file": hit.path, "mode": f"{hit.mode:04o}", **how},
            )


@dataclass(frozen=True)
class _Candidate:
    path: Path
    source: bool
    why: str
    #: Read only for the raw forms of a bytes key (a file no rule names, without git).
    bytes_key_only: bool = False
    max_bytes: int = MAX_FILE_BYTES


def reads_as_words(key: str | bytes) -> bool:
    """Whether ``key`` reads as words ("correct horse battery staple"): prose can hold it."""
    text = key.decode("latin-1") if isinstance(key, bytes) else key
    runs = _LETTER_RUNS.findall(text)
    if not text or not runs:
        return False
    wordish = sum(map(len, runs)) + len(_WORD_SEPARATORS.findall(text))
    # Random keys mix digits in, and their letter runs mix cases ("kQz"); words do not.
    return (
        wordish >= WORDS_SHARE * len(text)
        and all(run.islower() or run.isupper() or run.istitle() for run in runs)
        and sum(map(len, runs)) >= 3 * len(runs)
    )


def _is_venv(folder: Path) -> bool:
    return (folder / "pyvenv.cfg").exists()


def _walk(root: Path, limit: int = MAX_FILES) -> Iterator[Path]:
    """Up to ``limit`` files under ``root``, skipping virtualenvs and caches."""
    for folder, dirs, files in os.walk(root):
        if limit <= 0:
            return
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not _is_venv(here / d))
        for name in sorted(files):
            if limit <= 0:
                return
            limit -= 1
            yield here / name


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


def _git_top(root: Path) -> Path | None:
    """The work tree ``root`` lies in (the project may be a subfolder of it), if any."""
    return next((folder for folder in [root, *root.parents] if (folder / ".git").exists()), None)


class _GitError(Exception):
    """Git could not list the checkout's files; the message says why."""


def _git_names(root: Path, top: Path, deadline: float, *args: str) -> list[str]:
    """``git ls-files`` names under ``root`` (folders end in ``/``)."""
    git = shutil.which("git")
    if git is None:
        raise _GitError("git is not installed")
    # A checkout owned by another user (deployed by one user, run as another) makes git
    # refuse it ("dubious ownership") unless named in safe.directory. The app's code is
    # imported from this checkout already, so listing its files trusts it no further;
    # fsmonitor stays off so that the listing runs no program the checkout names.
    command = [git]
    for folder in sorted({str(top), os.path.realpath(top)}):
        command += ["-c", f"safe.directory={folder}"]
    command += ["-c", "core.fsmonitor=false", "-C", str(root), "ls-files", "-z", *args]
    timeout = max(0.1, min(GIT_TIMEOUT, deadline - time.monotonic()))
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired:
        raise _GitError(f"git ls-files did not answer within {timeout:.1f}s") from None
    except (OSError, subprocess.SubprocessError) as error:
        raise _GitError(f"git could not run ({type(error).__name__})") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
        said = fatal[0][:200] if fatal else f"exit status {done.returncode}"
        raise _GitError(f"git ls-files failed: {said}")
    return [n for n in done.stdout.decode("utf-8", "surrogateescape").split("\0") if n]


def _is_config_file(path: Path) -> bool:
    return path.suffix in CONFIG_SUFFIXES or path.name.startswith(".env")


def _is_literal_file(path: Path) -> bool:
    return (
        path.suffix in LITERAL_SUFFIXES
        or path.name.startswith(".env")
        or path.name.split(".")[0] in LITERAL_NAMES
    )


def _git_candidates(root: Path, top: Path, instance: Path, deadline: float) -> list[_Candidate]:
    tracked = _git_names(root, top, deadline, "--cached")
    found = [_Candidate(root / n, True, "tracked by git") for n in tracked]
    untracked = _git_names(root, top, deadline, "--others", "--exclude-standard")
    found += [
        _Candidate(p, True, "not ignored by git, so the next `git add` commits it")
        for p in _outside_skipped(root, [root / n for n in untracked])
    ]
    ignored = _git_names(
        root, top, deadline, "--others", "--ignored", "--exclude-standard", "--directory"
    )
    folders: list[Path] = []
    for name in ignored:
        path = root / name
        if not name.endswith("/"):
            # Any name: the app may keep its key in a file of its own (.app_secret_key).
            found.append(_Candidate(path, False, "ignored by git"))
        elif path.name not in SKIP_DIRS and not _is_venv(path) and path != instance:
            folders.append(path)
    # Whole folders git ignores (secrets/, config/local/, uploads/): their configuration
    # files, then a bounded number of small files of other names.
    others = MAX_OTHER_FILES
    for folder in folders:
        for path in _walk(folder, limit=MAX_FILES + 1):
            if len(found) > MAX_FILES or time.monotonic() > deadline:
                return found
            if _is_config_file(path):
                found.append(_Candidate(path, False, "ignored by git"))
            elif others > 0:
                others -= 1
                found.append(
                    _Candidate(path, False, "ignored by git", max_bytes=MAX_OTHER_FILE_BYTES)
                )
    return found


def _plain_candidates(root: Path, deadline: float, *, others: int) -> list[_Candidate]:
    """Without git: ``.py`` files are source, other configuration files secrets files,
    and up to ``others`` small files of other names are read for a bytes key."""
    found: list[_Candidate] = []
    for path in _walk(root, limit=MAX_FILES * 10):
        if len(found) > MAX_FILES or time.monotonic() > deadline:
            break
        if path.suffix == ".py":
            found.append(_Candidate(path, True, "a .py file of the app"))
        elif _is_config_file(path):
            found.append(_Candidate(path, False, "a configuration file"))
        elif others > 0:
            others -= 1
            found.append(
                _Candidate(
                    path,
                    False,
                    "a file of the project",
                    bytes_key_only=True,
                    max_bytes=MAX_OTHER_FILE_BYTES,
                )
            )
    return found


def _candidates(
    root: Path, instance: Path, deadline: float, *, bytes_key: bool
) -> tuple[list[_Candidate], str, str | None]:
    """The files to scan, how they were classified, and why git was not used."""
    top = _git_top(root)
    problem = None
    found: list[_Candidate] | None = None
    method = METHOD_GIT
    if top is not None:
        try:
            found = _git_candidates(root, top, instance, deadline)
        except _GitError as error:
            problem = str(error)
    if found is None:
        method = METHOD_NO_GIT
        found = _plain_candidates(root, deadline, others=MAX_OTHER_FILES if bytes_key else 0)
    # One verdict a file: the first (tracked before untracked before ignored) wins.
    unique: dict[Path, _Candidate] = {}
    for candidate in found:
        unique.setdefault(candidate.path, candidate)
    if instance.is_dir():
        for path in _walk(instance):
            unique.setdefault(path, _Candidate(path, False, "in the instance folder"))
    return list(unique.values()), method, problem


@dataclass(frozen=True)
class _Needles:
    """The forms a key takes in files, and whether only literals of it count."""

    forms: tuple[bytes, ...]
    #: Forms of a bytes key as raw data: searched in files of any name.
    raw: tuple[bytes, ...]
    literal_only: bool
    literals: re.Pattern[bytes] | None


def _needles(secret: str | bytes, literal_only: bool) -> _Needles:
    if isinstance(secret, bytes):
        raw = [secret]
        if len(secret) >= 16:
            # Written as text by the app: hex or base64 of the random bytes.
            raw += [
                secret.hex().encode("ascii"),
                base64.b64encode(secret).rstrip(b"="),
                base64.urlsafe_b64encode(secret).rstrip(b"="),
            ]
        forms = [*raw, repr(secret)[2:-1].encode("ascii", "backslashreplace")]
    else:
        encoded = secret.encode("utf-8", "surrogateescape")
        raw = []
        forms = [
            encoded,
            repr(secret)[1:-1].encode("utf-8", "surrogateescape"),  # in a str literal
            repr(encoded)[2:-1].encode("ascii"),  # in a bytes literal
        ]
    unique = tuple(dict.fromkeys(f for f in forms if f))
    literals = None
    if literal_only:
        either = b"|".join(re.escape(f) for f in unique)
        literals = re.compile(
            # "key" or 'key' (b"key" too), or KEY = key / KEY: key alone on its line
            # (a trailing comment allowed)
            rb"([\"'])(?:" + either + rb")\1"
            rb"|^[ \t]*(?:(?:export|ENV|ARG|-)[ \t]+)?[A-Za-z_][\w.\-]*[ \t]*[=:][ \t]*"
            rb"(?:" + either + rb")[ \t]*(?:[ \t][#;][^\n]*)?\r?$",
            re.MULTILINE,
        )
    return _Needles(unique, tuple(dict.fromkeys(raw)), literal_only, literals)


def _in_comment(data: bytes, start: int) -> bool:
    """Whether ``data[start]`` lies in a comment: its line starts with one, or a ``#``
    outside quotes comes before it."""
    prefix = data[data.rfind(b"\n", 0, start) + 1 : start]
    if prefix.lstrip().startswith((b"#", b";", b"//", b"--", b"<!--")):
        return True
    quote = None
    escaped = False
    for char in prefix:
        if escaped:
            escaped = False
        elif char == 0x5C:  # backslash
            escaped = quote is not None
        elif quote is not None:
            if char == quote:
                quote = None
        elif char in (0x22, 0x27):  # " '
            quote = char
        elif char == 0x23:  # #
            return True
    return False


def _holds(data: bytes, candidate: _Candidate, needles: _Needles) -> bool:
    if candidate.bytes_key_only:
        return any(form in data for form in needles.raw)
    if needles.literals is None:
        return any(form in data for form in needles.forms)
    if not _is_literal_file(candidate.path) or not any(f in data for f in needles.forms):
        return False
    return any(not _in_comment(data, m.start()) for m in needles.literals.finditer(data))


def _scan(
    secret: str | bytes, root: Path, instance: Path, deadline: float, literal_only: bool
) -> ScanResult:
    needles = _needles(secret, literal_only)
    candidates, method, problem = _candidates(
        root, instance, deadline, bytes_key=bool(needles.raw) and not literal_only
    )
    hits: list[Hit] = []
    scanned = 0
    complete = time.monotonic() <= deadline  # the listing itself may have run out of time
    for candidate in candidates[:MAX_FILES]:
        if time.monotonic() > deadline:
            complete = False
            break
        path = candidate.path
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > candidate.max_bytes:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        scanned += 1
        # Binary files too: a bytes key is raw data, NUL bytes included.
        if _holds(data, candidate, needles):
            try:
                shown = str(path.relative_to(root))
            except ValueError:
                shown = str(path)
            mode = stat.S_IMODE(info.st_mode)
            hits.append(Hit(shown, candidate.source, candidate.why, mode, str(path)))
    if len(candidates) > MAX_FILES:
        complete = False
    return ScanResult(tuple(hits), complete, scanned, str(root), method, problem)


_cache: dict[tuple[str, str, str, bool], tuple[float, ScanResult]] = {}
_cache_lock = threading.Lock()


def find_secret_in_files(
    secret: str | bytes,
    root: Path,
    instance: Path,
    deadline: float,
    *,
    literal_only: bool = False,
) -> ScanResult:
    """Scan once per process and secret (keyed by a digest, never the value).

    With ``literal_only`` (a short key, or one that reads as words), the value counts only
    as a string literal or an assignment in code and configuration files, outside
    comments: prose that happens to hold the same words is no leak.
    """
    raw = secret if isinstance(secret, bytes) else secret.encode("utf-8", "surrogateescape")
    key = (str(root), str(instance), hashlib.sha256(raw).hexdigest(), literal_only)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] > now:
        return _refreshed(cached[1])
    result = _scan(secret, root, instance, deadline, literal_only)
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
