"""``backups.*``: whether the last backup is recent, judged by file times.

The newest file under ``PRODREADY_BACKUP_PATH`` is taken to be the last backup. Only
names and modification times are read, never a file's content; the walk is bounded in
files and time and ends as soon as one recent file is found.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.registry import check

#: Most files looked at under the backup folder before the walk gives up.
MAX_BACKUP_FILES = 10_000
#: Seconds kept back from the check's deadline to report a walk that ran out of time.
DEADLINE_MARGIN = 0.1


@dataclass
class _Walk:
    """What a walk of the backup folder found."""

    newest: Path | None = None
    newest_mtime: float = float("-inf")
    files: int = 0
    complete: bool = True
    recent: bool = False


def _walk(root: Path, *, cutoff: float, deadline: float) -> _Walk:
    """Find the newest file under ``root``; stop early at the first one newer than ``cutoff``.

    Hidden files and folders (lock files, sync metadata) are left out; folder symlinks are
    not followed, so a loop cannot trap the walk. ``PermissionError`` on ``root`` itself
    propagates; an unreadable sub-folder makes the result incomplete.
    """
    result = _Walk()
    pending = [root]
    first = True
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            if first:
                raise
            result.complete = False
            continue
        first = False
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if result.files >= MAX_BACKUP_FILES or time.monotonic() >= deadline:
                result.complete = False
                return result
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                    continue
                if not entry.is_file():
                    continue
                mtime = entry.stat().st_mtime
            except OSError:  # vanished, or a broken symlink
                continue
            result.files += 1
            if mtime > result.newest_mtime:
                result.newest, result.newest_mtime = Path(entry.path), mtime
            if mtime >= cutoff:
                result.recent = True
                return result
    return result


def describe_age(seconds: float) -> str:
    """``"5.5 hours"``, or ``"120 hours (5.0 days)"`` from two days on."""
    hours = max(0.0, seconds) / 3600
    if hours >= 48:
        return f"{hours:.0f} hours ({hours / 24:.1f} days)"
    return f"{hours:.1f} hours"


@check(
    "backups.stale",
    level=Level.ERROR,
    title="The newest backup is younger than the allowed age",
    hint="Find out why the backup job stopped (cron or systemd timer logs, disk space, "
    "credentials) and run it now; PRODREADY_BACKUP_PATH must be the folder it writes to.",
    blocking=True,
)
def check_backups_stale(ctx: CheckContext) -> Iterator[Finding]:
    setting = ctx.settings.backup_path
    if setting is None:
        ctx.skip("PRODREADY_BACKUP_PATH is not set: no backup folder to judge")
    root = Path(os.path.abspath(setting))
    max_age = ctx.settings.backup_max_age
    now = time.time()
    cutoff = now - max_age * 3600
    if not root.exists():
        yield ctx.finding(
            f"The backup folder {root} (PRODREADY_BACKUP_PATH) does not exist: no backup "
            "can be found.",
            observed={"path": str(root)},
        )
        return
    if root.is_dir():
        try:
            walk = _walk(root, cutoff=cutoff, deadline=ctx.deadline - DEADLINE_MARGIN)
        except OSError as exc:
            ctx.skip(f"cannot read the backup folder {root}: {exc.strerror or exc}")
        if walk.recent:
            return
        if not walk.complete:
            ctx.skip(
                f"looked at {walk.files} files under {root} without finding one younger "
                f"than {max_age:g} hours before the limit ({MAX_BACKUP_FILES} files or the "
                "check timeout); a newer one may exist"
            )
        if walk.newest is None:
            yield ctx.finding(
                f"The backup folder {root} (PRODREADY_BACKUP_PATH) holds no file: no backup "
                "has been made there.",
                observed={"path": str(root)},
            )
            return
        age = now - walk.newest_mtime
        shown = walk.newest.relative_to(root).as_posix()
        yield ctx.finding(
            f"The newest backup under {root} is {describe_age(age)} old ({shown}); the "
            f"limit is {max_age:g} hours (PRODREADY_BACKUP_MAX_AGE).",
            observed={"path": str(root), "newest": shown, "age_hours": round(age / 3600, 1)},
        )
        return
    # A single file, such as a "latest" symlink the backup job updates.
    age = now - root.stat().st_mtime
    if age > max_age * 3600:
        yield ctx.finding(
            f"The backup file {root} (PRODREADY_BACKUP_PATH) is {describe_age(age)} old; the "
            f"limit is {max_age:g} hours (PRODREADY_BACKUP_MAX_AGE).",
            observed={"path": str(root), "age_hours": round(age / 3600, 1)},
        )
