"""Which parts of the app's code the process can write, for ``server.code_writable``.

The code is what Python and Jinja run: the app's folder (``app.root_path``), the folders
of its import package, and its template folder. A folder counts when it holds code (a
``.py`` or ``.pyc`` file, a template) or is one of those roots: whoever can write it can
add or replace a module. Files are judged on a bounded sample. The instance folder and
the upload folder are the app's own data, written on purpose, and are left out.

Access is asked of the kernel with the process's effective user and groups
(``os.access(..., effective_ids=True)`` where the platform has it), so a read-only mount
makes even root's code unwritable.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from ._source_scan import SKIP_DIRS, _is_venv

#: Folders walked, at most, under all roots together.
MAX_FOLDERS = 500
#: Files whose access is asked, at most: a sample is enough to tell.
MAX_FILES = 300
#: Files Python runs.
CODE_SUFFIXES = frozenset({".py", ".pyc"})
#: Folders never walked (caches, history, installed code of others); ``__pycache__`` is
#: walked: Python loads a ``.pyc`` planted there when its header matches the source.
SKIPPED_FOLDERS = SKIP_DIRS - {"__pycache__"}


@dataclass(frozen=True)
class CodeAccess:
    """What the process can write of the app's code, and how much was looked at."""

    writable: tuple[str, ...]
    roots: tuple[str, ...]
    folders: int
    files: int
    #: False when the walk stopped at its deadline or folder limit.
    complete: bool


def _writable(path: Path) -> bool:
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)


def code_roots(app: Flask) -> list[tuple[Path, bool]]:
    """``(folder, templates)`` for each folder of the app's code, existing, resolved and
    without repeats: the app's folder, its import package's folders, its template folder."""
    found: list[tuple[Path, bool]] = [(Path(app.root_path), False)]
    module = sys.modules.get(app.import_name.split(".", 1)[0])
    paths = getattr(module, "__path__", None)
    if paths is not None:
        found += [(Path(entry), False) for entry in list(paths)[:10]]
    else:
        file = getattr(module, "__file__", None)
        if file:
            found.append((Path(str(file)).parent, False))
    if app.template_folder:
        found.append((Path(app.root_path, app.template_folder), True))
    unique: dict[Path, bool] = {}
    for folder, templates in found:
        if folder.is_dir():
            resolved = folder.resolve()
            unique[resolved] = unique.get(resolved, False) or templates
    return list(unique.items())


def _inside(path: Path, folders: Iterable[Path]) -> bool:
    return any(path == folder or folder in path.parents for folder in folders)


def _walk(root: Path, excluded: list[Path]) -> Iterator[tuple[Path, list[str]]]:
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIPPED_FOLDERS
            and not _is_venv(here / d)
            and not _inside(here / d, excluded)
        )
        yield here, sorted(files)


def writable_code(app: Flask, *, excluded: Iterable[Path], deadline: float) -> CodeAccess:
    """The folders and (sampled) files of the app's code the process can write."""
    skip = [path.resolve() for path in excluded]
    roots = [(root, templates) for root, templates in code_roots(app) if not _inside(root, skip)]
    # The template folder often lies inside the app's folder: its files are code wherever
    # the walk meets them.
    template_roots = [root for root, templates in roots if templates]
    writable: list[str] = []
    seen: set[Path] = set()
    folders = files = 0
    complete = True
    for root, _ in roots:
        for folder, names in _walk(root, skip):
            if folder in seen:
                continue  # a root inside another root
            seen.add(folder)
            if folders >= MAX_FOLDERS or time.monotonic() > deadline:
                complete = False
                break
            templates = _inside(folder, template_roots)
            code = [n for n in names if templates or Path(n).suffix in CODE_SUFFIXES]
            if folder != root and not code:
                continue
            folders += 1
            if _writable(folder):
                writable.append(str(folder))
            for name in code:
                if files >= MAX_FILES:
                    break  # a sample: the folders still tell
                files += 1
                if _writable(folder / name):
                    writable.append(str(folder / name))
    return CodeAccess(
        writable=tuple(writable),
        roots=tuple(str(root) for root, _ in roots),
        folders=folders,
        files=files,
        complete=complete,
    )
