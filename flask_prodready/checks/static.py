"""``static.*``: static files and uploads.

:func:`upload_folder` says which folder holds uploads (``PRODREADY_UPLOAD_FOLDER``, else
the app's ``UPLOAD_FOLDER`` or ``MEDIA_ROOT``); ``system.disk`` uses it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..engine.context import CheckContext
from ..engine.evidence import MIN_COUNT
from ..engine.findings import Finding, Level
from ..engine.project import project_root
from ..engine.registry import LIVE, check
from ._live import observed_traffic

#: App config keys that name an upload folder, in the order they are looked at.
UPLOAD_FOLDER_KEYS = ("UPLOAD_FOLDER", "MEDIA_ROOT")


def upload_folder(ctx: CheckContext) -> tuple[str, object] | None:
    """``(setting, value)`` of the upload folder to judge, or ``None`` when none is set.

    ``value`` is what the setting holds; :func:`as_folder` turns it into a path.
    """
    if ctx.settings.upload_folder is not None:
        return "PRODREADY_UPLOAD_FOLDER", ctx.settings.upload_folder
    for key in UPLOAD_FOLDER_KEYS:
        value = ctx.config.get(key)
        if value is not None and value != "":
            return key, value
    return None


def as_folder(value: object) -> Path | None:
    """An absolute path for a folder setting (relative to the working directory, as
    ``open()`` and ``FileStorage.save()`` read it), or ``None`` when it is no path."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return Path(os.path.abspath(value))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _code_folder_problem(ctx: CheckContext, folder: Path) -> str | None:
    """Why ``folder`` (symlinks resolved) sits in the code, or ``None`` when it does not."""
    resolved = folder.resolve()
    static = ctx.app.static_folder
    if static and _inside(resolved, Path(static).resolve()):
        return (
            f"inside the static folder {Path(static).resolve()}: every upload is served "
            "publicly as a static file, HTML and scripts included"
        )
    # The instance folder is Flask's place for deployment data kept out of the code.
    if _inside(resolved, Path(ctx.app.instance_path).resolve()):
        return None
    package = Path(ctx.app.root_path).resolve()
    if _inside(resolved, package):
        return (
            f"inside the app's code folder {package}: uploads are lost or served when the "
            "next deploy replaces the code"
        )
    project = project_root(ctx.app.root_path)
    if project != package and _inside(resolved, project):
        return (
            f"inside the project folder {project}: uploads are lost or served when the "
            "next deploy replaces the code"
        )
    return None


@check(
    "static.upload_folder",
    level=Level.WARNING,
    title="The upload folder is outside the code and writable",
    hint="Keep uploads in a folder of their own outside the code and the static folder "
    "(for example /var/lib/yourapp/uploads, or a symlink to it), writable by the app's "
    "user and kept across deploys.",
    blocking=True,
)
def check_upload_folder(ctx: CheckContext) -> Iterator[Finding]:
    found = upload_folder(ctx)
    if found is None:
        ctx.skip(
            "no upload folder is configured (PRODREADY_UPLOAD_FOLDER, UPLOAD_FOLDER or MEDIA_ROOT)"
        )
    key, value = found
    folder = as_folder(value)
    if folder is None:
        ctx.skip(f"{key} is a {type(value).__name__}, not a folder path")
    problem = _code_folder_problem(ctx, folder)
    if problem is not None:
        yield ctx.finding(
            f"The upload folder {folder} ({key}) is {problem}.",
            observed={"setting": key, "folder": str(folder)},
        )
    if not folder.exists():
        yield ctx.finding(
            f"The upload folder {folder} ({key}) does not exist: saving an upload fails.",
            hint=f"Create it, writable by the app's user: mkdir -p {folder}",
            observed={"setting": key, "folder": str(folder)},
        )
    elif not folder.is_dir():
        yield ctx.finding(
            f"The upload folder {folder} ({key}) is not a folder.",
            observed={"setting": key, "folder": str(folder)},
        )
    elif not os.access(folder, os.W_OK | os.X_OK):
        user = f" (uid {os.getuid()})" if hasattr(os, "getuid") else ""
        yield ctx.finding(
            f"The upload folder {folder} ({key}) is not writable by this process{user}: "
            "saving an upload fails.",
            hint=f"Give the app's user write access: chown <app user> {folder}",
            observed={"setting": key, "folder": str(folder)},
        )


@check(
    "static.served_by_app",
    level=Level.WARNING,
    modes=[LIVE],
    title="The app does not serve /static itself",
    hint="Let nginx serve the static folder (location /static/ { alias /path/to/static/; "
    "expires 7d; }) or use WhiteNoise; each file through Flask ties up a worker.",
)
def check_served_by_app(ctx: CheckContext) -> Iterator[Finding]:
    """Static files served through the app to the peer that carries its traffic (nginx,
    when it forwards /static instead of serving it); two at least, so one stray request
    from elsewhere cannot raise it."""
    traffic = observed_traffic(ctx)
    front = traffic.front
    served = 0 if front is None else front.static
    if front is not None and served >= MIN_COUNT:
        examples = ", ".join(traffic.static_samples[:3])
        yield ctx.finding(
            f"The app itself served {served} of {front.requests} responses to "
            f"{front.address} from its static folder (e.g. {examples}): every file holds a "
            "worker that could serve a page.",
            observed={
                "static_responses": served,
                "examples": examples,
                "workers": traffic.workers,
            },
        )
