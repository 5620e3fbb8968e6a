"""The project folder around an app: where its source, its git checkout and its config live.

``config.secret_key_in_source`` scans it, ``static.upload_folder`` judges folders against
it, and SARIF results point into it, so all three must agree on what it is.
"""

from __future__ import annotations

from pathlib import Path

#: Files or folders whose presence marks the root of a project.
PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
#: Parents of the app's root path looked at for a marker (a package is rarely deeper).
MAX_DEPTH = 4


def project_root(root_path: str) -> Path:
    """The project folder around an app package: the nearest parent with a marker.

    An app installed into site-packages is its own project folder: the parents of a
    virtualenv are not the app's.
    """
    start = Path(root_path).resolve()
    if "site-packages" in start.parts:
        return start
    for candidate in [start, *start.parents][:MAX_DEPTH]:
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return start
